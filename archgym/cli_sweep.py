"""``archgym sweep`` (a grid of searcher hyperparameters x seeds on one env, into one run directory) and
``archgym report`` (best-so-far curves, a Markdown table and Pareto fronts over run directories)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def sweep(
    env: str = typer.Option(..., "--env", help="Registered env id (see `archgym envs`)."),
    searcher: str = typer.Option(..., "--searcher", help="Searcher name (see `archgym searchers`)."),
    grid: Optional[list[str]] = typer.Option(None, "--grid", help="Hyperparameter values k=v1,v2,... (repeatable)."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds: a count N (0..N-1) or a list like 0,1,5."),
    env_arg: Optional[list[str]] = typer.Option(None, "--env-arg", help="Env argument k=v (repeatable)."),
    searcher_arg: Optional[list[str]] = typer.Option(None, "--searcher-arg", help="Fixed hyperparameter k=v."),
    budget: int = typer.Option(100, "--budget", help="Evaluations per run."),
    batch_size: int = typer.Option(1, "--batch-size", help="Designs asked and evaluated per batch."),
    out: Path = typer.Option(..., "--out", help="Run directory (re-running the command completes a sweep)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Per-evaluation time limit in seconds."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the report into --out when done."),
) -> None:
    """Run a grid of searcher hyperparameters x seeds on one env, all runs in one trial log."""
    from rich.console import Console

    from archgym.errors import ConfigError
    from archgym.registry import parse_kv
    from archgym.sweep import SweepSpec, parse_grid, run_sweep, write_report

    console = Console()
    text = seeds.strip()
    try:
        seed_list = list(range(int(text))) if "," not in text else [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects a count or a comma-separated list of integers, got {seeds!r}") from None
    g = parse_grid(grid)
    fixed = parse_kv(searcher_arg, "--searcher-arg")
    for k in fixed:
        if k in g:
            raise ConfigError(f"hyperparameter {k!r} is given both in --grid and --searcher-arg")
    g.update({k: [v] for k, v in fixed.items()})
    spec = SweepSpec(env, searcher, g, seed_list, parse_kv(env_arg, "--env-arg"), budget, batch_size)

    def progress(i: int, n: int, rs) -> None:
        console.print(f"[{i + 1}/{n}] {rs.searcher} {rs.searcher_args} seed {rs.seed}")

    ids = run_sweep(spec, out, timeout=timeout, progress=progress)
    console.print(f"{len(ids)} runs in {out / 'trials.sqlite'}")
    if report:
        files = write_report([out], out)
        console.print("report: " + ", ".join(str(p) for p in files.values()))


def report(
    runs: list[Path] = typer.Argument(..., help="Run directories or trial logs (their runs are grouped by config)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write report.md and the PNGs (default: first RUN)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the report and plot."),
) -> None:
    """Best-so-far curves (median and quartiles across seeds) as PNG and Markdown, plus Pareto fronts."""
    from rich.console import Console

    from archgym.sweep import write_report

    dest = out or (runs[0] if runs[0].is_dir() else runs[0].parent)
    files = write_report(runs, dest, title)
    Console().print("\n".join(f"{k}: {v}" for k, v in files.items()))
