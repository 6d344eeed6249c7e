"""Proxy fidelity and proxy-in-the-loop search, measured in one run.

1. Fidelity: random-search logs (LocalRunner + TrialLog) of NAS-Bench-Graph cora (and of the SCALE-Sim / ZigZag envs
   when registered) train each proxy on the first N logged designs and score it on later, unseen designs: RMSE,
   RMSE % of mean (ArchGym's measure; its anchor is 0.61%), RMSE % of range, R^2, Kendall tau, and the speed-up of
   batched proxy prediction over the real simulator per design (both timed here).
2. Search: the proxy-in-the-loop searcher (inner: random) against its inner searcher on cora: real simulations each
   needs to reach the inner searcher's best reward, median over seeds (target: >= 3x fewer).

    python benchmarks/proxy_fidelity.py            # full (about 10 minutes on 2 busy cores)
    python benchmarks/proxy_fidelity.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from archgym.errors import ArchGymError  # noqa: E402
from archgym.evaluator import Evaluator  # noqa: E402
from archgym.log import TrialLog  # noqa: E402
from archgym.proxies.evaluate import fidelity, plot_learning_curve  # noqa: E402
from archgym.proxies.features import load_dataset  # noqa: E402
from archgym.proxies.proxy import Proxy  # noqa: E402
from archgym.registry import ENVS, make_problem, make_searcher  # noqa: E402
from archgym.runner import RunSpec, log_path, start_run  # noqa: E402

NBG = "archgym/NASBenchGraph-v0"


def random_log(out: Path, env: str, env_args: dict[str, Any], budget: int, seed: int, batch: int = 50) -> Path:
    """A random-search run of ``budget`` evaluations logged to ``out``."""
    with TrialLog(log_path(out)) as log:
        start_run(log, RunSpec(env, env_args, "random", {}, seed, budget, None, batch)).run()
    return out


def time_per_design(fn: Any, n: int, min_seconds: float = 0.2) -> float:
    """Seconds per design of ``fn()`` (which handles ``n`` designs), repeated until ``min_seconds`` have passed."""
    reps, t0 = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        if time.perf_counter() - t0 >= min_seconds:
            return (time.perf_counter() - t0) / (reps * n)


def fidelity_rows(env: str, env_args: dict[str, Any], target: str, log_target: bool, sizes: list[int], n_test: int,
                  models: list[str], workdir: Path, seed: int, real_cost: str) -> tuple[list[dict], Any, np.ndarray]:
    """Train each model on the first n logged designs (n in ``sizes``) and score it on the last ``n_test``."""
    out = random_log(workdir / env.split("/")[-1], env, env_args, max(sizes) + n_test, seed,
                     batch=50 if env == NBG else 1)
    data = load_dataset([out], target)
    if len(data) < max(sizes) + n_test:
        sizes = [s for s in sizes if s + n_test <= len(data)] or [len(data) - n_test]
    test = np.arange(len(data) - n_test, len(data))
    test_designs = [data.designs[i] for i in test]
    sim = make_problem(env, **env_args).simulator
    rng = np.random.default_rng(seed + 99)
    timing = [data.space.sample(rng) for _ in range(2000)]  # one batch the proxies are timed on
    if real_cost == "timed":  # table look-ups: time them here, cold (the architecture-hash cache emptied)
        from archgym.search_spaces.nasbench_graph import arch_hash

        def real() -> None:
            arch_hash.cache_clear()
            sim.evaluate_many(test_designs)

        real_s = time_per_design(real, len(test_designs))
    else:  # expensive simulators: the real seconds per design the Evaluator logged for this very run
        with TrialLog(log_path(out), readonly=True) as log:
            real_s = float(np.mean([t["sim_cost"] for t in log.trials() if t["status"] == "ok"]))
    rows = []
    for model in models:
        for n in sizes:
            t0 = time.perf_counter()
            proxy = Proxy(data.space, target, model, log_target=log_target, seed=seed)
            proxy.fit(data.designs[:n], data.y[:n])
            fit_s = time.perf_counter() - t0
            fid = fidelity(data.y[test], proxy.predict(test_designs))
            proxy_s = time_per_design(lambda p=proxy: p.predict_dist(timing), len(timing))
            rows.append({"env": env.split("/")[-1], "target": target, "model": model, "n_train": n, **fid,
                         "fit_s": fit_s, "real_s_per_design": real_s, "proxy_s_per_design": proxy_s,
                         "speedup": real_s / proxy_s, "n_failed_excluded": data.n_failed})
            print(_fid_line(rows[-1]), flush=True)
    return rows, data, test


def _fid_line(r: dict) -> str:
    return (f"{r['env']:<17} {r['target']:<8} {r['model']:<4} {r['n_train']:>6} {r['n']:>5.0f} {r['rmse']:>9.4g} "
            f"{r['rmse_pct_mean']:>8.3f} {r['rmse_pct_range']:>8.3f} {r['r2']:>7.3f} {r['kendall_tau']:>7.3f} "
            f"{r['fit_s']:>7.1f} {r['real_s_per_design'] * 1e6:>11.1f} {r['proxy_s_per_design'] * 1e6:>11.2f} "
            f"{r['speedup']:>10.1f}x")


FID_HEADER = (f"{'env':<17} {'target':<8} {'model':<4} {'n_train':>6} {'n_test':>5} {'RMSE':>9} {'%mean':>8} "
              f"{'%range':>8} {'R^2':>7} {'tau':>7} {'fit s':>7} {'real us/des':>11} {'proxy us/des':>11} "
              f"{'speed-up':>11}")


def learning_curve_png(data: Any, test: np.ndarray, sizes: list[int], path: Path, seed: int) -> list[dict]:
    """Held-out error of the random forest against training size, on the fixed test designs."""
    rows = []
    for n in sizes:
        proxy = Proxy(data.space, data.target, "rf", seed=seed).fit(data.designs[:n], data.y[:n])
        rows.append({"n_train": float(n), **fidelity(data.y[test], proxy.predict([data.designs[i] for i in test]))})
    plot_learning_curve(rows, path, f"rf proxy of {data.target} on NAS-Bench-Graph cora")
    return rows


def search_curve(name: str, problem: Any, seed: int, budget: int, batch: int, **hparams: Any) -> np.ndarray:
    """Rewards in the order a searcher's designs were really simulated."""
    searcher = make_searcher(name, problem.space, seed=seed, **hparams)
    rewards: list[float] = []
    with Evaluator(problem.simulator, problem.objective) as ev:
        while len(rewards) < budget:
            designs = searcher.ask(min(batch, budget - len(rewards)))
            results = ev.evaluate_many(designs)
            searcher.tell(designs, results)
            rewards += [r.reward for r in results if not r.cached]
    return np.array(rewards)


