"""ZigZag (``zigzag-dse``: analytical energy/latency of DNN accelerators with a mapping search) as a Simulator.

The design starts from one of the accelerator templates ZigZag ships (tpu_like, edge_tpu_like, eyeriss_like,
tesla_npu_like, ascend_like, meta_prototype) and changes its main knobs: the size of every operational-array
dimension, the capacity and port bandwidth of every on-chip memory level, and the effort of ZigZag's temporal
mapping search (LOMA's ``lpf_limit``). Each evaluation writes the edited accelerator and mapping YAML files and
ZigZag's dumps into its own scratch directory (``uses_workdir``), so parallel evaluations share no file.

Modelling choices (stated, not hidden): ZigZag takes memory access energies as inputs, so when a memory level is
resized its per-access read/write energy is scaled by sqrt(capacity ratio) (first-order wire-length scaling, the
trend CACTI shows for SRAMs) and by the bandwidth ratio (energy per bit constant). At the template's values nothing is
changed, so the template design reproduces ZigZag's own numbers exactly. Spatial unrollings in the template mapping
that filled an array dimension are resized with it. Layers are mapped independently (no inter-layer data locality,
ZigZag's default), so each distinct layer shape is evaluated once and scaled by its count; results per layer are
memoised in the worker process, which makes co-design evaluations that share layer shapes cheap.

ZigZag's API function configures the root logger at INFO; we run the same stage pipeline it composes (minus its
visualisation and bulky dump stages, see ``_call_zigzag``), and ``quiet_zigzag()`` mutes the ``zigzag`` loggers
below ERROR and makes any ``logging.basicConfig`` inside ZigZag a no-op (a temporary NullHandler on an unconfigured
root), restoring both afterwards: the user's logging configuration is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError
from archgym.objective import MultiObjective, Objective, TargetSpec, WeightedSum
from archgym.registry import Problem
from archgym.simulator import Metric, Simulator
from archgym.simulators.workloads import Layer, Workload, get_workload, zigzag_layer
from archgym.space import Design, DesignSpace, Ordinal

# template name -> (hardware yaml, mapping yaml) inside zigzag/inputs
TEMPLATES: dict[str, tuple[str, str]] = {
    "tpu_like": ("tpu_like.yaml", "tpu_like.yaml"),
    "edge_tpu_like": ("edge_tpu_like.yaml", "edge_tpu_like.yaml"),
    "eyeriss_like": ("eyeriss_like.yaml", "default.yaml"),
    "tesla_npu_like": ("tesla_npu_like.yaml", "tesla_npu_like.yaml"),
    "ascend_like": ("ascend_like.yaml", "ascend_like.yaml"),
    "meta_prototype": ("meta_prototype.yaml", "meta_prototype_like.yaml"),
}
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
BW_SCALES = (0.5, 1.0, 2.0)
LPF_LEVELS = (2, 3, 4)
OPT_TARGETS = ("latency", "energy", "EDP")
_DRAM_BITS = 1 << 30  # a level this large is off-chip memory and is not a design knob

_LAYER_MEMO: OrderedDict[str, dict[str, Any]] = OrderedDict()
_MEMO_SIZE = 4096


class ZigZagError(RuntimeError):
    """ZigZag refused a design or failed on a layer; the message carries ZigZag's reason."""


def zigzag_inputs() -> Path:
    try:
        import zigzag
    except ModuleNotFoundError:
        raise ConfigError("ZigZag is not installed: pip install 'archgym[zigzag]'") from None
    return Path(zigzag.__file__).parent / "inputs"


def template_paths(template: str) -> tuple[Path, Path]:
    """The shipped hardware and mapping YAML files of ``template``."""
    if template not in TEMPLATES:
        raise ConfigError(f"ZigZag template {template!r} is not known; allowed: {', '.join(TEMPLATES)}")
    hw, mp = TEMPLATES[template]
    base = zigzag_inputs()
    return base / "hardware" / hw, base / "mapping" / mp


