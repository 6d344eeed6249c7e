"""Sweeps and reports: ArchGym's "hyperparameter lottery" as a grid of searcher hyperparameters x seeds on one env,
all in one run directory (one trial log), and a report over any set of run directories: best-so-far curves (median
and quartiles across seeds) as PNG and Markdown, plus the Pareto front of multi-objective runs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archgym.errors import ConfigError, LogError
from archgym.log import TrialLog
from archgym.objective import pareto_front
from archgym.runner import RunSpec, log_path, prepare, reopen_run, start_run


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed hyperparameter values (one empty config for an empty grid)."""
    for k, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"sweep grid: {k!r} needs a non-empty list of values, got {values!r}")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def parse_grid(pairs: Sequence[str] | None) -> dict[str, list[Any]]:
    """``k=v1,v2,...`` pairs (values parsed as JSON where they parse) into a grid; a JSON list also works."""
    from archgym.registry import parse_value

    grid: dict[str, list[Any]] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grid expects key=v1,v2,..., got {pair!r}")
        text = text.strip()
        value = parse_value(text) if text.startswith("[") else [parse_value(v.strip()) for v in text.split(",")]
        grid[key.strip()] = value if isinstance(value, list) else [value]
    return grid


@dataclass
class SweepSpec:
    """One searcher on one env: every point of ``grid`` runs once per seed with the same budget."""

    env: str
    searcher: str
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    env_args: dict[str, Any] = field(default_factory=dict)
    budget: int = 100
    batch_size: int = 1

    def runs(self) -> list[RunSpec]:
        if not self.seeds:
            raise ConfigError("sweep: give at least one seed")
        return [RunSpec(self.env, dict(self.env_args), self.searcher, cfg, seed, self.budget, None, self.batch_size)
                for cfg in expand_grid(self.grid) for seed in self.seeds]


def _identity(searcher: str, config: Mapping[str, Any], seed: int) -> str:
    return json.dumps([searcher, dict(config), seed], sort_keys=True, default=str)


def run_sweep(spec: SweepSpec, out: Path, timeout: float | None = None,
              progress: Callable[[int, int, RunSpec], None] | None = None) -> list[str]:
    """Run every (hyperparameters, seed) of ``spec`` into ``out``'s trial log; finished runs are skipped and an
    interrupted one is resumed, so re-running the same command completes a sweep. Returns the run ids."""
    runs = spec.runs()
    prepared = [prepare(r) for r in runs]  # validates every configuration before anything is written
    out.mkdir(parents=True, exist_ok=True)
    ids = []
    with TrialLog(log_path(out)) as log:
        existing = {}
        for run_id in log.run_ids():
            r = log.run(run_id)
            if r["env"] != spec.env or (r["env_args"] or {}) != spec.env_args:
                raise ConfigError(f"{out} holds runs of another env ({r['env']} {r['env_args']}); use another --out")
            existing[_identity(r["searcher"], r["searcher_args"] or {}, r["seed"])] = run_id
        for i, (rs, (problem, searcher)) in enumerate(zip(runs, prepared)):
            if progress is not None:
                progress(i, len(runs), rs)
            run_id = existing.get(_identity(rs.searcher, searcher.config(), rs.seed))
            if run_id is None:
                runner = start_run(log, rs, (problem, searcher), timeout=timeout)
                runner.run()
                run_id = runner.run_id
            elif log.run(run_id)["status"] != "finished":
                reopen_run(log, run_id, timeout=timeout).run(resume=True)
            ids.append(run_id)
    return ids


# ------------------------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class Group:
    """Runs that differ only in their seed: one curve (median and quartiles) in a report."""

    env: str
    env_args: dict[str, Any]
    searcher: str
    config: dict[str, Any]
    objective: dict[str, Any]
    curves: list[np.ndarray] = field(default_factory=list)  # best-so-far reward per trial, one per seed
    seeds: list[int] = field(default_factory=list)
    points: list[tuple[list[float], dict[str, float], dict[str, Any]]] = field(default_factory=list)
    label: str = ""


def best_so_far(rewards: Sequence[float | None]) -> np.ndarray:
    """Running maximum of the rewards; failed trials (None) do not improve it (NaN before the first success)."""
    out = np.full(len(rewards), np.nan)
    best = -np.inf
    for i, r in enumerate(rewards):
        if r is not None and r > best:
            best = r
        out[i] = best if best > -np.inf else np.nan
    return out


def load_groups(logs: Sequence[Path]) -> list[Group]:
    """Read every run of the given trial logs and group the runs that differ only by seed."""
    groups: dict[str, Group] = {}
    for path in logs:
        with TrialLog(path, readonly=True) as log:
            for run_id in log.run_ids():
                run = log.run(run_id)
                key = json.dumps([run["env"], run["env_args"], run["searcher"], run["searcher_args"]], sort_keys=True,
                                 default=str)
                g = groups.setdefault(key, Group(run["env"] or "", run["env_args"] or {}, run["searcher"] or "",
                                                 run["searcher_args"] or {}, run["objective"] or {}))
                trials = log.trials(run_id)
                if not trials:
                    continue
                g.curves.append(best_so_far([t["reward"] for t in trials]))
                g.seeds.append(run["seed"])
                g.points += [(t["rewards"], t["metrics"], t["design"]) for t in trials
                             if t["status"] == "ok" and t["rewards"] is not None]
    out = [g for g in groups.values() if g.curves]
    if not out:
        raise LogError("no trials in the given runs")
    _label(out)
    return out


