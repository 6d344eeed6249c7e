"""The REINFORCE controller and AGNN's conservative explorer as generic searchers: they find a known optimum, are
seeded and resumable, and respect conditions, constraints and float parameters of any DesignSpace."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from archgym.errors import ConfigError  # noqa: E402
from archgym.evaluator import Evaluator  # noqa: E402
from archgym.registry import make_searcher  # noqa: E402
from archgym.simulator import Metric, Simulator  # noqa: E402
from archgym.space import Categorical, DesignSpace, Float, Integer, Monotone, Ordinal, layered  # noqa: E402

SEARCHERS = ("reinforce", "agnn")
TARGET = {"a": "c2", "b": "c0", "c": 3, "depth": 2, "layer0_op": "x", "layer1_op": "z", "layer0_w": 8}
BUDGET = 150  # evaluations allowed to reach the optimum (the space holds 21,760 designs)


class Toy(Simulator):
    """A conditional space whose score counts the decisions that match a hidden target (optimum = len(TARGET))."""

    name = "toy-known-optimum"
    metrics = (Metric("score"),)

    def __init__(self) -> None:
        self.space = DesignSpace(
            [Categorical("a", ("c0", "c1", "c2", "c3")), Categorical("b", ("c0", "c1", "c2", "c3")),
             Ordinal("c", (1, 2, 3, 4, 5)), Integer("depth", 1, 2),
             *layered("depth", 2, [Categorical("op", ("x", "y", "z", "w")), Ordinal("w", (2, 4, 8, 16))])],
            name="toy")

    def evaluate(self, design, fidelity=None, workdir=None):
        return {"score": float(sum(design.get(k) == v for k, v in TARGET.items()) - 0.1 * abs(design["c"] - 3))}


class Flaky(Toy):
    """Fails on every design with a = c3 (a failed trial must not break the learner)."""

    def evaluate(self, design, fidelity=None, workdir=None):
        if design["a"] == "c3":
            raise RuntimeError("simulated crash")
        return super().evaluate(design, fidelity, workdir)


def run(searcher, ev, steps, n=1):
    asked = []
    for _ in range(steps):
        designs = searcher.ask(n)
        results = ev.evaluate_many(designs)
        searcher.tell(designs, results)
        asked += designs
    return asked


@pytest.mark.slow
@pytest.mark.parametrize("name", SEARCHERS)
def test_finds_the_known_optimum_on_most_seeds(name):
    sim = Toy()
    optimum = float(len(TARGET))
    hits = 0
    for seed in range(5):
        searcher, ev = make_searcher(name, sim.space, seed=seed), Evaluator(sim)
        for _ in range(BUDGET):
            designs = searcher.ask(1)
            results = ev.evaluate_many(designs)
            searcher.tell(designs, results)
            if results[0].reward >= optimum:
                hits += 1
                break
    assert hits >= 4, f"{name} reached the optimum on {hits}/5 seeds within {BUDGET} evaluations"


@pytest.mark.parametrize("name", SEARCHERS)
def test_same_seed_same_designs_and_resume_continues_the_sequence(name):
    sim = Toy()
    full = run(make_searcher(name, sim.space, seed=7), Evaluator(sim), 30)
    assert full == run(make_searcher(name, sim.space, seed=7), Evaluator(sim), 30)
    assert full != run(make_searcher(name, sim.space, seed=8), Evaluator(sim), 30)

    first = make_searcher(name, sim.space, seed=7)
    ev = Evaluator(sim)
    head = run(first, ev, 12)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = make_searcher(name, sim.space, seed=0)
    resumed.load_state_dict(state)
    assert head + run(resumed, ev, 18) == full


@pytest.mark.parametrize("name", SEARCHERS)
def test_batches_failures_floats_and_constraints(name):
    space = DesignSpace(
        [Ordinal("w0", (1, 2, 4, 8)), Ordinal("w1", (1, 2, 4, 8)), Ordinal("w2", (1, 2, 4, 8)),
         Float("lr", 1e-4, 1e-1, log=True), Categorical("a", ("c0", "c1", "c2", "c3"))],
        constraints=[Monotone(("w0", "w1", "w2"))], name="constrained")

    class Sim(Simulator):
        metrics = (Metric("score"),)

        def __init__(self) -> None:
            self.space = space

        def evaluate(self, design, fidelity=None, workdir=None):
            if design["a"] == "c3":
                raise RuntimeError("simulated crash")
            return {"score": design["w2"] - design["w0"] - abs(np.log10(design["lr"]) + 2)}

    searcher = make_searcher(name, space, seed=1, float_bins=6)
    ev = Evaluator(Sim())
    designs = run(searcher, ev, 8, n=4)
    assert len(designs) == 32 and all(space.is_valid(d) for d in designs)
    assert {d["a"] for d in designs} >= {"c3"}  # failures were proposed and told without breaking the learner
    best = max(ev.evaluate_many(designs), key=lambda r: r.reward)
    assert best.reward > -3.0


def test_agnn_explorer_resamples_one_group_of_the_best_design():
    sim = Flaky()
    searcher = make_searcher("agnn", sim.space, seed=3, warmup=2, explore_tries=200)
    ev = Evaluator(sim)
    run(searcher, ev, 4)
    groups = {"a", "b", "c", "depth", "op", "w"}
    for _ in range(16):  # few enough that unseen one-group neighbours remain, so no fresh sample is needed
        best = dict(searcher.best)
        [design] = searcher.ask(1)
        changed = {k for k in set(design) | set(best) if design.get(k) != best.get(k)}
        kinds = {k.split("_", 1)[1] if k.startswith("layer") else k for k in changed}
        assert len(kinds) >= 1 and (len(kinds) == 1 or "depth" in kinds), (best, design)
        assert kinds <= groups
        previous = searcher.best_reward
        results = ev.evaluate_many([design])
        searcher.tell([design], results)
        if results[0].ok and results[0].reward > previous:
            assert searcher.best == results[0].design and searcher.best_reward == results[0].reward
        else:
            assert searcher.best == best and searcher.best_reward == previous


def test_bad_hyperparameters_are_refused():
    space = Toy().space
    with pytest.raises(ConfigError, match="lr"):
        make_searcher("reinforce", space, lr=-1.0)
    with pytest.raises(ConfigError, match="groups"):
        make_searcher("agnn", space, groups="cells")
    with pytest.raises(ConfigError, match="unknown argument"):
        make_searcher("agnn", space, population=3)
