"""LocalRunner: the default, in-process search loop (ask -> evaluate -> tell -> commit), resumable from its log.

Each batch's trials and the searcher's state after ``tell`` are committed in one transaction, so a run killed at
any moment resumes from the last committed batch without losing or repeating a finished trial.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError, LogError
from archgym.evaluator import Evaluator, TrialResult
from archgym.log import TrialLog, json_default
from archgym.registry import Problem, make_problem, make_searcher
from archgym.searcher import Searcher


@dataclass
class RunSpec:
    """Everything that defines a run; stored in the log so ``--resume`` needs nothing else."""

    env: str
    env_args: dict[str, Any]
    searcher: str
    searcher_args: dict[str, Any]
    seed: int = 0
    budget: int | None = 100
    time_budget: float | None = None
    batch_size: int = 1

    def check(self) -> None:
        if self.budget is None and self.time_budget is None:
            raise ConfigError("give a budget (evaluations) or a time budget (seconds)")
        if self.budget is not None and self.budget <= 0:
            raise ConfigError(f"budget must be a positive number of evaluations, got {self.budget}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError(f"time budget must be positive seconds, got {self.time_budget}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}")

    @classmethod
    def from_run(cls, run: dict[str, Any]) -> RunSpec:
        return cls(run["env"], run["env_args"] or {}, run["searcher"], run["searcher_args"] or {}, run["seed"],
                   run["budget"], run["time_budget"], run["batch_size"])


class LocalRunner:
    """Run one search in this process, logging every evaluation to ``log`` under ``run_id``.

    Each batch is committed as soon as it is told; the searcher's state is checkpointed with a batch at most every
    ``checkpoint_every`` seconds (its state can grow with the run). Resuming loads the last checkpoint and replays the
    batches logged after it through ``ask``/``tell``, checking that the searcher proposes exactly what was logged.
    """

    def __init__(self, problem: Problem, searcher: Searcher, log: TrialLog, run_id: str, budget: int | None,
                 time_budget: float | None = None, batch_size: int = 1, timeout: float | None = None,
                 checkpoint_every: float = 2.0) -> None:
        self.problem = problem
        self.searcher = searcher
        self.log = log
        self.run_id = run_id
        self.budget = budget
        self.time_budget = time_budget
        self.batch_size = batch_size
        self.checkpoint_every = checkpoint_every
        self.evaluator = Evaluator(problem.simulator, problem.objective, log=log, run_id=run_id, timeout=timeout)
        self.elapsed_before = 0.0

    def _batch(self, done: int) -> int:
        return self.batch_size if self.budget is None else min(self.batch_size, self.budget - done)

    def _logged_result(self, t: dict) -> TrialResult:
        """A logged trial as the TrialResult the searcher was told when it was evaluated."""
        obj = self.evaluator.objective
        ok = t["status"] == "ok"
        return TrialResult(t["design"], t["key"], t["status"], t["reward"] if ok else obj.failure_reward,
                           metrics=t["metrics"], rewards=t["rewards"], error=t["error"], fidelity=t["fidelity"],
                           wall_time=t["wall_time"] or 0.0, sim_cost=t["sim_cost"] or 0.0, cached=t["cached"],
                           satisfied=ok and obj.satisfied(t["metrics"]), trial_id=t["trial_id"])

    def resume_state(self) -> int:
        """Restore the searcher (checkpoint, then replay) and the cache from the log; returns the trials done."""
        run = self.log.run(self.run_id)
        trials = self.log.trials(self.run_id)
        self.evaluator.warm_cache(trials)
        self.elapsed_before = sum(t["wall_time"] or 0.0 for t in trials)
        done = 0
        if run["state"] is not None:
            self.searcher.load_state_dict(run["state"])
            done = run["state_trials"]
        while done < len(trials):
            n = self._batch(done)
            designs = self.searcher.ask(n)
            logged = trials[done:done + n]
            for d, t in zip(designs, logged):
                if json.dumps(d, sort_keys=True, default=json_default) != json.dumps(t["design"], sort_keys=True):
                    raise LogError(f"run {self.run_id}: searcher {run['searcher']} did not replay trial {t['trial_id']} "
                                   "as logged, so it cannot resume exactly")
            results = [self._logged_result(t) for t in logged]
            if len(logged) < n:  # a batch interrupted part-way: evaluate the rest of it now
                results += self.evaluator.evaluate_many(designs[len(logged):])
            self.searcher.tell(designs, results)
            done += n
        return done

    def run(self, progress: Callable[[int, list[TrialResult]], None] | None = None, resume: bool = False) -> int:
        """Search until the budget is spent; returns the number of trials in the log for this run."""
        done = self.resume_state() if resume else 0
        self.log.autoflush = False
        start = last_checkpoint = time.monotonic()
        try:
            while self.budget is None or done < self.budget:
                if self.time_budget is not None and time.monotonic() - start + self.elapsed_before >= self.time_budget:
                    break
                designs = self.searcher.ask(self._batch(done))
                results = self.evaluator.evaluate_many(designs)
                self.searcher.tell(designs, results)
                done += len(results)
                if time.monotonic() - last_checkpoint >= self.checkpoint_every:
                    self.log.flush(checkpoint=(self.run_id, self.searcher.state_dict()))
                    last_checkpoint = time.monotonic()
                else:
                    self.log.flush()
                if progress is not None:
                    progress(done, results)
            self.log.flush(checkpoint=(self.run_id, self.searcher.state_dict()))
        finally:
            self.evaluator.close()
            self.log.autoflush = True
        self.log.set_status(self.run_id, "finished")
        return done


def prepare(spec: RunSpec) -> tuple[Problem, Searcher]:
    """Build (and so validate) the problem and searcher of ``spec`` before anything is written."""
    spec.check()
    problem = make_problem(spec.env, **spec.env_args)
    return problem, make_searcher(spec.searcher, problem.space, seed=spec.seed, **spec.searcher_args)


def start_run(log: TrialLog, spec: RunSpec, prepared: tuple[Problem, Searcher] | None = None,
              run_id: str | None = None, timeout: float | None = None) -> LocalRunner:
    """Register the run of ``spec`` in ``log`` and return its runner."""
    problem, searcher = prepared or prepare(spec)
    run_id = log.start_run(
        run_id, env=spec.env, env_args=spec.env_args, simulator=problem.simulator.name, searcher=spec.searcher,
        searcher_args=searcher.config(), seed=spec.seed, budget=spec.budget,
        time_budget=spec.time_budget, batch_size=spec.batch_size, space=problem.space.to_dict(),
        fingerprint=problem.space.fingerprint(), objective=problem.objective.describe(),
    )
    return LocalRunner(problem, searcher, log, run_id, spec.budget, spec.time_budget, spec.batch_size, timeout)


def reopen_run(log: TrialLog, run_id: str, timeout: float | None = None) -> LocalRunner:
    """Rebuild the runner of a logged run (for ``--resume``); refuses a run whose space has changed since."""
    run = log.run(run_id)
    spec = RunSpec.from_run(run)
    problem = make_problem(spec.env, **spec.env_args)
    if problem.space.fingerprint() != run["fingerprint"]:
        raise LogError(f"run {run_id}: the design space of {spec.env} changed since the run started; cannot resume")
    searcher = make_searcher(spec.searcher, problem.space, seed=spec.seed, **spec.searcher_args)
    return LocalRunner(problem, searcher, log, run_id, spec.budget, spec.time_budget, spec.batch_size, timeout)


def log_path(out: Path) -> Path:
    """The trial log inside a run directory."""
    return out / "trials.sqlite"
