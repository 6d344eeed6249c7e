"""Objectives: one sign convention (higher is better), target specs, constraints and Pareto fronts."""

from __future__ import annotations

import numpy as np
import pytest
from toy_sims import ToySim

from archgym.errors import ConfigError
from archgym.objective import Constrained, MultiObjective, SingleMetric, TargetSpec, WeightedSum, pareto_front


def test_single_metric_signs():
    sim = ToySim()
    assert SingleMetric("score").bind(sim).reward({"score": 2.0, "cost": 5}) == 2.0
    assert SingleMetric("cost").bind(sim).reward({"score": 2.0, "cost": 5}) == -5.0


def test_unknown_or_report_only_metric_is_refused():
    sim = ToySim()
    with pytest.raises(ConfigError, match="'latency'.*metrics: score, cost"):
        SingleMetric("latency").bind(sim)
    from archgym.simulators.nasbench_graph import NASBenchGraphSimulator

    with pytest.raises(ConfigError, match="report-only"):
        SingleMetric("test_acc").bind(NASBenchGraphSimulator("cora"))


def test_target_spec_reward_and_termination():
    obj = TargetSpec({"cost": ("<=", 100), "score": (">=", -1)}).bind(ToySim())
    assert obj.reward({"cost": 200, "score": -1}) == pytest.approx(-1.0)
    assert obj.reward({"cost": 50, "score": -3}) == pytest.approx(-2.0)
    assert obj.reward({"cost": 50, "score": 0}) == 0.0
    assert obj.satisfied({"cost": 100, "score": -1}) and not obj.satisfied({"cost": 101, "score": 0})
    with pytest.raises(ConfigError, match="operator"):
        TargetSpec({"cost": ("<", 3)})
    with pytest.raises(ConfigError, match="needs a direction"):
        TargetSpec({"cost": 3})


def test_target_spec_tiebreak_prefers_better_feasible():
    obj = TargetSpec({"cost": ("<=", 100)}, tiebreak="cost").bind(ToySim())
    assert obj.reward({"cost": 10}) > obj.reward({"cost": 90}) > obj.reward({"cost": 110})


def test_weighted_sum_and_constraints():
    sim = ToySim()
    ws = WeightedSum({"score": 1.0, "cost": 0.5}).bind(sim)
    assert ws.reward({"score": 1.0, "cost": 4.0}) == pytest.approx(1.0 - 2.0)
    c = Constrained(SingleMetric("score"), {"cost": ("<=", 10)}).bind(sim)
    feasible, infeasible, worse = c.reward({"score": -5, "cost": 10}), c.reward({"score": 9, "cost": 20}), \
        c.reward({"score": 9, "cost": 40})
    assert feasible == -5 and infeasible < feasible and worse < infeasible


def test_multi_objective_vector_and_front():
    mo = MultiObjective(["score", "cost"]).bind(ToySim())
    assert mo.rewards({"score": 1.0, "cost": 3.0}) == [1.0, -3.0]
    pts = np.array([[1, -3], [2, -5], [0, -1], [1, -4], [2, -5], [0.5, -3]])
    assert list(pareto_front(pts)) == [0, 1, 2, 4]
    with pytest.raises(ConfigError):
        MultiObjective(["score"])
