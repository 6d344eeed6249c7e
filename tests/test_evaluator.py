"""The Evaluator: validation, crash and time-out isolation, private scratch directories, caching, logging."""

from __future__ import annotations

import pytest
from toy_sims import BadSim, ToySim

from archgym.evaluator import Evaluator
from archgym.log import TrialLog
from archgym.objective import SingleMetric

GOOD = {"width": 32, "depth": 4, "act": "gelu", "lr": 0.01}


def test_ok_cached_invalid_and_logged(tmp_path):
    with TrialLog(tmp_path / "t.sqlite") as log:
        run = log.start_run(env="toy")
        ev = Evaluator(ToySim(), SingleMetric("score"), log=log, run_id=run)
        r1 = ev.evaluate(GOOD)
        r2 = ev.evaluate(dict(GOOD))
        bad = ev.evaluate({**GOOD, "width": 7})
        ev.close()
        assert r1.ok and r1.reward == 0.0 and not r1.cached
        assert r2.cached and r2.sim_cost == 0.0 and r2.metrics == r1.metrics
        assert bad.status == "invalid" and "'width'" in bad.error and bad.reward == ev.objective.failure_reward
        trials = log.trials(run)
        assert [t["status"] for t in trials] == ["ok", "ok", "invalid"]
        assert trials[1]["cached"] and trials[2]["reward"] is None


def test_evaluate_many_matches_evaluate():
    ev = Evaluator(ToySim())
    designs = [GOOD, {**GOOD, "depth": 2}, {**GOOD, "act": "bogus"}, GOOD]
    many = ev.evaluate_many(designs)
    one = [Evaluator(ToySim()).evaluate(d) for d in designs]
    assert [r.status for r in many] == [r.status for r in one] == ["ok", "ok", "invalid", "ok"]
    assert [r.reward for r in many] == [r.reward for r in one]


def test_crash_exit_and_hang_become_failed_trials_and_the_search_goes_on(tmp_path):
    with TrialLog(tmp_path / "t.sqlite") as log:
        run = log.start_run(env="bad")
        ev = Evaluator(BadSim(), SingleMetric("score"), log=log, run_id=run, timeout=3.0,
                       workdir_root=tmp_path / "scratch")
        crash = ev.evaluate({**GOOD, "act": "relu"})
        died = ev.evaluate({**GOOD, "act": "tanh", "depth": 1})
        hang = ev.evaluate({**GOOD, "act": "tanh", "depth": 2})
        ok1 = ev.evaluate(GOOD)
        ok2 = ev.evaluate({**GOOD, "depth": 3})
        ev.close()
    assert crash.status == "failed" and "RuntimeError: simulator rejected width 32" in crash.error
    assert died.status == "failed" and "exit code 3" in died.error
    assert hang.status == "timeout" and "3 s" in hang.error
    # each evaluation saw only its own, empty scratch directory, removed afterwards
    assert ok1.ok and ok2.ok and ok1.metrics["cost"] == 1.0 and ok2.metrics["cost"] == 1.0
    assert not any((tmp_path / "scratch").rglob("scratch.txt"))


def test_nondeterministic_simulators_are_not_cached():
    sim = ToySim()
    sim.deterministic = False
    ev = Evaluator(sim)
    assert not ev.evaluate(GOOD).cached and not ev.evaluate(GOOD).cached


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_isolation_modes_agree(isolation):
    ev = Evaluator(ToySim(), isolation=isolation)
    try:
        assert ev.evaluate({**GOOD, "depth": 5}).metrics == {"score": -1.0, "cost": 160.0}
    finally:
        ev.close()
