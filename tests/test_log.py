"""TrialLog: schema, group commits, exports, refusal of foreign files, several writer processes, SIGKILL safety."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from archgym.errors import LogError
from archgym.log import TrialLog


def _record(i: int, status: str = "ok") -> dict:
    return {"design": {"x": i, "op": "gcn"}, "key": f"k{i}", "metrics": {"acc": i / 10} if status == "ok" else None,
            "reward": i / 10 if status == "ok" else None, "status": status,
            "error": None if status == "ok" else "boom", "wall_time": 0.001, "sim_cost": 0.001}


def test_append_flush_and_read_back(tmp_path):
    with TrialLog(tmp_path / "t.sqlite", commit_every=4) as log:
        run = log.start_run(env="e", searcher="random", seed=1, budget=10, searcher_args={"a": 1})
        for i in range(10):
            log.append(run, _record(i, "ok" if i != 3 else "failed"))
        log.flush()
        trials = log.trials(run)
        assert [t["trial_id"] for t in trials] == list(range(10))
        assert trials[3]["status"] == "failed" and trials[3]["reward"] is None
        assert log.count(run) == 10 and log.count(run, "ok") == 9
        assert log.best(run)[0]["trial_id"] == 9
        assert log.run(run)["searcher_args"] == {"a": 1}


def test_export_parquet_and_csv(tmp_path):
    with TrialLog(tmp_path / "t.sqlite") as log:
        run = log.start_run(env="e", searcher="random", seed=0)
        for i in range(5):
            log.append(run, _record(i))
        log.flush()
        pq = log.export(tmp_path / "t.parquet", "parquet")
        csv = log.export(tmp_path / "t.csv", "csv")
        with pytest.raises(LogError, match="allowed: parquet, csv"):
            log.export(tmp_path / "t.xls", "xls")
    df = pd.read_parquet(pq)
    assert list(df["trial_id"]) == list(range(5))
    assert list(df["metric.acc"]) == [i / 10 for i in range(5)]
    assert list(df["design.op"]) == ["gcn"] * 5 and set(df["searcher"]) == {"random"}
    assert len(pd.read_csv(csv)) == 5


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_foreign_and_corrupt_files_are_refused_and_left_intact(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    corrupt = tmp_path / "corrupt.sqlite"
    with TrialLog(corrupt) as log:
        log.start_run(env="e")
    data = bytearray(corrupt.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    corrupt.write_bytes(bytes(data))
    for path, msg in [(text, "not a SQLite database"), (other, "not an archgym trial log"), (corrupt, "corrupt")]:
        before = _digest(path)
        with pytest.raises(LogError, match=msg):
            TrialLog(path)
        assert _digest(path) == before


_WRITER = textwrap.dedent("""
    import sys, time
    from archgym.log import TrialLog
    log = TrialLog(sys.argv[1], commit_every=int(sys.argv[3]))
    for i in range(int(sys.argv[2])):
        log.append("shared", {"design": {"w": sys.argv[4], "i": i}, "key": f"{sys.argv[4]}-{i}",
                              "metrics": {"m": i}, "reward": float(i), "status": "ok"})
        if sys.argv[5] == "slow":
            time.sleep(0.001)
    log.close()
    print("done", flush=True)
""")


def test_several_writer_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    with TrialLog(path) as log:
        log.start_run("shared", env="e")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "300", "7", f"w{k}", "fast"])
             for k in range(3)]
    assert all(p.wait(60) == 0 for p in procs)
    with TrialLog(path, readonly=True) as log:
        trials = log.trials("shared")
    assert [t["trial_id"] for t in trials] == list(range(900))
    assert len({t["key"] for t in trials}) == 900


def test_sigkill_leaves_a_consistent_log(tmp_path):
    path = tmp_path / "killed.sqlite"
    with TrialLog(path) as log:
        log.start_run("shared", env="e")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "100000", "5", "w", "slow"])
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(0.2)
        with TrialLog(path, readonly=True) as log:
            if log.count("shared") > 50:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with TrialLog(path) as log:
        ids = [t["trial_id"] for t in log.trials("shared")]
        assert len(ids) > 50 and ids == list(range(len(ids)))
        assert all(t["design"]["i"] == t["trial_id"] for t in log.trials("shared"))
        log.append("shared", _record(0))
        log.flush()
        assert log.count("shared") == len(ids) + 1
