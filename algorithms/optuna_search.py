"""Optuna samplers behind the ask/tell Searcher: TPE, Gaussian process, CMA-ES (numeric parameters) and NSGA-II
(multi-objective), through Optuna's ask-and-tell API and ``DesignSpace.suggest_optuna``.

Reproducibility: every ``study.ask()`` gets a fresh sampler seeded from (seed, number of asks so far), so a proposal
depends only on the seed and the study's history. ``state_dict`` is that history (every trial with its parameters,
values and the system attributes samplers keep there, plus the study's system attributes); ``load_state_dict``
rebuilds the study from it, which makes a resumed search continue with exactly the proposals of an uninterrupted one.
With ``storage`` (an Optuna storage URL such as ``sqlite:///optuna.db``) the study is also persisted there, so
``optuna-dashboard sqlite:///optuna.db`` shows the run live.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.searcher import Searcher
from archgym.space import Categorical, Design, DesignSpace

_DEDUPE_TRIES = 20


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class OptunaSearcher(Searcher):
    """Base adapter; subclasses choose the sampler (``_make_sampler``) and expose its hyperparameters."""

    name = "optuna"
    multi_objective = True
    hyperparameter_doc = {
        "n_startup_trials": "random proposals before the model is used",
        "dedupe": "when the sampler repeats an evaluated design, tell it the known result and ask again "
                  f"(up to {_DEDUPE_TRIES} times, then propose an unseen uniform draw), so the budget is not "
                  "spent on repeats",
        "storage": "Optuna storage URL (e.g. sqlite:///optuna.db) to persist the study for optuna-dashboard; "
                   "None keeps it in memory",
        "study_name": "study name in the storage (default: archgym-<space>-s<seed>-<random suffix>)",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, dedupe: bool = True, storage: str | None = None,
                 study_name: str | None = None) -> None:
        super().__init__(space, seed)
        self.dedupe = dedupe
        self.storage = storage
        self.study_name = study_name
        self._name = study_name or f"archgym-{space.name.replace('/', '-')}-s{seed}-{uuid.uuid4().hex[:8]}"
        self.n_objectives = 1
        self.n_asks = 0
        self.pending: dict[str, list[int]] = {}  # design JSON -> numbers of asked, untold trials
        self.known: dict[str, Any] = {}  # canonical key -> told value(s), for dedupe
        self._study: Any = None  # created at the first ask (or rebuilt by load_state_dict)

    # -- sampler and study --------------------------------------------------------------------------------------

    def _make_sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def _new_study(self, name: str, n_objectives: int, load_if_exists: bool = False) -> Any:
        optuna = _optuna()
        try:
            return optuna.create_study(storage=self.storage, study_name=name, directions=["maximize"] * n_objectives,
                                       sampler=self._make_sampler(self.seed), load_if_exists=load_if_exists)
        except optuna.exceptions.DuplicatedStudyError:
            raise ConfigError(f"{self.name}: study {name!r} already exists in {self.storage}; choose another "
                              "study_name (or resume the archgym run that owns it)") from None

    def _current(self) -> Any:
        if self._study is None:
            self._study = self._new_study(self._name, self.n_objectives)
        return self._study

    def _ask_seed(self) -> int:
        return int(np.random.SeedSequence([self.seed, self.n_asks]).generate_state(1)[0] >> 1)

    @staticmethod
    def _pkey(design: Design) -> str:
        return json.dumps(design, sort_keys=True)

    def _key(self, design: Design) -> str | None:
        return self.space.key(design) if self.space.is_valid(design) else None

    # -- ask / tell --------------------------------------------------------------------------------------------

    def _ask_one(self) -> tuple[Any, Design]:
        study = self._current()
        study.sampler = self._make_sampler(self._ask_seed())
        self.n_asks += 1
        trial = study.ask()
        return trial, self.space.suggest_optuna(trial)

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        for _ in range(n):
            trial, design = self._ask_one()
            for attempt in range(_DEDUPE_TRIES + 1 if self.dedupe else 0):
                key = self._key(design)
                if key is None or key not in self.known:
                    break
                self._study.tell(trial, self.known[key])  # a repeat: Optuna learns the known result for free
                if attempt == _DEDUPE_TRIES:  # the sampler keeps repeating: enqueue an unseen uniform draw
                    self._study.enqueue_trial(self.space.to_optuna_params(self.sample_unseen(self.known)))
                trial, design = self._ask_one()
            self.pending.setdefault(self._pkey(design), []).append(trial.number)
            out.append(design)
        return out

    def _values(self, result: Any) -> Any:
        if self.n_objectives > 1:
            return list(result.rewards) if result.ok and result.rewards is not None else None
        return float(result.reward)

    def _rebuild(self, n_objectives: int) -> None:
        """Re-create the study (used before the first result when results turn out to be reward vectors)."""
        record = self._record()
        self.n_objectives = n_objectives
        if self.storage is not None:  # the single-objective study holds only untold trials: replace it
            _optuna().delete_study(study_name=self._name, storage=self.storage)
        self._restore(record, self._name)

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        super().tell(designs, results)
        optuna = _optuna()
        if self.multi_objective and self.n_told == len(results):
            vec = next((r.rewards for r in results if r.ok and r.rewards is not None), None)
            if vec is not None and len(vec) != self.n_objectives:
                self._rebuild(len(vec))
        for design, result in zip(designs, results):
            numbers = self.pending.get(self._pkey(design))
            if not numbers:
                raise ConfigError(f"{self.name}: told a design that was not asked for: {design}")
            number = numbers.pop(0)
            if not numbers:
                del self.pending[self._pkey(design)]
            values = self._values(result)
            if values is None:
                self._study.tell(number, state=optuna.trial.TrialState.FAIL)
                continue
            self._study.tell(number, values)
            if result.key != "invalid":
                self.known[result.key] = values

    # -- state -------------------------------------------------------------------------------------------------

    def _record(self) -> dict[str, Any]:
        from optuna.distributions import distribution_to_json

        if self._study is None:
            return {"trials": [], "study_system_attrs": {}}
        trials = []
        for t in self._study.get_trials(deepcopy=False):
            trials.append({
                "state": t.state.name, "values": t.values, "params": t.params,
                "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
                "system_attrs": t.system_attrs, "user_attrs": t.user_attrs,
            })
        storage = self._study._storage
        return {"trials": trials, "study_system_attrs": storage.get_study_system_attrs(self._study._study_id)}

    def _restore(self, record: dict[str, Any], name: str) -> None:
        optuna = _optuna()
        from optuna.distributions import json_to_distribution

        study = self._new_study(name, self.n_objectives, load_if_exists=self.storage is not None)
        if len(study.trials) == len(record["trials"]):  # the storage already holds exactly this history
            self._study = study
            return
        if study.trials:
            study = self._new_study(f"{name}-r{len(record['trials'])}", self.n_objectives)
        for k, v in record["study_system_attrs"].items():
            study._storage.set_study_system_attr(study._study_id, k, v)
        for t in record["trials"]:
            state = optuna.trial.TrialState[t["state"]]
            values = t["values"] if state == optuna.trial.TrialState.COMPLETE else None
            study.add_trial(optuna.trial.create_trial(
                state=state, values=values, params=t["params"],
                distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()},
                system_attrs=t["system_attrs"], user_attrs=t["user_attrs"]))
        self._study = study

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "study": self._record(), "study_name": self._name,
                "n_objectives": self.n_objectives, "n_asks": self.n_asks, "pending": self.pending,
                "known": self.known}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_objectives, self.n_asks = state["n_objectives"], state["n_asks"]
        self.pending = {k: list(v) for k, v in state["pending"].items()}
        self.known = dict(state["known"])
        self._name = state["study_name"]
        self._restore(state["study"], self._name)

    @property
    def study(self) -> Any:
        """The underlying ``optuna.Study`` (for Optuna's plots and analyses)."""
        return self._current()


class TPESearcher(OptunaSearcher):
    """Optuna's Tree-structured Parzen Estimator (multivariate, constant liar for batches; MOTPE with vectors)."""

    name = "optuna_tpe"
    hyperparameter_doc = {
        **OptunaSearcher.hyperparameter_doc,
        "multivariate": "model the joint density of parameters (else one density per parameter)",
        "constant_liar": "treat running trials as bad, so a batch of asks spreads out",
        "n_ei_candidates": "candidates drawn per proposal to maximise expected improvement",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, n_startup_trials: int = 10, multivariate: bool = True,
                 constant_liar: bool = True, n_ei_candidates: int = 24, dedupe: bool = True,
                 storage: str | None = None, study_name: str | None = None) -> None:
        self.n_startup_trials, self.multivariate = int(n_startup_trials), multivariate
        self.constant_liar, self.n_ei_candidates = constant_liar, int(n_ei_candidates)
        super().__init__(space, seed, dedupe, storage, study_name)

    def _make_sampler(self, seed: int) -> Any:
        import warnings

        optuna = _optuna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(n_startup_trials=self.n_startup_trials, multivariate=self.multivariate,
                                              group=self.multivariate and self.space._has_conditions,
                                              constant_liar=self.constant_liar, n_ei_candidates=self.n_ei_candidates,
                                              seed=seed)


class GPSearcher(OptunaSearcher):
    """Optuna's Gaussian-process Bayesian optimisation (log expected improvement; slower per proposal)."""

    name = "optuna_gp"
    hyperparameter_doc = {**OptunaSearcher.hyperparameter_doc,
                          "deterministic_objective": "fit the GP without observation noise (tabular, deterministic simulators)"}

    def __init__(self, space: DesignSpace, seed: int = 0, n_startup_trials: int = 10,
                 deterministic_objective: bool = True, dedupe: bool = True, storage: str | None = None,
                 study_name: str | None = None) -> None:
        self.n_startup_trials, self.deterministic_objective = int(n_startup_trials), deterministic_objective
        super().__init__(space, seed, dedupe, storage, study_name)

    def _make_sampler(self, seed: int) -> Any:
        import warnings

        optuna = _optuna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                             deterministic_objective=self.deterministic_objective,
                                             warn_independent_sampling=False)


