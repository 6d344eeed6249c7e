"""Evolutionary searchers: a generational genetic algorithm (tournament selection, uniform crossover, per-parameter
mutation, elitism) and regularized evolution (Real et al. 2019: tournament parent, one mutation, the oldest member
dies). With reward vectors both rank by non-dominated front and crowding distance (NSGA-II's order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace

Entry = dict[str, Any]  # {"design", "key", "reward", "rewards"}: one evaluated individual, JSON-able


def nondominated_fronts(points: np.ndarray) -> list[list[int]]:
    """Rows of ``points`` (every column maximised) grouped into successive non-dominated fronts."""
    n = len(points)
    dominated_by = [[] for _ in range(n)]
    count = np.zeros(n, dtype=int)
    for i in range(n):
        for j in range(n):
            if i != j and np.all(points[i] >= points[j]) and np.any(points[i] > points[j]):
                dominated_by[i].append(j)
                count[j] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = nxt
    return fronts


def crowding(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within one front (boundary points get infinity)."""
    n, m = points.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(points[:, k], kind="stable")
        span = points[order[-1], k] - points[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (points[order[2:], k] - points[order[:-2], k]) / span
    return dist


def fitness(entries: Sequence[Entry]) -> np.ndarray:
    """Higher is better. Scalar rewards as they are; reward vectors as minus the front index plus a crowding bonus
    in [0, 0.5), so any member of a better front outranks every member of a worse one."""
    if not entries:
        return np.zeros(0)
    if any(e["rewards"] is None for e in entries):
        return np.array([e["reward"] for e in entries], dtype=float)
    pts = np.array([e["rewards"] for e in entries], dtype=float)
    out = np.zeros(len(entries))
    for rank, front in enumerate(nondominated_fronts(pts)):
        cd = crowding(pts[front])
        finite = np.where(np.isinf(cd), 0.0, cd)
        bonus = np.where(np.isinf(cd), 0.499, 0.49 * finite / (1.0 + finite))
        out[front] = -rank + bonus
    return out


def entry(result: Any) -> Entry:
    """An evaluated individual from a TrialResult (failed trials keep the failure reward and no vector)."""
    rewards = list(result.rewards) if result.ok and result.rewards is not None else None
    return {"design": dict(result.design), "key": result.key, "reward": float(result.reward), "rewards": rewards}


class _Evolutionary(Searcher):
    """Shared bookkeeping: proposed keys (no design is proposed twice while a fresh one can be found)."""

    multi_objective = True

    def __init__(self, space: DesignSpace, seed: int) -> None:
        super().__init__(space, seed)
        self.seen: set[str] = set()

    def _fresh(self, make: Any, tries: int = 30) -> Design:
        """A design from ``make()`` whose key is new (mutating further, then sampling, when it keeps repeating)."""
        d = make()
        for i in range(tries):
            if self.space.key(d) not in self.seen:
                break
            d = self.space.mutate(d, self.rng, 1 + i // 10) if i < tries - 5 else self.space.sample(self.rng)
        self.seen.add(self.space.key(d))
        return d

    def _valid_entries(self, entries: Sequence[Entry]) -> list[Entry]:
        return [e for e in entries if e["key"] != "invalid"]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen = set(state["seen"])


class GeneticSearcher(_Evolutionary):
    """Generational GA: tournament selection, uniform crossover, per-parameter mutation and elitism."""

    name = "ga"
    hyperparameter_doc = {
        "population_size": "individuals per generation (the first generation is uniform random)",
        "tournament_size": "contestants per tournament; the fittest becomes a parent",
        "crossover_prob": "probability that a child mixes two parents (else it copies one)",
        "mutation_rate": "per-parameter probability of a mutation (a clone is mutated at least once)",
        "elitism": "best individuals carried unchanged (not re-evaluated) into the next generation",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, population_size: int = 20, tournament_size: int = 3,
                 crossover_prob: float = 0.9, mutation_rate: float = 0.15, elitism: int = 2) -> None:
        super().__init__(space, seed)
        if population_size < 2:
            raise ConfigError(f"ga: population_size must be >= 2, got {population_size}")
        if tournament_size < 1:
            raise ConfigError(f"ga: tournament_size must be >= 1, got {tournament_size}")
        if not 0 <= elitism < population_size:
            raise ConfigError(f"ga: elitism must be in 0..population_size-1, got {elitism}")
        self.population_size = int(population_size)
        self.tournament_size = int(tournament_size)
        self.crossover_prob = float(crossover_prob)
        self.mutation_rate = float(mutation_rate)
        self.elitism = int(elitism)
        self.generation = 0
        self.population: list[Entry] = []  # evaluated members of the generation being filled (elites first)
        self.queue: list[Design] = [self._fresh(lambda: self.space.sample(self.rng)) for _ in range(population_size)]

    def _tournament(self, pool: list[Entry], fit: np.ndarray) -> Entry:
        idx = self.rng.choice(len(pool), size=min(self.tournament_size, len(pool)), replace=False)
        return pool[int(idx[np.argmax(fit[idx])])]

    def _child(self, pool: list[Entry], fit: np.ndarray) -> Design:
        a = self._tournament(pool, fit)["design"]
        if self.rng.random() < self.crossover_prob:
            child = self.space.crossover(a, self._tournament(pool, fit)["design"], self.rng)
        else:
            child = dict(a)
        k = int(self.rng.binomial(len(child), self.mutation_rate))
        if k == 0 and child == a:
            k = 1
        return self.space.mutate(child, self.rng, k) if k else child

    def _breed(self) -> None:
        pool = self._valid_entries(self.population)
        if len(pool) < 2:  # nothing to select from yet: more random individuals
            self.queue = [self._fresh(lambda: self.space.sample(self.rng)) for _ in range(self.population_size)]
            return
        fit = fitness(pool)
        elites = [pool[i] for i in np.argsort(-fit, kind="stable")[: self.elitism]]
        self.generation += 1
        self.population = list(elites)
        self.queue = [self._fresh(lambda: self._child(pool, fit)) for _ in range(self.population_size - self.elitism)]

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        for _ in range(n):
            if not self.queue:
                self._breed()
            out.append(self.queue.pop(0))
        return out

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        super().tell(designs, results)
        self.population.extend(entry(r) for r in results)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generation": self.generation, "population": self.population,
                "queue": self.queue}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generation, self.population, self.queue = state["generation"], state["population"], state["queue"]


class RegularizedEvolutionSearcher(_Evolutionary):
    """Regularized (aging) evolution: mutate the winner of a random sample; the oldest member leaves the population."""

    name = "regularized_evolution"
    hyperparameter_doc = {
        "population_size": "members kept alive (the first ones are uniform random)",
        "sample_size": "members drawn per tournament; the fittest is mutated",
        "mutation_changes": "parameters changed per mutation",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, population_size: int = 20, sample_size: int = 5,
                 mutation_changes: int = 1) -> None:
        super().__init__(space, seed)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ConfigError(f"regularized_evolution: need population_size >= 1 and 1 <= sample_size <= "
                              f"population_size, got {population_size}, {sample_size}")
        if mutation_changes < 1:
            raise ConfigError(f"regularized_evolution: mutation_changes must be >= 1, got {mutation_changes}")
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.mutation_changes = int(mutation_changes)
        self.population: list[Entry] = []  # oldest first
        self.n_asked = 0

    def _child(self) -> Design:
        pool = self._valid_entries(self.population) or self.population
        if self.n_asked < self.population_size or not pool:
            return self.space.sample(self.rng)
        idx = self.rng.choice(len(pool), size=min(self.sample_size, len(pool)), replace=False)
        sample = [pool[int(i)] for i in idx]
        parent = sample[int(np.argmax(fitness(sample)))]["design"]
        return self.space.mutate(parent, self.rng, self.mutation_changes)

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        for _ in range(n):
            out.append(self._fresh(self._child))
            self.n_asked += 1
        return out

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        super().tell(designs, results)
        self.population.extend(entry(r) for r in results)
        del self.population[: max(0, len(self.population) - self.population_size)]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": self.population, "n_asked": self.n_asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population, self.n_asked = state["population"], state["n_asked"]
