"""Training sets for proxy models, read from trial logs: each successful trial's design encoded through the run's
DesignSpace and one logged metric (or the reward) as the target; failed trials are excluded and counted."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archgym.errors import ConfigError, LogError
from archgym.space import Categorical, Design, DesignSpace, Integer

ENCODINGS = ("full", "dag", "onehot", "index", "unit", "graph")


def resolve_log_path(path: str | Path) -> Path:
    """A run directory (holding trials.sqlite) or a log file."""
    from archgym.runner import log_path

    p = Path(path)
    p = log_path(p) if p.is_dir() else p
    if not p.exists():
        raise LogError(f"no trial log at {p} (give a run directory or a .sqlite log)")
    return p


def encode_designs(space: DesignSpace, designs: Sequence[Design], encoding: str = "full") -> np.ndarray:
    """A float matrix, one row per design.

    ``full`` one-hot encodes every discrete parameter (integers and ordinals too, which suits DAG input indices)
    and maps floats to the unit interval; ``dag`` adds the architecture-graph summary of ``DagLayout.summary``
    (DAG spaces only); ``onehot``, ``index`` and ``unit`` are the DesignSpace's own encodings.
    """
    if encoding == "dag":
        layout = DagLayout.detect(space)
        full = encode_designs(space, designs, "full")
        return np.hstack([full, np.array([layout.summary(d) for d in designs], dtype=np.float32).reshape(len(designs), -1)])
    if encoding in ("onehot", "index", "unit"):
        if not designs:
            return np.zeros((0, len(space.encoding_names(encoding))))
        return np.stack([space.encode(d, encoding) for d in designs]).astype(np.float32)
    if encoding != "full":
        raise ConfigError(f"encoding {encoding!r} is not allowed for a feature matrix; allowed: full, dag, onehot, index, unit")
    widths = [p.cardinality if p.discrete else 1 for p in space.params.values()]  # type: ignore[attr-defined]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    out = np.zeros((len(designs), int(offsets[-1])), dtype=np.float32)
    for r, d in enumerate(designs):
        for j, (name, p) in enumerate(space.params.items()):
            if name not in d:
                continue
            if p.discrete:
                out[r, offsets[j] + p.index(d[name])] = 1.0  # type: ignore[attr-defined]
            else:
                out[r, offsets[j]] = p.to_unit(d[name])  # type: ignore[attr-defined]
    return out


def feature_names(space: DesignSpace, encoding: str = "full") -> list[str]:
    """Column names matching ``encode_designs``."""
    if encoding == "dag":
        return feature_names(space, "full") + DagLayout.detect(space).summary_names()
    if encoding != "full":
        return space.encoding_names(encoding)
    names: list[str] = []
    for n, p in space.params.items():
        names += [f"{n}={v}" for v in p.values] if p.discrete else [n]  # type: ignore[attr-defined]
    return names


@dataclass(frozen=True)
class DagLayout:
    """How a DAG design space spells its architecture graph: node ``i`` reads node ``in{i}`` (0 is the input) and
    applies operation ``op{i}`` (the layout of ``dag_inputs`` plus one categorical per node, as in NAS-Bench-Graph)."""

    n_nodes: int
    ops: tuple[str, ...]
    input_prefix: str = "in"
    op_prefix: str = "op"

    @classmethod
    def detect(cls, space: DesignSpace, input_prefix: str = "in", op_prefix: str = "op") -> DagLayout:
        """The layout of ``space``, or a ConfigError saying which parameters a graph model needs."""
        n = 0
        while f"{input_prefix}{n}" in space.params:
            n += 1
        need = (f"a DAG space with parameters {input_prefix}0..{input_prefix}N-1 (Integer 0..i) and "
                f"{op_prefix}0..{op_prefix}N-1 (Categorical, same choices)")
        if n == 0:
            raise ConfigError(f"the graph model needs {need}; space {space.name!r} has: {', '.join(space.params)}")
        ops: tuple | None = None
        for i in range(n):
            link, op = space.params.get(f"{input_prefix}{i}"), space.params.get(f"{op_prefix}{i}")
            if not isinstance(link, Integer) or link.low != 0 or link.high != i or not isinstance(op, Categorical):
                raise ConfigError(f"the graph model needs {need}; parameter {input_prefix}{i} or {op_prefix}{i} differs")
            if link.when or op.when:
                raise ConfigError(f"the graph model needs {need} without conditional parameters")
            if ops is not None and op.choices != ops:
                raise ConfigError(f"the graph model needs {need}; {op_prefix}{i} has other choices than {op_prefix}0")
            ops = op.choices
        return cls(n, tuple(str(o) for o in ops or ()), input_prefix, op_prefix)

    @property
    def node_dim(self) -> int:
        """Node feature width: one-hot operation plus input and output markers."""
        return len(self.ops) + 2

    def summary(self, design: Design) -> np.ndarray:
        """Isomorphism-invariant facts of the graph: operation counts, operation counts among the nodes the output
        reads, the depth and the number of those output-feeding nodes."""
        n, k = self.n_nodes, len(self.ops)
        counts, leaf = np.zeros(k), np.zeros(k)
        depth = [0] * (n + 1)
        consumed = set()
        for i in range(n):
            j = int(design[f"{self.input_prefix}{i}"])
            consumed.add(j)
            depth[i + 1] = depth[j] + 1
            counts[self.ops.index(str(design[f"{self.op_prefix}{i}"]))] += 1
        leaves = [i for i in range(1, n + 1) if i not in consumed]
        for i in leaves:
            leaf[self.ops.index(str(design[f"{self.op_prefix}{i - 1}"]))] += 1
        return np.concatenate([counts, leaf, [max(depth), len(leaves)]])

    def summary_names(self) -> list[str]:
        return [f"count:{o}" for o in self.ops] + [f"output_count:{o}" for o in self.ops] + ["depth", "n_outputs"]

    def graph(self, design: Design) -> tuple[np.ndarray, np.ndarray]:
        """Node features (n_nodes + 2 rows: input, the operations, output) and the edge list (2 x E, source->target).

        The output node reads every node whose result no other node consumes, as NAS-Bench-Graph combines them.
        """
        n, k = self.n_nodes, len(self.ops)
        x = np.zeros((n + 2, k + 2), dtype=np.float32)
        x[0, k] = 1.0
        x[n + 1, k + 1] = 1.0
        src, dst = [], []
        consumed = set()
        for i in range(n):
            x[i + 1, self.ops.index(str(design[f"{self.op_prefix}{i}"]))] = 1.0
            j = int(design[f"{self.input_prefix}{i}"])
            src.append(j)
            dst.append(i + 1)
            consumed.add(j)
        for i in range(1, n + 1):
            if i not in consumed:
                src.append(i)
                dst.append(n + 1)
        return x, np.array([src, dst], dtype=np.int64)


@dataclass
class Dataset:
    """Designs and targets from one or more logged runs of one design space."""

    space: DesignSpace
    designs: list[Design]
    keys: list[str]
    y: np.ndarray
    target: str
    env: str | None
    env_args: dict[str, Any]
    n_failed: int = 0
    n_duplicates: int = 0
    n_missing: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.designs)

    def summary(self) -> dict[str, Any]:
        """Counts for reports and the artefact."""
        return {"n_samples": len(self), "n_failed_excluded": self.n_failed, "n_duplicates_merged": self.n_duplicates,
                "n_missing_target": self.n_missing, "sources": self.sources}


def live_space(env: str, env_args: dict[str, Any], fingerprint: str | None, where: str) -> DesignSpace:
    """Rebuild a logged run's DesignSpace through the registry and check it is the one the run logged."""
    from archgym.registry import make_problem

    space = make_problem(env, **(env_args or {})).space
    if fingerprint is not None and space.fingerprint() != fingerprint:
        raise LogError(f"{where}: the design space of {env} changed since it was logged "
                       f"(logged fingerprint {fingerprint}, now {space.fingerprint()})")
    return space


