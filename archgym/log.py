"""TrialLog: the durable, append-only record of every evaluation, in one SQLite file (WAL mode).

One schema for every run. Records are buffered and committed in groups; a committed record survives SIGKILL, and
several processes may append to one log at once (SQLite's locking serialises their commits). A run's searcher state
is checkpointed in the same transaction as the trials it has seen, which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from archgym.errors import LogError

APPLICATION_ID = 0x41524759  # "ARGY": marks a SQLite file as an archgym trial log
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    env TEXT, env_args TEXT, simulator TEXT, searcher TEXT, searcher_args TEXT,
    seed INTEGER, budget INTEGER, time_budget REAL, batch_size INTEGER,
    space TEXT, fingerprint TEXT, objective TEXT, meta TEXT,
    state TEXT, state_trials INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS trials (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    trial_id INTEGER NOT NULL,
    design TEXT NOT NULL,
    key TEXT NOT NULL,
    metrics TEXT,
    reward REAL,
    rewards TEXT,
    status TEXT NOT NULL,
    error TEXT,
    fidelity REAL,
    wall_time REAL,
    sim_cost REAL,
    cached INTEGER NOT NULL DEFAULT 0,
    timestamp REAL NOT NULL,
    worker TEXT,
    PRIMARY KEY (run_id, trial_id)
);
CREATE INDEX IF NOT EXISTS trials_key ON trials(run_id, key);
"""

RUN_FIELDS = ("env", "env_args", "simulator", "searcher", "searcher_args", "seed", "budget", "time_budget",
              "batch_size", "space", "fingerprint", "objective", "meta")
_JSON_RUN_FIELDS = {"env_args", "searcher_args", "space", "objective", "meta", "state"}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True, default=json_default)


def json_default(obj: Any) -> Any:
    """JSON for numpy scalars and arrays (``json.dumps(..., default=json_default)``)."""
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def check_log_file(path: Path) -> None:
    """Refuse, without writing, a file that is not a SQLite database (the schema is checked once connected)."""
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head and head != _SQLITE_MAGIC:
        raise LogError(f"{path} is not an archgym trial log (not a SQLite database)")


