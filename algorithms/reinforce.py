"""Policy-gradient searchers: a REINFORCE LSTM controller (GraphNAS-style) and AGNN's reinforced conservative explorer.

Both work on any DesignSpace: the controller takes one decision per active parameter in declared order (conditional
parameters are decided only when active, constraints mask values that can no longer be valid), and float parameters
are searched on ``float_bins`` evenly spaced points of their (log) range.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from archgym.errors import ConfigError, InvalidDesignError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace, Float

if TYPE_CHECKING:
    from archgym.evaluator import TrialResult

_TRIES = 100
_MAX_CHOICES = 4096


class _Controller(nn.Module):
    """An LSTM cell that reads the embedding of the previous decision and emits logits for the next parameter."""

    def __init__(self, cardinalities: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        self.embed = nn.ModuleList(nn.Embedding(k, hidden) for k in cardinalities)
        self.decode = nn.ModuleList(nn.Linear(hidden, k) for k in cardinalities)


class ReinforceSearcher(Searcher):
    """REINFORCE over an autoregressive LSTM policy: sample designs, then raise the log-probability of those that beat
    a moving-average baseline (advantages divided by a moving standard deviation, so any reward scale works), with an
    entropy bonus against early collapse. Failed trials count as the worst reward seen so far."""

    name = "reinforce"
    hyperparameter_doc = {
        "hidden_size": "LSTM controller width",
        "lr": "Adam learning rate of the controller",
        "entropy_weight": "weight of the entropy bonus in the policy loss",
        "baseline_decay": "decay of the moving-average reward baseline (and of the moving variance)",
        "temperature": "softmax temperature applied to the controller's logits",
        "tanh_c": "logits are squashed to tanh_c * tanh(logits / tanh_c) (0 disables)",
        "advantage_clip": "normalised advantages are clipped to +- this value",
        "float_bins": "number of evenly spaced values a float parameter is searched on",
    }

    def __init__(
        self,
        space: DesignSpace,
        seed: int = 0,
        hidden_size: int = 64,
        lr: float = 0.01,
        entropy_weight: float = 1e-3,
        baseline_decay: float = 0.9,
        temperature: float = 1.0,
        tanh_c: float = 2.5,
        advantage_clip: float = 3.0,
        float_bins: int = 10,
    ) -> None:
        super().__init__(space, seed)
        checks = {"hidden_size": hidden_size >= 1, "lr": lr > 0, "entropy_weight": entropy_weight >= 0,
                  "baseline_decay": 0 <= baseline_decay < 1, "temperature": temperature > 0, "tanh_c": tanh_c >= 0,
                  "advantage_clip": advantage_clip > 0, "float_bins": float_bins >= 2}
        for field, ok in checks.items():
            if not ok:
                raise ConfigError(f"searcher {self.name}: bad {field}={locals()[field]!r} (hidden_size >= 1, lr > 0, "
                                  "entropy_weight >= 0, 0 <= baseline_decay < 1, temperature > 0, tanh_c >= 0, "
                                  "advantage_clip > 0, float_bins >= 2)")
        self.hidden_size, self.lr, self.entropy_weight = int(hidden_size), float(lr), float(entropy_weight)
        self.baseline_decay, self.temperature, self.tanh_c = float(baseline_decay), float(temperature), float(tanh_c)
        self.advantage_clip, self.float_bins = float(advantage_clip), int(float_bins)
        self._names = list(space.params)
        self._values = [self._choices(n) for n in self._names]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.controller = _Controller([len(v) for v in self._values], self.hidden_size)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.lr)
        self.baseline: float | None = None
        self.variance = 0.0
        self.worst: float | None = None

    # -- decisions ----------------------------------------------------------------------------------------------

    def _choices(self, name: str) -> list[Any]:
        p = self.space.params[name]
        if isinstance(p, Float):
            return [p.from_unit((i + 0.5) / self.float_bins) for i in range(self.float_bins)]
        if p.cardinality > _MAX_CHOICES:  # type: ignore[attr-defined]
            raise ConfigError(f"searcher {self.name}: parameter {name!r} has {p.cardinality:,} values; the controller "  # type: ignore[attr-defined]
                              f"takes at most {_MAX_CHOICES:,} per decision (use an Ordinal or Float parameter)")
        return list(p.values)  # type: ignore[attr-defined]

    def _index(self, j: int, value: Any) -> int:
        p = self.space.params[self._names[j]]
        if isinstance(p, Float):
            return min(int(p.to_unit(value) * self.float_bins), self.float_bins - 1)
        return p.index(value)  # type: ignore[attr-defined]

    def _allowed(self, j: int, partial: Design) -> list[int]:
        values = self._values[j]
        if not self.space.constraints or isinstance(self.space.params[self._names[j]], Float):
            return list(range(len(values)))
        ok = self.space.allowed_values(self._names[j], partial)
        return [i for i, v in enumerate(values) if v in ok]

    def _roll(self, fixed: Design | None = None, free: set[str] | None = None, grad: bool = False,
              change: str | None = None) -> tuple[Design | None, torch.Tensor, torch.Tensor, dict[str, float]]:
        """Walk the active parameters in order: take the value in ``fixed`` unless the name is in ``free`` (or absent
        from ``fixed``), in which case sample it from the policy with ``self.rng``; the parameter ``change`` must take
        a value other than its value in ``fixed`` when it has another allowed one.

        Returns the design (None if the constraints left no value), its summed log-probability and entropy (as
        tensors with gradient when ``grad``, else zeros), and each decision's entropy normalised by the log of its
        number of allowed values. Without ``grad`` the distribution is computed in numpy (a few times faster).
        """
        fixed = fixed or {}
        free = free or set()
        ctl = self.controller
        design: Design = {}
        terms: list[torch.Tensor] = []
        norm_ent: dict[str, float] = {}
        with torch.set_grad_enabled(grad):
            inp, state = ctl.start, None
            for j, name in enumerate(self._names):
                if not self.space.params[name].active(design):
                    continue
                state = ctl.cell(inp, state)
                logits = ctl.decode[j](state[0])[0] / self.temperature
                if self.tanh_c > 0:
                    logits = self.tanh_c * torch.tanh(logits / self.tanh_c)
                allowed = self._allowed(j, design)
                if not allowed:
                    return None, torch.zeros(()), torch.zeros(()), norm_ent
                lg = logits.detach().double().numpy()[allowed]
                pr = np.exp(lg - lg.max())
                pr /= pr.sum()
                h = float(-(pr * np.log(np.maximum(pr, 1e-300))).sum())
                norm_ent[name] = h / float(np.log(len(allowed))) if len(allowed) > 1 else 0.0
                if name in fixed and name not in free:
                    i = self._index(j, fixed[name])
                    if i not in allowed:
                        return None, torch.zeros(()), torch.zeros(()), norm_ent
                else:
                    if name == change and name in fixed and len(allowed) > 1:
                        keep = np.array([a != self._index(j, fixed[name]) for a in allowed])
                        pr = np.where(keep, pr, 0.0) / pr[keep].sum()
                    i = allowed[int(self.rng.choice(len(allowed), p=pr))]
                design[name] = self._values[j][i]
                if grad:
                    log_probs = torch.log_softmax(logits[allowed], dim=-1)
                    terms.append(torch.stack([log_probs[allowed.index(i)], -(log_probs.exp() * log_probs).sum()]))
                inp = ctl.embed[j].weight[i:i + 1]
        if not terms:
            return design, torch.zeros(()), torch.zeros(()), norm_ent
        total = torch.stack(terms).sum(dim=0)
        return design, total[0], total[1], norm_ent

    def _sample(self, fixed: Design | None = None, free: set[str] | None = None, change: str | None = None) -> Design:
        """A valid design from the policy (with ``fixed`` decisions kept and ``change`` changed); a uniform sample if
        the policy keeps proposing invalid ones."""
        for _ in range(_TRIES):
            design, _, _, _ = self._roll(fixed, free, change=change)
            if design is not None and self.space.is_valid(design):
                return self.space.validate(design)
        return self.space.sample(self.rng)

    # -- the searcher interface ---------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[Design]:
        """``n`` designs sampled from the current policy."""
        return [self._sample() for _ in range(n)]

    def _reward(self, result: TrialResult) -> float | None:
        """The reward the policy learns from: a failed trial counts as the worst successful reward so far."""
        if result.ok:
            r = float(result.reward)
            self.worst = r if self.worst is None else min(self.worst, r)
            return r
        return self.worst

    def tell(self, designs: Sequence[Design], results: Sequence[TrialResult]) -> None:
        """One policy-gradient step on the told designs (log-probabilities recomputed under the current policy)."""
        super().tell(designs, results)
        terms = []
        for design, result in zip(designs, results):
            r = self._reward(result)
            if r is None:
                continue
            if self.baseline is None:
                self.baseline = r
            adv = (r - self.baseline) / (np.sqrt(self.variance) + 1e-8) if self.variance > 0 else 0.0
            adv = float(np.clip(adv, -self.advantage_clip, self.advantage_clip))
            d = self.baseline_decay
            self.variance = d * self.variance + (1 - d) * (r - self.baseline) ** 2
            self.baseline = d * self.baseline + (1 - d) * r
            try:
                valid = self.space.validate(design)
            except InvalidDesignError:  # an invalid design teaches the policy nothing
                continue
            replayed, logp, ent, _ = self._roll(valid, grad=True)
            if replayed is not None:
                terms.append(-adv * logp - self.entropy_weight * ent)
        if terms:
            self.optimizer.zero_grad()
            torch.stack(terms).mean().backward()
            self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        buf = io.BytesIO()
        torch.save({"controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict()}, buf)
        return {**super().state_dict(), "torch": base64.b64encode(buf.getvalue()).decode("ascii"),
                "baseline": self.baseline, "variance": self.variance, "worst": self.worst}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        blob = torch.load(io.BytesIO(base64.b64decode(state["torch"])), weights_only=True)
        self.controller.load_state_dict(blob["controller"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.baseline, self.variance, self.worst = state["baseline"], state["variance"], state["worst"]


def group_of(name: str, how: str) -> str:
    """The decision group of a parameter: ``param`` (itself), ``kind`` (its name without a ``layer3_``-style
    prefix, so one group holds e.g. every layer's attention function: AGNN's action classes) or ``layer`` (the
    prefix, so one group holds all decisions of one layer; unprefixed parameters stand alone)."""
    m = re.match(r"^([A-Za-z]+\d+)_(.+)$", name)
    if how == "param" or m is None:
        return name
    return m.group(2) if how == "kind" else m.group(1)


class AGNNSearcher(ReinforceSearcher):
    """AGNN's reinforced conservative controller: keep the best design so far and propose it with one group of
    decisions resampled by the controller (one of them, drawn at random, forced to change); the group is drawn with
    probability proportional to the controller's mean normalised entropy over it (where the policy is least sure).
    The best design is replaced only by a better one.
    The controller itself learns from every result by REINFORCE, as in ``reinforce``."""

    name = "agnn"
    hyperparameter_doc = {
        **ReinforceSearcher.hyperparameter_doc,
        "groups": "how decisions are grouped for resampling: 'kind' (same name across layers; AGNN's action "
                  "classes), 'layer' or 'param'",
        "warmup": "designs sampled from the plain policy before the explorer starts from the best of them",
        "min_group_weight": "floor added to each group's entropy so a confident group can still be chosen",
        "explore_tries": "resampling attempts to find a not-yet-seen neighbour of the best design before a fresh "
                         "policy sample is proposed instead",
    }

    def __init__(
        self,
        space: DesignSpace,
        seed: int = 0,
        hidden_size: int = 64,
        lr: float = 0.01,
        entropy_weight: float = 1e-3,
        baseline_decay: float = 0.9,
        temperature: float = 1.0,
        tanh_c: float = 2.5,
        advantage_clip: float = 3.0,
        float_bins: int = 10,
        groups: str = "kind",
        warmup: int = 3,
        min_group_weight: float = 0.05,
        explore_tries: int = 20,
    ) -> None:
        super().__init__(space, seed, hidden_size, lr, entropy_weight, baseline_decay, temperature, tanh_c,
                         advantage_clip, float_bins)
        if groups not in ("kind", "layer", "param"):
            raise ConfigError(f"searcher agnn: groups {groups!r} is not allowed; allowed: 'kind', 'layer', 'param'")
        if warmup < 1 or min_group_weight < 0 or explore_tries < 1:
            raise ConfigError("searcher agnn: warmup and explore_tries must be >= 1 and min_group_weight >= 0")
        self.groups, self.warmup, self.min_group_weight = groups, int(warmup), float(min_group_weight)
        self.explore_tries = int(explore_tries)
        self._group = {n: group_of(n, groups) for n in space.params}
        self.best: Design | None = None
        self.best_reward: float | None = None
        self.seen: set[str] = set()
        self.n_asked = 0

    def _explore(self, taken: set[str]) -> Design:
        """The best design with one entropy-chosen group resampled (a design not proposed before when possible)."""
        assert self.best is not None
        _, _, _, norm_ent = self._roll(self.best)
        per_group: dict[str, list[float]] = {}
        for name, h in norm_ent.items():
            per_group.setdefault(self._group[name], []).append(h)
        names = sorted(per_group)
        w = np.array([float(np.mean(per_group[g])) + self.min_group_weight for g in names])
        for _ in range(self.explore_tries):
            group = names[int(self.rng.choice(len(names), p=w / w.sum()))]
            free = {n for n in self.space.params if self._group[n] == group}
            active = sorted(free & set(self.best))
            change = active[int(self.rng.integers(len(active)))]
            design = self._sample(self.best, free, change)
            if self.space.key(design) not in taken:
                return design
            w[names.index(group)] *= 0.5  # this group's neighbours may be exhausted: try the others more
        return self._fresh(taken)  # every tried neighbour was seen: the best is a local optimum, jump elsewhere

    def _fresh(self, taken: set[str]) -> Design:
        """A design from the plain policy, unseen if one turns up within ``explore_tries`` samples."""
        design = self._sample()
        for _ in range(self.explore_tries - 1):
            if self.space.key(design) not in taken:
                break
            design = self._sample()
        return design

    def ask(self, n: int = 1) -> list[Design]:
        out: list[Design] = []
        taken = set(self.seen)
        for _ in range(n):
            if self.best is None or self.n_asked < self.warmup:
                d = self._fresh(taken)
            else:
                d = self._explore(taken)
            taken.add(self.space.key(d))
            out.append(d)
            self.n_asked += 1
        return out

    def tell(self, designs: Sequence[Design], results: Sequence[TrialResult]) -> None:
        super().tell(designs, results)
        for design, result in zip(designs, results):
            if result.key and result.key != "invalid":
                self.seen.add(result.key)
            if result.ok and (self.best_reward is None or result.reward > self.best_reward):
                self.best, self.best_reward = dict(result.design), float(result.reward)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best": self.best, "best_reward": self.best_reward,
                "seen": sorted(self.seen), "n_asked": self.n_asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best, self.best_reward = state["best"], state["best_reward"]
        self.seen, self.n_asked = set(state["seen"]), state["n_asked"]
