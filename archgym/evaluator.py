"""The Evaluator: the one path every evaluation takes. It validates the design, runs the simulator (in-process or in
an isolated worker process with a time limit and a private scratch directory), turns crashes and time-outs into
failed trials with their reason, caches deterministic results by canonical key, applies the objective and appends
exactly one record per evaluation to the trial log."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archgym.errors import InvalidDesignError
from archgym.log import TrialLog
from archgym.objective import Objective, SingleMetric
from archgym.simulator import Simulator
from archgym.space import Design


@dataclass
class TrialResult:
    """The outcome of one evaluation. Failed trials carry the objective's failure reward so searchers can learn
    from them; the log stores their reward as NULL."""

    design: Design
    key: str
    status: str  # "ok" | "failed" | "timeout" | "invalid"
    reward: float
    metrics: dict[str, float] | None = None
    rewards: list[float] | None = None
    error: str | None = None
    fidelity: float | None = None
    wall_time: float = 0.0
    sim_cost: float = 0.0
    cached: bool = False
    satisfied: bool = False
    trial_id: int | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record(self) -> dict[str, Any]:
        """The trial-log record of this result."""
        return {
            "design": self.design, "key": self.key, "metrics": self.metrics,
            "reward": self.reward if self.ok else None, "rewards": self.rewards if self.ok else None,
            "status": self.status, "error": self.error, "fidelity": self.fidelity, "wall_time": self.wall_time,
            "sim_cost": self.sim_cost, "cached": self.cached, "timestamp": time.time(),
        }


def default_objective(simulator: Simulator) -> Objective:
    """The first optimisable metric of the simulator, in its declared direction."""
    for m in simulator.metrics:
        if not m.report_only:
            return SingleMetric(m.name)
    raise InvalidDesignError(f"{simulator.name} declares no optimisable metric")


class _Worker:
    """A long-lived child process that runs one simulator; restarted after a crash or a time-out."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.proc: Any = None
        self.conn: Any = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, self.simulator), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent

    def run(self, design: Design, fidelity: float | None, workdir: Path | None, timeout: float | None):
        """Return ("ok", metrics) or (status, reason)."""
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((design, fidelity, workdir))
        if not self.conn.poll(timeout):
            self.kill()
            return "timeout", f"simulator exceeded the time limit of {timeout:g} s"
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(1.0)
            code = self.proc.exitcode
            self.kill()
            return "failed", f"simulator process died (exit code {code})"
        return status, payload

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5.0)
        self.proc = None
        self.conn = None


def _worker_main(conn: Any, simulator: Simulator) -> None:
    while True:
        try:
            design, fidelity, workdir = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", simulator.evaluate(design, fidelity=fidelity, workdir=workdir)))
        except Exception as exc:  # noqa: BLE001 - any simulator error becomes a failed trial
            conn.send(("failed", failure_reason(exc)))


