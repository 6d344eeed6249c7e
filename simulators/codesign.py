"""Network/accelerator co-design: one design is a NAS-Bench-Graph architecture AND a ZigZag accelerator; its
metrics are the network's accuracy from the NAS-Bench-Graph tables and the accelerator's energy and latency on that
network's own layers.

What the accelerator runs. A NAS-Bench-Graph network is a pre-processing linear layer (features -> hidden), four
GNN operations wired as a DAG, and a classifier (hidden -> classes); the graph's size comes from the data set's
published statistics (nodes, directed edges, features, classes). Each operation contributes its dense feature
transforms as GEMMs over all nodes (gcn, gat, fc: one; gin's two-layer MLP, cheb with K=2, sage, arma and graph
(k-GNN) with separate root and neighbour weights: two; skip: none), and message passing as a gathered reduction:
a GEMM of nodes x hidden with reduction length = mean in-degree (rounded up), i.e. edges x hidden MACs, the dense
equivalent of the sparse aggregation. This is an analytical workload model of the benchmark's networks, not a
trace of PyG's kernels; the accuracy numbers are the benchmark's own.

Isomorphic architectures (the benchmark's hash) hold the same operations, so they get the same workload, and the
canonical key of a co-design is the architecture's hash plus the accelerator parameters.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError
from archgym.objective import Constrained, MultiObjective, Objective, SingleMetric
from archgym.registry import Problem
from archgym.search_spaces.nasbench_graph import arch_hash, design_links, design_ops, make_space as nbg_space
from archgym.simulator import Metric, Simulator
from archgym.simulators.nasbench_graph import NASBenchGraphSimulator
from archgym.simulators.workloads import Gemm, Layer, Workload
from archgym.simulators.zigzag import LPF_LEVELS, ZigZagSimulator
from archgym.space import Design, DesignSpace

# nodes, directed edges, node features, classes (the data sets' published statistics, as listed by PyG/OGB)
GRAPH_STATS: dict[str, tuple[int, int, int, int]] = {
    "cora": (2708, 10556, 1433, 7),
    "citeseer": (3327, 9104, 3703, 6),
    "pubmed": (19717, 88648, 500, 3),
    "cs": (18333, 163788, 6805, 15),
    "physics": (34493, 495924, 8415, 5),
    "photo": (7650, 238162, 745, 8),
    "computers": (13752, 491722, 767, 10),
    "arxiv": (169343, 1166243, 128, 40),
}
# dense transforms per operation and whether it aggregates over neighbours
OP_GEMMS: dict[str, tuple[int, bool]] = {
    "gat": (1, True), "gcn": (1, True), "gin": (2, True), "cheb": (2, True), "sage": (2, True),
    "arma": (2, True), "graph": (2, True), "fc": (1, False), "skip": (0, False),
}


def gnn_workload(ops: tuple[str, ...], dataset: str, hidden: int) -> Workload:
    """The GEMMs of a NAS-Bench-Graph network with operations ``ops`` on ``dataset`` (see the module docstring)."""
    if dataset not in GRAPH_STATS:
        raise ConfigError(f"co-design has graph statistics for {', '.join(GRAPH_STATS)}; got {dataset!r}")
    nodes, edges, features, classes = GRAPH_STATS[dataset]
    degree = max(1, math.ceil(edges / nodes))
    layers: list[Layer] = [Gemm("preprocess", nodes, hidden, features)]
    for i, op in enumerate(ops):
        n_gemm, aggregates = OP_GEMMS[op]
        if n_gemm:
            layers.append(Gemm(f"node{i}.{op}.transform", nodes, hidden, hidden, count=n_gemm))
        if aggregates:
            layers.append(Gemm(f"node{i}.{op}.aggregate", nodes, hidden, degree))
    layers.append(Gemm("classifier", nodes, classes, hidden))
    return Workload(f"nbg-{dataset}-{'-'.join(ops)}", tuple(layers))


class CoDesignKey:
    """Canonical key: the architecture's benchmark hash plus the accelerator parameters (picklable)."""

    def __init__(self, hw_names: list[str]) -> None:
        self.hw_names = list(hw_names)

    def __call__(self, design: dict) -> str:
        hw = {n: design[n] for n in self.hw_names}
        return f"nbg:{arch_hash(design_links(design), design_ops(design))}|{json.dumps(hw, sort_keys=True)}"


