"""One-shot search quality: DARTS, DrNAS, GDAS and SPOS on the weight-entangled conv space (digits) and character LM
(tinyshakespeare when present, else Python's pydoc corpus). Each method's final architecture is retrained standalone
and compared with the median of random architectures of the same space, trained with the same budget by the same
simulator (archgym/TangleConv-v0, archgym/TangleGPT-v0). Target (issue 8): DrNAS beats the random median on both.

    python benchmarks/oneshot_search.py              # full protocol: 3 seeds, 10 random architectures
    python benchmarks/oneshot_search.py --quick      # smoke run (minutes on a shared CPU)
    python benchmarks/oneshot_search.py --seeds 2 --n-random 6 --conv-epochs 6 --lm-epochs 3   # a reduced run
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from archgym.evaluator import Evaluator
from archgym.registry import make_problem, make_searcher
from archgym.search_spaces.tangle_spaces import sample_designs
from archgym.simulators.tangle_data import shared_shakespeare

METHODS = ("darts", "drnas", "gdas", "spos")


def run_space(name: str, env: str, env_args: dict, metric: str, higher: bool, args: argparse.Namespace,
              epochs: int, searcher_args: dict) -> None:
    problem = make_problem(env, **env_args)
    evaluator = Evaluator(problem.simulator, problem.objective)
    t0 = time.perf_counter()
    rand = [evaluator.evaluate(d) for d in sample_designs(problem.space, args.n_random, seed=args.random_seed)]
    rand_vals = [r.metrics[metric] for r in rand if r.ok]
    median = statistics.median(rand_vals)
    print(f"\n== {name}: {env} {env_args}; metric {metric} ({'higher' if higher else 'lower'} is better)")
    print(f"random: {len(rand_vals)} architectures, median {median:.4f}, best {max(rand_vals) if higher else min(rand_vals):.4f}, "
          f"worst {min(rand_vals) if higher else max(rand_vals):.4f} ({time.perf_counter() - t0:.0f} s)")
    header = f"{'method':7} {'seed':>4} {metric:>9} {'vs median':>10} {'search s':>9}  design"
    print(header)
    print("-" * len(header))
    summary = {}
    for method in args.methods.split(","):
        vals = []
        for seed in range(args.seeds):
            extra = {} if method == "spos" else {"warmup_epochs": args.warmup}
            searcher = make_searcher(method, problem.space, seed=seed, **searcher_args, **extra)
            t1 = time.perf_counter()
            design = searcher.ask(epochs)[-1]
            search_s = time.perf_counter() - t1
            res = evaluator.evaluate(design)
            v = res.metrics[metric] if res.ok else float("nan")
            vals.append(v)
            gap = (v - median) if higher else (median - v)
            print(f"{method:7} {seed:>4} {v:>9.4f} {gap:>+10.4f} {search_s:>9.1f}  {design}")
        wins = sum(((v > median) if higher else (v < median)) for v in vals)
        summary[method] = (statistics.mean(vals), statistics.pstdev(vals), wins)
    print(f"summary ({name}; random median {median:.4f}):")
    for method, (mean, sd, wins) in summary.items():
        beats = (mean > median) if higher else (mean < median)
        print(f"  {method:7} mean {mean:.4f} +- {sd:.4f}; seeds better than the random median: {wins}/{args.seeds}; "
              f"mean beats the median: {'yes' if beats else 'no'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-random", type=int, default=10)
    ap.add_argument("--random-seed", type=int, default=1000)
    ap.add_argument("--conv-epochs", type=int, default=10, help="supernet epochs on digits (one pass of the weight half each)")
    ap.add_argument("--lm-epochs", type=int, default=6, help="supernet epochs on the LM (steps-per-epoch steps each)")
    ap.add_argument("--lm-steps-per-epoch", type=int, default=100)
    ap.add_argument("--retrain-epochs", type=int, default=5, help="standalone training epochs (digits)")
    ap.add_argument("--retrain-steps", type=int, default=300, help="standalone training steps (LM)")
    ap.add_argument("--lm-chars", type=int, default=None, help="use only the first N characters of the corpus")
    ap.add_argument("--warmup", type=int, default=1, help="weight-only warm-up epochs of the gradient methods")
    ap.add_argument("--spaces", default="conv,lm")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 3 random archs, tiny budgets")
    args = ap.parse_args()
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        ap.error(f"unknown method(s) {sorted(unknown)}; allowed: {', '.join(METHODS)}")
    if args.quick:
        args.seeds, args.n_random, args.conv_epochs, args.lm_epochs = 1, 3, 2, 2
        args.lm_steps_per_epoch, args.retrain_epochs, args.retrain_steps, args.lm_chars = 20, 2, 40, 200_000
    np.set_printoptions(precision=4)
    t0 = time.perf_counter()
    if "conv" in args.spaces:
        run_space("conv / digits", "archgym/TangleConv-v0",
                  {"dataset": "digits", "epochs": args.retrain_epochs, "device": args.device}, "val_acc", True, args,
                  args.conv_epochs, {"device": args.device})
    if "lm" in args.spaces:
        path = shared_shakespeare()
        env_args = {"steps": args.retrain_steps, "device": args.device}
        if path is not None:
            env_args["text_path"] = str(path)
        else:
            print("\n(tinyshakespeare not found under ../shared/data: using the default pydoc corpus)")
        if args.lm_chars:
            env_args["max_chars"] = args.lm_chars
        run_space("char LM", "archgym/TangleGPT-v0", env_args, "val_loss", False, args, args.lm_epochs,
                  {"device": args.device, "steps_per_epoch": args.lm_steps_per_epoch, "batch_size": 32})
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
