"""Random search: independent uniform draws from the DesignSpace, the baseline every other searcher must beat."""

from __future__ import annotations

from typing import Any

from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace


class RandomSearcher(Searcher):
    """Uniform random sampling; with ``dedupe`` it skips designs whose canonical key it has already proposed."""

    name = "random"
    multi_objective = True
    hyperparameter_doc = {"dedupe": "never propose the same canonical design twice (redraws up to 100 times)"}

    def __init__(self, space: DesignSpace, seed: int = 0, dedupe: bool = True) -> None:
        super().__init__(space, seed)
        self.dedupe = dedupe
        self.seen: set[str] = set()

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        for _ in range(n):
            d = self.sample_unseen(self.seen) if self.dedupe else self.space.sample(self.rng)
            if self.dedupe:
                self.seen.add(self.space.key(d))
            out.append(d)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen = set(state["seen"])