class CMAESSearcher(OptunaSearcher):
    """Optuna's CMA-ES over the numeric parameters (with margin for integers); categorical ones are drawn at random."""

    name = "optuna_cmaes"
    multi_objective = False
    hyperparameter_doc = {**OptunaSearcher.hyperparameter_doc,
                          "sigma0": "initial step size (None: a sixth of the range)",
                          "popsize": "offspring per CMA-ES generation (None: CMA-ES's default)",
                          "with_margin": "CMA-ES with margin, which keeps integer parameters from getting stuck"}

    def __init__(self, space: DesignSpace, seed: int = 0, n_startup_trials: int = 1, sigma0: float | None = None,
                 popsize: int | None = None, with_margin: bool = True, dedupe: bool = True,
                 storage: str | None = None, study_name: str | None = None) -> None:
        numeric = [n for n, p in space.params.items() if not isinstance(p, Categorical)]
        if not numeric:
            raise ConfigError(f"optuna_cmaes: space {space.name!r} has only categorical parameters; CMA-ES needs "
                              "numeric ones (integer, ordinal, float); use optuna_tpe or ga instead")
        self.n_startup_trials, self.sigma0, self.popsize, self.with_margin = int(n_startup_trials), sigma0, popsize, with_margin
        super().__init__(space, seed, dedupe, storage, study_name)

    def _make_sampler(self, seed: int) -> Any:
        import warnings

        optuna = _optuna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(n_startup_trials=self.n_startup_trials, sigma0=self.sigma0,
                                                popsize=self.popsize, with_margin=self.with_margin, seed=seed,
                                                warn_independent_sampling=False)


