"""SCALE-Sim (systolic-array simulator, ``scalesim`` 3.0) as a Simulator: array shape, SRAM sizes, dataflow and
DRAM interface bandwidth in; cycles, utilisation and memory traffic of a workload out.

How it is run. SCALE-Sim is driven in memory: we build its ``scale_config`` and ``topologies`` objects and run one
``single_layer_sim`` per distinct layer shape, reading the per-layer report items the simulator itself would write
to COMPUTE_REPORT.csv / BANDWIDTH_REPORT.csv / DETAILED_ACCESS_REPORT.csv. No file is read or written, so parallel
evaluations share nothing. Totals are computed here from those per-layer items (each layer's items scaled by how many
times the shape occurs), because ``simulator.get_total_cycles()`` in scalesim 3.0.0 is broken (it indexes the bound
method ``get_compute_report_items`` instead of calling it).

numpy compatibility shim. scalesim 3.0.0 calls ``int(max(...))`` where ``max`` returns a one-element 1-D array
(``double_buffered_scratchpad_mem.py`` and ``read_buffer.py``); numpy >= 2.4 refuses ``int()`` on arrays with ndim
> 0. The project cannot cap numpy (torch and others need a recent one), so ``install_numpy_shim()`` rebinds the name
``int`` inside exactly those two scalesim modules to ``_ScalarInt``, an ``int`` subclass whose constructor first
unwraps a one-element array with ``.item()`` and otherwise behaves as ``int`` (it returns plain ints, and
``dtype=int`` in those modules still means int64). With numpy < 2.4 the shim changes nothing. ``tests/test_hw_scalesim``
checks the shim and that, with it, SCALE-Sim's own file-based API gives the cycles we compute.

Rejected designs. Whatever SCALE-Sim refuses (an ``assert`` in its buffers, or ``exit()`` after printing an ERROR
line) is raised as ``ScaleSimError`` carrying SCALE-Sim's own message, which the Evaluator records as a failed trial.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.objective import MultiObjective, Objective, TargetSpec, WeightedSum
from archgym.registry import Problem
from archgym.simulator import Metric, Simulator
from archgym.simulators.workloads import Workload, get_workload, scalesim_row
from archgym.space import Categorical, Design, DesignSpace, Ordinal

ARRAY_SIZES = (4, 8, 16, 32, 64, 128, 256)
SRAM_KB = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BANDWIDTHS = (1, 2, 4, 8, 16, 32, 64)
DATAFLOWS = ("os", "ws", "is")

_SHIMMED_MODULES = ("scalesim.memory.double_buffered_scratchpad_mem", "scalesim.memory.read_buffer")


class ScaleSimError(RuntimeError):
    """SCALE-Sim refused a design or a layer; the message is SCALE-Sim's own reason."""


class _ScalarInt(int):
    """``int`` that also accepts one-element numpy arrays (what numpy < 2.4 did); ``dtype`` keeps
    ``np.zeros(..., dtype=int)`` meaning int64 in the modules where this replaces ``int``."""

    dtype = np.dtype(int)

    def __new__(cls, value: Any = 0, *args: Any) -> int:  # type: ignore[misc]
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.item()
        return int(value, *args)


def install_numpy_shim() -> None:
    """Rebind ``int`` in the two scalesim modules that call ``int()`` on one-element arrays (idempotent)."""
    import importlib

    for name in _SHIMMED_MODULES:
        module = importlib.import_module(name)
        if module.__dict__.get("int") is not _ScalarInt:
            module.int = _ScalarInt  # type: ignore[attr-defined]