class TrialLog:
    """Append-only trial log. ``commit_every`` records or ``commit_interval`` seconds trigger a group commit while
    ``autoflush`` is on; runners switch it off and commit each batch together with their searcher's checkpoint."""

    def __init__(self, path: str | os.PathLike, commit_every: int = 256, commit_interval: float = 0.5,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.autoflush = True
        self._buffer: list[tuple[str, dict[str, Any], Any]] = []
        self._last_commit = time.monotonic()
        if self.path.exists():
            check_log_file(self.path)
        elif readonly:
            raise LogError(f"no trial log at {self.path}")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            uri = f"{self.path.resolve().as_uri()}?mode=ro" if readonly else str(self.path)
            self._db = sqlite3.connect(uri, uri=readonly, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=60000")
            if not readonly:
                self._init_schema()
            else:
                self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise LogError(f"{self.path} is corrupt or not an archgym trial log ({exc})") from None

    # -- schema ------------------------------------------------------------------------------------------------

    def _init_schema(self) -> None:
        db = self._db
        app = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app != APPLICATION_ID and (app != 0 or tables):
            raise LogError(f"{self.path} is a SQLite database but not an archgym trial log")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if not tables:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("PRAGMA application_id").fetchone()[0] == 0:  # another process may have won the race
                    for stmt in _SCHEMA.strip().split(";"):
                        if stmt.strip():
                            db.execute(stmt)
                    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.checkpoint_wal()
        self._check_schema()

    def checkpoint_wal(self) -> None:
        """Copy the write-ahead log into the main file, so the file alone (header included) holds every commit."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _check_schema(self) -> None:
        app = self._db.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise LogError(f"{self.path} is a SQLite database but not an archgym trial log")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise LogError(f"{self.path} has trial-log schema version {version}; this archgym reads version {SCHEMA_VERSION}")

    # -- runs --------------------------------------------------------------------------------------------------

    def start_run(self, run_id: str | None = None, **config: Any) -> str:
        """Register a run and its configuration; returns its id (a new short uuid unless given)."""
        unknown = set(config) - set(RUN_FIELDS)
        if unknown:
            raise LogError(f"unknown run fields {sorted(unknown)}; allowed: {', '.join(RUN_FIELDS)}")
        run_id = run_id or uuid.uuid4().hex[:12]
        values = [config.get(f) for f in RUN_FIELDS]
        values = [_dumps(v) if f in _JSON_RUN_FIELDS and v is not None else v for f, v in zip(RUN_FIELDS, values)]
        self._db.execute(
            f"INSERT INTO runs (run_id, created, {', '.join(RUN_FIELDS)}) VALUES (?, ?{', ?' * len(RUN_FIELDS)})",
            [run_id, time.time(), *values],
        )
        return run_id

    def has_run(self, run_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is not None

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's configuration and status (JSON fields decoded)."""
        cur = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise LogError(f"run {run_id!r} is not in {self.path}; runs: {', '.join(self.run_ids()) or 'none'}")
        out = dict(zip([c[0] for c in cur.description], row))
        for f in _JSON_RUN_FIELDS:
            if out.get(f) is not None:
                out[f] = json.loads(out[f])
        return out

    def run_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT run_id FROM runs ORDER BY created")]

    def set_status(self, run_id: str, status: str) -> None:
        self.flush()
        self._db.execute("UPDATE runs SET status=? WHERE run_id=?", (status, run_id))

    # -- trials ------------------------------------------------------------------------------------------------

    def append(self, run_id: str, record: Mapping[str, Any], result: Any = None) -> None:
        """Buffer one trial record; ``result`` (optional) gets its ``trial_id`` set when the record is committed."""
        self._buffer.append((run_id, dict(record), result))
        if self.autoflush and (
            len(self._buffer) >= self.commit_every or time.monotonic() - self._last_commit >= self.commit_interval
        ):
            self.flush()

    def flush(self, checkpoint: tuple[str, Any] | None = None) -> None:
        """Commit buffered records (and optionally a run's searcher state) in one transaction."""
        if not self._buffer and checkpoint is None:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            next_id: dict[str, int] = {}
            rows = []
            for run_id, rec, result in self._buffer:
                if run_id not in next_id:
                    next_id[run_id] = db.execute(
                        "SELECT COALESCE(MAX(trial_id) + 1, 0) FROM trials WHERE run_id=?", (run_id,)
                    ).fetchone()[0]
                tid = next_id[run_id]
                next_id[run_id] = tid + 1
                if result is not None:
                    result.trial_id = tid
                rows.append((
                    run_id, tid, _dumps(rec["design"]), rec["key"],
                    None if rec.get("metrics") is None else _dumps(rec["metrics"]),
                    rec.get("reward"), None if rec.get("rewards") is None else _dumps(rec["rewards"]),
                    rec["status"], rec.get("error"), rec.get("fidelity"), rec.get("wall_time"), rec.get("sim_cost"),
                    int(bool(rec.get("cached"))), rec.get("timestamp", time.time()), rec.get("worker"),
                ))
            db.executemany("INSERT INTO trials VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            if checkpoint is not None:
                run_id, state = checkpoint
                n = db.execute("SELECT COUNT(*) FROM trials WHERE run_id=?", (run_id,)).fetchone()[0]
                db.execute("UPDATE runs SET state=?, state_trials=? WHERE run_id=?", (_dumps(state), n, run_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._buffer.clear()
        self._last_commit = time.monotonic()

    def count(self, run_id: str, status: str | None = None) -> int:
        if status is None:
            return self._db.execute("SELECT COUNT(*) FROM trials WHERE run_id=?", (run_id,)).fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM trials WHERE run_id=? AND status=?", (run_id, status)).fetchone()[0]

    def trials(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Committed trials (of one run, or all) as dicts with JSON fields decoded, in trial order."""
        sql = "SELECT * FROM trials" + (" WHERE run_id=?" if run_id else "") + " ORDER BY run_id, trial_id"
        cur = self._db.execute(sql, (run_id,) if run_id else ())
        cols = [c[0] for c in cur.description]
        out = []
        for row in cur:
            rec = dict(zip(cols, row))
            for f in ("design", "metrics", "rewards"):
                if rec[f] is not None:
                    rec[f] = json.loads(rec[f])
            rec["cached"] = bool(rec["cached"])
            out.append(rec)
        return out

    def iter_ok(self, run_id: str | None = None) -> Iterable[dict[str, Any]]:
        return (t for t in self.trials(run_id) if t["status"] == "ok")

    def best(self, run_id: str, k: int = 1) -> list[dict[str, Any]]:
        """The ``k`` successful trials with the highest reward (earliest first among ties)."""
        ok = [t for t in self.iter_ok(run_id) if t["reward"] is not None and not math.isnan(t["reward"])]
        return sorted(ok, key=lambda t: (-t["reward"], t["trial_id"]))[:k]

    # -- export ------------------------------------------------------------------------------------------------

    def to_pandas(self, run_id: str | None = None):
        """One row per trial with run configuration joined in; ``design.*`` and ``metric.*`` columns flattened."""
        import pandas as pd

        runs = {r: self.run(r) for r in ([run_id] if run_id else self.run_ids())}
        rows = []
        for t in self.trials(run_id):
            run = runs[t["run_id"]]
            row = {
                "run_id": t["run_id"], "trial_id": t["trial_id"], "env": run["env"], "simulator": run["simulator"],
                "searcher": run["searcher"], "searcher_args": _dumps(run["searcher_args"]), "seed": run["seed"],
                "key": t["key"], "status": t["status"], "error": t["error"], "reward": t["reward"],
                "rewards": None if t["rewards"] is None else _dumps(t["rewards"]), "fidelity": t["fidelity"],
                "wall_time": t["wall_time"], "sim_cost": t["sim_cost"], "cached": t["cached"],
                "timestamp": t["timestamp"], "worker": t["worker"], "design": _dumps(t["design"]),
            }
            row.update({f"design.{k}": v for k, v in t["design"].items()})
            row.update({f"metric.{k}": v for k, v in (t["metrics"] or {}).items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def export(self, dest: str | os.PathLike, fmt: str = "parquet", run_id: str | None = None) -> Path:
        """Write the trials (one run or all) as Parquet or CSV."""
        dest = Path(dest)
        df = self.to_pandas(run_id)
        if fmt == "parquet":
            for col in df.columns:  # design values of mixed types would break Arrow's column typing
                if col.startswith("design.") and df[col].map(type).nunique() > 1:
                    df[col] = df[col].astype(str)
            df.to_parquet(dest, index=False)
        elif fmt == "csv":
            df.to_csv(dest, index=False)
        else:
            raise LogError(f"export format {fmt!r} is not supported; allowed: parquet, csv")
        return dest

    def close(self) -> None:
        if getattr(self, "_db", None) is None:
            return
        try:
            self.flush()
        finally:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> TrialLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