def _read_yaml(path: Path) -> Any:
    import yaml

    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def _max_bw(mem: dict[str, Any]) -> int:
    return max(int(p["bandwidth_max"]) for p in mem["ports"])


def _levels(base: int, scales: tuple[float, ...], floor: int = 1) -> tuple[int, ...]:
    return tuple(sorted({max(floor, int(round(base * s))) for s in scales}))


@contextlib.contextmanager
def quiet_zigzag() -> Iterator[None]:
    """Silence ZigZag for the duration: its ``logging.basicConfig`` call finds a handler and does nothing, its
    loggers drop records below ERROR and its prints go nowhere. The caller's logging setup is left as it was."""
    zlog = logging.getLogger("zigzag")
    old_level = zlog.level
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    zlog.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        zlog.setLevel(old_level)
        if guard is not None:
            root.removeHandler(guard)


class ZigZagSimulator(Simulator):
    """ZigZag on a fixed workload and accelerator template; the template's knobs are the design."""

    deterministic = True
    isolation = "process"
    uses_workdir = True
    default_timeout = 1800.0

    def __init__(self, workload: str | Workload = "tiny_cnn", template: str = "tpu_like",
                 lpf_levels: tuple[int, ...] = LPF_LEVELS, opt: str = "EDP") -> None:
        if opt not in OPT_TARGETS:
            raise ConfigError(f"opt {opt!r} is not allowed; allowed: {', '.join(OPT_TARGETS)}")
        if not lpf_levels or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in lpf_levels):
            raise ConfigError(f"lpf_levels must be positive integers, got {lpf_levels!r}")
        self.workload = get_workload(workload)
        self.template = template
        self.opt = opt
        self.lpf_levels = tuple(sorted(lpf_levels))
        hw_path, map_path = template_paths(template)
        self.hardware: dict[str, Any] = _read_yaml(hw_path)
        self.mapping: list[dict[str, Any]] = _read_yaml(map_path)
        self.name = f"zigzag/{template}/{self.workload.name}"
        self.space = self._make_space()
        self.metrics = self._make_metrics()

    # -- space and metrics ---------------------------------------------------------------------------------------

    @property
    def dims(self) -> list[str]:
        return list(self.hardware["operational_array"]["dimensions"])

    @property
    def onchip(self) -> list[str]:
        """Names of the memory levels that are design knobs (everything but off-chip DRAM)."""
        return [n for n, m in self.hardware["memories"].items() if int(m["size"]) < _DRAM_BITS]

    def _make_space(self) -> DesignSpace:
        arr = self.hardware["operational_array"]
        params = [Ordinal(f"array_{d}", _levels(int(s), SCALES)) for d, s in zip(arr["dimensions"], arr["sizes"])]
        for name in self.onchip:
            mem = self.hardware["memories"][name]
            bw = _max_bw(mem)
            sizes = tuple(v for v in _levels(int(mem["size"]), SCALES) if v >= bw)
            params.append(Ordinal(f"{name}_bits", sizes))
            params.append(Ordinal(f"{name}_bw", _levels(bw, BW_SCALES)))
        params.append(Ordinal("lpf_limit", self.lpf_levels))
        return DesignSpace(params, name=f"zigzag/{self.template}")

    def _make_metrics(self) -> tuple[Metric, ...]:
        per_mem = tuple(Metric(f"energy_{n}", "pJ", "min", scale=1e6) for n in self.hardware["memories"])
        return (
            Metric("energy", "pJ", "min", scale=1e6),
            Metric("latency", "cycles", "min", scale=1e4),
            Metric("edp", "pJ*cycles", "min", scale=1e10),
            Metric("mac_util", "%", "max", scale=100.0),
            Metric("mac_energy", "pJ", "min", scale=1e6),
            Metric("mem_energy", "pJ", "min", scale=1e6),
            *per_mem,
            Metric("pe_count", "PEs", "min", scale=1e3),
            Metric("onchip_kb", "KB", "min", scale=1e3),
        )

    def template_design(self) -> Design:
        """The design that reproduces the template as shipped (with the smallest mapping-search effort)."""
        arr = self.hardware["operational_array"]
        design: Design = {f"array_{d}": int(s) for d, s in zip(arr["dimensions"], arr["sizes"])}
        for name in self.onchip:
            mem = self.hardware["memories"][name]
            design[f"{name}_bits"] = int(mem["size"])
            design[f"{name}_bw"] = _max_bw(mem)
        design["lpf_limit"] = self.lpf_levels[0]
        return design

    # -- inputs for ZigZag ---------------------------------------------------------------------------------------

    def accelerator_data(self, design: Design) -> dict[str, Any]:
        """The template's hardware description with the design's array sizes, memory sizes and bandwidths."""
        import copy

        hw = copy.deepcopy(self.hardware)
        arr = hw["operational_array"]
        arr["sizes"] = [int(design[f"array_{d}"]) for d in arr["dimensions"]]
        for name in self.onchip:
            mem = hw["memories"][name]
            size_ratio = int(design[f"{name}_bits"]) / int(mem["size"])
            bw_ratio = int(design[f"{name}_bw"]) / _max_bw(mem)
            mem["size"] = int(design[f"{name}_bits"])
            for port in mem["ports"]:
                port["bandwidth_max"] = max(1, int(round(int(port["bandwidth_max"]) * bw_ratio)))
                port["bandwidth_min"] = max(1, min(port["bandwidth_max"], int(round(int(port["bandwidth_min"]) * bw_ratio))))
            factor = math.sqrt(size_ratio) * bw_ratio
            if factor != 1.0:
                mem["r_cost"] = float(mem["r_cost"]) * factor
                mem["w_cost"] = float(mem["w_cost"]) * factor
        return hw

    def mapping_data(self, design: Design) -> list[dict[str, Any]]:
        """The template mapping with spatial unrollings that filled an array dimension resized to its new size."""
        import copy

        old = dict(zip(self.dims, self.hardware["operational_array"]["sizes"]))
        mapping = copy.deepcopy(self.mapping)
        for entry in mapping:
            spatial = entry.get("spatial_mapping") or {}
            for dim, items in spatial.items():
                if dim not in old:
                    continue
                new_size = int(design[f"array_{dim}"])
                resized = []
                for item in items:
                    loop, _, factor = str(item).partition(",")
                    n = int(factor)
                    resized.append(f"{loop.strip()}, {new_size if n >= int(old[dim]) else min(n, new_size)}")
                spatial[dim] = resized
        return mapping

    def write_inputs(self, design: Design, folder: Path) -> tuple[Path, Path]:
        """Write the accelerator and mapping YAML files of ``design`` into ``folder``."""
        import yaml

        folder.mkdir(parents=True, exist_ok=True)
        hw_path, map_path = folder / "accelerator.yaml", folder / "mapping.yaml"
        hw_path.write_text(yaml.safe_dump(self.accelerator_data(design), sort_keys=False), encoding="utf-8")
        map_path.write_text(yaml.safe_dump(self.mapping_data(design), sort_keys=False), encoding="utf-8")
        return hw_path, map_path

    # -- evaluation ----------------------------------------------------------------------------------------------

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        return self.run(self.workload, design, workdir)

    def run(self, workload: Workload, design: Design, workdir: Path | None = None) -> dict[str, float]:
        """Metrics of ``workload`` on the accelerator ``design`` (the co-design simulator passes its own workloads).
        Without a ``workdir`` a temporary directory is used and removed."""
        own = workdir is None
        folder = Path(tempfile.mkdtemp(prefix="archgym-zigzag-")) if own else Path(workdir)
        try:
            hw_path, map_path = self.write_inputs(design, folder)
            per_layer = run_layers(workload, hw_path, map_path, folder / "dump", int(design["lpf_limit"]), self.opt)
        finally:
            if own:
                shutil.rmtree(folder, ignore_errors=True)
        return self.aggregate(per_layer, design)

    def aggregate(self, per_layer: list[tuple[dict[str, Any], int]], design: Design) -> dict[str, float]:
        """Workload totals: energies and latencies summed with layer counts; MAC utilisation = ideal (fully used
        array) cycles over actual cycles; cost metrics from the design."""
        def total(key: str) -> float:
            return float(sum(n * r[key] for r, n in per_layer))

        energy, latency = total("energy"), total("latency")
        out = {
            "energy": energy, "latency": latency, "edp": energy * latency,
            "mac_util": 100.0 * total("ideal_cycle") / latency if latency > 0 else 0.0,
            "mac_energy": total("mac_energy"), "mem_energy": total("mem_energy"),
        }
        for name in self.hardware["memories"]:
            out[f"energy_{name}"] = float(sum(n * r["per_memory"].get(name, 0.0) for r, n in per_layer))
        sizes = {d: int(design[f"array_{d}"]) for d in self.dims}
        out["pe_count"] = float(math.prod(sizes.values()))
        bits = 0.0
        for name in self.onchip:
            served = set(self.hardware["memories"][name].get("served_dimensions") or [])
            copies = math.prod(s for d, s in sizes.items() if d not in served)
            bits += int(design[f"{name}_bits"]) * copies
        out["onchip_kb"] = bits / 8 / 1024
        return out

    def cost_hint(self) -> float:
        return 0.4 * len(self.workload.unique()) + 1.0

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "workload": self.workload.describe(), "template": self.template, "opt": self.opt}


