"""One-shot searchers (DARTS, DrNAS, GDAS, SPOS) on the TangleNAS envs: contract, any-time readout in the trial log,
exact resume, clear errors; the data readers and the standalone-training simulator."""

from __future__ import annotations

import gzip
import json
import pickle
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archgym.errors import ConfigError  # noqa: E402
from archgym.log import TrialLog  # noqa: E402
from archgym.registry import ENVS, make_problem, make_searcher  # noqa: E402
from archgym.runner import RunSpec, start_run  # noqa: E402
from archgym.simulators import tangle_data as td  # noqa: E402
from archgym.space import DesignSpace, Integer  # noqa: E402

METHODS = ["darts", "drnas", "gdas", "spos"]
CHEAP = {"steps_per_epoch": 2, "batch_size": 16}


def conv_problem():
    return make_problem("archgym/TangleConv-v0", **ENVS["archgym/TangleConv-v0"].test_kwargs)


@pytest.mark.parametrize("method", METHODS)
def test_searcher_proposes_valid_designs_and_resumes_exactly(method):
    problem = conv_problem()
    extra = {"population": 3, "eval_batches": 1} if method == "spos" else {"warmup_epochs": 0}
    s = make_searcher(method, problem.space, seed=3, **CHEAP, **extra)
    first = s.ask(2)
    assert len(first) == 2 and all(problem.space.is_valid(d) for d in first)
    state = json.loads(json.dumps(s.state_dict()))  # JSON-able
    resumed = make_searcher(method, problem.space, seed=3, **CHEAP, **extra)
    resumed.load_state_dict(state)
    assert s.ask(1) == resumed.ask(1)
    assert s.state_dict()["epoch"] == 3
    again = make_searcher(method, problem.space, seed=3, **CHEAP, **extra)
    assert again.ask(2) == first  # seeded: same proposals


def test_gradient_searchers_move_architecture_weights():
    problem = conv_problem()
    for method in ("darts", "drnas", "gdas"):
        s = make_searcher(method, problem.space, seed=0, warmup_epochs=0, **CHEAP)
        s.ask(1)
        dist = s.arch_distribution()
        assert set(dist) == set(problem.space.params)
        assert any(abs(p - 1 / len(v)) > 1e-4 for v in dist.values() for p in v), method


def test_gdas_temperature_anneals():
    s = make_searcher("gdas", conv_problem().space, tau_max=5.0, tau_min=0.5, anneal_epochs=3, **CHEAP)
    taus = []
    for _ in range(4):
        taus.append(s.tau())
        s.epoch += 1
    assert taus == pytest.approx([5.0, 2.75, 0.5, 0.5])


def test_any_time_readout_lands_in_the_trial_log(tmp_path):
    spec = RunSpec("archgym/TangleConv-v0", dict(ENVS["archgym/TangleConv-v0"].test_kwargs), "drnas",
                   {**CHEAP, "warmup_epochs": 0}, seed=1, budget=3)
    with TrialLog(tmp_path / "t.sqlite") as log:
        runner = start_run(log, spec)
        assert runner.run() == 3
        trials = log.trials(runner.run_id)
        assert [t["status"] for t in trials] == ["ok"] * 3
        assert all(0.0 <= t["metrics"]["val_acc"] <= 1.0 for t in trials)
        assert log.run(runner.run_id)["state"]["epoch"] == 3


def test_one_shot_searchers_refuse_other_spaces_and_bad_arguments():
    plain = DesignSpace([Integer("x", 0, 3)], name="toy")
    for method in METHODS:
        with pytest.raises(ConfigError, match="tangle-conv"):
            make_searcher(method, plain)
    space = conv_problem().space
    with pytest.raises(ConfigError, match="supernet"):
        make_searcher("darts", space, supernet="sparse")
    with pytest.raises(ConfigError, match="unknown argument 'tau'"):
        make_searcher("drnas", space, tau=1.0)
    with pytest.raises(ConfigError, match="search"):
        make_searcher("spos", space, search="bayes")
    with pytest.raises(ConfigError, match="tau_min"):
        make_searcher("gdas", space, tau_min=2.0, tau_max=1.0)


