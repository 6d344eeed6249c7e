"""Ant colony optimisation (ArchGym's ACO, in MAX-MIN form): a pheromone per parameter value; each ant builds a
design decision by decision, greedily with probability ``greediness`` and else in proportion to pheromone^alpha;
after each colony the pheromone evaporates and the best ants (and the best design so far) deposit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace, Float


class ACOSearcher(Searcher):
    """Ant colony optimisation over per-value pheromones (floats are split into ``float_bins`` bins)."""

    name = "aco"
    hyperparameter_doc = {
        "n_ants": "ants per colony; pheromone is updated after each colony's results",
        "evaporation": "fraction of pheromone that evaporates per colony (rho)",
        "greediness": "probability that an ant takes the value with the most pheromone (exploitation)",
        "alpha": "exponent on pheromone when sampling a value",
        "deposit": "pheromone the best ant of a colony and the best design so far each deposit",
        "n_best": "ants of a colony that deposit (rank-weighted)",
        "tau_min": "lower pheromone bound (MAX-MIN ACO; keeps every value reachable)",
        "tau_max": "upper pheromone bound",
        "float_bins": "bins per float parameter (a value is drawn uniformly inside the chosen bin)",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, n_ants: int = 10, evaporation: float = 0.2,
                 greediness: float = 0.1, alpha: float = 1.0, deposit: float = 1.0, n_best: int = 3,
                 tau_min: float = 0.1, tau_max: float = 10.0, float_bins: int = 10) -> None:
        super().__init__(space, seed)
        if n_ants < 1 or n_best < 1:
            raise ConfigError(f"aco: n_ants and n_best must be >= 1, got {n_ants}, {n_best}")
        if not 0.0 < evaporation <= 1.0:
            raise ConfigError(f"aco: evaporation must be in (0, 1], got {evaporation}")
        if not 0.0 <= greediness <= 1.0:
            raise ConfigError(f"aco: greediness must be in [0, 1], got {greediness}")
        if not 0.0 < tau_min < tau_max:
            raise ConfigError(f"aco: need 0 < tau_min < tau_max, got {tau_min}, {tau_max}")
        self.n_ants, self.evaporation, self.greediness, self.alpha = int(n_ants), float(evaporation), float(greediness), float(alpha)
        self.deposit, self.n_best, self.tau_min, self.tau_max = float(deposit), int(n_best), float(tau_min), float(tau_max)
        self.float_bins = int(float_bins)
        self.tau: dict[str, list[float]] = {
            n: [1.0] * (self.float_bins if isinstance(p, Float) else p.cardinality)  # type: ignore[attr-defined]
            for n, p in space.params.items()
        }
        self.colony: list[tuple[Design, float]] = []
        self.best: tuple[Design, float] | None = None
        self.seen: set[str] = set()

    def _index(self, name: str, value: Any) -> int:
        p = self.space.params[name]
        if isinstance(p, Float):
            return min(int(p.to_unit(value) * self.float_bins), self.float_bins - 1)
        return p.index(value)  # type: ignore[attr-defined]

    def _choose(self, name: str, partial: Design) -> Any:
        p = self.space.params[name]
        tau = np.asarray(self.tau[name])
        if isinstance(p, Float):
            allowed = np.arange(self.float_bins)
        else:
            ok = set(self.space.allowed_values(name, partial))
            allowed = np.array([i for i, v in enumerate(p.values) if v in ok] or range(p.cardinality))  # type: ignore[attr-defined]
        t = tau[allowed]
        if self.rng.random() < self.greediness:
            best = np.flatnonzero(t == t.max())
            i = int(allowed[best[int(self.rng.integers(len(best)))]])
        else:
            w = t ** self.alpha
            i = int(allowed[self.rng.choice(len(allowed), p=w / w.sum())])
        if isinstance(p, Float):
            return p.from_unit((i + float(self.rng.random())) / self.float_bins)
        return p.value_at(i)  # type: ignore[attr-defined]

    def _ant(self) -> Design:
        for _ in range(100):
            d: Design = {}
            for name, p in self.space.params.items():
                if p.active(d):
                    d[name] = self._choose(name, d)
            if self.space.is_valid(d):
                return d
        return self.space.sample(self.rng)

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        for _ in range(n):
            d = self._ant()
            for _ in range(20):
                if self.space.key(d) not in self.seen:
                    break
                d = self._ant()
            self.seen.add(self.space.key(d))
            out.append(d)
        return out

    def _lay(self, design: Design, amount: float) -> None:
        for name, value in design.items():
            self.tau[name][self._index(name, value)] += amount

    def _update(self) -> None:
        for name in self.tau:
            self.tau[name] = [v * (1.0 - self.evaporation) for v in self.tau[name]]
        ranked = sorted(self.colony, key=lambda x: -x[1])[: self.n_best]
        for rank, (d, _) in enumerate(ranked):
            self._lay(d, self.deposit * (len(ranked) - rank) / len(ranked))
        if self.best is not None:
            self._lay(self.best[0], self.deposit)
        for name in self.tau:
            self.tau[name] = [float(min(max(v, self.tau_min), self.tau_max)) for v in self.tau[name]]
        self.colony = []

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        super().tell(designs, results)
        for r in results:
            if r.status == "invalid":
                continue
            self.colony.append((dict(r.design), float(r.reward)))
            if r.ok and (self.best is None or r.reward > self.best[1]):
                self.best = (dict(r.design), float(r.reward))
            if len(self.colony) >= self.n_ants:
                self._update()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tau": self.tau, "colony": [list(x) for x in self.colony],
                "best": list(self.best) if self.best else None, "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tau = state["tau"]
        self.colony = [(d, r) for d, r in state["colony"]]
        self.best = tuple(state["best"]) if state["best"] else None  # type: ignore[assignment]
        self.seen = set(state["seen"])