def _unique_named(workload: Workload) -> list[tuple[Layer, int]]:
    seen: dict[str, int] = {}
    out = []
    for layer, n in workload.unique():
        k = seen.get(layer.name, 0)
        seen[layer.name] = k + 1
        out.append((layer if k == 0 else replace(layer, name=f"{layer.name}_{k}"), n))
    return out


def run_layers(workload: Workload, hw_path: Path, map_path: Path, dump: Path, lpf_limit: int,
               opt: str = "EDP") -> list[tuple[dict[str, Any], int]]:
    """Per distinct layer, ZigZag's best cost-model result (energy, latency, ideal cycles, MAC and per-memory
    energy) with its count; layers already evaluated on identical inputs in this process come from the memo."""
    hw_text, map_text = hw_path.read_bytes(), map_path.read_bytes()
    prefix = hashlib.sha256(hw_text + b"\0" + map_text + f"\0{lpf_limit}\0{opt}".encode()).hexdigest()
    mapped_names = {e.get("name") for e in _read_yaml(map_path)}  # a mapping entry may target a layer by name
    layers = _unique_named(workload)
    keys = []
    todo: list[tuple[int, dict[str, Any]]] = []
    for i, (layer, _) in enumerate(layers):
        entry = zigzag_layer(layer, i)
        shown = {k: v for k, v in entry.items() if k != "id" and (k != "name" or v in mapped_names)}
        key = prefix + json.dumps(shown, sort_keys=True)
        keys.append(key)
        if key not in _LAYER_MEMO:
            todo.append((i, entry))
    if todo:
        results = _call_zigzag([e for _, e in todo], hw_path, map_path, dump, lpf_limit, opt)
        for (i, _), res in zip(todo, results):
            _LAYER_MEMO[keys[i]] = res
            while len(_LAYER_MEMO) > _MEMO_SIZE:
                _LAYER_MEMO.popitem(last=False)
    return [(_LAYER_MEMO[k], n) for k, (_, n) in zip(keys, layers)]


