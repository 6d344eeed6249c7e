"""The Ray Tune backend: the same search as the local runner, with trials spread over a Ray cluster.

Our Searcher is wrapped in a thin ``ray.tune.search.Searcher`` adapter, so every archgym searcher (and, through
``space.to_ray_tune`` + ``space.project``, any Ray search algorithm) runs unchanged. Each Tune trial evaluates a
batch of designs sized from the simulator's cost, because Tune's per-trial overhead would otherwise dominate cheap
simulators. Workers evaluate through an ``Evaluator`` without a log and send back their ``TrialResult``s; the driver
is the log's one writer and commits each finished trial together with a checkpoint of the searcher *and of the
batches still in flight*, so a driver killed at any moment resumes (from our log, not Tune's experiment state) with
no trial lost or repeated.

Per-epoch training simulators implement ``evaluate_epochs(design, max_fidelity, workdir)``, a generator of
``(epochs_done, metrics)``; with ``scheduler="asha"`` Tune stops weak trials early and the log records the fidelity
(epochs) each trial reached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Tune's defaults cost ~2 s per trial on a small machine; these switch off the console reporter and the per-trial
# JSON/CSV/TensorBoard loggers (our trial log is the record). Workers inherit them from the driver's environment.
TUNE_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
for _k, _v in TUNE_ENV.items():
    os.environ.setdefault(_k, _v)

from archgym.errors import ConfigError, InvalidDesignError, LogError  # noqa: E402

try:
    from ray.tune.search import Searcher as TuneSearcher
except ModuleNotFoundError as _exc:
    raise ConfigError(f"the ray backend needs Ray Tune (missing {_exc.name!r}): pip install 'archgym[ray]'") from None

from archgym.evaluator import Evaluator, TrialResult
from archgym.log import TrialLog
from archgym.registry import Problem, make_problem, make_searcher
from archgym.runner import RunSpec, log_path, prepare
from archgym.searcher import Searcher
from archgym.simulator import Simulator
from archgym.space import Design, DesignSpace

SCHEDULERS = ("fifo", "asha")
TARGET_TRIAL_SECONDS = 2.0  # automatic batching aims at trials of about this long
MAX_DESIGNS_PER_TRIAL = 10_000
MIN_TRIALS_PER_WORKER = 4  # keep at least this many trials per worker so the last ones balance
_SOCKET_DIR_MAX = 40  # Ray appends ~60 chars (session_<date>_<pid>/sockets/plasma_store); AF_UNIX paths stop at 107


@dataclass
class RayOptions:
    """How a search uses Ray; stored in the run's ``meta`` so ``--resume`` reuses them."""

    address: str | None = None
    workers: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    scheduler: str = "fifo"
    designs_per_trial: int | None = None
    max_retries: int = 2
    grace_period: int = 1
    reduction_factor: int = 3
    target_trial_seconds: float = TARGET_TRIAL_SECONDS

    def check(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"--scheduler {self.scheduler!r} is not allowed; allowed: {', '.join(SCHEDULERS)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_trial < 0 or self.gpus_per_trial < 0 or self.cpus_per_trial + self.gpus_per_trial <= 0:
            raise ConfigError("--cpus-per-trial and --gpus-per-trial must be >= 0 and not both 0, "
                              f"got {self.cpus_per_trial} and {self.gpus_per_trial}")
        if self.designs_per_trial is not None and self.designs_per_trial < 1:
            raise ConfigError(f"--designs-per-trial must be at least 1, got {self.designs_per_trial}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.grace_period < 1 or self.reduction_factor < 2:
            raise ConfigError("ASHA needs grace_period >= 1 and reduction_factor >= 2")

    def to_meta(self) -> dict[str, Any]:
        return {"backend": "ray", **dataclasses.asdict(self)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None, **overrides: Any) -> RayOptions:
        """The options a run was started with, with the given non-None values replacing them."""
        names = {f.name for f in dataclasses.fields(cls)}
        base = {k: v for k, v in (meta or {}).items() if k in names}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown Ray options {sorted(unknown)}; allowed: {', '.join(sorted(names))}")
        base.update({k: v for k, v in overrides.items() if v is not None})
        opts = cls(**base)
        opts.check()
        return opts


# -- per-epoch protocol -----------------------------------------------------------------------------------------------


def supports_epochs(simulator: Simulator) -> bool:
    """Whether the simulator reports per-epoch results (``evaluate_epochs`` and a ``max_fidelity``)."""
    return callable(getattr(simulator, "evaluate_epochs", None)) and bool(getattr(simulator, "max_fidelity", None))


# -- batch sizing -----------------------------------------------------------------------------------------------------


def measure_cost(simulator: Simulator, space: DesignSpace, seed: int, limit: float = 1.0) -> float:
    """Seconds per evaluation measured on a few sampled designs (at most ~``limit`` seconds of simulation).

    In-process simulators run here; process-isolated ones run through an Evaluator whose time limit is ``limit``, so
    an expensive simulator costs one capped evaluation and is then treated as expensive.
    """
    import numpy as np

    rng = np.random.default_rng(seed + 7919)
    if simulator.isolation == "process":
        with Evaluator(simulator, timeout=limit, cache=False) as ev:
            r = ev.evaluate(space.sample(rng))
        return max(r.sim_cost, limit) if r.status == "timeout" else max(r.sim_cost, 1e-7)
    with Evaluator(simulator, cache=False) as ev:
        first = ev.evaluate(space.sample(rng)).sim_cost  # includes table loads and imports: only an upper bound
        if first >= limit:
            return first
        costs: list[float] = []
        start = time.perf_counter()
        while len(costs) < 32 and time.perf_counter() - start < limit:
            costs.append(ev.evaluate(space.sample(rng)).sim_cost)
    return max(float(np.median(costs)), 1e-7)


def auto_designs_per_trial(cost: float, remaining: int | None, workers: int,
                           target: float = TARGET_TRIAL_SECONDS) -> int:
    """Designs per Tune trial: enough for trials of about ``target`` seconds, few enough that every worker gets
    several trials of the remaining budget (so the last trials balance), at least one."""
    n = max(1, int(target / max(cost, 1e-9)))
    if remaining is not None:
        n = min(n, math.ceil(remaining / (workers * MIN_TRIALS_PER_WORKER)))
    return max(1, min(n, MAX_DESIGNS_PER_TRIAL))


# -- proposers: what the adapter asks designs from ----------------------------------------------------------------------


class _ArchgymProposer:
    """Our Searcher as the adapter sees it."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self.space = searcher.space

    def ask(self, n: int) -> tuple[list[Design], Any]:
        return self.searcher.ask(n), None

    def tell(self, token: Any, designs: Sequence[Design], results: Sequence[TrialResult]) -> None:
        self.searcher.tell(designs, results)

    def state_dict(self) -> dict[str, Any]:
        return self.searcher.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.searcher.load_state_dict(state)


class _RayAlgProposer:
    """A Ray Tune search algorithm (e.g. OptunaSearch) proposing over ``space.to_ray_tune()``; its flat configs become
    designs through ``space.project``. Each design gets its own sub-trial id, so batching works for it too."""

    def __init__(self, alg: Any, space: DesignSpace, state_file: Path) -> None:
        self.alg = alg
        self.space = space
        self.state_file = state_file
        self.n = 0
        if not alg.set_search_properties("reward", "max", space.to_ray_tune()):
            raise ConfigError(f"{type(alg).__name__} already has a search space or metric; create it without them "
                              "(archgym sets metric='reward', mode='max' and the space from the env)")

    def ask(self, n: int) -> tuple[list[Design], Any]:
        designs, ids = [], []
        for _ in range(n):
            sub = f"s{self.n:07d}"
            cfg = self.alg.suggest(sub)
            if cfg is None or cfg == "FINISHED":
                break
            self.n += 1
            try:
                designs.append(self.space.project(cfg))
            except InvalidDesignError:  # recorded as an invalid trial by the worker's Evaluator
                designs.append({k: v for k, v in cfg.items() if k in self.space.params})
            ids.append(sub)
        return designs, ids

    def tell(self, token: Any, designs: Sequence[Design], results: Sequence[TrialResult]) -> None:
        if token is None:  # re-sent after a resume: the restored algorithm never issued these sub-trials
            return
        for sub, r in zip(token, results):
            self.alg.on_trial_complete(sub, {"reward": r.reward})

    def state_dict(self) -> dict[str, Any]:
        tmp = self.state_file.with_suffix(".tmp")
        self.alg.save(str(tmp))
        os.replace(tmp, self.state_file)
        return {"ray_search_alg": type(self.alg).__name__, "n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.state_file.exists():
            self.alg.restore(str(self.state_file))
        self.n = state["n"]


# -- the Tune searcher adapter ----------------------------------------------------------------------------------------


class ArchgymTuneSearcher(TuneSearcher):
    """Adapter: an archgym proposer as a ``ray.tune.search.Searcher`` whose trials each carry a batch of designs.

    ``on_complete(designs, results, info)`` is called once per finished batch (the driver logs it there); a batch
    whose Tune trial failed for good is finished by ``fail`` with the reason. ``resubmit`` batches (in flight when a
    previous driver died) are sent again before anything new is asked.
    """

    def __init__(self, proposer: Any, budget: int | None, designs_per_trial: int,
                 on_complete: Callable[[list[Design], list[TrialResult], dict[str, Any]], None],
                 failure_reward: float, deadline: float | None = None, resubmit: Sequence[list[Design]] = (),
                 done: int = 0) -> None:
        super().__init__(metric="reward", mode="max")
        self.proposer = proposer
        self.budget = budget
        self.designs_per_trial = designs_per_trial
        self.on_complete = on_complete
        self.failure_reward = failure_reward
        self.deadline = deadline
        self.resubmit: deque[list[Design]] = deque(list(b) for b in resubmit)
        self.pending: dict[str, tuple[list[Design], Any]] = {}
        self.failed: dict[str, tuple[list[Design], Any]] = {}
        self.stopped: list[list[Design]] = []
        self.done = done
        self.n_batches = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return metric in (None, "reward") and mode in (None, "max")

    def in_flight(self) -> int:
        """Designs asked for and not yet finished."""
        return sum(len(d) for d, _ in [*self.pending.values(), *self.failed.values()]) + sum(map(len, self.stopped))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.resubmit:
            designs, token = self.resubmit.popleft(), None
        else:
            left = None if self.budget is None else self.budget - self.done - self.in_flight()
            if left is not None and left <= 0:
                return TuneSearcher.FINISHED
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return TuneSearcher.FINISHED
            n = self.designs_per_trial if left is None else min(self.designs_per_trial, left)
            designs, token = self.proposer.ask(n)
            if not designs:
                return TuneSearcher.FINISHED
        self.pending[trial_id] = (designs, token)
        self.n_batches += 1
        return {"batch": self.n_batches, "designs": json.dumps(designs)}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.pending:
            return
        designs, token = self.pending.pop(trial_id)
        payload = (result or {}).get("payload")
        if error:
            self.failed[trial_id] = (designs, token)  # finished by ``fail`` once the error's reason is known
            return
        if payload is None:  # stopped before reporting (the search was interrupted): evaluated again on --resume
            self.stopped.append(designs)
            return
        data = json.loads(payload)
        results = [result_from_dict(r) for r in data["results"]]
        if len(results) != len(designs):
            raise LogError(f"trial {trial_id} returned {len(results)} results for {len(designs)} designs")
        self._finish(token, designs, results, data.get("worker"))

    def fail(self, trial_id: str, reason: str) -> None:
        """Record every design of a Tune trial that failed for good (retries exhausted) as failed."""
        if trial_id not in self.failed:
            return
        designs, token = self.failed.pop(trial_id)
        space = self.proposer.space
        results = [TrialResult(d, _safe_key(space, d), "failed", self.failure_reward, error=reason) for d in designs]
        self._finish(token, designs, results, None)

    def fail_all(self, reason: str) -> None:
        for trial_id in list(self.failed):
            self.fail(trial_id, reason)

    def _finish(self, token: Any, designs: list[Design], results: list[TrialResult], worker: Any) -> None:
        self.proposer.tell(token, designs, results)
        self.done += len(results)
        self.on_complete(designs, results, {"worker": worker})

    def state_dict(self) -> dict[str, Any]:
        """Searcher state plus the batches still in flight, in the order they were issued."""
        flying = [d for d, _ in [*self.pending.values(), *self.failed.values()]] + self.stopped + list(self.resubmit)
        return {"searcher": self.proposer.state_dict(), "pending": flying, "designs_per_trial": self.designs_per_trial}

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps(self.state_dict()))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.proposer.load_state_dict(state["searcher"])
        self.resubmit = deque(state["pending"])

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its configuration (tuner.pkl); the driver-side hooks (log, runner) stay out of it.
        return {k: v for k, v in self.__dict__.items() if k not in ("proposer", "on_complete")}


def _safe_key(space: DesignSpace, design: Design) -> str:
    try:
        return space.key(space.validate(design))
    except InvalidDesignError:
        return "invalid"


_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(TrialResult) if f.name != "trial_id")


def result_to_dict(r: TrialResult) -> dict[str, Any]:
    """A TrialResult as a JSON-able dict (shallow: its design and metrics are plain dicts already)."""
    return {k: getattr(r, k) for k in _RESULT_FIELDS}


def result_from_dict(d: dict[str, Any]) -> TrialResult:
    """The inverse of ``result_to_dict``."""
    return TrialResult(**d)


# -- worker side ------------------------------------------------------------------------------------------------------

_WORKER_EVALUATORS: dict[str, Evaluator] = {}


def _worker_id() -> str:
    import ray

    gpus = ray.get_gpu_ids() if ray.is_initialized() else []
    return f"{socket.gethostname()}:{os.getpid()}" + (f":gpu{','.join(map(str, gpus))}" if gpus else "")


def _evaluator(token: str, box: list, timeout: float | None) -> Evaluator:
    """The worker's Evaluator for this run (built once per worker process; actors are reused across trials)."""
    ev = _WORKER_EVALUATORS.get(token)
    if ev is None:
        import ray

        problem: Problem = ray.get(box[0])
        for old in _WORKER_EVALUATORS.values():
            old.close()
        _WORKER_EVALUATORS.clear()
        ev = _WORKER_EVALUATORS[token] = Evaluator(problem.simulator, problem.objective, timeout=timeout)
    return ev


def trial_main(config: dict[str, Any], token: str = "", box: list | None = None, timeout: float | None = None,
               epochs: float | None = None) -> None:
    """The Tune trainable: evaluate this trial's batch (or train its one design epoch by epoch) and report."""
    from ray import tune

    ev = _evaluator(token, box or [], timeout)
    designs = json.loads(config["designs"])
    worker = _worker_id()
    if epochs is None:
        results = ev.evaluate_many(designs)
        rewards = [r.reward for r in results if r.ok]
        tune.report({"reward": max(rewards) if rewards else ev.objective.failure_reward, "fidelity": 0.0,
                     "payload": json.dumps({"results": [result_to_dict(r) for r in results], "worker": worker})})
        return
    deadline = None if ev.timeout is None else time.monotonic() + ev.timeout
    for res in ev.evaluate_epochs(designs[0], epochs, deadline):
        tune.report({"reward": res.reward, "fidelity": res.fidelity or 0.0,
                     "payload": json.dumps({"results": [result_to_dict(res)], "worker": worker})})


# -- driver -----------------------------------------------------------------------------------------------------------


def ray_temp_dir(out: Path) -> Path:
    """Where a local Ray keeps its session files: the run's own ``ray`` folder, or a short per-run folder in the
    system temp dir when that path is too long for Ray's AF_UNIX sockets (107 bytes)."""
    own = (out / "ray").resolve()
    if len(str(own)) <= _SOCKET_DIR_MAX:
        return own
    digest = hashlib.sha1(str(own).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"agray-{digest}"


def _error_reason(trial: Any, retries: int) -> str:
    text = ""
    try:
        if trial.error_file and Path(trial.error_file).exists():
            text = Path(trial.error_file).read_text().split("Failure #")[-1]
            text = text.split("\n", 1)[1] if "\n" in text else text
    except OSError:
        pass
    detail = " ".join(text.split())
    if "Worker exit detail:" in detail:
        detail = detail.split("Worker exit detail:", 1)[1].strip()
    detail = detail[:300] or "no detail"
    n = getattr(getattr(trial, "run_metadata", None), "num_failures", retries + 1)
    return f"Ray trial worker failed {n} time(s), {retries} retr{'y' if retries == 1 else 'ies'} allowed: {detail}"


def check_setup(problem: Problem, options: RayOptions) -> None:
    """Refuse options the problem cannot run with, before anything is logged."""
    options.check()
    if options.scheduler == "asha" and not supports_epochs(problem.simulator):
        raise ConfigError(f"--scheduler asha needs a simulator that reports per-epoch results "
                          f"(evaluate_epochs and max_fidelity); {problem.simulator.name} does not")


class RayRunner:
    """Run one logged search on Ray Tune. The driver (this object) is the only writer of the trial log."""

    def __init__(self, problem: Problem, searcher: Searcher | None, log: TrialLog, run_id: str, out: Path,
                 budget: int | None, time_budget: float | None, options: RayOptions, seed: int = 0,
                 timeout: float | None = None, search_alg: Any = None) -> None:
        check_setup(problem, options)
        if searcher is None and search_alg is None:
            raise ConfigError("give an archgym searcher or a Ray search algorithm")
        self.problem = problem
        self.log = log
        self.run_id = run_id
        self.out = Path(out)
        self.budget = budget
        self.time_budget = time_budget
        self.options = options
        self.seed = seed
        self.timeout = timeout
        self.proposer: Any = (_ArchgymProposer(searcher) if search_alg is None
                              else _RayAlgProposer(search_alg, problem.space, self.out / "ray_search_alg.pkl"))
        self.progress: Callable[[int, list[TrialResult]], None] | None = None

    def _designs_per_trial(self, workers: int, remaining: int | None) -> int:
        """``--designs-per-trial``, else sized from the simulator's cost hint or a quick measurement."""
        if self.options.scheduler == "asha":
            return 1
        if self.options.designs_per_trial is not None:
            return self.options.designs_per_trial
        sim = self.problem.simulator
        cost = sim.cost_hint()
        if cost is None:
            cost = measure_cost(sim, self.problem.space, self.seed)
        return auto_designs_per_trial(cost, remaining, workers, self.options.target_trial_seconds)

    def run(self, resume: bool = False) -> int:
        """Search until the budget is spent (continuing from the log with ``resume``); returns the trials logged."""
        import ray
        from ray import tune

        state = self.log.run(self.run_id)
        done = self.log.count(self.run_id)
        resubmit: list[list[Design]] = []
        elapsed_before = 0.0
        dpt_saved = None
        if resume and state["state"] is not None:
            if state["state_trials"] != done:
                raise LogError(f"run {self.run_id}: checkpoint covers {state['state_trials']} trials but the log "
                               f"holds {done}")
            ckpt = state["state"]
            if "pending" not in ckpt:
                raise ConfigError(f"run {self.run_id} was started by the local runner; resume it without --backend ray")
            self.proposer.load_state_dict(ckpt["searcher"])
            resubmit = ckpt["pending"]
            elapsed_before = ckpt.get("elapsed", 0.0)
            dpt_saved = ckpt.get("designs_per_trial")
        elif resume and done:
            raise LogError(f"run {self.run_id} has {done} trials but no searcher checkpoint")

        if self.budget is not None and done >= self.budget and not resubmit:
            self.log.set_status(self.run_id, "finished")
            return done
        started_ray = _init_ray(self.options, self.out)
        try:
            workers = self._workers()
            remaining = None if self.budget is None else self.budget - done
            dpt = dpt_saved or self._designs_per_trial(workers, remaining)
            start = time.monotonic()
            deadline = None if self.time_budget is None else start + self.time_budget - elapsed_before
            self.log.autoflush = False
            adapter: Any = None

            def on_complete(designs: list[Design], results: list[TrialResult], info: dict[str, Any]) -> None:
                for r in results:
                    rec = r.record()
                    rec["worker"] = info.get("worker")
                    self.log.append(self.run_id, rec, r)
                ckpt = {**adapter.state_dict(), "elapsed": elapsed_before + time.monotonic() - start}
                self.log.flush(checkpoint=(self.run_id, ckpt))
                if self.progress is not None:
                    self.progress(self.log.count(self.run_id), results)

            adapter = ArchgymTuneSearcher(self.proposer, self.budget, dpt, on_complete,
                                          self.problem.objective.failure_reward, deadline, resubmit, done)
            self._fit(tune, adapter, workers)
            adapter.fail_all("the Ray trial failed and Tune reported no reason")
        finally:
            self.log.autoflush = True
            if started_ray:
                ray.shutdown()
        total = self.log.count(self.run_id)
        if self.budget is None or total >= self.budget or self.time_budget is not None:
            self.log.set_status(self.run_id, "finished")
        return total

    def _workers(self) -> int:
        """Concurrent trials: ``--workers``, else as many as the cluster's CPUs/GPUs hold at once."""
        import ray

        res = ray.cluster_resources()
        for kind, need in (("CPU", self.options.cpus_per_trial), ("GPU", self.options.gpus_per_trial)):
            if need > res.get(kind, 0):
                raise ConfigError(f"--{kind.lower()}s-per-trial {need:g}: the Ray cluster has {res.get(kind, 0):g} "
                                  f"{kind}s in all")
        if self.options.workers is not None:
            return self.options.workers
        n = math.inf
        if self.options.cpus_per_trial > 0:
            n = min(n, res.get("CPU", 0) // self.options.cpus_per_trial)
        if self.options.gpus_per_trial > 0:
            n = min(n, res.get("GPU", 0) // self.options.gpus_per_trial)
        return max(1, int(n))

    def _fit(self, tune: Any, adapter: Any, workers: int) -> None:
        """One Tune experiment (under ``out/tune/attempt-N``) that runs until the adapter says FINISHED."""
        import ray
        from ray.tune import Callback
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        sim = self.problem.simulator
        epochs = float(sim.max_fidelity) if self.options.scheduler == "asha" else None  # type: ignore[attr-defined]
        token = f"{self.run_id}-{time.time_ns()}"
        box = [ray.put(self.problem)]
        trainable = tune.with_parameters(trial_main, token=token, box=box, timeout=self.timeout, epochs=epochs)
        trainable = tune.with_resources(trainable, {"cpu": self.options.cpus_per_trial,
                                                    "gpu": self.options.gpus_per_trial})
        retries = self.options.max_retries

        class _Errors(Callback):
            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                adapter.fail(trial.trial_id, _error_reason(trial, retries))

        if epochs is not None:
            scheduler = ASHAScheduler(time_attr="fidelity", max_t=epochs, grace_period=self.options.grace_period,
                                      reduction_factor=self.options.reduction_factor)
        else:
            scheduler = FIFOScheduler()
        attempt = len(list((self.out / "tune").glob("attempt-*"))) if (self.out / "tune").exists() else 0
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=adapter, scheduler=scheduler, metric="reward", mode="max",
                                        num_samples=-1, max_concurrent_trials=workers, reuse_actors=True,
                                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(name=f"attempt-{attempt}", storage_path=str((self.out / "tune").resolve()),
                                      verbose=0, callbacks=[_Errors()],
                                      failure_config=tune.FailureConfig(max_failures=retries)),
        )
        quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # results live in our log; Tune's per-trial result files are switched off
        try:
            tuner.fit()
        finally:
            quiet.setLevel(level)


def _trial_name(trial: Any) -> str:
    return trial.trial_id


def _check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT where nothing listens (Ray itself retries such an address for minutes)."""
    host, sep, port = address.split("://")[-1].rpartition(":")
    if not sep or not port.isdigit():
        if address != "auto":
            raise ConfigError(f"--address {address!r} is not allowed; allowed: auto or HOST:PORT")
        return
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
                          "`ray start --head` or omit --address for a local Ray") from None


def _init_ray(options: RayOptions, out: Path) -> bool:
    """Connect to ``options.address`` or start a local Ray with its session files under the run; returns whether
    this call started Ray (and so must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    if options.address:
        _check_reachable(options.address)
        try:
            ray.init(address=options.address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--address {options.address}: cannot connect to a Ray cluster ({exc})") from None
    else:
        temp = ray_temp_dir(out)
        temp.mkdir(parents=True, exist_ok=True)
        ray.init(include_dashboard=False, _temp_dir=str(temp), log_to_driver=False, logging_level=logging.WARNING)
    return True


# -- entry points used by the CLI -------------------------------------------------------------------------------------


def _console_progress(budget: int | None) -> Callable[[int, list[TrialResult]], None]:
    from rich.console import Console

    console = Console(stderr=True)
    start = time.monotonic()
    last = [0.0]
    best: list[float | None] = [None]
    first: list[int | None] = [None]

    def update(done: int, results: list[TrialResult]) -> None:
        if first[0] is None:
            first[0] = done - len(results)
        for r in results:
            if r.ok and (best[0] is None or r.reward > best[0]):
                best[0] = r.reward
        now = time.monotonic()
        if now - last[0] >= 2.0 or (budget is not None and done >= budget):
            last[0] = now
            rate = (done - first[0]) / max(now - start, 1e-9)
            console.print(f"ray search: {done}/{budget if budget is not None else '-'} trials, {rate:,.1f} eval/s, "
                          f"best {best[0] if best[0] is None else f'{best[0]:.6g}'}")

    return update


def run_search_ray(spec: RunSpec, out: Path, prepared: tuple[Problem, Searcher] | None = None,
                   timeout: float | None = None, search_alg: Any = None, quiet: bool = False,
                   progress: Callable[[int, list[TrialResult]], None] | None = None, **ray_options: Any) -> str:
    """Start the run of ``spec`` in ``out`` and search on Ray; returns the run id. ``ray_options`` are the fields
    of ``RayOptions`` (address, workers, cpus_per_trial, gpus_per_trial, scheduler, designs_per_trial, ...);
    ``progress(trials_logged, new_results)`` is called after each committed Tune trial (default: a console line)."""
    opts = RayOptions.from_meta(None, **ray_options)
    problem, searcher = prepared or prepare(spec)
    check_setup(problem, opts)
    out = Path(out)
    name = spec.searcher if search_alg is None else f"ray:{type(search_alg).__name__}"
    started_ray = _init_ray(opts, out)  # before the run is registered: an unreachable cluster leaves no run behind
    try:
        return _start_and_run(spec, out, problem, searcher, opts, name, timeout, search_alg, quiet, progress)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _start_and_run(spec: RunSpec, out: Path, problem: Problem, searcher: Searcher, opts: RayOptions, name: str,
                   timeout: float | None, search_alg: Any, quiet: bool,
                   progress: Callable[[int, list[TrialResult]], None] | None) -> str:
    with TrialLog(log_path(out)) as log:
        run_id = log.start_run(
            None, env=spec.env, env_args=spec.env_args, simulator=problem.simulator.name, searcher=name,
            searcher_args=searcher.config() if search_alg is None else {}, seed=spec.seed, budget=spec.budget,
            time_budget=spec.time_budget, batch_size=spec.batch_size, space=problem.space.to_dict(),
            fingerprint=problem.space.fingerprint(), objective=problem.objective.describe(), meta=opts.to_meta(),
        )
        runner = RayRunner(problem, searcher if search_alg is None else None, log, run_id, out, spec.budget,
                           spec.time_budget, opts, spec.seed, timeout, search_alg)
        runner.progress = progress or (None if quiet else _console_progress(spec.budget))
        runner.run()
    return run_id


def resume_run_ray(log: TrialLog, run_id: str, out: Path, timeout: float | None = None, search_alg: Any = None,
                   quiet: bool = False, **ray_options: Any) -> int:
    """Continue a Ray run from its log: the searcher is restored from the last commit and the batches that were in
    flight are evaluated again; returns the number of trials logged."""
    run = log.run(run_id)
    spec = RunSpec.from_run(run)
    problem = make_problem(spec.env, **spec.env_args)
    if problem.space.fingerprint() != run["fingerprint"]:
        raise LogError(f"run {run_id}: the design space of {spec.env} changed since the run started; cannot resume")
    opts = RayOptions.from_meta(run["meta"], **ray_options)
    searcher = None
    if search_alg is None:
        if spec.searcher.startswith("ray:"):
            raise ConfigError(f"run {run_id} used the Ray search algorithm {spec.searcher[4:]}; resume it from Python "
                              "with resume_run_ray(..., search_alg=...)")
        searcher = make_searcher(spec.searcher, problem.space, seed=spec.seed, **spec.searcher_args)
    runner = RayRunner(problem, searcher, log, run_id, Path(out), spec.budget, spec.time_budget, opts, spec.seed,
                       timeout, search_alg)
    if not quiet:
        runner.progress = _console_progress(spec.budget)
    return runner.run(resume=True)


def is_ray_run(run: dict[str, Any]) -> bool:
    """Whether a logged run was started on the Ray backend (and so resumes there)."""
    return (run.get("meta") or {}).get("backend") == "ray"
