"""Local runner and CLI: exact resume after SIGKILL, reproducibility, one-line errors with exit code 2, lazy imports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from archgym.log import TrialLog
from archgym.runner import RunSpec, log_path, reopen_run, start_run

ENV = "archgym/NASBenchGraph-v0"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archgym", *args], capture_output=True, text=True, timeout=timeout)


def _designs(path, run_id=None):
    with TrialLog(path, readonly=True) as log:
        run_id = run_id or log.run_ids()[0]
        return [t["design"] for t in log.trials(run_id)]


def test_same_seed_same_trials_and_resume_continues_sequence(tmp_path):
    spec = RunSpec(ENV, {"dataset": "citeseer"}, "random", {}, seed=7, budget=60, batch_size=4)
    with TrialLog(tmp_path / "a.sqlite") as log:
        start_run(log, spec).run()
    with TrialLog(tmp_path / "b.sqlite") as log:
        start_run(log, spec).run()
    assert _designs(tmp_path / "a.sqlite") == _designs(tmp_path / "b.sqlite")
    # stop after 5 batches, then resume from the log in a fresh runner
    with TrialLog(tmp_path / "c.sqlite") as log:
        runner = start_run(log, RunSpec(ENV, {"dataset": "citeseer"}, "random", {}, seed=7, budget=20, batch_size=4))
        runner.run()
        log._db.execute("UPDATE runs SET budget=60, status='running'")
        reopen_run(log, runner.run_id).run(resume=True)
    assert _designs(tmp_path / "c.sqlite") == _designs(tmp_path / "a.sqlite")


def test_sigkill_then_resume_gives_exactly_the_budget(tmp_path):
    out = tmp_path / "run"
    budget = 3000
    args = ["search", "--env", ENV, "--budget", str(budget), "--seed", "3", "--batch-size", "4", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "archgym", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = 0
    deadline = time.time() + 60
    while time.time() < deadline and done < 300:
        time.sleep(0.1)
        if log_path(out).exists():
            try:
                with TrialLog(log_path(out), readonly=True) as log:
                    ids = log.run_ids()
                    done = log.count(ids[0]) if ids else 0
            except Exception:  # noqa: BLE001 - the log may be mid-creation
                done = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with TrialLog(log_path(out), readonly=True) as log:
        killed_at = log.count(log.run_ids()[0])
    assert 0 < killed_at < budget, "the search must be killed mid-run"
    res = _cli("search", "--resume", "--out", str(out))
    assert res.returncode == 0, res.stderr
    designs = _designs(log_path(out))
    assert len(designs) == budget
    with TrialLog(log_path(out), readonly=True) as log:
        run = log.run_ids()[0]
        assert [t["trial_id"] for t in log.trials(run)] == list(range(budget))
        assert log.run(run)["status"] == "finished"
    # the same seed, uninterrupted, proposes exactly the same trials
    with TrialLog(tmp_path / "ref.sqlite") as log:
        start_run(log, RunSpec(ENV, {}, "random", {}, seed=3, budget=budget, batch_size=4)).run()
    assert designs == _designs(tmp_path / "ref.sqlite")


@pytest.mark.parametrize("args, message", [
    (["search", "--env", "archgym/Nope-v0"], "unknown env 'archgym/Nope-v0'; registered:"),
    (["search", "--env", ENV, "--budget", "0"], "budget must be a positive"),
    (["search", "--env", ENV, "--budget", "-3"], "budget must be a positive"),
    (["search", "--env", ENV, "--env-arg", "colour=red"], "unknown argument 'colour'; allowed: dataset"),
    (["search", "--env", ENV, "--env-arg", "dataset=imagenet"], "dataset 'imagenet' is not in NAS-Bench-Graph"),
    (["search", "--env", ENV, "--searcher", "magic"], "unknown searcher 'magic'"),
    (["search", "--env", ENV, "--searcher-arg", "dedupe"], "expects key=value"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    res = _cli(*args, "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not log_path(tmp_path / "r").exists()


def test_corrupt_or_foreign_log_is_refused_and_left_intact(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    log_path(out).write_bytes(b"not a database at all\n" * 10)
    before = log_path(out).read_bytes()
    for args in (["show", str(out)], ["search", "--resume", "--out", str(out)],
                 ["search", "--env", ENV, "--out", str(out)], ["log", "export", str(out)]):
        res = _cli(*args)
        assert res.returncode == 2 and "not an archgym trial log" in res.stderr and "Traceback" not in res.stderr
    assert log_path(out).read_bytes() == before


def test_existing_run_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    assert _cli("search", "--env", ENV, "--budget", "20", "--out", str(out)).returncode == 0
    res = _cli("search", "--env", ENV, "--budget", "20", "--out", str(out))
    assert res.returncode == 2 and "already holds a run" in res.stderr
    assert len(_designs(log_path(out))) == 20


def test_search_show_export_end_to_end(tmp_path):
    out = tmp_path / "run"
    res = _cli("search", "--env", ENV, "--budget", "50", "--seed", "1", "--out", str(out), "--top", "3")
    assert res.returncode == 0, res.stderr
    assert "valid_acc" in res.stdout and "#1:" in res.stdout
    assert _cli("show", str(out)).returncode == 0
    res = _cli("log", "export", str(out), "--format", "csv", "-o", str(tmp_path / "t.csv"))
    assert res.returncode == 0
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "t.csv")) == 50
    assert _cli("log", "export", str(out), "--format", "xlsx").returncode == 2


def test_import_is_lazy():
    code = ("import sys, archgym, archgym.cli; heavy = ['torch', 'ray', 'sklearn', 'scalesim', 'zigzag', "
            "'torch_geometric', 'optuna', 'nni', 'stable_baselines3', 'pandas', 'matplotlib']; "
            "print([m for m in heavy if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr
    assert _cli("--help").returncode == 0


def test_time_budget_stops_the_run(tmp_path):
    with TrialLog(tmp_path / "t.sqlite") as log:
        runner = start_run(log, RunSpec(ENV, {}, "random", {}, seed=0, budget=None, time_budget=0.5))
        n = runner.run()
        assert 0 < n < 26206 and log.run(runner.run_id)["status"] == "finished"


@pytest.mark.parametrize("drop", [0, 2])
def test_resume_replays_batches_logged_after_the_last_checkpoint(tmp_path, drop):
    """No checkpoint mid-run (and, with ``drop``, the last batch only partly logged): resume replays the log."""
    ref_spec = RunSpec(ENV, {}, "regularized_evolution", {}, seed=5, budget=60, batch_size=4)
    with TrialLog(tmp_path / "ref.sqlite") as log:
        start_run(log, ref_spec).run()
    with TrialLog(tmp_path / "cut.sqlite") as log:
        runner = start_run(log, RunSpec(ENV, {}, "regularized_evolution", {}, seed=5, budget=24, batch_size=4))
        runner.checkpoint_every = float("inf")
        runner.run()
        log._db.execute("UPDATE runs SET budget=60, status='running', state=NULL, state_trials=0")
        log._db.execute("DELETE FROM trials WHERE trial_id >= ?", (24 - drop,))
        assert reopen_run(log, runner.run_id).run(resume=True) == 60
    assert _designs(tmp_path / "cut.sqlite") == _designs(tmp_path / "ref.sqlite")


def test_resume_refuses_a_log_the_searcher_does_not_replay(tmp_path):
    from archgym.errors import LogError

    with TrialLog(tmp_path / "t.sqlite") as log:
        runner = start_run(log, RunSpec(ENV, {}, "random", {}, seed=1, budget=8, batch_size=4))
        runner.checkpoint_every = float("inf")
        runner.run()
        log._db.execute("UPDATE runs SET budget=12, status='running', state=NULL, state_trials=0, seed=2")
        with pytest.raises(LogError, match="did not replay trial 0"):
            reopen_run(log, runner.run_id).run(resume=True)
