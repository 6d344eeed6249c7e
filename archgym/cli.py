"""The ``archgym`` command line: list envs and searchers, run and resume searches, inspect and export trial logs.

Every error meant for the user is one line on stderr with exit code 2; heavy libraries load only inside commands.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from archgym.errors import ArchGymError, ConfigError, LogError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="archgym: search neural and hardware architectures on Gymnasium environments.")
log_app = typer.Typer(no_args_is_help=True, help="Work with trial logs.")
app.add_typer(log_app, name="log")
# sub-apps
from archgym import cli_sweep  # noqa: E402
app.command()(cli_sweep.sweep)
app.command()(cli_sweep.report)
from archgym import cli_proxy  # noqa: E402
app.add_typer(cli_proxy.app, name="proxy")

console = Console()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def resolve_log(run: Path) -> Path:
    """A RUN argument is a run directory (holding trials.sqlite) or a log file."""
    from archgym.runner import log_path

    path = log_path(run) if run.is_dir() else run
    if not path.exists():
        raise LogError(f"no trial log at {path} (give a run directory or a .sqlite log)")
    return path


@app.command()
def envs(details: bool = typer.Option(False, "--details", help="Also list every parameter and metric.")) -> None:
    """List the registered environments with their design spaces and metrics."""
    from archgym.registry import ENVS, make_problem

    table = Table(show_lines=True)
    table.add_column("env id", no_wrap=True)
    table.add_column("description", ratio=3)
    table.add_column("space", ratio=2)
    table.add_column("metrics", ratio=2, overflow="fold")
    for env_id, entry in sorted(ENVS.items()):
        try:
            problem = make_problem(env_id)
            space = problem.space
            size = space.cardinality()
            sp = f"{len(space)} params, up to {size:.3g} designs" if size != float("inf") else f"{len(space)} params (continuous)"
            if details:
                sp += "\n" + "\n".join(space.describe())
            metrics = ", ".join(f"{m.name}[{m.unit}]{'*' if m.report_only else ''}" for m in problem.simulator.metrics)
        except ArchGymError as exc:
            sp, metrics = f"unavailable: {exc}", ""
        table.add_row(env_id, entry.description, sp, metrics)
    console.print(table)
    console.print("* report-only metric (logged, never optimised).  Arguments: --env-arg k=v")


@app.command()
def searchers() -> None:
    """List the registered searchers with their hyperparameters and defaults."""
    from archgym.registry import SEARCHERS, searcher_class

    table = Table(show_lines=True)
    table.add_column("searcher", no_wrap=True)
    table.add_column("description", ratio=1)
    table.add_column("hyperparameters (default)", ratio=2, overflow="fold")
    for name in sorted(SEARCHERS):
        try:
            cls = searcher_class(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            hp = "\n".join(f"{k}={v!r}: {cls.hyperparameter_doc.get(k, '')}" for k, v in cls.hyperparameters().items())
        except ArchGymError as exc:
            doc, hp = f"unavailable: {exc}", ""
        table.add_row(name, doc, hp)
    console.print(table)


def _default_out(env: str, searcher: str, seed: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{env.split('/')[-1]}-{searcher}-s{seed}-{stamp}"


def run_with_progress(runner: Any, resume: bool) -> int:
    """Run a LocalRunner with a progress bar showing evaluations/s and the best reward so far."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    best = [max((t["reward"] for t in runner.log.iter_ok(runner.run_id) if t["reward"] is not None), default=None)]
    start = time.monotonic()
    first = [None]
    with Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]} eval/s  best {task.fields[best]}"), console=console,
                  transient=False) as bar:
        task = bar.add_task("search", total=runner.budget, rate="-", best="-")

        def update(done: int, results: list) -> None:
            if first[0] is None:
                first[0] = done - len(results)
            for r in results:
                if r.ok and (best[0] is None or r.reward > best[0]):
                    best[0] = r.reward
            rate = (done - first[0]) / max(time.monotonic() - start, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:,.0f}", best=_fmt(best[0]) if best[0] is not None else "-")

        return runner.run(progress=update, resume=resume)


def print_best(log: Any, run_id: str, k: int = 5) -> None:
    """A table of the best designs of a run with their metrics."""
    best = log.best(run_id, k)
    run = log.run(run_id)
    n_ok, n_all = log.count(run_id, "ok"), log.count(run_id)
    console.print(f"run [bold]{run_id}[/] env {run['env']} searcher {run['searcher']} seed {run['seed']}: "
                  f"{n_all} trials ({n_all - n_ok} failed), status {run['status']}")
    if not best:
        console.print("no successful trial yet")
        return
    metric_names = list(best[0]["metrics"])
    table = Table("rank", "trial", "reward", *metric_names)
    for i, t in enumerate(best, 1):
        table.add_row(str(i), str(t["trial_id"]), _fmt(t["reward"]), *(_fmt(t["metrics"][m]) for m in metric_names))
    console.print(table)
    for i, t in enumerate(best, 1):
        console.print(f"#{i}: " + ", ".join(f"{k}={v}" for k, v in t["design"].items()), soft_wrap=True)


