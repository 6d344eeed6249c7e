"""NAS-Bench-Graph as a Simulator: a look-up of validation/test accuracy, latency and parameter count in the
benchmark's tables, loaded with a restricted unpickler that admits only the numpy types those files contain."""

from __future__ import annotations

import io
import pickle
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError
from archgym.objective import MultiObjective, SingleMetric
from archgym.registry import Problem
from archgym.search_spaces.nasbench_graph import DATASETS, arch_hash, design_links, design_ops, make_space
from archgym.simulator import Metric, Simulator

_ALLOWED = {
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}


class _BenchUnpickler(pickle.Unpickler):
    """Admits only numpy scalars and dtypes: a bench file cannot run code when it is loaded."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"NAS-Bench-Graph file refers to {module}.{name}, which is not allowed")
        import numpy as np

        if name == "dtype":
            return np.dtype
        try:
            from numpy._core.multiarray import scalar
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import scalar  # type: ignore[no-redef]
        return scalar


def load_bench_bytes(data: bytes) -> dict[int, dict[str, Any]]:
    """Parse a bench file's bytes with the restricted unpickler."""
    table = _BenchUnpickler(io.BytesIO(data)).load()
    if not isinstance(table, dict):
        raise pickle.UnpicklingError("NAS-Bench-Graph file does not hold a table")
    return table


@lru_cache(maxsize=None)
def load_table(dataset: str) -> dict[int, tuple[float, float, float, float]]:
    """hash -> (valid %, test %, latency ms, params M) for one data set, from the installed nas-bench-graph files."""
    if dataset not in DATASETS:
        raise ConfigError(f"dataset {dataset!r} is not in NAS-Bench-Graph; allowed: {', '.join(DATASETS)}")
    try:
        ref = resources.files("nas_bench_graph") / "light" / f"{dataset}.bench"
    except ModuleNotFoundError:
        raise ConfigError("the NAS-Bench-Graph tables are missing: pip install nas-bench-graph") from None
    raw = load_bench_bytes(Path(str(ref)).read_bytes())
    return {
        int(h): (100.0 * float(r["valid_perf"]), 100.0 * float(r["perf"]), 1000.0 * float(r["latency"]), float(r["para"]))
        for h, r in raw.items()
    }


class NASBenchGraphSimulator(Simulator):
    """Tabular NAS-Bench-Graph: searchers see validation accuracy; test accuracy is reported only."""

    deterministic = True
    isolation = "inline"

    def __init__(self, dataset: str = "cora") -> None:
        self.dataset = dataset
        self.space = make_space(dataset)
        self.name = f"nasbench_graph/{dataset}"
        self.metrics = (
            Metric("valid_acc", "%", "max", scale=100.0),
            Metric("test_acc", "%", "max", scale=100.0, report_only=True),
            Metric("latency", "ms", "min", scale=10.0),
            Metric("params", "M", "min", scale=1.0),
        )

    def evaluate(self, design: dict, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        valid, test, latency, params = load_table(self.dataset)[arch_hash(design_links(design), design_ops(design))]
        return {"valid_acc": valid, "test_acc": test, "latency": latency, "params": params}

    def best(self) -> dict[str, float]:
        """Facts of the table (for regret): the best validation accuracy and the test accuracy of that architecture."""
        table = load_table(self.dataset)
        valid, test, _, _ = max(table.values(), key=lambda r: r[0])
        return {"valid_acc": valid, "test_acc": test, "n_archs": float(len(table))}

    def cost_hint(self) -> float:
        return 1e-5

    def __getstate__(self) -> dict[str, Any]:
        return {"dataset": self.dataset}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dataset"])  # type: ignore[misc]


def make_problem(dataset: str = "cora", max_steps: int = 100) -> Problem:
    """Single-objective NAS-Bench-Graph: maximise validation accuracy (%)."""
    sim = NASBenchGraphSimulator(dataset)
    return Problem(f"NASBenchGraph/{dataset}", sim, SingleMetric("valid_acc", failure_reward=0.0), max_steps=max_steps)


def make_problem_mo(dataset: str = "cora", max_steps: int = 100) -> Problem:
    """Multi-objective NAS-Bench-Graph: validation accuracy up, latency down."""
    sim = NASBenchGraphSimulator(dataset)
    return Problem(f"NASBenchGraphMO/{dataset}", sim, MultiObjective(["valid_acc", "latency"]), max_steps=max_steps)
