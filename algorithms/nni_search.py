"""NNI's hyperparameter tuners (TPE, evolution, anneal) run in-process behind the ask/tell Searcher, through the
tuner API (``update_search_space``, ``generate_parameters``, ``receive_trial_result``); no NNI experiment or server.

NNI is the optional extra ``nni`` (``pip install 'archgym[nni]'``; anneal also needs ``hyperopt``). NNI's tuners
draw from the global ``random``/``numpy.random`` state and from unseeded ``RandomState()`` objects, so every tuner
call runs inside a context that seeds those from (seed, call number) and restores them afterwards. Tuners cannot be
serialised, so ``state_dict`` is the sequence of tuner calls; ``load_state_dict`` replays it into a fresh tuner,
which (being seeded per call) ends in the same state and continues with the same proposals.

NNI 3.0's GP tuner is not offered: under numpy 2 its ``randint`` sampling fails, and with current SciPy its
acquisition optimiser passes a 2-D ``x0`` to ``scipy.optimize.minimize``, which SciPy refuses.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace, _plain

_DEDUPE_TRIES = 20


_ORIGINAL_RANDOM_STATE = np.random.RandomState


class _SeededRandomState(_ORIGINAL_RANDOM_STATE):  # type: ignore[misc, valid-type]
    """A RandomState that, made without a seed, takes one from the (seeded) global numpy state."""

    def __init__(self, seed: Any = None) -> None:
        super().__init__(int(np.random.randint(2**31 - 1)) if seed is None else seed)


@contextlib.contextmanager
def seeded_globals(seed: int) -> Iterator[None]:
    """Seed ``random``, ``numpy.random`` and every unseeded ``numpy.random.RandomState()`` made inside; restore after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    np.random.RandomState = _SeededRandomState  # type: ignore[misc]
    try:
        yield
    finally:
        np.random.RandomState = _ORIGINAL_RANDOM_STATE  # type: ignore[misc]
        random.setstate(py_state)
        np.random.set_state(np_state)


def _import_nni(tuner: str) -> Any:
    try:
        import nni  # noqa: F401
        if tuner == "anneal":
            import hyperopt  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(f"searcher nni_{tuner} needs the missing package {exc.name!r} "
                          f"(pip install 'archgym[nni]'{' hyperopt' if tuner == 'anneal' else ''})") from None
    logging.getLogger("nni").setLevel(logging.WARNING)  # NNI logs every tuner step at INFO to stdout
    return nni