class CoDesignSimulator(Simulator):
    """NAS-Bench-Graph accuracy plus ZigZag energy/latency of the same network on the designed accelerator."""

    deterministic = True
    isolation = "process"
    uses_workdir = True
    default_timeout = 1800.0

    def __init__(self, dataset: str = "cora", template: str = "tpu_like", hidden: int = 256,
                 lpf_levels: tuple[int, ...] = LPF_LEVELS, opt: str = "EDP") -> None:
        if dataset not in GRAPH_STATS:
            raise ConfigError(f"dataset {dataset!r}: co-design supports {', '.join(GRAPH_STATS)}")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ConfigError(f"hidden must be a positive integer, got {hidden!r}")
        self.dataset, self.template, self.hidden = dataset, template, hidden
        self._args = (dataset, template, hidden, tuple(lpf_levels), opt)
        self.nbg = NASBenchGraphSimulator(dataset)
        self.hw = ZigZagSimulator(gnn_workload(("gcn",) * 4, dataset, hidden), template, tuple(lpf_levels), opt)
        arch = nbg_space(dataset)
        self.hw_names = list(self.hw.space.names)
        self.space = DesignSpace([*arch.params.values(), *self.hw.space.params.values()], arch.constraints,
                                 canonical=CoDesignKey(self.hw_names), name=f"codesign/{dataset}/{template}")
        self.name = f"codesign/nasbench_graph-{dataset}/zigzag-{template}"
        self.metrics = (
            Metric("valid_acc", "%", "max", scale=100.0),
            Metric("test_acc", "%", "max", scale=100.0, report_only=True),
            Metric("gpu_latency", "ms", "min", scale=10.0, report_only=True),
            Metric("params", "M", "min", scale=1.0),
            Metric("hw_energy", "pJ", "min", scale=1e10),
            Metric("hw_latency", "cycles", "min", scale=1e7),
            Metric("hw_edp", "pJ*cycles", "min", scale=1e17),
            Metric("hw_mac_util", "%", "max", scale=100.0),
            Metric("hw_pe_count", "PEs", "min", scale=1e3),
            Metric("hw_onchip_kb", "KB", "min", scale=1e3),
            Metric("macs", "MACs", "min", scale=1e9),
        )

    def workload(self, design: Design) -> Workload:
        """The network of ``design`` as the accelerator sees it."""
        return gnn_workload(design_ops(design), self.dataset, self.hidden)

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        arch = self.nbg.evaluate(design)
        workload = self.workload(design)
        hw = self.hw.run(workload, {n: design[n] for n in self.hw_names}, workdir)
        return {
            "valid_acc": arch["valid_acc"], "test_acc": arch["test_acc"], "gpu_latency": arch["latency"],
            "params": arch["params"], "hw_energy": hw["energy"], "hw_latency": hw["latency"], "hw_edp": hw["edp"],
            "hw_mac_util": hw["mac_util"], "hw_pe_count": hw["pe_count"], "hw_onchip_kb": hw["onchip_kb"],
            "macs": float(workload.macs),
        }

    def cost_hint(self) -> float:
        return 3.0

    def __getstate__(self) -> dict[str, Any]:
        return {"args": self._args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(*state["args"])  # type: ignore[misc]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset": self.dataset, "template": self.template, "hidden": self.hidden}


def make_problem(dataset: str = "cora", template: str = "tpu_like", hidden: int = 256, objective: str = "multi",
                 max_hw_latency: float | None = None, lpf_levels: tuple[int, ...] = LPF_LEVELS,
                 max_steps: int = 100) -> Problem:
    """``archgym/CoDesignNBG-v0``: a NAS-Bench-Graph network and a ZigZag ``template`` accelerator together.

    ``objective``: "multi" (validation accuracy up, accelerator EDP down) or "constrained" (maximise validation
    accuracy subject to accelerator latency <= ``max_hw_latency`` cycles).
    """
    sim = CoDesignSimulator(dataset, template, hidden, tuple(lpf_levels))
    obj: Objective
    if objective == "multi":
        obj = MultiObjective(["valid_acc", "hw_edp"])
    elif objective == "constrained":
        if max_hw_latency is None:
            raise ConfigError("objective 'constrained' needs max_hw_latency (cycles)")
        obj = Constrained(SingleMetric("valid_acc", failure_reward=0.0), {"hw_latency": ("<=", float(max_hw_latency))})
    else:
        raise ConfigError(f"objective {objective!r} is not allowed; allowed: multi, constrained")
    return Problem(f"CoDesign/{dataset}/{template}", sim, obj, max_steps=max_steps,
                   info={"dataset": dataset, "template": template, "hidden": hidden})
