"""AGNN on Planetoid: hand-designed GCN and GAT against the architecture AGNN finds, with and without parameter sharing,
all trained by the same harness in one run.

Protocol (the defaults): GCN and GAT each trained with 10 seeds; AGNN search with 200 architectures, once without and
once with constrained parameter sharing (same searcher seed); the architecture each search picks by validation
accuracy is retrained from scratch with 10 seeds. The table shows test accuracy mean +- std, search wall time and the
sharing speed-up. ``--quick`` is a smoke run; smaller ``--archs/--seeds/--max-epochs`` and a narrowed space
(``--heads/--hidden``) fit a CPU budget, and the script prints which limits it ran under.

    python benchmarks/agnn_cora.py --data-root ../shared/data            # full protocol (GPU recommended)
    python benchmarks/agnn_cora.py --archs 20 --seeds 3 --max-epochs 100 --hidden 4 8 16 32 64 --heads 1 2 4 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Kipf & Welling (GCN) and Velickovic et al. (GAT) test accuracies on the public splits, in %.
PAPER = {("gcn", "cora"): 81.5, ("gcn", "citeseer"): 70.3, ("gat", "cora"): 83.0, ("gat", "citeseer"): 72.5}


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["cora"], help="cora, citeseer, pubmed, synthetic")
    ap.add_argument("--data-root", default=os.environ.get("ARCHGYM_DATA")
                    or str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--archs", type=int, default=200, help="architectures evaluated per search")
    ap.add_argument("--seeds", type=int, default=10, help="seeds for the references and the retraining")
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=100, help="early-stopping patience on validation accuracy")
    ap.add_argument("--search-patience", type=int, default=None, help="patience during the search (default: --patience)")
    ap.add_argument("--share-fraction", type=float, default=0.25, help="epoch fraction for a model that inherited weights")
    ap.add_argument("--searcher", default="agnn")
    ap.add_argument("--search-seed", type=int, default=0)
    ap.add_argument("--heads", type=int, nargs="+", default=None, help="narrow the head counts searched")
    ap.add_argument("--hidden", type=int, nargs="+", default=None, help="narrow the hidden units searched")
    ap.add_argument("--time-limit", type=float, default=1800.0, help="seconds per training run before it fails")
    ap.add_argument("--quick", action="store_true", help="smoke run: 4 archs, 2 seeds, 20 epochs")
    ap.add_argument("--verbose", action="store_true", help="print every architecture of the searches")
    args = ap.parse_args()
    if args.quick:
        args.archs, args.seeds, args.max_epochs, args.patience = 4, 2, 20, 10
        args.heads, args.hidden = args.heads or [1, 2, 4], args.hidden or [8, 16]
    return args


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def simulator(args: argparse.Namespace, dataset: str, seed: int = 0, share: bool = False, patience: int | None = None):
    from archgym.simulators.gnn_train import GNNTrainSimulator

    sim = GNNTrainSimulator(dataset, args.data_root, max_epochs=args.max_epochs, patience=patience or args.patience,
                            share_weights=share, share_fraction=args.share_fraction, seed=seed,
                            time_limit=args.time_limit, heads=args.heads, hidden=args.hidden)
    sim.data()
    return sim


def retrain(args: argparse.Namespace, dataset: str, design: dict[str, Any]) -> tuple[list[float], list[float], float]:
    """Test and validation accuracies (in %) of ``design`` trained from scratch with ``args.seeds`` seeds."""
    tests, vals, t0 = [], [], time.perf_counter()
    for seed in range(args.seeds):
        m = simulator(args, dataset, seed=seed).evaluate(design)
        tests.append(100 * m["test_acc"])
        vals.append(100 * m["val_acc"])
    return tests, vals, time.perf_counter() - t0


def search(args: argparse.Namespace, dataset: str, share: bool) -> dict[str, Any]:
    """One AGNN search through the Evaluator; returns the picked design, its search-time metrics and the wall time."""
    from archgym.evaluator import Evaluator
    from archgym.registry import make_searcher

    sim = simulator(args, dataset, seed=0, share=share, patience=args.search_patience)
    searcher = make_searcher(args.searcher, sim.space, seed=args.search_seed)
    best = None
    failed, epochs = 0, 0.0
    t0 = time.perf_counter()
    with Evaluator(sim) as ev:
        for i in range(args.archs):
            designs = searcher.ask(1)
            results = ev.evaluate_many(designs)
            searcher.tell(designs, results)
            for r in results:
                failed += not r.ok
                epochs += r.metrics["epochs"] if r.ok else 0.0
                if r.ok and (best is None or r.reward > best.reward):
                    best = r
            if args.verbose:
                r = results[0]
                print(f"    arch {i + 1:3d}: {r.status} val {100 * r.metrics['val_acc'] if r.ok else float('nan'):5.1f} "
                      f"epochs {r.metrics['epochs'] if r.ok else 0:3.0f}  {time.perf_counter() - t0:6.0f} s", flush=True)
    wall = time.perf_counter() - t0
    if best is None:
        raise SystemExit(f"every architecture failed in the {'shared' if share else 'plain'} search on {dataset}")
    return {"design": best.design, "val": 100 * best.metrics["val_acc"], "test": 100 * best.metrics["test_acc"],
            "wall": wall, "failed": failed, "epochs": epochs}


def fmt(ms: tuple[float, float]) -> str:
    return f"{ms[0]:6.2f} +- {ms[1]:4.2f}"


def run_dataset(args: argparse.Namespace, dataset: str) -> list[str]:
    from archgym.search_spaces.agnn import reference_design

    rows, notes, ref = [], [], {}
    for kind in ("gcn", "gat"):
        tests, vals, wall = retrain(args, dataset, reference_design(kind))
        ref[kind] = statistics.fmean(tests)
        paper = PAPER.get((kind, dataset))
        gap = f"{statistics.fmean(tests) - paper:+.2f}" if paper else "n/a"
        rows.append((kind.upper() + " (hand-designed)", fmt(mean_std(tests)), fmt(mean_std(vals)),
                     f"{paper:.1f}" if paper else "n/a", gap, f"{wall:7.1f}", "-", "-", "-"))
        print(f"  [{dataset}] {kind}: test {fmt(mean_std(tests))}  ({wall:.0f} s for {args.seeds} seeds)", flush=True)
    found = {}
    for share in (False, True):
        res = search(args, dataset, share)
        tests, vals, wall = retrain(args, dataset, res["design"])
        found[share] = (res, tests)
        label = "AGNN + sharing" if share else "AGNN, no sharing"
        print(f"  [{dataset}] {label}: search {res['wall']:.0f} s, best val {res['val']:.2f} "
              f"(failed {res['failed']}); retrained test {fmt(mean_std(tests))}", flush=True)
        print(f"      picked: {res['design']}", flush=True)
        rows.append((label, fmt(mean_std(tests)), fmt(mean_std(vals)), "-", "-", f"{wall:7.1f}",
                     f"{res['wall']:8.1f}", f"{res['epochs']:.0f}", f"{res['failed']}"))
    speedup = found[False][0]["wall"] / found[True][0]["wall"]
    epoch_ratio = found[False][0]["epochs"] / max(found[True][0]["epochs"], 1.0)
    drop = statistics.fmean(found[False][1]) - statistics.fmean(found[True][1])
    gcn = ref["gcn"]
    best_search = max(statistics.fmean(found[s][1]) for s in (False, True))
    header = ("model", "test acc % (mean +- std)", "val acc %", "paper", "vs paper", "retrain s", "search s",
              "search epochs", "failed")
    out = [f"### {dataset}: {args.archs} architectures per search, {args.seeds} seeds, <= {args.max_epochs} epochs "
           f"(patience {args.patience}), space {space_name(args)}", "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out.append("")
    out.append(f"sharing speed-up (search wall time, no sharing / sharing): {speedup:.2f}x; in epochs trained "
               f"(independent of machine load): {epoch_ratio:.2f}x; accuracy change with sharing: {-drop:+.2f} points")
    paper_gcn = PAPER.get(("gcn", dataset))
    if paper_gcn is not None:
        notes.append(f"GCN reproduced within 1 point of {paper_gcn}: {'MET' if abs(gcn - paper_gcn) <= 1 else 'MISSED'} "
                     f"({gcn:.2f})")
    paper_gat = PAPER.get(("gat", dataset))
    if paper_gat is not None:
        notes.append(f"searched architecture beats GAT's {paper_gat}: {'MET' if best_search > paper_gat else 'MISSED'} "
                     f"({best_search:.2f})")
    notes.append(f"sharing at least halves search time: {'MET' if speedup >= 2 else 'MISSED'} ({speedup:.2f}x); "
                 f"costs <= 0.5 points: {'MET' if drop <= 0.5 else 'MISSED'} ({drop:+.2f})")
    return out + ["", *[f"- {n}" for n in notes], ""]


def space_name(args: argparse.Namespace) -> str:
    from archgym.search_spaces.agnn import HEADS, HIDDEN, agnn_space

    return agnn_space(2, None, args.heads or HEADS, args.hidden or HIDDEN).name


def main() -> None:
    args = parse()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    print(f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}; torch threads {torch.get_num_threads()}; "
          f"data root {args.data_root}", flush=True)
    limits = []
    if args.archs < 200:
        limits.append(f"{args.archs} architectures per search instead of 200")
    if args.seeds < 10:
        limits.append(f"{args.seeds} seeds instead of 10")
    if args.max_epochs < 200:
        limits.append(f"at most {args.max_epochs} epochs instead of 200")
    if args.heads or args.hidden:
        limits.append(f"space narrowed to heads {args.heads or 'all'} and hidden units {args.hidden or 'all'}")
    report = []
    t0 = time.perf_counter()
    for ds in args.datasets:
        report += run_dataset(args, ds)
    print()
    print("\n".join(report))
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    if limits:
        print("REDUCED protocol: " + "; ".join(limits) + ". Figures are not comparable to the full protocol.")


if __name__ == "__main__":
    sys.exit(main())