def load_dataset(logs: Iterable[str | Path], target: str, run_ids: Sequence[str] | None = None,
                 space: DesignSpace | None = None) -> Dataset:
    """Read every successful trial of the given runs (all runs of each log unless ``run_ids``) into a Dataset.

    ``target`` is a logged metric name or ``reward``. All runs must share one space fingerprint (and ``space``'s,
    when given). Trials of one canonical design are merged (their targets averaged), so no design sits on both sides
    of a train/test split.
    """
    from archgym.log import TrialLog

    fingerprint = space.fingerprint() if space is not None else None
    env: str | None = None
    env_args: dict[str, Any] = {}
    by_key: dict[str, list[float]] = {}
    first: dict[str, Design] = {}
    n_failed = n_missing = n_dup = 0
    sources = []
    seen: set[str] = set()
    for path in logs:
        p = resolve_log_path(path)
        with TrialLog(p, readonly=True) as log:
            ids = list(run_ids) if run_ids else log.run_ids()
            for rid in ids:
                run = log.run(rid)
                where = f"{p} run {rid}"
                if str(run.get("simulator") or "").startswith("proxy:"):
                    raise ConfigError(f"{where} was simulated by a proxy ({run['simulator']}); train and evaluate "
                                      "proxies on real simulator runs only")
                fp = run.get("fingerprint")
                if fingerprint is None:
                    if not run.get("env"):
                        raise LogError(f"{where} does not record its env, so its design space cannot be rebuilt")
                    space = live_space(run["env"], run.get("env_args") or {}, fp, where)
                    fingerprint = space.fingerprint()
                elif fp != fingerprint:
                    raise ConfigError(f"{where} has design-space fingerprint {fp}, expected {fingerprint}: "
                                      "a proxy is trained and evaluated on one design space only")
                if env is None:
                    env, env_args = run.get("env"), run.get("env_args") or {}
                n_ok = 0
                for t in log.trials(rid):
                    if t["status"] != "ok":
                        n_failed += 1
                        continue
                    seen.update(t["metrics"] or {})
                    value = t["reward"] if target == "reward" else (t["metrics"] or {}).get(target)
                    if value is None or not math.isfinite(float(value)):
                        n_missing += 1
                        continue
                    n_ok += 1
                    if t["key"] in by_key:
                        n_dup += 1
                    else:
                        first[t["key"]] = t["design"]
                        by_key[t["key"]] = []
                    by_key[t["key"]].append(float(value))
                sources.append({"log": str(p), "run_id": rid, "searcher": run.get("searcher"), "seed": run.get("seed"),
                                "n_ok": n_ok})
    if space is None or not sources:
        raise LogError("the given logs hold no run")
    if not by_key:
        raise ConfigError(f"no successful trial reports target {target!r} ({n_failed} failed trials excluded); "
                          f"logged metrics: {', '.join(sorted(seen)) or 'none'}, or 'reward'")
    keys = list(by_key)
    assert space is not None
    designs = [space.validate(first[k]) for k in keys]
    y = np.array([float(np.mean(by_key[k])) for k in keys], dtype=np.float64)
    return Dataset(space, designs, keys, y, target, env, env_args, n_failed, n_dup, n_missing, sources)