def make_space(array_sizes: tuple[int, ...] = ARRAY_SIZES, sram_kb: tuple[int, ...] = SRAM_KB,
               bandwidths: tuple[int, ...] = BANDWIDTHS, dataflows: tuple[str, ...] = DATAFLOWS) -> DesignSpace:
    """Array rows/cols, the three SRAM sizes (KB), dataflow, and the DRAM interface bandwidth: SCALE-Sim's
    estimate ("calc") or a user value in words/cycle (the ``bandwidth`` parameter exists only in "user" mode)."""
    for label, values in (("array_sizes", array_sizes), ("sram_kb", sram_kb), ("bandwidths", bandwidths)):
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ConfigError(f"{label} must be a non-empty list of positive integers, got {values!r}")
    bad = [d for d in dataflows if d not in DATAFLOWS]
    if bad or not dataflows:
        raise ConfigError(f"dataflows {list(dataflows)!r}: allowed values are {', '.join(DATAFLOWS)}")
    return DesignSpace([
        Ordinal("array_rows", tuple(sorted(array_sizes))),
        Ordinal("array_cols", tuple(sorted(array_sizes))),
        Ordinal("ifmap_sram_kb", tuple(sorted(sram_kb))),
        Ordinal("filter_sram_kb", tuple(sorted(sram_kb))),
        Ordinal("ofmap_sram_kb", tuple(sorted(sram_kb))),
        Categorical("dataflow", tuple(dataflows)),
        Categorical("bandwidth_mode", ("calc", "user")),
        Ordinal("bandwidth", tuple(sorted(bandwidths)), when={"bandwidth_mode": ("user",)}),
    ], name="scalesim")


METRICS = (
    Metric("cycles", "cycles", "min", scale=1e4),
    Metric("cycles_incl_prefetch", "cycles", "min", scale=1e4),
    Metric("stall_cycles", "cycles", "min", scale=1e4),
    Metric("compute_util", "%", "max", scale=100.0),
    Metric("mapping_efficiency", "%", "max", scale=100.0),
    Metric("ifmap_sram_reads", "words", "min", scale=1e4),
    Metric("filter_sram_reads", "words", "min", scale=1e4),
    Metric("ofmap_sram_writes", "words", "min", scale=1e4),
    Metric("ifmap_dram_reads", "words", "min", scale=1e4),
    Metric("filter_dram_reads", "words", "min", scale=1e4),
    Metric("ofmap_dram_writes", "words", "min", scale=1e4),
    Metric("dram_bw", "words/cycle", "min", scale=10.0),
    Metric("pe_count", "PEs", "min", scale=1e3),
    Metric("sram_kb", "KB", "min", scale=100.0),
)


def build_config(design: Design, sram_banks: int = 1) -> Any:
    """SCALE-Sim's ``scale_config`` for ``design``. In "user" bandwidth mode SCALE-Sim reads the ifmap/filter
    interface bandwidth from its SRAM-bank settings and the ofmap one from ``Bandwidth``; all three get the design's
    value. ``sram_banks`` is SCALE-Sim's IfmapSRAMBankNum/FilterSRAMBankNum (the bandwidth must divide by it)."""
    from scalesim.scale_config import scale_config

    cfg = scale_config()
    cfg.run_name = "archgym"
    cfg.array_rows, cfg.array_cols = int(design["array_rows"]), int(design["array_cols"])
    cfg.ifmap_sz_kb, cfg.filter_sz_kb = int(design["ifmap_sram_kb"]), int(design["filter_sram_kb"])
    cfg.ofmap_sz_kb = int(design["ofmap_sram_kb"])
    cfg.df = design["dataflow"]
    cfg.ifmap_sram_bank_num = cfg.filter_sram_bank_num = int(sram_banks)
    cfg.ifmap_sram_bank_port = cfg.filter_sram_bank_port = 2
    cfg.using_ifmap_custom_layout = cfg.using_filter_custom_layout = False
    cfg.use_user_bandwidth = design["bandwidth_mode"] == "user"
    if cfg.use_user_bandwidth:
        bw = int(design["bandwidth"])
        cfg.bandwidths = [bw]
        cfg.ifmap_sram_bank_bandwidth = cfg.filter_sram_bank_bandwidth = bw
    cfg.force_valid()
    return cfg


