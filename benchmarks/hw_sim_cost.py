"""Cost of the hardware simulators: seconds per evaluation for each simulator and workload, and the speed-up of the
Evaluator's cache when designs repeat (second pass over the same designs vs the first, both through the Evaluator
with process isolation as in a real search).

    python benchmarks/hw_sim_cost.py            # full table (about 10 minutes on 2 busy cores)
    python benchmarks/hw_sim_cost.py --quick    # smoke run

``collect(simulator, n, seed)`` returns seeded designs with their metrics and per-design seconds: the data a proxy
model is fitted and checked on (the proxy engineer's benchmark calls it and compares against these costs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def collect(simulator: Any, n: int, seed: int = 0) -> tuple[list[dict], list[dict[str, float]], list[float]]:
    """``n`` distinct seeded designs of ``simulator`` evaluated in this process: (designs, metrics, seconds each).
    Designs the simulator rejects are skipped (they are reported by the Evaluator as failed trials elsewhere)."""
    rng = np.random.default_rng(seed)
    designs, metrics, seconds, seen = [], [], [], set()
    tries = 0
    while len(designs) < n and tries < 20 * n:
        tries += 1
        d = simulator.space.sample(rng)
        key = simulator.space.key(d)
        if key in seen:
            continue
        seen.add(key)
        t0 = time.perf_counter()
        try:
            m = simulator.evaluate(d)
        except Exception:  # noqa: BLE001 - a rejected design is not a cost sample
            continue
        seconds.append(time.perf_counter() - t0)
        designs.append(d)
        metrics.append(m)
    return designs, metrics, seconds


def cache_speedup(simulator: Any, designs: list[dict], warmup: dict) -> tuple[float, float, float]:
    """(first pass s, second pass s, ratio) for the same designs through one process-isolated Evaluator;
    ``warmup`` (another design) starts the worker outside the timed passes."""
    from archgym.evaluator import Evaluator

    with Evaluator(simulator, isolation="process") as ev:
        ev.evaluate(warmup)
        t0 = time.perf_counter()
        first = [ev.evaluate(d) for d in designs]
        t1 = time.perf_counter()
        second = [ev.evaluate(d) for d in designs]
        t2 = time.perf_counter()
    assert all(r.cached for r in second) and [r.metrics for r in first] == [r.metrics for r in second]
    return t1 - t0, t2 - t1, (t1 - t0) / max(t2 - t1, 1e-9)


def cases(quick: bool) -> list[tuple[str, Any, int, int]]:
    """(label, simulator, designs to sample, designs in the cache test; 0 skips it). Large workloads get a narrower space (big arrays, large SRAM) so a
    sampled design cannot take SCALE-Sim into millions of stall cycles; the designs are still sampled, not picked."""
    from archgym.simulators.scalesim import ScaleSimSimulator
    from archgym.simulators.zigzag import ZigZagSimulator

    out: list[tuple[str, Any, int, int]] = [
        ("scalesim", ScaleSimSimulator("tiny_cnn"), 4 if quick else 12, 2 if quick else 3),
        ("zigzag/tpu_like", ZigZagSimulator("tiny_cnn"), 3 if quick else 8, 2 if quick else 3),
    ]
    if not quick:
        out += [
            ("scalesim", ScaleSimSimulator("tiny_transformer"), 6, 3),
            ("scalesim", ScaleSimSimulator("small_cnn", array_sizes=(8, 16, 32, 64), sram_kb=(8, 16, 32, 64)), 2, 1),
            ("scalesim", ScaleSimSimulator("resnet18:layer4.1.conv2", array_sizes=(64, 128), sram_kb=(256, 512),
                                           bandwidths=(64,)), 1, 0),
            ("zigzag/tpu_like", ZigZagSimulator("small_cnn"), 4, 2),
            ("zigzag/eyeriss_like", ZigZagSimulator("tiny_cnn", "eyeriss_like"), 4, 2),
            ("zigzag/tpu_like", ZigZagSimulator("resnet18"), 1, 0),
            ("zigzag/tpu_like", ZigZagSimulator("transformer_block"), 3, 2),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: two cases, few designs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from archgym.simulators import zigzag as zz

    print(f"{'simulator':<20} {'workload':<26} {'MACs':>10} {'n':>3} {'mean s':>8} {'median s':>9} {'max s':>8} "
          f"{'1st pass s':>10} {'cached s':>9} {'cache x':>9}")
    for label, sim, n, k in cases(args.quick):
        zz._LAYER_MEMO.clear()
        designs, _, secs = collect(sim, max(n, k + 1) if k else n, args.seed)
        nan = float("nan")
        first, second, ratio = cache_speedup(sim, designs[:k], designs[k]) if k else (nan, nan, nan)
        print(f"{label:<20} {sim.workload.name:<26} {sim.workload.macs:>10.3g} {len(secs):>3} "
              f"{statistics.mean(secs):>8.2f} {statistics.median(secs):>9.2f} {max(secs):>8.2f} "
              f"{first:>10.2f} {second:>9.4f} {ratio:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
