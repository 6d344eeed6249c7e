"""Objectives turn a simulator's metrics into the reward a searcher maximises. One sign convention everywhere:
higher reward is better."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.simulator import Simulator

_OPS = ("<=", ">=")


class Objective:
    """Base class. ``reward`` is a scalar; multi-objective subclasses also give ``rewards`` (a vector, all maximised)."""

    multi = False
    failure_reward: float = -1.0

    def metric_names(self) -> list[str]:
        raise NotImplementedError

    def reward(self, metrics: Mapping[str, float]) -> float:
        raise NotImplementedError

    def rewards(self, metrics: Mapping[str, float]) -> list[float] | None:
        """The reward vector for multi-objective searchers (None for single-objective)."""
        return None

    def satisfied(self, metrics: Mapping[str, float]) -> bool:
        """True when a target spec is met (ends a Gymnasium episode)."""
        return False

    def bind(self, simulator: Simulator) -> Objective:
        """Check the objective against the simulator's declared metrics; refuses report-only metrics (test accuracy)."""
        declared = {m.name: m for m in simulator.metrics}
        for name in self.metric_names():
            if name not in declared:
                raise ConfigError(f"objective uses metric {name!r}, which {simulator.name} does not report; metrics: {', '.join(declared)}")
            if declared[name].report_only:
                raise ConfigError(f"metric {name!r} is report-only (e.g. test accuracy) and may not be optimised")
        self._signs = {n: declared[n].sign for n in self.metric_names()}
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, **{k: v for k, v in self.__dict__.items() if not k.startswith("_")}}


class SingleMetric(Objective):
    """Optimise one metric in its declared direction (reward = value for 'max', -value for 'min')."""

    def __init__(self, metric: str, failure_reward: float = -1.0) -> None:
        self.metric = metric
        self.failure_reward = failure_reward

    def metric_names(self) -> list[str]:
        return [self.metric]

    def reward(self, metrics: Mapping[str, float]) -> float:
        return self._signs[self.metric] * float(metrics[self.metric])


class WeightedSum(Objective):
    """Reward = sum of weight * sign * value (optionally of log values), signs from each metric's direction."""

    def __init__(self, weights: Mapping[str, float], log: bool = False, failure_reward: float = -1e9) -> None:
        if not weights:
            raise ConfigError("WeightedSum needs at least one metric weight")
        self.weights = dict(weights)
        self.log = log
        self.failure_reward = failure_reward

    def metric_names(self) -> list[str]:
        return list(self.weights)

    def reward(self, metrics: Mapping[str, float]) -> float:
        total = 0.0
        for name, w in self.weights.items():
            v = float(metrics[name])
            total += w * self._signs[name] * (np.log(max(v, 1e-300)) if self.log else v)
        return float(total)