class NNISearcher(Searcher):
    """Base adapter around one NNI tuner (chosen by the subclass's ``tuner``)."""

    name = "nni"
    tuner = "tpe"
    hyperparameter_doc = {
        "dedupe": f"when the tuner repeats an evaluated design, give it the known result and ask again "
                  f"(up to {_DEDUPE_TRIES} times, then propose an unseen uniform draw)",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, dedupe: bool = True) -> None:
        super().__init__(space, seed)
        _import_nni(self.tuner)
        self.dedupe = dedupe
        self.events: list[list[Any]] = []  # ["gen", id] / ["recv", id, params, value], in call order
        self.next_id = 0
        self.pending: dict[str, list[list[Any]]] = {}  # design JSON -> [[id, params], ...] asked, not yet told
        self.known: dict[str, float] = {}
        self._tuner = self._fresh_tuner()

    # -- the tuner -------------------------------------------------------------------------------------------

    def _make_tuner(self) -> Any:
        raise NotImplementedError

    def _search_space(self) -> dict[str, Any]:
        return self.space.to_nni()

    def _fresh_tuner(self) -> Any:
        with seeded_globals(self._call_seed(-1)):
            tuner = self._make_tuner()
            tuner.update_search_space(self._search_space())
        return tuner

    def _call_seed(self, n: int) -> int:
        return int(np.random.SeedSequence([self.seed, n + 2]).generate_state(1)[0] >> 1)

    def _from_params(self, params: dict[str, Any]) -> Design:
        """The active parameters of NNI's flat configuration (validated later by the Evaluator)."""
        out: Design = {}
        for name, p in self.space.params.items():
            if p.active(out):
                out[name] = _plain(params[name])
        return out

    def _generate(self) -> tuple[int, dict[str, Any]] | None:
        pid = self.next_id
        self.next_id += 1
        try:
            with seeded_globals(self._call_seed(len(self.events))):
                params = self._tuner.generate_parameters(pid)
        except Exception as exc:  # noqa: BLE001 - e.g. NoMoreTrialError when an evolution population is busy
            if type(exc).__name__ != "NoMoreTrialError":
                raise
            return None
        params = {k: _plain(v) for k, v in params.items()}
        self.events.append(["gen", pid])
        return pid, params

    def _receive(self, pid: int, params: dict[str, Any], value: float) -> None:
        with seeded_globals(self._call_seed(len(self.events))):
            self._tuner.receive_trial_result(pid, params, value)
        self.events.append(["recv", pid, params, value])

    # -- ask / tell --------------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[Design]:
        import json

        out = []
        for _ in range(n):
            got = self._generate()
            for attempt in range(_DEDUPE_TRIES + 1 if self.dedupe else 0):
                if got is None or not self._is_known(self._from_params(got[1])):
                    break
                self._receive(got[0], got[1], self.known[self.space.key(self._from_params(got[1]))])
                got = self._generate() if attempt < _DEDUPE_TRIES else None  # None: the tuner keeps repeating
            if got is None:  # nothing new from the tuner: an unseen uniform draw, not told to the tuner
                design, entry = self.sample_unseen(self.known), None
            else:
                design, entry = self._from_params(got[1]), [got[0], got[1]]
            self.pending.setdefault(json.dumps(design, sort_keys=True), []).append(entry)  # type: ignore[arg-type]
            out.append(design)
        return out

    def _is_known(self, design: Design) -> bool:
        return self.space.is_valid(design) and self.space.key(design) in self.known

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        import json

        super().tell(designs, results)
        for design, result in zip(designs, results):
            k = json.dumps(design, sort_keys=True)
            if not self.pending.get(k):
                raise ConfigError(f"{self.name}: told a design that was not asked for: {design}")
            entry = self.pending[k].pop(0)
            if not self.pending[k]:
                del self.pending[k]
            if entry is not None:
                self._receive(entry[0], entry[1], float(result.reward))
            if result.key != "invalid":
                self.known[result.key] = float(result.reward)

    # -- state -------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "events": self.events, "next_id": self.next_id, "pending": self.pending,
                "known": self.known}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._tuner = self._fresh_tuner()
        self.events = []
        for ev in state["events"]:
            if ev[0] == "gen":
                with seeded_globals(self._call_seed(len(self.events))):
                    self._tuner.generate_parameters(ev[1])
                self.events.append(ev)
            else:
                self._receive(ev[1], ev[2], ev[3])
        self.next_id = state["next_id"]
        self.pending = {k: list(v) for k, v in state["pending"].items()}
        self.known = dict(state["known"])


class NNITPESearcher(NNISearcher):
    """NNI's TPE tuner (its own implementation, not hyperopt's)."""

    name = "nni_tpe"
    tuner = "tpe"

    def _make_tuner(self) -> Any:
        from nni.algorithms.hpo.tpe_tuner import TpeTuner

        return TpeTuner(optimize_mode="maximize", seed=self._call_seed(-2))


class NNIEvolutionSearcher(NNISearcher):
    """NNI's evolution tuner (tournament of two, mutation of one parameter, a population refilled as results come)."""

    name = "nni_evolution"
    tuner = "evolution"
    hyperparameter_doc = {**NNISearcher.hyperparameter_doc, "population_size": "individuals in NNI's population"}

    def __init__(self, space: DesignSpace, seed: int = 0, population_size: int = 20, dedupe: bool = True) -> None:
        self.population_size = int(population_size)
        super().__init__(space, seed, dedupe)

    def _make_tuner(self) -> Any:
        from nni.algorithms.hpo.evolution_tuner import EvolutionTuner

        return EvolutionTuner(optimize_mode="maximize", population_size=self.population_size)


class NNIAnnealSearcher(NNISearcher):
    """NNI's anneal tuner (hyperopt's annealing: sample near good points, narrowing over time)."""

    name = "nni_anneal"
    tuner = "anneal"

    def _make_tuner(self) -> Any:
        from nni.algorithms.hpo.hyperopt_tuner import HyperoptTuner

        return HyperoptTuner("anneal", optimize_mode="maximize")