def _label(groups: list[Group]) -> None:
    """Name each group by its searcher and the hyperparameters that differ between groups (plus env if mixed)."""
    varying = {k for g in groups for h in groups if g.searcher == h.searcher
               for k in set(g.config) | set(h.config) if g.config.get(k) != h.config.get(k)}
    envs = {json.dumps([g.env, g.env_args], sort_keys=True) for g in groups}
    for g in groups:
        parts = [f"{k}={g.config[k]}" for k in sorted(varying) if k in g.config]
        env = f" @ {g.env.split('/')[-1]}{g.env_args or ''}" if len(envs) > 1 else ""
        g.label = g.searcher + (f"({', '.join(parts)})" if parts else "") + env


def summarise(g: Group) -> dict[str, Any]:
    """Median and quartiles of the final best reward across seeds, and the median best-so-far curve."""
    length = max(len(c) for c in g.curves)
    padded = np.array([np.concatenate([c, np.full(length - len(c), c[-1])]) for c in g.curves])
    finals = padded[:, -1]
    with np.errstate(all="ignore"):
        q1, med, q3 = (np.nanpercentile(padded, q, axis=0) for q in (25, 50, 75))
    return {"label": g.label, "seeds": len(g.curves), "trials": length, "median": float(np.nanmedian(finals)),
            "q1": float(np.nanpercentile(finals, 25)), "q3": float(np.nanpercentile(finals, 75)),
            "curve_median": med, "curve_q1": q1, "curve_q3": q3}


def _front_table(g: Group) -> tuple[list[str], list[list[Any]]]:
    pts = np.array([p[0] for p in g.points], dtype=float)
    idx = pareto_front(pts)
    names = list(g.objective.get("metrics") or [f"reward{i}" for i in range(pts.shape[1])])
    rows = []
    for i in sorted(idx, key=lambda i: -pts[i][0]):
        rewards, metrics, design = g.points[i]
        rows.append([*(metrics.get(n, r) if metrics else r for n, r in zip(names, rewards)), json.dumps(design)])
    return names, rows


def write_report(runs: Sequence[Path], out: Path, title: str | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``curves.png`` and (for multi-objective runs) ``pareto.png`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from archgym.cli import resolve_log

    groups = load_groups([resolve_log(Path(r)) for r in runs])
    out.mkdir(parents=True, exist_ok=True)
    stats = [summarise(g) for g in groups]
    order = sorted(range(len(groups)), key=lambda i: -stats[i]["median"])
    files = {"markdown": out / "report.md", "curves": out / "curves.png"}

    fig, ax = plt.subplots(figsize=(8, 5))
    for i in order:
        s = stats[i]
        x = np.arange(1, s["trials"] + 1)
        (line,) = ax.plot(x, s["curve_median"], label=f"{s['label']} (n={s['seeds']})")
        ax.fill_between(x, s["curve_q1"], s["curve_q3"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best reward so far (median, quartiles shaded)")
    ax.set_title(title or f"{groups[0].env} {groups[0].env_args or ''}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(files["curves"], dpi=120)
    plt.close(fig)

    lines = [f"# {title or 'archgym report'}", "", f"Runs: {', '.join(str(r) for r in runs)}", "",
             "| searcher | seeds | evaluations | best reward: median | q1 | q3 |", "|---|---|---|---|---|---|"]
    for i in order:
        s = stats[i]
        lines.append(f"| {s['label']} | {s['seeds']} | {s['trials']} | {s['median']:.6g} | {s['q1']:.6g} | "
                     f"{s['q3']:.6g} |")
    lines += ["", "![best-so-far curves](curves.png)", ""]

    multi = [g for g in groups if g.points and len(g.points[0][0]) >= 2]
    if multi:
        files["pareto"] = out / "pareto.png"
        fig, ax = plt.subplots(figsize=(7, 5))
        for g in multi:
            names, rows = _front_table(g)
            pts = np.array([p[0] for p in g.points], dtype=float)
            sc = ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.25)
            front = pts[pareto_front(pts)]
            front = front[np.argsort(front[:, 0])]
            ax.step(front[:, 0], front[:, 1], where="post", color=sc.get_facecolor()[0], alpha=1.0, label=g.label)
            lines += [f"## Pareto front: {g.label} ({len(rows)} designs)", "",
                      "| " + " | ".join(names) + " | design |", "|" + "---|" * (len(names) + 1)]
            lines += ["| " + " | ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + " |"
                      for row in rows]
            lines.append("")
        names = list(multi[0].objective.get("metrics") or ["reward 0", "reward 1"])
        ax.set_xlabel(f"{names[0]} (signed: higher is better)")
        ax.set_ylabel(f"{names[1]} (signed: higher is better)")
        ax.set_title("Pareto fronts (all successful designs shown faintly)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(files["pareto"], dpi=120)
        plt.close(fig)
        lines += ["![Pareto fronts](pareto.png)", ""]
    files["markdown"].write_text("\n".join(lines))
    return files