def _call_zigzag(entries: list[dict[str, Any]], hw_path: Path, map_path: Path, dump: Path, lpf_limit: int,
                 opt: str) -> list[dict[str, Any]]:
    """Run ZigZag's stage pipeline as ``zigzag.api.get_hardware_performance_zigzag`` composes it for a plain
    (non in-memory-compute, no inter-layer locality) run, without its visualisation and pickle/per-layer dump
    stages: those render a PNG per call and crash on layers with no temporal loop (fully unrolled GEMMs), and do
    not change any number. The summed result is still written to ``dump/overall_simple.json``."""
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import MinimalEDPStage, MinimalEnergyStage, MinimalLatencyStage, SumStage
    from zigzag.stages.results.save import SimpleSaveStage
    from zigzag.stages.workload_iterator import WorkloadStage

    reduce = {"latency": MinimalLatencyStage, "energy": MinimalEnergyStage, "EDP": MinimalEDPStage}[opt]
    stages = [WorkloadParserStage, AcceleratorParserStage, SimpleSaveStage, SumStage, WorkloadStage, reduce,
              SpatialMappingGeneratorStage, reduce, TemporalMappingGeneratorStage, CostModelStage]
    dump.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_zigzag():
            cmes = MainStage(
                stages, accelerator=str(hw_path), workload=entries, mapping=str(map_path), dump_folder=str(dump),
                loma_lpf_limit=lpf_limit, loma_show_progress_bar=False, nb_mappings_generated=3,
                enable_mix_spatial_mapping_generation=False, access_same_data_considered_as_no_access=True,
                temporal_mapping_type=TemporalMappingType("uneven"),
            ).run()
    except SystemExit as exc:
        raise ZigZagError(f"ZigZag exited (code {exc.code}) on this design") from None
    except Exception as exc:  # noqa: BLE001 - ZigZag signals a bad design with assorted exception types
        raise ZigZagError(f"ZigZag rejected the design: {type(exc).__name__}: {exc}") from None
    per_layer = [cme for cme, _ in cmes[0][1]]
    if len(per_layer) != len(entries):
        raise ZigZagError(f"ZigZag returned {len(per_layer)} layer results for {len(entries)} layers")
    return [layer_result(cme) for cme in per_layer]