def test_classic_supernet_also_searches():
    s = make_searcher("darts", conv_problem().space, supernet="classic", warmup_epochs=0, **CHEAP)
    assert conv_problem().space.is_valid(s.ask(1)[0])


def test_vit_and_gpt_searchers_run():
    for env in ("archgym/TangleViT-v0", "archgym/TangleGPT-v0"):
        problem = make_problem(env, **ENVS[env].test_kwargs)
        for method in ("darts", "spos"):
            s = make_searcher(method, problem.space, seed=0, steps_per_epoch=1, batch_size=8,
                              **({"population": 2, "eval_batches": 1} if method == "spos" else {"warmup_epochs": 0}))
            d = s.ask(1)[0]
            assert problem.space.is_valid(d)
            assert set(problem.simulator.evaluate(d)) == {m.name for m in problem.simulator.metrics}


def test_gpt_on_tinyshakespeare_when_present():
    path = td.shared_shakespeare()
    if path is None:
        pytest.skip("tinyshakespeare/input.txt not in the shared data folder")
    problem = make_problem("archgym/TangleGPT-v0", text_path=str(path), max_chars=50_000, steps=3, embed_dims=[16, 32],
                           layers=[1, 2], heads=[1, 2])
    s = make_searcher("drnas", problem.space, steps_per_epoch=2, batch_size=8, warmup_epochs=0)
    metrics = problem.simulator.evaluate(s.ask(1)[0])
    assert 0 < metrics["val_loss"] < 10


# --------------------------------------------------------------------------------------------------------------------
# Simulator and data
# --------------------------------------------------------------------------------------------------------------------


def test_standalone_simulator_is_seeded_and_scales_with_fidelity():
    problem = conv_problem()
    d = problem.space.sample(np.random.default_rng(0))
    a, b = problem.simulator.evaluate(d), problem.simulator.evaluate(d)
    assert a["val_acc"] == b["val_acc"] and a["params"] == b["params"]
    with pytest.raises(ConfigError, match="fidelity"):
        problem.simulator.evaluate(d, fidelity=1.5)
    with pytest.raises(ConfigError, match="epochs"):
        make_problem("archgym/TangleConv-v0", epochs=0)
    with pytest.raises(ConfigError, match="dataset"):
        make_problem("archgym/TangleConv-v0", dataset="mnist2").simulator.evaluate(d)


def _write_idx(path, arr: np.ndarray) -> None:
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[arr.dtype.type], arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + arr.tobytes())


def test_fashion_mnist_idx_reader(tmp_path):
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(0, 255, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", xs)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ys)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", xs[:10])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", ys[:10])
    assert np.array_equal(td.read_idx(tmp_path / "train-images-idx3-ubyte.gz"), xs)
    data = td.load_images("fashion_mnist", str(tmp_path))
    assert data.shape == (1, 28, 28) and len(data.x_train) == 36 and len(data.x_val) == 4 and len(data.y_test) == 10
    with pytest.raises(ConfigError, match="data_root"):
        td.load_images("fashion_mnist")
    with pytest.raises(ConfigError, match="t10k-images"):
        (tmp_path / "t10k-images-idx3-ubyte").unlink()
        td.load_images("fashion_mnist", str(tmp_path))


def test_cifar10_pickle_reader(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}, f)
    data = td.load_images("cifar10", str(tmp_path))
    assert data.shape == (3, 32, 32) and len(data.x_train) == 45 and len(data.x_test) == 10 and data.n_classes == 10
    assert abs(float(data.x_train.mean())) < 0.1  # normalised with train statistics


def test_text_loader(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("héllo wörld " * 200, encoding="utf-8")
    data = td.load_text(str(f))
    assert set(data.vocab) == set("héllo wörld") and len(data.train) + len(data.val) + len(data.test) == 2400
    assert data.decode(data.train[:5]) == "héllo"
    f.write_bytes(b"\xff\xfe" * 600)
    with pytest.raises(ConfigError, match="UTF-8"):
        td.load_text(str(f))
    with pytest.raises(ConfigError, match="does not exist"):
        td.load_text(str(tmp_path / "missing.txt"))
    assert len(td.load_text().vocab) > 50  # the default corpus ships with Python
