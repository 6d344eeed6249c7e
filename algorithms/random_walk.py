"""Random walk (ArchGym's baseline): each proposal is a random neighbour of the walker's current design, with an
occasional uniform restart; ``accept="better"`` turns the walk into a stochastic hill climber."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archgym.errors import ConfigError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace

ACCEPT = ("always", "better")


class RandomWalkSearcher(Searcher):
    """Random walk over neighbouring designs (``step_size`` parameters changed per step), restarting uniformly at
    random with probability ``restart_prob``."""

    name = "random_walk"
    hyperparameter_doc = {
        "step_size": "how many parameters one step changes (DesignSpace.mutate)",
        "restart_prob": "probability that a proposal is a fresh uniform draw instead of a step",
        "accept": "'always' moves to every told design (a pure walk); 'better' moves only on no worse reward",
        "dedupe": "redraw (up to 50 times) a step that lands on an already proposed design",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, step_size: int = 1, restart_prob: float = 0.05,
                 accept: str = "always", dedupe: bool = True) -> None:
        super().__init__(space, seed)
        if accept not in ACCEPT:
            raise ConfigError(f"random_walk: accept={accept!r} is not allowed; allowed: {', '.join(ACCEPT)}")
        if step_size < 1:
            raise ConfigError(f"random_walk: step_size must be >= 1, got {step_size}")
        if not 0.0 <= restart_prob <= 1.0:
            raise ConfigError(f"random_walk: restart_prob must be in [0, 1], got {restart_prob}")
        self.step_size = int(step_size)
        self.restart_prob = float(restart_prob)
        self.accept = accept
        self.dedupe = dedupe
        self.current: Design | None = None
        self.current_reward: float | None = None
        self.seen: set[str] = set()

    def _propose(self) -> Design:
        if self.current is None or self.rng.random() < self.restart_prob:
            return self.space.sample(self.rng)
        return self.space.mutate(self.current, self.rng, self.step_size)

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        for _ in range(n):
            d = self._propose()
            if self.dedupe:
                for _ in range(50):
                    if self.space.key(d) not in self.seen:
                        break
                    d = self._propose() if self.rng.random() < 0.5 else self.space.sample(self.rng)
                self.seen.add(self.space.key(d))
            out.append(d)
        return out

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        super().tell(designs, results)
        for d, r in zip(designs, results):
            if not r.ok:
                continue
            if self.accept == "always" or self.current_reward is None or r.reward >= self.current_reward:
                self.current, self.current_reward = dict(r.design), float(r.reward)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "current": self.current, "current_reward": self.current_reward,
                "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.current, self.current_reward = state["current"], state["current_reward"]
        self.seen = set(state["seen"])