def simulate_layers(workload: Workload, design: Design, sram_banks: int = 1) -> list[dict[str, float]]:
    """Run SCALE-Sim on each distinct layer of ``workload``; one dict of its report items per distinct layer,
    with ``count`` (occurrences) and ``num_compute`` (MACs) added."""
    install_numpy_shim()
    from scalesim.layout_utils import layouts
    from scalesim.single_layer_sim import single_layer_sim
    from scalesim.topology_utils import topologies

    cfg = build_config(design, sram_banks)
    topo = topologies()
    counts = []
    for layer, n in workload.unique():
        row, repeat = scalesim_row(layer)
        counts.append(n * repeat)
        topo.load_layer_params_from_list(row[0], row)
    topo.topo_calc_hyperparams()
    layout = layouts()
    out: list[dict[str, float]] = []
    printed = io.StringIO()
    layer_name = ""
    try:
        with contextlib.redirect_stdout(printed):
            for i, count in enumerate(counts):
                layer_name = topo.topo_arrays[i][0]
                sim = single_layer_sim()
                sim.set_params(layer_id=i, config_obj=cfg, topology_obj=topo, layout_obj=layout, verbose=False)
                sim.run()
                overall, total, stall, _, mapping_eff, _ = sim.get_compute_report_items()
                detail = sim.get_detail_report_items()
                out.append({
                    "count": float(count), "cycles": float(total), "cycles_incl_prefetch": float(overall),
                    "stall_cycles": float(stall), "mapping_efficiency": float(mapping_eff),
                    "num_compute": float(sim.num_compute),
                    "ifmap_sram_reads": float(detail[2]), "filter_sram_reads": float(detail[5]),
                    "ofmap_sram_writes": float(detail[8]), "ifmap_dram_reads": float(detail[11]),
                    "filter_dram_reads": float(detail[14]), "ofmap_dram_writes": float(detail[17]),
                })
    except SystemExit:
        raise ScaleSimError(f"SCALE-Sim exited on layer {layer_name!r}: {_error_lines(printed.getvalue())}") from None
    except AssertionError as exc:
        raise ScaleSimError(f"SCALE-Sim rejected layer {layer_name!r}: {exc or 'assertion failed'}") from None
    return out


def _error_lines(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln.upper()]
    return " | ".join(errors or lines[-3:]) or "no reason printed"


def aggregate(layers: list[dict[str, float]], design: Design) -> dict[str, float]:
    """Workload totals from per-layer items: sums weighted by occurrence; utilisation from MACs over PE-cycles;
    mapping efficiency weighted by each layer's compute (non-stall) cycles; DRAM bandwidth = DRAM words over cycles
    including the prefetch phase."""
    pes = int(design["array_rows"]) * int(design["array_cols"])

    def total(key: str) -> float:
        return float(sum(r["count"] * r[key] for r in layers))

    cycles = total("cycles")
    with_prefetch = total("cycles_incl_prefetch")
    busy = [(r["count"] * (r["cycles"] - r["stall_cycles"]), r["mapping_efficiency"]) for r in layers]
    weight = sum(w for w, _ in busy)
    dram = total("ifmap_dram_reads") + total("filter_dram_reads") + total("ofmap_dram_writes")
    metrics = {
        "cycles": cycles,
        "cycles_incl_prefetch": with_prefetch,
        "stall_cycles": total("stall_cycles"),
        "compute_util": 100.0 * total("num_compute") / (cycles * pes) if cycles > 0 else 0.0,
        "mapping_efficiency": sum(w * e for w, e in busy) / weight if weight > 0 else 0.0,
        "dram_bw": dram / max(with_prefetch, cycles, 1.0),
        "pe_count": float(pes),
        "sram_kb": float(design["ifmap_sram_kb"] + design["filter_sram_kb"] + design["ofmap_sram_kb"]),
    }
    for key in ("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ifmap_dram_reads",
                "filter_dram_reads", "ofmap_dram_writes"):
        metrics[key] = total(key)
    return metrics