@app.command()
def search(
    env: Optional[str] = typer.Option(None, "--env", help="Registered env id (see `archgym envs`)."),
    env_arg: Optional[list[str]] = typer.Option(None, "--env-arg", help="Env argument k=v (repeatable)."),
    searcher: str = typer.Option("random", "--searcher", help="Searcher name (see `archgym searchers`)."),
    searcher_arg: Optional[list[str]] = typer.Option(None, "--searcher-arg", help="Searcher hyperparameter k=v."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Evaluations to run (default 100 unless --time-budget)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Wall-clock seconds to search."),
    batch_size: int = typer.Option(1, "--batch-size", help="Designs asked and evaluated per batch."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice of the searcher."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/<env>-<searcher>-s<seed>-<time>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its log."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Per-evaluation time limit in seconds."),
    backend: str = typer.Option("local", "--backend", help="local (in-process) or ray."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray: cluster address (auto or HOST:PORT); default: start a local Ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Ray: concurrent trials (default: cluster CPUs / --cpus-per-trial)."),
    cpus_per_trial: Optional[float] = typer.Option(None, "--cpus-per-trial", help="Ray: CPUs per trial (default 1)."),
    gpus_per_trial: Optional[float] = typer.Option(None, "--gpus-per-trial", help="Ray: GPUs per trial (default 0)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Ray: fifo (default) or asha (stop weak training runs early)."),
    designs_per_trial: Optional[int] = typer.Option(None, "--designs-per-trial", help="Ray: designs per Tune trial (default: sized from the simulator's cost)."),
    top: int = typer.Option(5, "--top", help="How many best designs to print."),
    simulator: Optional[str] = typer.Option(None, "--simulator", help="Replace the env's simulator: proxy:PATH "
                                                                       "(a trained proxy artefact; kept on --resume)."),
) -> None:
    """Run a search (or resume one with --resume --out DIR) and print the best designs found."""
    from archgym.log import TrialLog
    from archgym.runner import RunSpec, log_path, prepare, reopen_run, start_run

    if backend not in ("local", "ray"):
        raise ConfigError(f"backend {backend!r} is not allowed; allowed: local, ray")
    ray_options = dict(address=address, workers=workers, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                       scheduler=scheduler, designs_per_trial=designs_per_trial)
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out DIR, the run directory to continue")
        with TrialLog(resolve_log(out)) as log:
            run_ids = log.run_ids()
            if not run_ids:
                raise LogError(f"{out} holds no run to resume")
            for run_id in run_ids:
                if log.run(run_id)["status"] == "finished":
                    continue
                if backend == "ray" or (log.run(run_id)["meta"] or {}).get("backend") == "ray":
                    from archgym.ray_runner import resume_run_ray

                    resume_run_ray(log, run_id, out, timeout=timeout, **ray_options)
                    continue
                runner = reopen_run(log, run_id, timeout=timeout)
                from archgym.proxies.serve import resume_override

                runner = resume_override(runner, log.run(run_id), simulator)
                run_with_progress(runner, resume=True)
            for run_id in run_ids:
                print_best(log, run_id, top)
        return
    if env is None:
        raise ConfigError("--env is required (see `archgym envs`)")
    from archgym.registry import parse_kv

    spec = RunSpec(env, parse_kv(env_arg, "--env-arg"), searcher, parse_kv(searcher_arg, "--searcher-arg"), seed,
                   budget if budget is not None or time_budget is not None else 100, time_budget, batch_size)
    out = out or _default_out(env, searcher, seed)
    if log_path(out).exists():
        with TrialLog(log_path(out)) as existing:
            if existing.run_ids():
                raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    prepared = prepare(spec)
    if simulator is not None:
        from archgym.proxies.serve import apply_simulator_override

        prepared = (apply_simulator_override(prepared[0], simulator), prepared[1])
    if backend == "ray":
        from archgym.ray_runner import run_search_ray

        run_id = run_search_ray(spec, out, prepared, timeout=timeout, **ray_options)
        with TrialLog(log_path(out)) as log:
            print_best(log, run_id, top)
        return
    with TrialLog(log_path(out)) as log:
        runner = start_run(log, spec, prepared, timeout=timeout)
        console.print(f"run {runner.run_id} -> {log_path(out)}")
        run_with_progress(runner, resume=False)
        print_best(log, runner.run_id, top)


@app.command()
def show(run: Path = typer.Argument(..., help="Run directory or trial log file."),
         top: int = typer.Option(5, "--top", help="How many best designs per run.")) -> None:
    """Show the runs in a trial log with their best designs."""
    from archgym.log import TrialLog

    with TrialLog(resolve_log(run), readonly=True) as log:
        ids = log.run_ids()
        if not ids:
            console.print("the log holds no run")
        for run_id in ids:
            print_best(log, run_id, top)


@log_app.command("export")
def log_export(
    run: Path = typer.Argument(..., help="Run directory or trial log file."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Destination file (default beside the log)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Only this run (default: all runs in the log)."),
) -> None:
    """Export trials (one row each, design and metrics flattened) to Parquet or CSV."""
    from archgym.log import TrialLog

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format {fmt!r} is not allowed; allowed: parquet, csv")
    path = resolve_log(run)
    with TrialLog(path, readonly=True) as log:
        if run_id is not None:
            log.run(run_id)
        dest = log.export(output or path.with_suffix(f".{fmt}"), fmt, run_id)
    console.print(f"wrote {dest}")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False)
    except ArchGymError as exc:
        print(f"archgym: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("archgym: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
