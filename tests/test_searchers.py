"""Every registered searcher on small synthetic problems with a known optimum: it finds the optimum within a stated
budget on at least 4 of 5 seeds, the same seed gives the same designs, and a searcher restored from a JSON round trip
of its state continues exactly like the uninterrupted one."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from archgym.errors import ConfigError
from archgym.evaluator import Evaluator
from archgym.objective import MultiObjective, SingleMetric
from archgym.registry import SEARCHERS, make_searcher
from archgym.simulator import Metric, Simulator
from archgym.space import Categorical, DesignSpace, Float, Forbidden, Integer, Ordinal

HAVE_NNI = importlib.util.find_spec("nni") is not None and importlib.util.find_spec("hyperopt") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("stable_baselines3") is not None


class Mixed(Simulator):
    """180 designs (170 valid): width, depth, op, norm; score 0 only at width=32, depth=4, op=b, norm=batch."""

    name = "mixed-known-optimum"
    metrics = (Metric("score"), Metric("cost", "ops", "min", scale=100.0))
    optimum = 0.0

    def __init__(self) -> None:
        self.space = DesignSpace(
            [Ordinal("width", (8, 16, 32, 64, 128)), Integer("depth", 1, 6), Categorical("op", ("a", "b", "c")),
             Categorical("norm", ("none", "batch"))],
            [Forbidden((("op", "a"), ("depth", 1)))], name="mixed")

    def evaluate(self, design, fidelity=None, workdir=None):
        score = -(abs(math.log2(design["width"]) - 5) + 0.8 * abs(design["depth"] - 4)
                  + 1.5 * (design["op"] != "b") + 1.0 * (design["norm"] != "batch"))
        return {"score": score, "cost": float(design["width"] * design["depth"])}


class Numeric(Simulator):
    """845 integer/ordinal designs (for CMA-ES); score 0 only at x=7, y=3, z=4."""

    name = "numeric-known-optimum"
    metrics = (Metric("score"),)
    optimum = 0.0

    def __init__(self) -> None:
        self.space = DesignSpace([Integer("x", 0, 12), Integer("y", 0, 12), Ordinal("z", (1, 2, 4, 8, 16))],
                                 name="numeric")

    def evaluate(self, design, fidelity=None, workdir=None):
        return {"score": -(abs(design["x"] - 7) + abs(design["y"] - 3) + abs(math.log2(design["z"]) - 2))}


# searcher -> (problem, budget of evaluations to reach the optimum, hyperparameters); the mixed space has 170 designs
CASES = {
    "random": (Mixed, 160, {}),
    "random_walk": (Mixed, 40, {"accept": "better", "restart_prob": 0.1}),
    "grid": (Mixed, 170, {}),
    "ga": (Mixed, 60, {"population_size": 10}),
    "regularized_evolution": (Mixed, 70, {"population_size": 10, "sample_size": 3}),
    "aco": (Mixed, 60, {}),
    "optuna_tpe": (Mixed, 60, {}),
    "optuna_gp": (Mixed, 40, {}),
    "optuna_cmaes": (Numeric, 60, {}),
    "optuna_nsga2": (Mixed, 80, {"population_size": 10}),
    "nni_tpe": (Mixed, 100, {}),
    "nni_evolution": (Mixed, 60, {"population_size": 10}),
    "nni_anneal": (Mixed, 100, {}),
    "ppo": (Mixed, 90, {}),
    "ppo_constructive": (Mixed, 80, {"mode": "constructive"}),
}


def _name(case: str) -> str:
    return "ppo" if case.startswith("ppo") else case


def _skip(case: str) -> None:
    name = _name(case)
    if name.startswith("nni_") and not HAVE_NNI:
        pytest.skip("NNI (extra 'nni') is not installed")
    if name in ("ppo", "optuna_gp") and not HAVE_TORCH:
        pytest.skip("torch / stable-baselines3 are not installed")


def evaluator(sim):
    """Failed (here: forbidden) designs score below every valid one."""
    return Evaluator(sim, SingleMetric("score", failure_reward=-20.0))


def run(searcher, ev, batches):
    """Ask/tell the given batch sizes; returns every asked design."""
    asked = []
    for n in batches:
        designs = searcher.ask(n)
        assert len(designs) == n
        searcher.tell(designs, ev.evaluate_many(designs))
        asked += designs
    return asked


def test_every_searcher_of_this_module_is_registered():
    for case in CASES:
        assert _name(case) in SEARCHERS


OWN_FILES = ("optuna_gp", "ppo", "ppo_constructive")  # slower: tests/test_searchers_gp.py and _rl.py
FAST = [c for c in CASES if c not in OWN_FILES]


def check_optimum(case):
    """The searcher of ``case`` reaches the known optimum within its budget on at least 4 of seeds 0..4."""
    _skip(case)
    sim_cls, budget, kwargs = CASES[case]
    hits = 0
    for seed in range(5):
        sim = sim_cls()
        ev = evaluator(sim)
        searcher = make_searcher(_name(case), sim.space, seed=seed, **kwargs)
        best = -math.inf
        for _ in range(budget):
            designs = searcher.ask(1)
            results = ev.evaluate_many(designs)
            searcher.tell(designs, results)
            best = max([best] + [r.reward for r in results if r.ok])
            if best >= sim.optimum - 1e-9:
                break
        hits += best >= sim.optimum - 1e-9
    assert hits >= 4, f"{case} found the optimum within {budget} evaluations on {hits}/5 seeds"


@pytest.mark.parametrize("case", FAST)
def test_finds_the_known_optimum_on_4_of_5_seeds(case):
    check_optimum(case)


BATCHES = [3, 1, 2, 4, 1, 3, 2, 2, 5, 1, 3, 3]  # 30 designs, uneven batches as parallel workers would ask


def check_sequence(case, batches=BATCHES):
    """Same seed, same designs; another seed, other designs; a JSON round trip of the state resumes exactly."""
    _skip(case)
    sim_cls, _, kwargs = CASES[case]
    sim = sim_cls()
    name = _name(case)
    a = run(make_searcher(name, sim.space, seed=3, **kwargs), evaluator(sim), batches)
    b = run(make_searcher(name, sim.space, seed=3, **kwargs), evaluator(sim), batches)
    assert a == b
    other = run(make_searcher(name, sim.space, seed=4, **kwargs), evaluator(sim), batches)
    assert other != a
    first = make_searcher(name, sim.space, seed=3, **kwargs)
    ev = evaluator(sim)
    head = run(first, ev, batches[:6])
    state = json.loads(json.dumps(first.state_dict()))
    resumed = make_searcher(name, sim.space, seed=3, **kwargs)
    resumed.load_state_dict(state)
    tail = run(resumed, ev, batches[6:])
    assert head + tail == a


@pytest.mark.parametrize("case", FAST)
def test_same_seed_same_sequence_and_exact_resume(case):
    check_sequence(case)


def test_config_reports_the_hyperparameters():
    sim = Mixed()
    for name in ("random_walk", "grid", "ga", "regularized_evolution", "aco", "optuna_tpe", "optuna_nsga2"):
        s = make_searcher(name, sim.space, seed=0)
        cfg = s.config()
        assert set(cfg) == set(type(s).hyperparameters())
        assert all(k in type(s).hyperparameter_doc for k in cfg), name
        json.dumps(cfg)


def test_bad_hyperparameters_and_spaces_are_refused_with_the_reason():
    sim = Mixed()
    with pytest.raises(ConfigError, match="accept"):
        make_searcher("random_walk", sim.space, accept="sometimes")
    with pytest.raises(ConfigError, match="unknown argument 'popsize'"):
        make_searcher("ga", sim.space, popsize=3)
    with pytest.raises(ConfigError, match="up to 2e\\+07 designs"):
        big = DesignSpace([Integer(f"x{i}", 0, 9) for i in range(7)] + [Categorical("c", ("a", "b"))])
        make_searcher("grid", big, max_designs=1000)
    only_cat = DesignSpace([Categorical("a", ("x", "y")), Categorical("b", ("x", "y"))])
    with pytest.raises(ConfigError, match="only categorical"):
        make_searcher("optuna_cmaes", only_cat)


def test_grid_visits_every_valid_design_once():
    sim = Mixed()
    g = make_searcher("grid", sim.space, seed=0)
    designs = g.ask(170)
    keys = {sim.space.key(d) for d in designs}
    assert len(keys) == 170 == sim.space.size()
    assert all(sim.space.is_valid(d) for d in designs)


@pytest.mark.parametrize("name", ["ga", "regularized_evolution", "optuna_nsga2", "optuna_tpe"])
def test_multi_objective_searchers_take_reward_vectors(name):
    sim = Mixed()
    ev = Evaluator(sim, MultiObjective(["score", "cost"]))
    searcher = make_searcher(name, sim.space, seed=1, **({"population_size": 10} if name != "optuna_tpe" else {}))
    assert searcher.multi_objective
    asked = run(searcher, ev, [5] * 12)
    assert len({sim.space.key(d) for d in asked}) >= 50  # no collapse onto a few designs
    state = json.loads(json.dumps(searcher.state_dict()))
    resumed = make_searcher(name, sim.space, seed=1, **({"population_size": 10} if name != "optuna_tpe" else {}))
    resumed.load_state_dict(state)
    assert resumed.ask(3) == searcher.ask(3)


def test_nondominated_fronts_and_crowding():
    import numpy as np

    from archgym.algorithms.evolution import crowding, nondominated_fronts

    pts = np.array([[1, 5], [2, 4], [3, 3], [1, 1], [2, 2], [0, 0]], dtype=float)
    assert nondominated_fronts(pts) == [[0, 1, 2], [4], [3], [5]]
    cd = crowding(pts[[0, 1, 2]])
    assert np.isinf(cd[0]) and np.isinf(cd[2]) and cd[1] == pytest.approx(2.0)


def test_optuna_storage_persists_the_study(tmp_path):
    import optuna

    sim = Mixed()
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    s = make_searcher("optuna_tpe", sim.space, seed=0, storage=url, study_name="demo")
    run(s, evaluator(sim), [2, 2])
    study = optuna.load_study(study_name="demo", storage=url)
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) >= 4
    state = json.loads(json.dumps(s.state_dict()))
    with pytest.raises(ConfigError, match="already exists"):
        make_searcher("optuna_tpe", sim.space, seed=0, storage=url, study_name="demo").ask(1)
    resumed = make_searcher("optuna_tpe", sim.space, seed=0, storage=url, study_name="demo")
    resumed.load_state_dict(state)
    assert resumed.study.study_name == "demo"  # the stored study is reused, not duplicated
    assert len(resumed.study.trials) == len(study.trials)
    in_memory = make_searcher("optuna_tpe", sim.space, seed=0)
    in_memory.load_state_dict(state)
    assert resumed.ask(2) == in_memory.ask(2)


class Conditional(Simulator):
    """Floats (one log-scaled) and a parameter active only under one choice; optimum near lr=1e-2, momentum=0.9."""

    name = "conditional"
    metrics = (Metric("score"),)

    def __init__(self) -> None:
        self.space = DesignSpace(
            [Float("lr", 1e-4, 1.0, log=True), Categorical("opt", ("sgd", "adam")),
             Float("momentum", 0.0, 0.99, when={"opt": ("sgd",)}), Integer("layers", 1, 4)], name="conditional")

    def evaluate(self, design, fidelity=None, workdir=None):
        score = -abs(math.log10(design["lr"]) + 2) - 0.3 * abs(design["layers"] - 3)
        return {"score": score - (abs(design["momentum"] - 0.9) if design["opt"] == "sgd" else 0.5)}


@pytest.mark.parametrize("case", [c for c in CASES if c not in ("optuna_gp", "grid", "optuna_cmaes")] +
                         ["grid", "optuna_cmaes"])
def test_conditional_float_spaces_give_valid_designs_and_resume(case):
    _skip(case)
    sim = Conditional()
    kwargs = {k: v for k, v in CASES[case][2].items() if k in ("mode", "accept")}
    name = _name(case)
    ev = evaluator(sim)
    first = make_searcher(name, sim.space, seed=2, **kwargs)
    designs = run(first, ev, [4, 4, 4])
    assert all(sim.space.is_valid(d) for d in designs)
    assert any("momentum" in d for d in designs) and any("momentum" not in d for d in designs)
    assert len({json.dumps(d, sort_keys=True) for d in designs}) >= 10
    resumed = make_searcher(name, sim.space, seed=2, **kwargs)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert resumed.ask(3) == first.ask(3)
