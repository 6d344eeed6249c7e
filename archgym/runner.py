"""LocalRunner: the default, in-process search loop (ask -> evaluate -> tell -> commit), resumable from its log.

Each batch's trials and the searcher's state after ``tell`` are committed in one transaction, so a run killed at
any moment resumes from the last committed batch without losing or repeating a finished trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError, LogError
from archgym.evaluator import Evaluator, TrialResult
from archgym.log import TrialLog
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
    """Run one search in this process, logging every evaluation to ``log`` under ``run_id``."""

    def __init__(self, problem: Problem, searcher: Searcher, log: TrialLog, run_id: str, budget: int | None,
                 time_budget: float | None = None, batch_size: int = 1, timeout: float | None = None) -> None:
        self.problem = problem
        self.searcher = searcher
        self.log = log
        self.run_id = run_id
        self.budget = budget
        self.time_budget = time_budget
        self.batch_size = batch_size
        self.evaluator = Evaluator(problem.simulator, problem.objective, log=log, run_id=run_id, timeout=timeout)
        self.elapsed_before = 0.0

    def resume_state(self) -> int:
        """Restore the searcher and the cache from the log; returns how many trials are already done."""
        run = self.log.run(self.run_id)
        done = self.log.count(self.run_id)
        if run["state"] is not None:
            if run["state_trials"] != done:
                raise LogError(f"run {self.run_id}: checkpoint covers {run['state_trials']} trials but the log holds {done}")
            self.searcher.load_state_dict(run["state"])
        elif done:
            raise LogError(f"run {self.run_id} has {done} trials but no searcher checkpoint")
        trials = self.log.trials(self.run_id)
        self.evaluator.warm_cache(trials)
        self.elapsed_before = sum(t["wall_time"] or 0.0 for t in trials)
        return done

    def run(self, progress: Callable[[int, list[TrialResult]], None] | None = None, resume: bool = False) -> int:
        """Search until the budget is spent; returns the number of trials in the log for this run."""
        done = self.resume_state() if resume else 0
        self.log.autoflush = False
        start = time.monotonic()
        try:
            while self.budget is None or done < self.budget:
                if self.time_budget is not None and time.monotonic() - start + self.elapsed_before >= self.time_budget:
                    break
                n = self.batch_size if self.budget is None else min(self.batch_size, self.budget - done)
                designs = self.searcher.ask(n)
                results = self.evaluator.evaluate_many(designs)
                self.searcher.tell(designs, results)
                self.log.flush(checkpoint=(self.run_id, self.searcher.state_dict()))
                done += len(results)
                if progress is not None:
                    progress(done, results)
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
