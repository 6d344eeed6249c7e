"""SCALE-Sim simulator: numpy shim, agreement with SCALE-Sim's own file-based API, rejected designs, parallel safety."""

from __future__ import annotations

import csv
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("scalesim")

from archgym.evaluator import Evaluator  # noqa: E402
from archgym.registry import make_problem  # noqa: E402
from archgym.simulators import scalesim as ss  # noqa: E402
from archgym.simulators.workloads import Conv, Gemm, Workload, scalesim_row  # noqa: E402

# a fixed small workload with one repeated layer, so the per-shape scaling is checked too
WORKLOAD = Workload("fixed", (
    Conv("c1", 3, 8, 8, 8, 3, 1, 1),
    Conv("c2", 8, 16, 8, 8, 3, 2, 1),
    Conv("c2b", 8, 16, 8, 8, 3, 2, 1),
    Gemm("fc", 1, 10, 16),
))
DESIGN = {"array_rows": 8, "array_cols": 8, "ifmap_sram_kb": 4, "filter_sram_kb": 4, "ofmap_sram_kb": 2,
          "dataflow": "ws", "bandwidth_mode": "calc"}


def test_shim_unwraps_one_element_arrays_and_is_plain_int_otherwise():
    ss.install_numpy_shim()
    import scalesim.memory.read_buffer as rb

    conv = rb.int
    assert conv(np.array([7.0])) == 7 and type(conv(np.array([[3]]))) is int
    assert conv("12") == 12 and conv("ff", 16) == 255 and conv(3.9) == 3
    assert np.zeros((1, 1), dtype=conv).dtype == np.dtype(int)
    with pytest.raises(TypeError):
        conv(np.array([1, 2]))
    ss.install_numpy_shim()  # idempotent
    assert rb.int is conv


def _write_direct_inputs(tmp_path, design, workload):
    """SCALE-Sim's own inputs: a config file, a conv topology CSV (one row per layer occurrence) and a layout CSV."""
    user = design["bandwidth_mode"] == "user"
    bw = design.get("bandwidth", 10)
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(
        "[general]\nrun_name = direct\n\n"
        f"[run_presets]\nInterfaceBandwidth: {'USER' if user else 'CALC'}\nUseRamulatorTrace: False\n\n"
        f"[architecture_presets]\nArrayHeight: {design['array_rows']}\nArrayWidth: {design['array_cols']}\n"
        f"IfmapSramSzkB: {design['ifmap_sram_kb']}\nFilterSramSzkB: {design['filter_sram_kb']}\n"
        f"OfmapSramSzkB: {design['ofmap_sram_kb']}\nIfmapOffset: 0\nFilterOffset: 10000000\nOfmapOffset: 20000000\n"
        f"Bandwidth: {bw}\nDataflow: {design['dataflow']}\nReadRequestBuffer: 60\nWriteRequestBuffer: 60\n\n"
        f"[layout]\nIfmapCustomLayout: False\nFilterCustomLayout: False\nIfmapSRAMBankBandwidth: {bw}\n"
        f"IfmapSRAMBankNum: 1\nIfmapSRAMBankPort: 2\nFilterSRAMBankBandwidth: {bw}\nFilterSRAMBankNum: 1\n"
        "FilterSRAMBankPort: 2\n\n[sparsity]\nSparsitySupport: false\n"
    )
    topo = tmp_path / "topo.csv"
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
    for layer in workload.layers:
        row, repeat = scalesim_row(layer)
        assert row[7] == row[8]
        lines += [", ".join(str(x) for x in row[:8]) + ","] * repeat
    topo.write_text("\n".join(lines) + "\n")
    layout = tmp_path / "layout.csv"
    layout.write_text("Layer name,\n")
    return cfg, topo, layout