def _parse_targets(targets: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    out = {}
    for name, spec in targets.items():
        if isinstance(spec, (int, float)):
            raise ConfigError(f"target for {name!r} needs a direction: write ('<=', {spec}) or ('>=', {spec})")
        op, value = spec
        if op not in _OPS:
            raise ConfigError(f"target for {name!r}: operator {op!r} is not allowed; allowed: {', '.join(_OPS)}")
        out[name] = (op, float(value))
    return out


def _shortfall(op: str, target: float, value: float) -> float:
    """Relative distance by which ``value`` misses ``target`` (0 when met)."""
    scale = abs(target) if target != 0 else 1.0
    gap = value - target if op == "<=" else target - value
    return max(0.0, gap / scale)


class TargetSpec(Objective):
    """ArchGym's target spec: reward = -sum of relative shortfalls to each target (0 once every target is met).

    ``targets`` maps a metric to ``(op, value)``, e.g. ``{"cycles": ("<=", 2e5), "sram_kb": ("<=", 512)}``.
    Beyond the targets, an optional ``tiebreak`` metric (with a small weight) prefers better designs among those that
    meet the spec, so a searcher does not stop improving at the first feasible design.
    """

    def __init__(self, targets: Mapping[str, Any], tiebreak: str | None = None, tiebreak_weight: float = 1e-3,
                 failure_reward: float = -10.0) -> None:
        self.targets = _parse_targets(targets)
        if not self.targets:
            raise ConfigError("TargetSpec needs at least one target")
        self.tiebreak = tiebreak
        self.tiebreak_weight = tiebreak_weight
        self.failure_reward = failure_reward

    def metric_names(self) -> list[str]:
        return list(self.targets) + ([self.tiebreak] if self.tiebreak and self.tiebreak not in self.targets else [])

    def reward(self, metrics: Mapping[str, float]) -> float:
        r = -sum(_shortfall(op, t, float(metrics[n])) for n, (op, t) in self.targets.items())
        if self.tiebreak and r == 0.0:
            op_t = self.targets.get(self.tiebreak)
            v = float(metrics[self.tiebreak])
            if op_t is not None:  # relative margin beyond the target, bounded so it never outweighs a miss
                r += self.tiebreak_weight * min(1.0, -_signed_gap(op_t[0], op_t[1], v))
            else:
                r += self.tiebreak_weight * self._signs[self.tiebreak] * v
        return float(r)

    def satisfied(self, metrics: Mapping[str, float]) -> bool:
        return all(_shortfall(op, t, float(metrics[n])) == 0.0 for n, (op, t) in self.targets.items())


def _signed_gap(op: str, target: float, value: float) -> float:
    scale = abs(target) if target != 0 else 1.0
    return (value - target) / scale if op == "<=" else (target - value) / scale


class Constrained(Objective):
    """An inner objective subject to hard limits. A violating design's reward is ``failure_reward`` minus its relative
    violation: with ``failure_reward`` below every feasible reward (the default -1e6 is, for rewards of ordinary
    magnitude) it ranks below every feasible design, and infeasible designs still rank among themselves."""

    def __init__(self, inner: Objective, limits: Mapping[str, Any], failure_reward: float = -1e6) -> None:
        self.inner = inner
        self.limits = _parse_targets(limits)
        self.failure_reward = failure_reward
        self.multi = inner.multi

    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(self.inner.metric_names() + list(self.limits)))

    def bind(self, simulator: Simulator) -> Objective:
        self.inner.bind(simulator)
        return super().bind(simulator)

    def violation(self, metrics: Mapping[str, float]) -> float:
        return sum(_shortfall(op, t, float(metrics[n])) for n, (op, t) in self.limits.items())

    def reward(self, metrics: Mapping[str, float]) -> float:
        v = self.violation(metrics)
        return self.inner.reward(metrics) if v == 0.0 else float(self.failure_reward - v)

    def rewards(self, metrics: Mapping[str, float]) -> list[float] | None:
        inner = self.inner.rewards(metrics)
        if inner is None or self.violation(metrics) == 0.0:
            return inner
        return [self.failure_reward - self.violation(metrics)] * len(inner)

    def satisfied(self, metrics: Mapping[str, float]) -> bool:
        return self.violation(metrics) == 0.0 and self.inner.satisfied(metrics)

    def describe(self) -> dict[str, Any]:
        return {"kind": "Constrained", "inner": self.inner.describe(), "limits": self.limits}


class MultiObjective(Objective):
    """Several metrics at once: ``rewards`` is the signed vector; ``reward`` a weighted scalarisation for searchers
    that need one (weights default to equal, applied to the signed values divided by each metric's scale)."""

    multi = True

    def __init__(self, metrics: Sequence[str], weights: Sequence[float] | None = None, failure_reward: float = -1e9) -> None:
        if len(metrics) < 2:
            raise ConfigError("MultiObjective needs at least two metrics")
        self.metrics = list(metrics)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.metrics)
        if len(self.weights) != len(self.metrics):
            raise ConfigError(f"MultiObjective: {len(self.weights)} weights for {len(self.metrics)} metrics")
        self.failure_reward = failure_reward

    def metric_names(self) -> list[str]:
        return list(self.metrics)

    def bind(self, simulator: Simulator) -> Objective:
        super().bind(simulator)
        self._scales = {m.name: m.scale for m in simulator.metrics}
        return self

    def rewards(self, metrics: Mapping[str, float]) -> list[float]:
        return [self._signs[n] * float(metrics[n]) for n in self.metrics]

    def reward(self, metrics: Mapping[str, float]) -> float:
        return float(sum(w * r / self._scales[n] for w, r, n in zip(self.weights, self.rewards(metrics), self.metrics)))


def pareto_front(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Indices of the non-dominated rows of ``points`` (every column maximised)."""
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.zeros(0, dtype=int)
    order = np.lexsort(-pts.T[::-1])  # lexicographically descending: any dominator of a point comes before it
    keep: list[int] = []
    for i in order:
        p = pts[i]
        dominated = any(np.all(pts[j] >= p) and np.any(pts[j] > p) for j in keep)
        if not dominated:
            keep.append(int(i))
    return np.array(sorted(keep), dtype=int)
