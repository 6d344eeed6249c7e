"""The AGNN space and model, the graph data sets and the train-and-evaluate simulator (with parameter sharing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from archgym.errors import ConfigError, InvalidDesignError  # noqa: E402
from archgym.registry import ENVS, make_problem  # noqa: E402
from archgym.search_spaces.agnn import (  # noqa: E402
    ACTIVATIONS, AGGREGATORS, ATTENTIONS, agnn_space, build_model, layer_specs, reference_design,
)
from archgym.simulators.gnn_train import GNNTrainSimulator  # noqa: E402
from archgym.simulators.graph_data import load_dataset, planetoid, synthetic_sbm  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tiny_graph(n: int = 12, f: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g)
    src = torch.arange(n)
    edge_index = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([(src + 1) % n, src]),
                            torch.stack([src, (src + 5) % n])], dim=1)
    y = torch.arange(n) % 3
    return x, edge_index, y


def design_with(**layer: str) -> dict:
    d = reference_design("gat")
    for i in range(2):
        for k, v in layer.items():
            d[f"layer{i}_{k}"] = v
    return d


@pytest.mark.parametrize("aggregator", AGGREGATORS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_each_attention_and_aggregator_trains_a_step(attention, aggregator):
    x, edge_index, y = tiny_graph()
    design = design_with(attention=attention, aggregator=aggregator)
    design["layer0_heads"] = 2
    torch.manual_seed(0)
    model = build_model(design, x.size(1), 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x, edge_index), y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    opt.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert any(changed), "one training step changed no weight"
    with torch.no_grad():
        assert model.eval()(x, edge_index).shape == (x.size(0), 3)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds(activation):
    x, edge_index, _ = tiny_graph()
    out = build_model(design_with(activation=activation), x.size(1), 3).eval()(x, edge_index)
    assert out.shape == (x.size(0), 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("seed", range(6))
def test_model_is_permutation_equivariant(seed):
    """Relabelling the nodes permutes the outputs the same way (eval mode, so no dropout)."""
    space = agnn_space(3, min_depth=1)
    rng = np.random.default_rng(seed)
    x, edge_index, _ = tiny_graph(n=15, seed=seed)
    x = x.double()
    for attention in ATTENTIONS[seed::6]:
        design = space.sample(rng)
        design = {k: (attention if k.endswith("_attention") else v) for k, v in design.items()}
        torch.manual_seed(seed)
        model = build_model(design, x.size(1), 4).double().eval()
        perm = torch.from_numpy(rng.permutation(x.size(0)))
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel())
        with torch.no_grad():
            out = model(x, edge_index)
            out_perm = model(x[perm], inverse[edge_index])
        assert torch.allclose(out_perm, out[perm], atol=1e-9), design


def test_space_shapes_and_references():
    space = agnn_space()
    assert space.discrete and len(space) == 12
    for kind in ("gcn", "gat"):
        assert space.validate(reference_design(kind)) == reference_design(kind)
    specs = layer_specs(reference_design("gat"), 1433, 7)
    assert [(s.in_dim, s.heads, s.out_dim, s.concat) for s in specs] == [(1433, 8, 8, True), (64, 1, 7, False)]
    deep = agnn_space(3, min_depth=1)
    rng = np.random.default_rng(0)
    depths = set()
    for _ in range(30):
        d = deep.sample(rng)
        depths.add(d["depth"])
        assert f"layer{d['depth'] - 1}_hidden" not in d and len(layer_specs(d, 5, 3)) == d["depth"]
    assert depths == {1, 2, 3}
    with pytest.raises(ConfigError, match="heads"):
        agnn_space(heads=[3])
    with pytest.raises(InvalidDesignError, match="layer0_heads"):
        space.validate({**reference_design("gcn"), "layer0_heads": 3})


def test_synthetic_dataset_is_learnable_above_chance():
    data = synthetic_sbm(seed=1)
    assert int(data.train_mask.sum()) == 80 and not (data.train_mask & data.val_mask).any()
    sim = GNNTrainSimulator("synthetic", max_epochs=60, patience=60, seed=0)
    metrics = sim.evaluate(reference_design("gcn"))
    chance = 1.0 / data.num_classes
    assert metrics["test_acc"] > chance + 0.3 and metrics["val_acc"] > chance + 0.3


def test_simulator_is_reproducible_and_reports_per_epoch():
    sim = GNNTrainSimulator("synthetic", max_epochs=15, patience=50, seed=3, synthetic={"num_nodes": 120})
    design = reference_design("gat")
    a = sim.evaluate(design)
    b = GNNTrainSimulator("synthetic", max_epochs=15, patience=50, seed=3, synthetic={"num_nodes": 120}).evaluate(design)
    for k in ("val_acc", "test_acc", "params", "epochs"):
        assert a[k] == b[k]
    assert set(a) == {m.name for m in sim.metrics}
    records = list(sim.epochs_of(design, fidelity=5))
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5]
    assert records[-1]["val_acc"] == max(r["epoch_val_acc"] for r in records)
    assert all(r["latency"] > 0 and r["params"] == a["params"] for r in records)
    with pytest.raises(ConfigError, match="fidelity"):
        sim.evaluate(design, fidelity=0)
    steps = list(sim.evaluate_epochs(design, max_fidelity=3))  # the Ray runner's per-epoch protocol (ASHA)
    assert sim.max_fidelity == 15 and [e for e, _ in steps] == [1, 2, 3]
    assert set(steps[-1][1]) == set(a) and steps[-1][1]["val_acc"] == records[2]["val_acc"]


def test_parameter_sharing_reuses_homogeneous_layers_and_trains_fewer_epochs():
    kw = dict(max_epochs=40, patience=40, seed=0, synthetic={"num_nodes": 120})
    shared = GNNTrainSimulator("synthetic", share_weights=True, share_fraction=0.25, **kw)
    assert not shared.deterministic
    base = reference_design("gcn")
    first = shared.evaluate(base)
    assert first["epochs"] == 40
    child = {**base, "lr": 5e-3}  # same layers: every layer inherits
    assert shared.evaluate(child)["epochs"] == 10
    other = {**base, "layer1_activation": "elu"}  # layer 0 still homogeneous, so it inherits
    assert shared.evaluate(other)["epochs"] == 10
    fresh = {**base, "layer0_hidden": 32, "layer1_attention": "gat"}  # no layer homogeneous to a trained one
    assert shared.evaluate(fresh)["epochs"] == 40
    plain = GNNTrainSimulator("synthetic", share_weights=False, **kw)
    assert plain.evaluate(child)["epochs"] == 40
    shared.clear_pool()
    assert shared.evaluate(child)["epochs"] == 40


def test_missing_planetoid_files_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHGYM_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"Cora/raw.*--data-root.*ARCHGYM_DATA"):
        planetoid("cora", tmp_path, download=False)
    with pytest.raises(ConfigError, match="allowed"):
        load_dataset("imagenet")


@pytest.mark.skipif(not (SHARED / "planetoid" / "Cora" / "raw").is_dir(), reason="shared Planetoid files absent")
def test_planetoid_public_split_from_a_read_only_copy():
    data = load_dataset("cora", SHARED)
    assert data.num_nodes == 2708 and data.num_classes == 7
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [140, 500, 1000]
    assert not (SHARED / "planetoid" / "Cora" / "processed").exists()


def test_registered_env_is_cheap_and_checks_its_arguments():
    problem = make_problem("archgym/AGNN-v0", **ENVS["archgym/AGNN-v0"].test_kwargs)
    assert problem.space.name == "agnn-d2" and problem.objective.metric == "val_acc"
    metrics = problem.simulator.evaluate(problem.space.sample(np.random.default_rng(0)))
    assert 0.0 <= metrics["val_acc"] <= 1.0 and metrics["epochs"] <= 2
    with pytest.raises(ConfigError, match="dataset"):
        make_problem("archgym/AGNN-v0", dataset="mnist")
    with pytest.raises(ConfigError, match="device"):
        make_problem("archgym/AGNN-v0", device="tpu")


def test_simulator_pickles_light_for_process_isolation():
    """The Evaluator's worker process receives a pickled simulator: data and shared weights stay behind."""
    import pickle

    sim = GNNTrainSimulator("synthetic", max_epochs=3, share_weights=True, synthetic={"num_nodes": 80})
    sim.evaluate(reference_design("gcn"))
    blob = pickle.dumps(sim)
    clone = pickle.loads(blob)
    assert clone._data is None and not clone._pool and len(blob) < 20_000
    assert clone.evaluate(reference_design("gcn"))["epochs"] == 3  # nothing inherited in the fresh process
