"""Co-design env: NAS-Bench-Graph accuracy plus ZigZag cost of the same network's layers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("zigzag")
pytest.importorskip("nas_bench_graph")

from archgym.errors import ConfigError  # noqa: E402
from archgym.evaluator import Evaluator  # noqa: E402
from archgym.registry import make_problem  # noqa: E402
from archgym.simulators.codesign import GRAPH_STATS, CoDesignSimulator, gnn_workload  # noqa: E402
from archgym.simulators.nasbench_graph import NASBenchGraphSimulator  # noqa: E402


def test_gnn_workload_counts_transforms_and_aggregation():
    nodes, edges, feats, classes = GRAPH_STATS["cora"]
    wl = gnn_workload(("gcn", "sage", "fc", "skip"), "cora", 64)
    names = [layer.name for layer in wl.layers]
    assert names == ["preprocess", "node0.gcn.transform", "node0.gcn.aggregate", "node1.sage.transform",
                     "node1.sage.aggregate", "node2.fc.transform", "classifier"]
    degree = -(-edges // nodes)
    expected = nodes * 64 * (feats + 64 * (1 + 2 + 1) + 2 * degree) + nodes * classes * 64
    assert wl.macs == expected


def test_codesign_metrics_are_the_benchmark_and_zigzag_numbers():
    sim = CoDesignSimulator("cora", "tpu_like", hidden=64, lpf_levels=(2,))
    sim = pickle.loads(pickle.dumps(sim))
    design = {"in0": 0, "in1": 1, "in2": 2, "in3": 3, "op0": "gcn", "op1": "fc", "op2": "gcn", "op3": "skip",
              **sim.hw.template_design()}
    m = sim.evaluate(design)
    table = NASBenchGraphSimulator("cora").evaluate(design)
    assert m["valid_acc"] == table["valid_acc"] and m["test_acc"] == table["test_acc"]
    hw = sim.hw.run(sim.workload(design), sim.hw.template_design())
    assert m["hw_energy"] == hw["energy"] and m["hw_latency"] == hw["latency"] and m["hw_pe_count"] == 1024
    bigger = sim.evaluate({**design, "op3": "gin"})
    assert bigger["macs"] > m["macs"] and bigger["hw_energy"] > m["hw_energy"]


def test_isomorphic_networks_share_a_key_and_accelerators_do_not():
    sim = CoDesignSimulator("cora", "tpu_like", hidden=64, lpf_levels=(2,))
    hw = sim.hw.template_design()
    a = {"in0": 0, "in1": 0, "in2": 0, "in3": 0, "op0": "gcn", "op1": "sage", "op2": "fc", "op3": "gat", **hw}
    b = {**a, "op0": "sage", "op1": "gcn"}
    assert sim.space.key(a) == sim.space.key(b)
    assert sim.space.key(a) != sim.space.key({**a, "array_D1": 64})


def test_codesign_problem_through_the_evaluator_and_errors():
    p = make_problem("archgym/CoDesignNBG-v0", dataset="cora", lpf_levels=[2], hidden=64, objective="constrained",
                     max_hw_latency=5e6)
    rng = np.random.default_rng(0)
    with Evaluator(p.simulator, p.objective, isolation="inline") as ev:
        res = ev.evaluate(p.space.sample(rng))
    assert res.ok and set(res.metrics) >= {"valid_acc", "hw_edp", "hw_latency"}
    if res.metrics["hw_latency"] <= 5e6:
        assert res.reward == res.metrics["valid_acc"]
    else:
        assert res.reward < 0
    with pytest.raises(ConfigError, match="max_hw_latency"):
        make_problem("archgym/CoDesignNBG-v0", objective="constrained")
    with pytest.raises(ConfigError, match="co-design supports"):
        CoDesignSimulator("proteins")
