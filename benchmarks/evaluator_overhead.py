"""Evaluations per second on NAS-Bench-Graph through each layer of archgym, as ratios to the raw table look-up.

Layers: raw look-up; Evaluator without a log; Evaluator with the durable SQLite log; the full LocalRunner loop
(random searcher -> Evaluator -> log, a checkpoint committed per batch); ``env.step`` of the Gymnasium env.
Also reports ``import archgym`` time. Run: ``python benchmarks/evaluator_overhead.py [--n 20000]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from archgym.env import ArchGymEnv
from archgym.evaluator import Evaluator
from archgym.log import TrialLog
from archgym.registry import make_problem
from archgym.runner import RunSpec, start_run

ENV = "archgym/NASBenchGraph-v0"


def rate(n: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20000, help="evaluations per layer")
    ap.add_argument("--batch-size", type=int, default=256, help="runner batch size (one commit per batch)")
    args = ap.parse_args()
    n = args.n
    problem = make_problem(ENV)
    sim, space = problem.simulator, problem.space
    rng = np.random.default_rng(0)
    designs = [space.sample(rng) for _ in range(n)]
    sim.evaluate(designs[0])  # load the table outside the timings
    rows = []
    rows.append(("raw table look-up", rate(n, lambda: [sim.evaluate(d) for d in designs])))
    ev = Evaluator(sim, problem.objective, cache=False)
    rows.append(("Evaluator, no log, no cache", rate(n, lambda: [ev.evaluate(d) for d in designs])))
    ev = Evaluator(sim, problem.objective)
    rows.append(("Evaluator, no log, cache", rate(n, lambda: [ev.evaluate(d) for d in designs])))
    with tempfile.TemporaryDirectory() as tmp:
        with TrialLog(Path(tmp) / "ev.sqlite") as log:
            run = log.start_run(env=ENV)
            ev = Evaluator(sim, problem.objective, log=log, run_id=run)

            def logged() -> None:
                for d in designs:
                    ev.evaluate(d)
                log.flush()

            rows.append(("Evaluator + durable log", rate(n, logged)))
            assert log.count(run) == n
        with TrialLog(Path(tmp) / "run.sqlite") as log:
            spec = RunSpec(ENV, {}, "random", {"dedupe": False}, seed=0, budget=n, batch_size=args.batch_size)
            runner = start_run(log, spec)
            rows.append((f"LocalRunner full loop + log (batch {args.batch_size})", rate(n, runner.run)))
            assert log.count(runner.run_id) == n
        env = ArchGymEnv(problem, max_steps=n + 1)
        env.reset(seed=0)
        actions = [space.encode(d, "index").astype(int) for d in designs]
        rows.append(("env.step (one-shot, no log)", rate(n, lambda: [env.step(a) for a in actions])))
        env = ArchGymEnv(problem, max_steps=n + 1, log=Path(tmp) / "env.sqlite")
        env.reset(seed=0)
        rows.append(("env.step (one-shot, durable log)", rate(n, lambda: [env.step(a) for a in actions])))
        env.close()
    raw = rows[0][1]
    print(f"NAS-Bench-Graph (cora), {n:,} evaluations per layer, one process")
    print(f"| {'layer':<45} | {'evals/s':>10} | {'ratio to raw':>12} |")
    print(f"|{'-' * 47}|{'-' * 12}|{'-' * 14}|")
    for name, r in rows:
        print(f"| {name:<45} | {r:>10,.0f} | {r / raw:>12.3f} |")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import archgym"], check=True)
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "archgym", "--help"], check=True, capture_output=True)
    t_help = time.perf_counter() - t0
    print(f"\nfresh interpreter: `import archgym` {t_import:.2f} s, `archgym --help` {t_help:.2f} s (target < 1 s)")
    full = dict(rows)["Evaluator + durable log"]
    print(f"target >= 5,000 evals/s through the Evaluator with the durable log: {'met' if full >= 5000 else 'MISSED'}")


if __name__ == "__main__":
    main()
