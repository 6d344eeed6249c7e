"""The Searcher interface: ``ask(n)`` proposes designs, ``tell`` reports their results, and ``state_dict`` /
``load_state_dict`` make a search resumable. Small on purpose, so adapters to Ray Tune, Optuna and NNI stay thin."""

from __future__ import annotations

import inspect
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from archgym.space import Design, DesignSpace

if TYPE_CHECKING:
    from archgym.evaluator import TrialResult


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A JSON-able snapshot of a numpy Generator."""
    return rng.bit_generator.state


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    return np.random.Generator(bg)


class Searcher:
    """Base class. Subclasses take their hyperparameters as keyword arguments with documented defaults (listed by
    ``archgym searchers``), draw every random choice from ``self.rng``, and extend ``state_dict`` with their own
    JSON-able state.

    ``hyperparameter_doc`` maps each hyperparameter to a one-line description.
    """

    name = "searcher"
    multi_objective = False
    hyperparameter_doc: dict[str, str] = {}

    def __init__(self, space: DesignSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.n_told = 0

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """Every hyperparameter with its default."""
        sig = inspect.signature(cls.__init__)
        return {n: p.default for n, p in sig.parameters.items() if n not in ("self", "space", "seed")
                and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    def config(self) -> dict[str, Any]:
        """The hyperparameters this instance runs with (what the trial log records)."""
        return {n: getattr(self, n, d) for n, d in self.hyperparameters().items()}

    def sample_unseen(self, seen: Container[str], tries: int = 100) -> Design:
        """A uniform draw whose canonical key is not in ``seen`` (the last draw if ``tries`` redraws all repeat)."""
        d = self.space.sample(self.rng)
        for _ in range(tries):
            if self.space.key(d) not in seen:
                break
            d = self.space.sample(self.rng)
        return d

    def ask(self, n: int = 1) -> list[Design]:
        """Propose ``n`` designs to evaluate next (all may be evaluated in parallel)."""
        raise NotImplementedError

    def tell(self, designs: Sequence[Design], results: Sequence[TrialResult]) -> None:
        """Report the results of designs previously asked for (failed ones carry the failure reward)."""
        self.n_told += len(results)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence of proposals after a restart (JSON-able)."""
        return {"rng": rng_state(self.rng), "n_told": self.n_told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng = rng_from_state(state["rng"])
        self.n_told = state["n_told"]