def layer_result(cme: Any) -> dict[str, Any]:
    """The numbers we keep from one layer's CostModelEvaluation (plain floats, so they pickle and memoise)."""
    per_memory: dict[str, float] = {}
    links = cme.layer.memory_operand_links
    for layer_op, energies in cme.mem_energy_breakdown.items():
        mem_op = links.layer_to_mem_op(layer_op)
        for level, e in enumerate(energies):
            name = cme.accelerator.get_memory_level(mem_op, level).name
            per_memory[name] = per_memory.get(name, 0.0) + float(e)
    return {
        "energy": float(cme.energy_total), "latency": float(cme.latency_total2),
        "ideal_cycle": float(cme.ideal_cycle), "mac_energy": float(cme.mac_energy),
        "mem_energy": float(cme.mem_energy), "per_memory": per_memory,
    }


def _objective(objective: str, target_latency: float | None, target_energy: float | None) -> Objective:
    if objective == "edp":
        return WeightedSum({"edp": 1.0}, log=True)
    if objective == "multi":
        return MultiObjective(["energy", "latency", "onchip_kb"])
    if objective == "target":
        targets = {m: ("<=", float(v)) for m, v in (("latency", target_latency), ("energy", target_energy)) if v is not None}
        if not targets:
            raise ConfigError("objective 'target' needs target_latency and/or target_energy")
        return TargetSpec(targets, tiebreak="latency")
    raise ConfigError(f"objective {objective!r} is not allowed; allowed: edp, multi, target")


def make_problem(workload: str = "tiny_cnn", template: str = "tpu_like", objective: str = "edp",
                 target_latency: float | None = None, target_energy: float | None = None,
                 lpf_levels: tuple[int, ...] = LPF_LEVELS, opt: str = "EDP", max_steps: int = 100) -> Problem:
    """``archgym/ZigZag-v0``: ZigZag on ``workload`` (built-in name, topology .csv or .onnx path) and an accelerator
    ``template``; objective "edp" (log energy-delay product), "multi" (energy, latency, on-chip memory) or
    "target" (latency/energy targets)."""
    sim = ZigZagSimulator(workload, template, tuple(lpf_levels), opt)
    return Problem(f"ZigZag/{template}/{sim.workload.name}", sim, _objective(objective, target_latency, target_energy),
                   max_steps=max_steps, info={"workload": sim.workload.describe(), "template": template})
