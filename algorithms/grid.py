"""Grid search: every design of a small space exactly once (floats on an evenly spaced grid), in declared or seeded
shuffled order; refuses spaces too large to enumerate, naming their size."""

from __future__ import annotations

from typing import Any

import numpy as np

from archgym.errors import ConfigError, InvalidDesignError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace, Float, Ordinal


def grid_space(space: DesignSpace, float_points: int) -> DesignSpace:
    """The space with each Float replaced by ``float_points`` evenly spaced (log-spaced if log) ordinal values."""
    params = []
    for p in space.params.values():
        if isinstance(p, Float):
            levels = sorted({p.from_unit(i / (float_points - 1)) if float_points > 1 else p.from_unit(0.5)
                             for i in range(float_points)})
            params.append(Ordinal(p.name, tuple(levels), when=p.when))
        else:
            params.append(p)
    return DesignSpace(params, space.constraints, canonical=space.canonical, name=space.name)


_GRIDS: dict[tuple[str, int], tuple[list[str], list[tuple]]] = {}  # per process: (fingerprint, float_points) -> grid
_INACTIVE = object()


def _enumerated(space: DesignSpace, float_points: int, limit: int) -> tuple[list[str], list[tuple]]:
    """The grid's designs as value tuples (inactive parameters marked), cached so that seeds share one enumeration."""
    key = (space.fingerprint(), float_points)
    if key not in _GRIDS:
        gspace = grid_space(space, float_points)
        names = list(gspace.params)
        try:
            rows = [tuple(d.get(n, _INACTIVE) for n in names) for d in gspace.enumerate(limit)]
        except InvalidDesignError as exc:
            raise ConfigError(f"grid: {exc}") from None
        _GRIDS.clear()
        _GRIDS[key] = (names, rows)
    return _GRIDS[key]


class GridSearcher(Searcher):
    """Exhaustive enumeration (canonical duplicates skipped); after the grid is exhausted it repeats it."""

    name = "grid"
    hyperparameter_doc = {
        "max_designs": "refuse spaces whose upper-bound size exceeds this many designs",
        "float_points": "grid points per float parameter",
        "shuffle": "visit the grid in a seeded random order (else in declared order)",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, max_designs: int = 1_000_000, float_points: int = 5,
                 shuffle: bool = True) -> None:
        super().__init__(space, seed)
        if float_points < 1:
            raise ConfigError(f"grid: float_points must be >= 1, got {float_points}")
        self.max_designs = int(max_designs)
        self.float_points = int(float_points)
        self.shuffle = shuffle
        gspace = grid_space(space, self.float_points)
        bound = gspace.cardinality()
        if bound > self.max_designs:
            raise ConfigError(f"grid: space {space.name!r} has up to {bound:.4g} designs, more than max_designs="
                              f"{self.max_designs:,}; use another searcher or raise max_designs")
        self._names, self._rows = _enumerated(space, self.float_points, self.max_designs)
        if not self._rows:
            raise ConfigError(f"grid: space {space.name!r} has no valid design")
        n = len(self._rows)
        self._order = np.random.default_rng([self.seed, 7]).permutation(n) if self.shuffle else np.arange(n)
        self.position = 0
        self.seen: set[str] = set()

    def ask(self, n: int = 1) -> list[Design]:
        out: list[Design] = []
        while len(out) < n:
            if self.position >= len(self._rows):  # exhausted: start over (a budget beyond the space size)
                self.position = 0
                self.seen.clear()
            row = self._rows[int(self._order[self.position])]
            d = {n: v for n, v in zip(self._names, row) if v is not _INACTIVE}
            self.position += 1
            key = self.space.key(d)
            if key in self.seen:
                continue
            self.seen.add(key)
            out.append(d)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "position": self.position, "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.position = state["position"]
        self.seen = set(state["seen"])
