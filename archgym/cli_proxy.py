"""``archgym proxy``: train a proxy cost model from trial logs (with k-fold CV and a held-out split), evaluate it on
other logs, and plot its learning curve. Heavy libraries load only inside the commands."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from archgym.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Proxy cost models: train from trial logs, evaluate, serve as a simulator.")
console = Console()

_COLUMNS = (("n", "n", "{:.0f}"), ("rmse", "RMSE", "{:.4g}"), ("rmse_pct_mean", "RMSE % mean", "{:.3f}"),
            ("rmse_pct_range", "RMSE % range", "{:.3f}"), ("mape", "MAPE %", "{:.3f}"), ("r2", "R^2", "{:.4f}"),
            ("kendall_tau", "Kendall tau", "{:.4f}"))


def _cell(fmt: str, v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def print_fidelity(rows: list[tuple[str, dict[str, Any]]], title: str) -> None:
    """A table of fidelity figures, one row per evaluation (e.g. CV mean, held-out)."""
    table = Table("evaluation", *(c[1] for c in _COLUMNS), title=title)
    for name, fid in rows:
        table.add_row(name, *(_cell(fmt, fid.get(key)) for key, _, fmt in _COLUMNS))
    console.print(table)


def _model_args(pairs: Optional[list[str]]) -> dict[str, Any]:
    from archgym.registry import parse_kv

    return parse_kv(pairs, "--model-arg")


@app.command()
def train(
    log: list[Path] = typer.Option(..., "--log", help="Run directory or trial log (repeatable; one design space)."),
    target: str = typer.Option(..., "--target", help="Metric to model (a logged metric name, or 'reward')."),
    model: str = typer.Option("rf", "--model", help="rf, gbm, mlp or gnn (gnn: DAG spaces such as NAS-Bench-Graph)."),
    cv: int = typer.Option(5, "--cv", help="k-fold cross-validation folds on the training part (0: none)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Held-out fraction scored after training (0: none)."),
    log_target: bool = typer.Option(False, "--log-target", help="Model log(target) (positive metrics: cycles, latency)."),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="full, dag, onehot, index or unit (default: dag "
                                                                       "for DAG spaces, else full)."),
    model_arg: Optional[list[str]] = typer.Option(None, "--model-arg", help="Model hyperparameter k=v (repeatable)."),
    run_id: Optional[list[str]] = typer.Option(None, "--run-id", help="Only these runs (default: every run)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the folds and the model."),
    out: Optional[Path] = typer.Option(None, "--out", help="Artefact directory (default runs/proxy-<metric>-<model>)."),
    learning_curve: Optional[Path] = typer.Option(None, "--learning-curve", help="Also write a learning-curve PNG."),
) -> None:
    """Train a proxy of one metric from logged runs, report CV and held-out fidelity, and save the artefact."""
    from archgym.proxies.evaluate import learning_curve as curve
    from archgym.proxies.evaluate import plot_learning_curve, train_and_evaluate
    from archgym.proxies.features import load_dataset

    data = load_dataset(log, target, run_id)
    console.print(f"{len(data)} designs from {len(data.sources)} run(s); {data.n_failed} failed trials excluded, "
                  f"{data.n_duplicates} repeated designs merged, {data.n_missing} trials without {target!r}")
    args = _model_args(model_arg)
    proxy, report = train_and_evaluate(data, model, cv, holdout, log_target, seed, args, encoding)
    rows = []
    if "cv" in report:
        rows.append((f"{cv}-fold CV (mean)", {k: v["mean"] for k, v in report["cv"]["summary"].items()}))
        rows.append((f"{cv}-fold CV (std)", {k: v["std"] for k, v in report["cv"]["summary"].items() if k != "n"}))
    if "holdout" in report:
        rows.append((f"held-out {holdout:.0%}", report["holdout"]))
    print_fidelity(rows, f"proxy {model} of {target} ({proxy.encoding} features, {report['n_train']} training samples)")
    if data.env is not None:
        from archgym.registry import make_problem

        sim = make_problem(data.env, **data.env_args).simulator
        if any(m.name == target for m in sim.metrics):
            m = sim.metric(target)
            proxy.meta["metric_info"] = {"name": m.name, "unit": m.unit, "direction": m.direction, "scale": m.scale}
    dest = proxy.save(out or Path("runs") / f"proxy-{target}-{model}")
    (dest / "report.json").write_text(json.dumps(report, indent=1, default=float))
    console.print(f"wrote {dest} (fingerprint {proxy.space.fingerprint()})")
    if learning_curve is not None:
        rows_lc = curve(data, model=model, log_target=log_target, seed=seed, holdout=holdout, model_args=args,
                        encoding=encoding)
        print_fidelity([(f"n_train={r['n_train']:.0f}", r) for r in rows_lc], "learning curve (held-out)")
        console.print(f"wrote {plot_learning_curve(rows_lc, learning_curve, f'{model} proxy of {target}')}")


@app.command("eval")
def evaluate(
    model: Path = typer.Option(..., "--model", help="Proxy artefact directory."),
    log: list[Path] = typer.Option(..., "--log", help="Run directory or trial log to score it on (repeatable)."),
    run_id: Optional[list[str]] = typer.Option(None, "--run-id", help="Only these runs (default: every run)."),
) -> None:
    """Score a trained proxy on other logged runs (another searcher, another seed) of the same design space."""
    from archgym.proxies.evaluate import evaluate_on
    from archgym.proxies.features import load_dataset
    from archgym.proxies.proxy import Proxy, read_manifest

    manifest = read_manifest(model)
    data = load_dataset(log, manifest["metric"], run_id)
    proxy = Proxy.load(model, data.space)
    res = evaluate_on(proxy, data)
    rows = [("all", res["all"])] + ([("not seen in training", res["unseen"])] if "unseen" in res else [])
    print_fidelity(rows, f"proxy {manifest['model']} of {manifest['metric']} on {len(data)} logged designs "
                         f"({res['n_seen_in_training']} were in its training set; {data.n_failed} failed excluded)")


@app.command()
def curve(
    log: list[Path] = typer.Option(..., "--log", help="Run directory or trial log (repeatable)."),
    target: str = typer.Option(..., "--target", help="Metric to model."),
    output: Path = typer.Option(..., "--output", "-o", help="PNG to write."),
    model: str = typer.Option("rf", "--model", help="rf, gbm, mlp or gnn."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Comma-separated training sizes (default: 6 log-spaced)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Held-out fraction every size is scored on."),
    log_target: bool = typer.Option(False, "--log-target", help="Model log(target)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the subsets and the model."),
) -> None:
    """Held-out error against the number of training samples, as a table and a PNG."""
    from archgym.proxies.evaluate import learning_curve as lc
    from archgym.proxies.evaluate import plot_learning_curve
    from archgym.proxies.features import load_dataset

    try:
        size_list = [int(s) for s in sizes.split(",")] if sizes else None
    except ValueError:
        raise ConfigError(f"--sizes expects comma-separated integers, got {sizes!r}") from None
    data = load_dataset(log, target)
    rows = lc(data, size_list, model, log_target, seed, holdout)
    print_fidelity([(f"n_train={r['n_train']:.0f}", r) for r in rows], f"learning curve of {model} on {target}")
    console.print(f"wrote {plot_learning_curve(rows, output, f'{model} proxy of {target}')}")
