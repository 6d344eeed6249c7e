"""ZigZag simulator: agreement with a direct ``get_hardware_performance_zigzag`` call, design edits, quiet logging,
failed trials and parallel safety."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("zigzag")

from archgym.evaluator import Evaluator  # noqa: E402
from archgym.registry import make_problem  # noqa: E402
from archgym.simulators import zigzag as zz  # noqa: E402
from archgym.simulators.workloads import Conv, Workload, zigzag_layer  # noqa: E402

# two convolutions and a repeat of the second (ZigZag's own API crashes on a fully unrolled layer, so no tiny GEMM)
WORKLOAD = Workload("fixed", (
    Conv("c1", 3, 8, 8, 8, 3, 1, 1),
    Conv("c2", 8, 16, 8, 8, 3, 2, 1),
    Conv("c2b", 8, 16, 8, 8, 3, 2, 1),
))


def _direct(hw_path, map_path, tmp_path, lpf, opt="EDP"):
    from zigzag.api import get_hardware_performance_zigzag

    entries = [zigzag_layer(layer, i) for i, layer in enumerate(WORKLOAD.layers)]
    with zz.quiet_zigzag():
        energy, latency, _ = get_hardware_performance_zigzag(
            entries, str(hw_path), str(map_path), opt=opt, dump_folder=str(tmp_path / "direct"),
            lpf_limit=lpf, loma_show_progress_bar=False)
    return energy, latency


def test_template_design_matches_direct_zigzag_call(tmp_path):
    zz._LAYER_MEMO.clear()
    sim = zz.ZigZagSimulator(WORKLOAD, "tpu_like")
    design = sim.template_design()
    ours = sim.evaluate(design, workdir=tmp_path / "ours")
    energy, latency = _direct(*zz.template_paths("tpu_like"), tmp_path, design["lpf_limit"])
    assert ours["energy"] == pytest.approx(energy, rel=1e-12)
    assert ours["latency"] == latency
    assert ours["edp"] == pytest.approx(energy * latency, rel=1e-12)
    parts = sum(v for k, v in ours.items() if k.startswith("energy_"))
    assert parts + ours["mac_energy"] == pytest.approx(ours["energy"], rel=1e-9)
    assert (tmp_path / "ours" / "accelerator.yaml").is_file()


def test_edited_design_matches_direct_call_on_its_yaml(tmp_path):
    sim = zz.ZigZagSimulator(WORKLOAD, "tpu_like")
    design = {**sim.template_design(), "array_D1": 16, "array_D2": 8, "sram_2MB_bits": 4194304, "sram_2MB_bw": 1024}
    sim.space.validate(design)
    ours = sim.evaluate(design, workdir=tmp_path / "ours")
    hw = sim.accelerator_data(design)
    assert hw["operational_array"]["sizes"] == [16, 8]
    sram = hw["memories"]["sram_2MB"]
    assert sram["size"] == 4194304 and max(p["bandwidth_max"] for p in sram["ports"]) == 1024
    assert sram["r_cost"] == pytest.approx(sim.hardware["memories"]["sram_2MB"]["r_cost"] * 0.5 * 0.5)
    assert sim.mapping_data(design)[0]["spatial_mapping"] == {"D1": ["K, 16"], "D2": ["C, 8"]}
    energy, latency = _direct(tmp_path / "ours" / "accelerator.yaml", tmp_path / "ours" / "mapping.yaml", tmp_path,
                              design["lpf_limit"])
    assert ours["energy"] == pytest.approx(energy, rel=1e-12) and ours["latency"] == latency
    assert ours["pe_count"] == 128


def test_zigzag_does_not_touch_the_users_logging():
    zz._LAYER_MEMO.clear()  # make ZigZag really run
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("zigzag").level)
    zz.ZigZagSimulator("tiny_cnn:conv1", "tpu_like").evaluate(zz.ZigZagSimulator("tiny_cnn:conv1").template_design())
    assert (list(root.handlers), root.level, logging.getLogger("zigzag").level) == before


def test_zigzag_failure_is_a_failed_trial_with_its_reason(monkeypatch):
    sim = zz.ZigZagSimulator("tiny_cnn:conv1", "tpu_like")
    broken = sim.accelerator_data(sim.template_design())
    broken["memories"]["sram_2MB"]["size"] = "huge"
    monkeypatch.setattr(zz.ZigZagSimulator, "accelerator_data", lambda self, design: broken)
    with Evaluator(sim, isolation="inline") as ev:
        res = ev.evaluate(sim.template_design())
    assert res.status == "failed" and "ZigZagError" in res.error and "validate" in res.error


def test_space_and_bad_arguments():
    from archgym.errors import ConfigError

    sim = zz.ZigZagSimulator("tiny_cnn", "eyeriss_like")
    assert "array_D1" in sim.space.names and "lpf_limit" in sim.space.names
    assert all(f"{m}_bits" in sim.space.names for m in sim.onchip) and "dram" not in sim.onchip
    sim.space.validate(sim.template_design())
    with pytest.raises(ConfigError, match="template 'tpu'"):
        zz.ZigZagSimulator("tiny_cnn", "tpu")
    with pytest.raises(ConfigError, match="opt"):
        zz.ZigZagSimulator("tiny_cnn", opt="area")
    with pytest.raises(ConfigError, match="objective"):
        make_problem("archgym/ZigZag-v0", objective="speed")


@pytest.mark.slow
def test_four_parallel_process_evaluations_equal_serial():
    sim = zz.ZigZagSimulator("tiny_cnn:conv1,conv2", "tpu_like", lpf_levels=(2,))
    rng = np.random.default_rng(5)
    designs = [sim.space.sample(rng) for _ in range(4)]
    zz._LAYER_MEMO.clear()
    serial = [sim.evaluate(d) for d in designs]

    def one(d):
        with Evaluator(sim, isolation="process", timeout=300) as ev:
            return ev.evaluate(d)

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(one, designs))
    assert all(r.status == "ok" for r in parallel), [r.error for r in parallel]
    for r, s in zip(parallel, serial):
        assert r.metrics == pytest.approx(s, rel=1e-12)