def failure_reason(exc: BaseException) -> str:
    """A one-line reason for a failed trial: the exception and where it was raised."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


class Evaluator:
    """Evaluate designs on a simulator under an objective, logging every evaluation.

    ``timeout`` (seconds) applies to process-isolated simulators; ``isolation`` overrides the simulator's choice.
    """

    def __init__(
        self,
        simulator: Simulator,
        objective: Objective | None = None,
        log: TrialLog | None = None,
        run_id: str | None = None,
        timeout: float | None = None,
        cache: bool = True,
        isolation: str | None = None,
        workdir_root: str | Path | None = None,
        keep_workdirs: bool = False,
    ) -> None:
        self.simulator = simulator
        self.space = simulator.space
        self.objective = (objective or default_objective(simulator)).bind(simulator)
        self.log = log
        self.run_id = run_id
        if log is not None and run_id is None:
            raise ValueError("an Evaluator with a log needs the run_id to log under")
        self.timeout = timeout if timeout is not None else simulator.default_timeout
        self.isolation = isolation or simulator.isolation
        if self.isolation not in ("inline", "process"):
            raise ValueError(f"isolation {self.isolation!r} is not allowed; allowed: 'inline', 'process'")
        self.use_cache = cache and simulator.deterministic
        self.cache: dict[tuple[str, float | None], dict[str, float]] = {}
        self.keep_workdirs = keep_workdirs
        self._workdir_root = Path(workdir_root) if workdir_root else None
        self._tmp: str | None = None
        self._worker: _Worker | None = None
        self._n = 0

    # -- cache ------------------------------------------------------------------------------------------------

    def warm_cache(self, trials: Sequence[dict[str, Any]]) -> None:
        """Refill the cache from logged successful trials (used when a run resumes)."""
        if self.use_cache:
            for t in trials:
                if t["status"] == "ok" and t["metrics"] is not None:
                    self.cache[(t["key"], t["fidelity"])] = t["metrics"]

    # -- evaluation -------------------------------------------------------------------------------------------

    def new_workdir(self) -> Path | None:
        """A fresh private scratch directory for one evaluation (None if the simulator writes no files)."""
        if not self.simulator.uses_workdir:
            return None
        if self._tmp is None:
            root = self._workdir_root
            if root is not None:
                root.mkdir(parents=True, exist_ok=True)
            self._tmp = tempfile.mkdtemp(prefix="archgym-", dir=root)
        self._n += 1
        d = Path(self._tmp) / f"eval-{self._n:06d}"
        d.mkdir()
        return d

    def _simulate(self, design: Design, fidelity: float | None) -> tuple[str, Any, float]:
        workdir = self.new_workdir()
        t0 = time.perf_counter()
        try:
            if self.isolation == "process":
                if self._worker is None:
                    self._worker = _Worker(self.simulator)
                status, payload = self._worker.run(design, fidelity, workdir, self.timeout)
            else:
                try:
                    status, payload = "ok", self.simulator.evaluate(design, fidelity=fidelity, workdir=workdir)
                except Exception as exc:  # noqa: BLE001 - a simulator error is a failed trial, not a failed search
                    status, payload = "failed", failure_reason(exc)
        finally:
            if workdir is not None and not self.keep_workdirs:
                shutil.rmtree(workdir, ignore_errors=True)
        if status == "ok":
            missing = [m.name for m in self.simulator.metrics if m.name not in payload]
            if missing:
                status, payload = "failed", f"simulator did not report metrics {missing}"
            else:
                payload = {k: float(v) for k, v in payload.items()}
        return status, payload, time.perf_counter() - t0

    def finish(self, design: Design, key: str, fidelity: float | None, status: str, payload: Any, cost: float,
               cached: bool, t0: float, log: bool = True) -> TrialResult:
        """Turn a simulator outcome (metrics, or a failure reason) into a TrialResult under the objective; log it."""
        obj = self.objective
        if status == "ok":
            res = TrialResult(design, key, "ok", obj.reward(payload), metrics=payload, rewards=obj.rewards(payload),
                              fidelity=fidelity, sim_cost=cost, cached=cached, satisfied=obj.satisfied(payload))
        else:
            res = TrialResult(design, key, status, obj.failure_reward, error=payload, fidelity=fidelity, sim_cost=cost)
        res.wall_time = time.perf_counter() - t0
        if log and self.log is not None:
            self.log.append(self.run_id, res.record(), res)  # type: ignore[arg-type]
        return res

    def evaluate(self, design: Design, fidelity: float | None = None) -> TrialResult:
        """Evaluate one design (any mapping; it is validated first) and log it."""
        t0 = time.perf_counter()
        try:
            design = self.space.validate(design)
        except InvalidDesignError as exc:
            raw = {str(k): v for k, v in design.items()} if isinstance(design, dict) else {"_raw": repr(design)}
            return self.finish(raw, "invalid", fidelity, "invalid", str(exc), 0.0, False, t0)
        key = self.space.key(design)
        hit = self.cache.get((key, fidelity)) if self.use_cache else None
        if hit is not None:
            return self.finish(design, key, fidelity, "ok", hit, 0.0, True, t0)
        status, payload, cost = self._simulate(design, fidelity)
        if status == "ok" and self.use_cache:
            self.cache[(key, fidelity)] = payload
        return self.finish(design, key, fidelity, status, payload, cost, False, t0)

    def evaluate_many(self, designs: Sequence[Design], fidelity: float | None = None) -> list[TrialResult]:
        """Evaluate several designs; in-process simulators get the uncached valid ones in one ``evaluate_many`` call."""
        batched = type(self.simulator).evaluate_many is not Simulator.evaluate_many
        if self.isolation != "inline" or not batched or len(designs) < 2:
            return [self.evaluate(d, fidelity) for d in designs]
        t0 = time.perf_counter()
        todo: list[tuple[int, Design, str]] = []
        prepared: list[Any] = []
        for i, d in enumerate(designs):
            try:
                v = self.space.validate(d)
            except InvalidDesignError:
                prepared.append(None)
                continue
            k = self.space.key(v)
            prepared.append((v, k))
            if not (self.use_cache and (k, fidelity) in self.cache):
                todo.append((i, v, k))
        fresh: dict[int, tuple[str, Any]] = {}
        if todo:
            t1 = time.perf_counter()
            try:
                out = self.simulator.evaluate_many([v for _, v, _ in todo], fidelity=fidelity)
                per = (time.perf_counter() - t1) / len(todo)
                for (i, _, k), m in zip(todo, out):
                    fresh[i] = ("ok", {kk: float(vv) for kk, vv in m.items()}, per)
            except Exception:  # noqa: BLE001 - find the failing designs one by one
                for i, v, _ in todo:
                    status, payload, cost = self._simulate(v, fidelity)
                    fresh[i] = (status, payload, cost)
        results = []
        for i, d in enumerate(designs):
            if prepared[i] is None:
                results.append(self.evaluate(d, fidelity))
                continue
            v, k = prepared[i]
            if i in fresh:
                status, payload, cost = fresh[i]
                if status == "ok" and self.use_cache:
                    self.cache[(k, fidelity)] = payload
                results.append(self.finish(v, k, fidelity, status, payload, cost, False, t0))
            else:
                hit = self.cache.get((k, fidelity))
                if hit is None:  # an earlier design in this batch had the same key but failed
                    results.append(self.evaluate(v, fidelity))
                else:
                    results.append(self.finish(v, k, fidelity, "ok", hit, 0.0, True, t0))
        return results

    def evaluate_epochs(self, design: Design, max_fidelity: float,
                        deadline: float | None = None) -> Iterator[TrialResult]:
        """Evaluate one design through ``simulator.evaluate_epochs``, yielding a TrialResult after every epoch (for
        early-stopping schedulers). Nothing is logged: the caller records the last result it keeps. A crash becomes a
        failed result at the fidelity reached; a run past ``deadline`` (monotonic seconds) stops with status timeout.
        """
        t0 = time.perf_counter()
        try:
            v = self.space.validate(design)
        except InvalidDesignError as exc:
            yield self.finish(dict(design), "invalid", None, "invalid", str(exc), 0.0, False, t0, log=False)
            return
        key = self.space.key(v)
        workdir = self.new_workdir()
        fidelity: float | None = None
        try:
            gen = self.simulator.evaluate_epochs(v, max_fidelity=max_fidelity, workdir=workdir)  # type: ignore[attr-defined]
            for epoch, metrics in gen:
                fidelity = float(epoch)
                missing = [m.name for m in self.simulator.metrics if m.name not in metrics]
                if missing:
                    yield self.finish(v, key, fidelity, "failed", f"simulator did not report metrics {missing}",
                                      time.perf_counter() - t0, False, t0, log=False)
                    return
                metrics = {k: float(x) for k, x in metrics.items()}
                yield self.finish(v, key, fidelity, "ok", metrics, time.perf_counter() - t0, False, t0, log=False)
                if deadline is not None and time.monotonic() > deadline and fidelity < max_fidelity:
                    reason = f"training exceeded the time limit after {epoch:g} epochs"
                    yield self.finish(v, key, fidelity, "timeout", reason, time.perf_counter() - t0, False, t0, log=False)
                    return
        except Exception as exc:  # noqa: BLE001 - a training crash is one failed trial
            cost = time.perf_counter() - t0
            yield self.finish(v, key, fidelity, "failed", failure_reason(exc), cost, False, t0, log=False)
        finally:
            if workdir is not None and not self.keep_workdirs:
                shutil.rmtree(workdir, ignore_errors=True)

    def close(self) -> None:
        """Stop the worker process, remove scratch space and commit the log's buffer."""
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        if self._tmp is not None and not self.keep_workdirs:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self.log is not None:
            self.log.flush()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