def loop_rows(seeds: int, budget: int, batch: int, hparams: dict[str, Any]) -> list[dict]:
    """Per seed: simulations the inner (random) searcher needed to reach its best within ``budget``, and those the
    proxy-in-the-loop searcher (same seed, same budget) needed to reach that reward."""
    problem = make_problem(NBG)
    rows = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        inner = search_curve("random", problem, seed, budget, batch)
        best = float(inner.max())
        t_inner = int(np.argmax(inner >= best)) + 1
        t1 = time.perf_counter()
        loop = search_curve("proxy-loop", problem, seed, budget, batch, **hparams)
        hit = np.nonzero(loop >= best)[0]
        t_loop = float(hit[0] + 1) if len(hit) else float("inf")
        rows.append({"seed": seed, "inner_best": best, "inner_sims": t_inner, "loop_sims": t_loop,
                     "loop_best": float(loop.max()), "ratio": t_inner / t_loop, "inner_s": t1 - t0,
                     "loop_s": time.perf_counter() - t1})
        r = rows[-1]
        print(f"seed {seed:>2}: random best {best:.3f} after {t_inner:>4} sims; proxy-loop reached it after "
              f"{t_loop:>5.0f} sims (its best {r['loop_best']:.3f}); ratio {r['ratio']:.2f} "
              f"[{r['inner_s']:.1f} s vs {r['loop_s']:.1f} s]", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small logs, few seeds")
    ap.add_argument("--models", default="rf,gbm,gnn", help="proxy models for NAS-Bench-Graph (rf,gbm,mlp,gnn)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds of the proxy-in-the-loop comparison")
    ap.add_argument("--loop-budget", type=int, default=300, help="real simulations per searcher and seed")
    ap.add_argument("--hw-samples", type=int, default=60,
                    help="logged SCALE-Sim designs (ZigZag, slower, gets half; 0: skip the hardware envs)")
    ap.add_argument("--out", type=Path, default=Path("runs/proxy_fidelity"), help="results folder")
    args = ap.parse_args()
    quick = args.quick
    sizes = [200, 500] if quick else [1000, 5000]
    n_test = 200 if quick else 1000
    seeds = 2 if quick else args.seeds
    budget = 80 if quick else args.loop_budget
    hw_n = min(args.hw_samples, 12) if quick else args.hw_samples
    models = ["rf", "gbm"] if quick else args.models.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"quick": quick}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        print("== proxy fidelity on unseen designs (trained on the first n_train of a random-search log) ==")
        print(FID_HEADER)
        rows, data, test = fidelity_rows(NBG, {"dataset": "cora"}, "valid_acc", False, sizes, n_test, models,
                                         Path(tmp), 0, "timed")
        results["fidelity"] = rows
        lc_sizes = sorted({max(20, sizes[0] // 10), sizes[0] // 3, *sizes})
        results["learning_curve"] = learning_curve_png(data, test, lc_sizes, args.out / "learning_curve_cora.png", 0)
        hw = [("archgym/SCALESim-v0", {}, "cycles", hw_n), ("archgym/ZigZag-v0", {}, "latency", hw_n // 2)]
        for env, env_args, target, n_hw in hw if hw_n else []:
            if env not in ENVS:
                print(f"{env}: not registered; no row")
                continue
            n_train = max(4, int(n_hw * 0.75))
            try:
                hw_rows, _, _ = fidelity_rows(env, env_args, target, True, [n_train], n_hw - n_train, ["rf", "gbm"],
                                              Path(tmp), 0, "logged")
                results["fidelity"] += hw_rows
            except ArchGymError as exc:
                print(f"{env}: unavailable ({exc})")
    print("(real us/des: NAS-Bench-Graph is a table look-up timed cold here; hardware simulators: the seconds the "
          "Evaluator logged per design in this run. proxy us/des: one batched predict_dist call incl. features)")
    print(f"\n== proxy-in-the-loop (inner: random) vs random on NAS-Bench-Graph cora, budget {budget}, "
          f"{seeds} seeds ==")
    hparams = {"model_args": {"n_estimators": 100}}
    lrows = loop_rows(seeds, budget, 10, hparams)
    t_in = float(np.median([r["inner_sims"] for r in lrows]))
    t_lp = float(np.median([r["loop_sims"] for r in lrows]))
    summary = {"median_inner_sims": t_in, "median_loop_sims": t_lp, "ratio_of_medians": t_in / t_lp,
               "median_ratio": float(np.median([r["ratio"] for r in lrows])),
               "seeds_reached": int(sum(np.isfinite(r["loop_sims"]) for r in lrows)), "seeds": seeds,
               "budget": budget, "hparams": hparams}
    results["loop"] = {"rows": lrows, "summary": summary}
    print(f"median real simulations to reach random's best: random {t_in:.0f}, proxy-loop {t_lp:.0f} -> "
          f"{summary['ratio_of_medians']:.2f}x fewer (median per-seed ratio {summary['median_ratio']:.2f}x; "
          f"reached in {summary['seeds_reached']}/{seeds} seeds; target >= 3x)")
    results["total_s"] = time.perf_counter() - start
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(f"\ntotal {results['total_s']:.0f} s; wrote {args.out / 'results.json'} and "
          f"{args.out / 'learning_curve_cora.png'}")


if __name__ == "__main__":
    main()
