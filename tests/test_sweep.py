"""Sweeps (grid of hyperparameters x seeds in one log, resumable) and reports (curves, table, Pareto fronts)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from archgym.cli import app
from archgym.errors import ConfigError
from archgym.log import TrialLog
from archgym.runner import RunSpec, log_path, start_run
from archgym.sweep import SweepSpec, best_so_far, expand_grid, load_groups, parse_grid, run_sweep, write_report

ENV = "archgym/NASBenchGraph-v0"


def test_grid_parsing_and_expansion():
    grid = parse_grid(["population_size=10,20", "sample_size=[3, 5]", "mutation_changes=1"])
    assert grid == {"population_size": [10, 20], "sample_size": [3, 5], "mutation_changes": [1]}
    configs = expand_grid(grid)
    assert len(configs) == 4 and {"population_size": 20, "sample_size": 3, "mutation_changes": 1} in configs
    assert expand_grid({}) == [{}]
    with pytest.raises(ConfigError, match="non-empty list"):
        expand_grid({"a": []})
    with pytest.raises(ConfigError, match="key=v1,v2"):
        parse_grid(["population_size"])


def test_best_so_far_ignores_failures():
    out = best_so_far([None, 1.0, None, 0.5, 2.0])
    assert np.isnan(out[0]) and list(out[1:]) == [1.0, 1.0, 1.0, 2.0]


def test_sweep_runs_every_config_and_seed_once_and_resumes(tmp_path):
    spec = SweepSpec(ENV, "regularized_evolution", {"population_size": [4, 8], "sample_size": [2]}, [0, 1], budget=12)
    ids = run_sweep(spec, tmp_path)
    assert len(set(ids)) == 4
    with TrialLog(log_path(tmp_path), readonly=True) as log:
        assert all(log.count(i) == 12 for i in ids)
        assert sorted((log.run(i)["searcher_args"]["population_size"], log.run(i)["seed"]) for i in ids) == \
            [(4, 0), (4, 1), (8, 0), (8, 1)]
    assert run_sweep(spec, tmp_path) == ids  # nothing is run twice

    # an interrupted run (5 of 12 trials) is completed by re-running the sweep
    other = tmp_path / "interrupted"
    one = SweepSpec(ENV, "ga", {"population_size": [4]}, [3], budget=12)
    with TrialLog(log_path(other)) as log:
        runner = start_run(log, RunSpec(ENV, {}, "ga", {"population_size": 4}, 3, 12))
        runner.budget = 5
        runner.run()
        log.set_status(runner.run_id, "running")
        first = runner.run_id
    assert run_sweep(one, other) == [first]
    with TrialLog(log_path(other), readonly=True) as log:
        assert log.count(first) == 12
    with pytest.raises(ConfigError, match="another env"):
        run_sweep(SweepSpec(ENV, "ga", {}, [0], env_args={"dataset": "citeseer"}, budget=5), tmp_path)


def test_report_curves_table_and_pareto(tmp_path):
    run_sweep(SweepSpec(ENV, "random_walk", {"accept": ["always", "better"]}, [0, 1, 2], budget=15), tmp_path / "so")
    run_sweep(SweepSpec("archgym/NASBenchGraphMO-v0", "ga", {"population_size": [6]}, [0, 1], budget=20),
              tmp_path / "mo")
    groups = load_groups([log_path(tmp_path / "so")])
    assert sorted(g.label for g in groups) == ["random_walk(accept=always)", "random_walk(accept=better)"]
    assert all(len(g.curves) == 3 for g in groups)
    files = write_report([tmp_path / "so", tmp_path / "mo"], tmp_path / "report", title="demo")
    md = files["markdown"].read_text()
    assert "| random_walk(accept=better) @ NASBenchGraph-v0 | 3 | 15 |" in md
    assert "## Pareto front: ga @ NASBenchGraphMO-v0" in md and "| valid_acc | latency | design |" in md
    for key in ("curves", "pareto"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_sweep_and_report(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(app, ["sweep", "--env", ENV, "--searcher", "aco", "--grid", "n_ants=4,8", "--seeds", "2",
                              "--budget", "10", "--searcher-arg", "greediness=0.2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "4 runs" in res.output and (out / "report.md").exists() and (out / "curves.png").exists()
    res = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "aco(n_ants=8)" in (tmp_path / "r" / "report.md").read_text()
    res = runner.invoke(app, ["sweep", "--env", ENV, "--searcher", "aco", "--grid", "n_ants=4", "--seeds", "x,y",
                              "--out", str(out)])
    assert isinstance(res.exception, ConfigError) and "--seeds" in str(res.exception)
    res = runner.invoke(app, ["sweep", "--env", ENV, "--searcher", "aco", "--grid", "colony=4", "--out",
                              str(tmp_path / "bad")])
    assert isinstance(res.exception, ConfigError) and "unknown argument 'colony'" in str(res.exception)