class ScaleSimSimulator(Simulator):
    """SCALE-Sim on a fixed workload; each evaluation runs in a worker process (isolation) and in memory."""

    deterministic = True
    isolation = "process"
    uses_workdir = False  # runs in memory: nothing is written
    default_timeout = 900.0
    metrics = METRICS

    def __init__(self, workload: str | Workload = "tiny_cnn", array_sizes: tuple[int, ...] = ARRAY_SIZES,
                 sram_kb: tuple[int, ...] = SRAM_KB, bandwidths: tuple[int, ...] = BANDWIDTHS,
                 dataflows: tuple[str, ...] = DATAFLOWS, sram_banks: int = 1) -> None:
        self.workload = get_workload(workload)
        if isinstance(sram_banks, bool) or not isinstance(sram_banks, int) or sram_banks < 1:
            raise ConfigError(f"sram_banks must be a positive integer, got {sram_banks!r}")
        self.sram_banks = sram_banks
        self.space = make_space(tuple(array_sizes), tuple(sram_kb), tuple(bandwidths), tuple(dataflows))
        self.name = f"scalesim/{self.workload.name}"

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        return aggregate(simulate_layers(self.workload, design, self.sram_banks), design)

    def cost_hint(self) -> float:
        """Rough seconds per design: SCALE-Sim steps through its demand matrices, about 10^4 rows per second."""
        return max(0.05, self.workload.macs / 16 / 1e4)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "workload": self.workload.describe(), "sram_banks": self.sram_banks}


def _objective(objective: str, target_cycles: float | None, target_sram_kb: float | None,
               target_pe: float | None) -> Objective:
    if objective == "target":
        targets: dict[str, tuple[str, float]] = {}
        for metric, value in (("cycles", target_cycles), ("sram_kb", target_sram_kb), ("pe_count", target_pe)):
            if value is not None:
                targets[metric] = ("<=", float(value))
        if not targets:
            raise ConfigError("objective 'target' needs at least one of target_cycles, target_sram_kb, target_pe")
        return TargetSpec(targets, tiebreak="cycles")
    if objective == "weighted":
        return WeightedSum({"cycles": 1.0, "pe_count": 0.5, "sram_kb": 0.5}, log=True)
    if objective == "multi":
        return MultiObjective(["cycles", "pe_count", "sram_kb"])
    if objective == "cycles":
        return WeightedSum({"cycles": 1.0}, log=True)
    raise ConfigError(f"objective {objective!r} is not allowed; allowed: target, weighted, multi, cycles")


def make_problem(workload: str = "tiny_cnn", objective: str = "target", target_cycles: float | None = 500.0,
                 target_sram_kb: float | None = 12.0, target_pe: float | None = 512.0,
                 array_sizes: tuple[int, ...] = ARRAY_SIZES, sram_kb: tuple[int, ...] = SRAM_KB,
                 bandwidths: tuple[int, ...] = BANDWIDTHS, max_steps: int = 100) -> Problem:
    """``archgym/SCALESim-v0``: SCALE-Sim on ``workload`` (a built-in name, a topology .csv or an .onnx path).

    ``objective``: "target" (ArchGym target spec: cycles <= target_cycles, total SRAM <= target_sram_kb and
    PEs <= target_pe, each skipped when None; fewer cycles break ties; the defaults are met by a few dozen of the
    1.6 M designs for tiny_cnn), "weighted" (log cycles + 0.5 log PEs + 0.5 log SRAM), "multi" (cycles vs PE
    count vs SRAM) or "cycles".
    """
    sim = ScaleSimSimulator(workload, tuple(array_sizes), tuple(sram_kb), tuple(bandwidths))
    return Problem(f"SCALESim/{sim.workload.name}", sim, _objective(objective, target_cycles, target_sram_kb, target_pe),
                   max_steps=max_steps, info={"workload": sim.workload.describe(), "macs": float(sim.workload.macs)})


def pe_cycles_lower_bound(workload: Workload, pes: int) -> float:
    """MACs / PEs: no array of ``pes`` PEs can finish in fewer cycles (a sanity bound used by tests)."""
    return math.ceil(workload.macs / pes)