@pytest.mark.parametrize("design", [DESIGN, {**DESIGN, "dataflow": "os", "bandwidth_mode": "user", "bandwidth": 4}])
def test_cycles_match_scalesim_run_through_its_own_api(tmp_path, design):
    ss.install_numpy_shim()
    from scalesim.scale_sim import scalesim

    cfg, topo, layout = _write_direct_inputs(tmp_path, design, WORKLOAD)
    direct = scalesim(save_disk_space=True, verbose=False, config=str(cfg), topology=str(topo), layout=str(layout))
    direct.run_scale(top_path=str(tmp_path / "out"))
    with (tmp_path / "out" / "direct" / "COMPUTE_REPORT.csv").open() as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)][1:]
    with (tmp_path / "out" / "direct" / "DETAILED_ACCESS_REPORT.csv").open() as f:
        detail = [[c.strip() for c in r] for r in csv.reader(f)][1:]
    assert len(rows) == 4
    ours = ss.ScaleSimSimulator(WORKLOAD).evaluate(design)
    assert ours["cycles"] == sum(float(r[2]) for r in rows)
    assert ours["cycles_incl_prefetch"] == sum(float(r[1]) for r in rows)
    assert ours["stall_cycles"] == sum(float(r[3]) for r in rows)
    assert ours["ifmap_dram_reads"] == sum(float(r[12]) for r in detail)
    assert ours["ofmap_dram_writes"] == sum(float(r[18]) for r in detail)
    assert ours["cycles"] >= ss.pe_cycles_lower_bound(WORKLOAD, 64)


def test_rejected_design_is_a_failed_trial_with_scalesims_reason():
    # SCALE-Sim requires the user bandwidth to be divisible by the number of SRAM banks
    sim = ss.ScaleSimSimulator("tiny_cnn", sram_banks=10)
    with Evaluator(sim, isolation="inline") as ev:
        res = ev.evaluate({**DESIGN, "bandwidth_mode": "user", "bandwidth": 4})
    assert res.status == "failed"
    assert "ScaleSimError" in res.error and "divisible by total number of banks" in res.error


def test_exit_inside_scalesim_becomes_an_error_with_the_printed_reason(monkeypatch):
    import scalesim.single_layer_sim as sls

    def bad_run(self):
        print("ERROR: scalesim: this layer cannot be mapped")
        sys.exit()

    monkeypatch.setattr(sls.single_layer_sim, "run", bad_run)
    with pytest.raises(ss.ScaleSimError, match="cannot be mapped"):
        ss.simulate_layers(WORKLOAD, DESIGN)


def test_bad_arguments_name_the_field():
    from archgym.errors import ConfigError

    with pytest.raises(ConfigError, match="dataflows"):
        ss.make_space(dataflows=("rs",))
    with pytest.raises(ConfigError, match="workload 'nope'"):
        ss.ScaleSimSimulator("nope")
    with pytest.raises(ConfigError, match="objective"):
        make_problem("archgym/SCALESim-v0", objective="fast")


def test_four_parallel_process_evaluations_equal_serial():
    sim = ss.ScaleSimSimulator("tiny_cnn", array_sizes=(8, 16), sram_kb=(2, 4), bandwidths=(4, 8))
    rng = np.random.default_rng(3)
    designs = [sim.space.sample(rng) for _ in range(4)]
    serial = [sim.evaluate(d) for d in designs]

    def one(d):
        with Evaluator(sim, isolation="process", timeout=300) as ev:
            return ev.evaluate(d)

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(one, designs))
    assert all(r.status == "ok" for r in parallel), [r.error for r in parallel]
    assert [r.metrics for r in parallel] == serial


def test_problem_target_spec_and_space():
    p = make_problem("archgym/SCALESim-v0", workload="tiny_cnn", target_cycles=1000, target_sram_kb=12)
    assert p.simulator.isolation == "process" and p.simulator.deterministic
    d = p.space.validate({**DESIGN, "bandwidth_mode": "user", "bandwidth": 8})
    assert "bandwidth" in d and "bandwidth" not in p.space.validate(DESIGN)
    m = p.simulator.evaluate(DESIGN)
    p.objective.bind(p.simulator)
    assert m["sram_kb"] == 10 and m["pe_count"] == 64
    assert p.objective.satisfied(m) == (m["cycles"] <= 1000)
    assert 0 < m["compute_util"] <= 100 and 0 < m["mapping_efficiency"] <= 100