class NSGA2Searcher(OptunaSearcher):
    """Optuna's NSGA-II: multi-objective evolution (non-dominated sorting, crowding); also runs single-objective."""

    name = "optuna_nsga2"
    hyperparameter_doc = {**{k: v for k, v in OptunaSearcher.hyperparameter_doc.items() if k != "n_startup_trials"},
                          "population_size": "individuals per generation",
                          "crossover_prob": "probability that a child is a crossover of two parents",
                          "mutation_prob": "per-parameter mutation probability (None: 1 / number of parameters)"}

    def __init__(self, space: DesignSpace, seed: int = 0, population_size: int = 20, crossover_prob: float = 0.9,
                 mutation_prob: float | None = None, dedupe: bool = True, storage: str | None = None,
                 study_name: str | None = None) -> None:
        if population_size < 2:
            raise ConfigError(f"optuna_nsga2: population_size must be >= 2, got {population_size}")
        self.population_size, self.crossover_prob, self.mutation_prob = int(population_size), float(crossover_prob), mutation_prob
        super().__init__(space, seed, dedupe, storage, study_name)

    def _make_sampler(self, seed: int) -> Any:
        optuna = _optuna()
        return optuna.samplers.NSGAIISampler(population_size=self.population_size, crossover_prob=self.crossover_prob,
                                             mutation_prob=self.mutation_prob, seed=seed)
