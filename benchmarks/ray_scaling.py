"""Evaluations per second of the local runner against the Ray Tune runner, measured in one run on one local Ray.

(a) NAS-Bench-Graph look-ups (~10 us each): Ray with one design per Tune trial (Tune's per-trial overhead dominates)
    against the local runner with batch size 1, and Ray with automatic batching (designs per trial sized from the
    simulator's cost) against the local runner with the same batch size. Target: automatic batching within 2x.
(b) A simulator that sleeps 50 ms per evaluation: Ray with 1 and 2 workers. Target: 2 workers >= 1.7x of 1 worker.

Rates are "end-to-end" (trials / wall time of the whole run, including Tune's fixed start-up, mostly its trial actors
importing Ray Tune, several seconds; ``ray.init`` and a first warm-up run are paid once per session and shown
separately) and "steady" (trials after the first Tune trial / time from the first to the last one). Every run uses
the random searcher with seed 0 and logs to a temporary trial log. The local runner's checkpoint (committed with
every batch) holds the random searcher's set of proposed keys, so its batch-1 rate falls as a run grows.

    python benchmarks/ray_scaling.py            # about 6-7 minutes on 2 busy cores
    python benchmarks/ray_scaling.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from archgym.objective import SingleMetric
from archgym.registry import Problem, make_problem, make_searcher
from archgym.runner import RunSpec, log_path, start_run
from archgym.simulator import Metric, Simulator
from archgym.space import DesignSpace, Integer


class SleepSim(Simulator):
    """Sleeps ``delay`` seconds per evaluation (a stand-in for an external simulator that waits on I/O)."""

    name = "sleep"
    metrics = (Metric("score"),)

    def __init__(self, delay: float = 0.05) -> None:
        self.space = DesignSpace([Integer("a", 0, 999), Integer("b", 0, 999)], name="sleep")
        self.delay = delay

    def evaluate(self, design, fidelity=None, workdir=None):
        time.sleep(self.delay)
        return {"score": -abs(design["a"] - 500) - abs(design["b"] - 250)}


@dataclass
class Row:
    case: str
    runner: str
    trials: int
    wall: float
    steady: float | None
    designs_per_trial: int | str

    @property
    def rate(self) -> float:
        return self.trials / self.wall


def run_local(problem: Problem, env: str, budget: int, workdir: Path, batch_size: int = 1) -> float:
    """Wall seconds of a local run."""
    from archgym.log import TrialLog

    spec = RunSpec(env, {}, "random", {}, seed=0, budget=budget, batch_size=batch_size)
    with TrialLog(Path(tempfile.mkdtemp(dir=workdir)) / "local.sqlite") as log:
        runner = start_run(log, spec, (problem, make_searcher("random", problem.space, seed=0)))
        t0 = time.perf_counter()
        runner.run()
        return time.perf_counter() - t0


def run_ray(problem: Problem, env: str, budget: int, workdir: Path, **options) -> tuple[float, float | None, int]:
    """(wall seconds, steady evaluations/s, designs per trial used) of a Ray run."""
    from archgym.log import TrialLog
    from archgym.ray_runner import run_search_ray

    out = Path(tempfile.mkdtemp(dir=workdir))
    spec = RunSpec(env, {}, "random", {}, seed=0, budget=budget)
    marks: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    run_id = run_search_ray(spec, out, (problem, make_searcher("random", problem.space, seed=0)), quiet=True,
                            progress=lambda done, results: marks.append((time.perf_counter(), done)), **options)
    wall = time.perf_counter() - t0
    with TrialLog(log_path(out)) as log:
        n = log.count(run_id)
        dpt = log.run(run_id)["state"]["designs_per_trial"]
    if n != budget:
        raise RuntimeError(f"Ray run logged {n} trials, expected {budget}")
    steady = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0]) if len(marks) > 2 else None
    return wall, steady, dpt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run with small budgets")
    ap.add_argument("--lookups", type=int, default=20_000, help="evaluations of the batched look-up runs")
    ap.add_argument("--lookups-batch1", type=int, default=200, help="evaluations of the one-design-per-trial runs")
    ap.add_argument("--sleeps", type=int, default=3000, help="evaluations of the 50 ms simulator runs on Ray")
    args = ap.parse_args()
    if args.quick:
        args.lookups, args.lookups_batch1, args.sleeps = 2000, 40, 80
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    work = Path(tempfile.mkdtemp(prefix="agbench-"))
    rows: list[Row] = []
    try:
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(work / "ray"), log_to_driver=False,
                 logging_level=logging.WARNING)
        init_s = time.perf_counter() - t0

        env = "archgym/NASBenchGraph-v0"
        nb = make_problem(env)
        t0 = time.perf_counter()
        run_ray(nb, env, 4, work, workers=2, designs_per_trial=2)  # first use of Tune in the session: not measured
        warm_s = time.perf_counter() - t0
        one_case, auto_case = "look-ups, 1 design/batch", "look-ups, automatic batch"
        wall = run_local(nb, env, args.lookups_batch1 * 5, work)
        rows.append(Row(one_case, "local, batch 1", args.lookups_batch1 * 5, wall, None, 1))
        wall, steady, dpt = run_ray(nb, env, args.lookups_batch1, work, workers=2, designs_per_trial=1)
        rows.append(Row(one_case, "ray, 2 workers", args.lookups_batch1, wall, steady, dpt))
        wall, steady, dpt = run_ray(nb, env, args.lookups, work, workers=2)
        rows.append(Row(auto_case, "ray, 2 workers", args.lookups, wall, steady, dpt))
        wall = run_local(nb, env, args.lookups, work, batch_size=dpt)
        rows.insert(-1, Row(auto_case, f"local, batch {dpt}", args.lookups, wall, None, dpt))

        sleep = Problem("sleep", SleepSim(0.05), SingleMetric("score"))
        wall = run_local(sleep, "bench/Sleep", args.sleeps // 4, work)
        rows.append(Row("50 ms simulator", "local, batch 1", args.sleeps // 4, wall, None, 1))
        for workers in (1, 2):
            wall, steady, dpt = run_ray(sleep, "bench/Sleep", args.sleeps, work, workers=workers)
            rows.append(Row("50 ms simulator", f"ray, {workers} worker{'s' if workers > 1 else ''}", args.sleeps,
                            wall, steady, dpt))
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nray.init {init_s:.1f} s, first (warm-up) Tune run {warm_s:.1f} s: once per session, not in the rates "
          f"below; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    head = f"{'case':26} {'runner':20} {'trials':>7} {'wall s':>7} {'eval/s':>9} {'steady/s':>9} {'des/trial':>9}"
    print(head + f" {'vs local':>9} {'vs 1 worker':>11}")
    print("-" * (len(head) + 22))
    base = {r.case: r for r in rows if r.runner.startswith("local")}
    one = next(r for r in rows if r.runner.startswith("ray, 1 worker"))
    for r in rows:
        vs_local = r.rate / base[r.case].rate
        vs_one = f"{r.rate / one.rate:.2f}x" if r.case == one.case and r.runner.startswith("ray") else ""
        steady = f"{r.steady:9.1f}" if r.steady else f"{'':9}"
        print(f"{r.case:26} {r.runner:20} {r.trials:7d} {r.wall:7.2f} {r.rate:9.1f} {steady} {str(r.designs_per_trial):>9}"
              f" {vs_local:8.2f}x {vs_one:>11}")
    auto = next(r for r in rows if r.case == auto_case and r.runner.startswith("ray"))
    two = next(r for r in rows if r.runner.startswith("ray, 2 workers") and r.case == one.case)
    slow_e2e = base[auto.case].rate / auto.rate
    slow_steady = base[auto.case].rate / auto.steady if auto.steady else float("nan")
    fixed = auto.wall - auto.trials / auto.steady if auto.steady else float("nan")
    print(f"\ntarget (a): automatic batching within 2x of local on look-ups: local/ray = {slow_e2e:.2f}x end-to-end "
          f"({'met' if slow_e2e <= 2 else 'MISSED'}), {slow_steady:.2f}x steady ({'met' if slow_steady <= 2 else 'MISSED'});"
          f" Tune's fixed start-up and shut-down in that run: {fixed:.1f} s")
    print(f"target (b): 2 workers >= 1.7x of 1 worker on the 50 ms simulator: {two.rate / one.rate:.2f}x end-to-end"
          + (f", {two.steady / one.steady:.2f}x steady" if two.steady and one.steady else "")
          + f" -> {'met' if two.rate / one.rate >= 1.7 else 'MISSED (end-to-end)'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
