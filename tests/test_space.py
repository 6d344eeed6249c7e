"""DesignSpace: sampling, validation errors, encodings, variation operators, structured spaces and conversions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toy_sims import toy_space

from archgym.errors import InvalidDesignError
from archgym.space import (
    Categorical,
    DesignSpace,
    Equal,
    Forbidden,
    Integer,
    Monotone,
    Ordinal,
    dag_inputs,
    layered,
)


def layered_space() -> DesignSpace:
    template = [Categorical("op", ("gcn", "gat", "sage")), Ordinal("units", (8, 16, 32, 64))]
    params = [Integer("depth", 1, 4), *layered("depth", 4, template)]
    units = [f"layer{i}_units" for i in range(4)]
    return DesignSpace(params, [Monotone(tuple(units))], name="layered")


def test_sample_is_valid_and_seeded():
    space = layered_space()
    a = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    b = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    assert a == b
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = space.sample(rng)
        assert space.validate(d) == d
        assert set(k for k in d if k.startswith("layer") and k.endswith("_op")) == {f"layer{i}_op" for i in range(d["depth"])}
        units = [d[f"layer{i}_units"] for i in range(d["depth"])]
        assert units == sorted(units)


def test_validation_errors_name_parameter_value_and_allowed():
    space = toy_space()
    good = {"width": 8, "depth": 2, "act": "relu", "lr": 0.01}
    with pytest.raises(InvalidDesignError, match=r"'width'.*12.*\[4, 8, 16, 32, 64\]"):
        space.validate({**good, "width": 12})
    with pytest.raises(InvalidDesignError, match=r"'depth'.*9.*1\.\.6"):
        space.validate({**good, "depth": 9})
    with pytest.raises(InvalidDesignError, match=r"'lr'.*\[0.0001, 0.1\]"):
        space.validate({**good, "lr": 2.0})
    with pytest.raises(InvalidDesignError, match="unknown parameter 'color'"):
        space.validate({**good, "color": 1})
    with pytest.raises(InvalidDesignError, match="missing parameter 'act'"):
        space.validate({k: v for k, v in good.items() if k != "act"})
    assert space.validate({**good, "width": np.int64(8)})["width"] == 8


def test_conditional_and_constraint_errors():
    space = layered_space()
    d = {"depth": 1, "layer0_op": "gcn", "layer0_units": 8, "layer1_op": "gat"}
    with pytest.raises(InvalidDesignError, match="'layer1_op' is inactive"):
        space.validate(d)
    d = {"depth": 2, "layer0_op": "gcn", "layer0_units": 32, "layer1_op": "gat", "layer1_units": 8}
    with pytest.raises(InvalidDesignError, match="layer0_units <= layer1_units violated"):
        space.validate(d)


def test_equal_and_forbidden_constraints():
    space = DesignSpace([Categorical("a", ("x", "y")), Categorical("b", ("x", "y")), Integer("c", 0, 1)],
                        [Equal("a", "b"), Forbidden((("a", "x"), ("c", 0)))])
    designs = list(space.enumerate())
    assert designs == [{"a": "x", "b": "x", "c": 1}, {"a": "y", "b": "y", "c": 0}, {"a": "y", "b": "y", "c": 1}]
    assert space.size() == 3
    assert space.allowed_values("b", {"a": "y"}) == ["y"]


def test_dag_inputs_express_a_dag():
    space = DesignSpace([*dag_inputs(4), *(Categorical(f"op{i}", ("a", "b")) for i in range(4))])
    assert space.size() == 1 * 2 * 3 * 4 * 2**4
    for d in space.enumerate():
        assert all(d[f"in{i}"] <= i for i in range(4))


@pytest.mark.parametrize("kind", ["index", "unit"])
def test_encode_decode_round_trip(kind):
    space = layered_space()
    rng = np.random.default_rng(1)
    for _ in range(100):
        d = space.sample(rng)
        assert space.decode(space.encode(d, kind), kind) == d


def test_onehot_encoding_shape_and_names():
    space = toy_space()
    d = {"width": 32, "depth": 4, "act": "gelu", "lr": 0.01}
    v = space.encode(d, "onehot")
    names = space.encoding_names("onehot")
    assert len(v) == len(names) == 6
    assert v[names.index("act=gelu")] == 1.0 and v[names.index("act=relu")] == 0.0


def test_mutate_and_crossover_stay_valid_and_differ():
    space = layered_space()
    rng = np.random.default_rng(2)
    for _ in range(100):
        a, b = space.sample(rng), space.sample(rng)
        m = space.mutate(a, rng)
        assert m != a and space.is_valid(m)
        assert space.is_valid(space.crossover(a, b, rng))


def test_canonical_key_and_fingerprint():
    space = toy_space()
    d = {"width": 32, "depth": 4, "act": "gelu", "lr": 0.01}
    reordered = dict(reversed(list(d.items())))
    assert space.key(space.validate(reordered)) == space.key(space.validate(d))
    assert json.loads(space.key(d)) == d
    assert space.fingerprint() == toy_space().fingerprint()
    other = DesignSpace([Ordinal("width", (4, 8)), Integer("depth", 1, 6)])
    assert other.fingerprint() != space.fingerprint()


def test_size_refuses_huge_space():
    space = DesignSpace([Integer(f"x{i}", 0, 99) for i in range(5)])
    with pytest.raises(InvalidDesignError, match="enumeration limit"):
        space.size()


def test_conversions():
    space = toy_space()
    gym_space = space.to_gymnasium()
    assert gym_space.shape == (4,)
    d = space.from_gymnasium(gym_space.sample())
    assert space.is_valid(d)
    assert set(space.to_optuna()) == set(space.names)
    nni = space.to_nni()
    assert nni["width"] == {"_type": "choice", "_value": [4, 8, 16, 32, 64]}
    assert nni["lr"]["_type"] == "loguniform"
    discrete = DesignSpace([Ordinal("w", (1, 2, 4)), Categorical("c", ("a", "b"))])
    assert list(discrete.to_gymnasium().nvec) == [3, 2]
    assert discrete.from_gymnasium([2, 1]) == {"w": 4, "c": "b"}


def test_optuna_define_by_run_respects_conditions():
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = layered_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        d = space.suggest_optuna(trial)
        assert set(d) == set(space._complete(d, np.random.default_rng(0)))
        study.tell(trial, 0.0)


def test_ray_param_space_projects_to_valid_design():
    pytest.importorskip("ray")
    space = layered_space()
    ps = space.to_ray_tune()
    assert set(ps) == set(space.names)
    full = {"depth": 2, "layer0_op": "gcn", "layer0_units": 8, "layer1_op": "gat", "layer1_units": 16,
            "layer2_op": "gat", "layer2_units": 8, "layer3_op": "gat", "layer3_units": 8}
    assert space.project(full) == {k: full[k] for k in ("depth", "layer0_op", "layer0_units", "layer1_op", "layer1_units")}
