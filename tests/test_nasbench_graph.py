"""NAS-Bench-Graph env: canonical keys merge isomorphs, every design maps into the table, the restricted unpickler
refuses code, and the table's facts match the benchmark's published numbers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from archgym.errors import ConfigError
from archgym.search_spaces.nasbench_graph import make_space
from archgym.simulators.nasbench_graph import NASBenchGraphSimulator, load_bench_bytes, load_table


def test_every_design_maps_to_one_of_26206_architectures():
    space = make_space("cora")
    table = load_table("cora")
    assert len(table) == 26206
    keys = {space.key(d) for d in space.enumerate()}
    assert len(keys) == 26206
    assert {int(k.split(":")[1]) for k in keys} == set(table)


def test_isomorphic_designs_share_a_key_and_metrics():
    sim = NASBenchGraphSimulator("cora")
    space = sim.space
    # node 1 and node 2 both read the input: swapping their operations gives the same network
    a = {"in0": 0, "in1": 0, "in2": 1, "in3": 2, "op0": "gcn", "op1": "gat", "op2": "sage", "op3": "gin"}
    b = {"in0": 0, "in1": 0, "in2": 2, "in3": 1, "op0": "gat", "op1": "gcn", "op2": "sage", "op3": "gin"}
    assert space.key(a) == space.key(b)
    assert sim.evaluate(a) == sim.evaluate(b)
    c = {**a, "op3": "fc"}
    assert space.key(c) != space.key(a)


def test_table_facts_match_the_benchmark():
    for dataset, best in (("cora", 81.93), ("citeseer", 72.80), ("pubmed", 81.13)):
        valid = np.array([r[0] for r in load_table(dataset).values()])
        assert valid.max() == pytest.approx(best, abs=0.01)
    assert len(load_table("proteins")) == 2021
    assert len(make_space("proteins").params["op0"].choices) == 5


def test_all_skip_network_is_forbidden():
    space = make_space("cora")
    with pytest.raises(Exception, match="only skip connections"):
        space.validate({"in0": 0, "in1": 1, "in2": 2, "in3": 3, "op0": "skip", "op1": "skip", "op2": "skip",
                        "op3": "skip"})


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        load_bench_bytes(pickle.dumps({0: Evil()}))
    ok = load_bench_bytes(pickle.dumps({1: {"valid_perf": np.float64(0.5), "perf": 0.4}}))
    assert ok[1]["valid_perf"] == 0.5


def test_unknown_dataset_is_refused():
    with pytest.raises(ConfigError, match="allowed: cora, citeseer"):
        NASBenchGraphSimulator("mnist")
