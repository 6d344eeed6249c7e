"""Proxy cost models: datasets from logs, save/load round trips, fingerprint refusal, evaluation figures, the proxy
as a simulator (CLI --simulator, resume) and the proxy-in-the-loop searcher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nas_bench_graph")

from archgym.errors import ConfigError, LogError  # noqa: E402
from archgym.evaluator import Evaluator  # noqa: E402
from archgym.log import TrialLog  # noqa: E402
from archgym.proxies.evaluate import fidelity, learning_curve, train_and_evaluate  # noqa: E402
from archgym.proxies.features import DagLayout, encode_designs, feature_names, load_dataset  # noqa: E402
from archgym.proxies.proxy import Proxy  # noqa: E402
from archgym.registry import make_problem, make_searcher  # noqa: E402
from archgym.runner import RunSpec, log_path, start_run  # noqa: E402
from archgym.simulator import Simulator  # noqa: E402

ENV = "archgym/NASBenchGraph-v0"
SMALL = {"rf": {"n_estimators": 20}, "gbm": {"n_members": 2, "max_iter": 20},
         "mlp": {"n_members": 2, "epochs": 5, "hidden": 16}, "gnn": {"n_members": 2, "epochs": 3, "hidden": 8}}


def _random_run(out: Path, budget: int, seed: int) -> Path:
    with TrialLog(log_path(out)) as log:
        start_run(log, RunSpec(ENV, {"dataset": "cora"}, "random", {}, seed, budget, None, 20)).run()
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _random_run(tmp_path_factory.mktemp("proxy") / "r0", 150, 0)


@pytest.fixture(scope="module")
def data(run_dir: Path):
    return load_dataset([run_dir], "valid_acc")


def test_dataset_from_log(data) -> None:
    assert len(data) == 150 and data.n_failed == 0
    assert data.space.fingerprint() == make_problem(ENV).space.fingerprint()
    X = encode_designs(data.space, data.designs, "full")
    assert X.shape == (150, len(feature_names(data.space, "full")))
    assert np.all(X.sum(axis=1) == len(data.space))  # one hot per parameter
    with pytest.raises(ConfigError, match="no successful trial reports target 'cycles'"):
        load_dataset([run_dir_of(data)], "cycles")


def run_dir_of(data) -> str:
    return data.sources[0]["log"]


@pytest.mark.parametrize("model", ["rf", "gbm", "mlp", "gnn"])
def test_save_load_round_trip_is_identical(data, model: str, tmp_path: Path) -> None:
    proxy = Proxy(data.space, "valid_acc", model, model_args=SMALL[model], seed=3).fit(data.designs[:100], data.y[:100])
    mean, std = proxy.predict_dist(data.designs[100:])
    assert np.all(std >= 0) and np.ptp(mean) > 0
    proxy.save(tmp_path / "p")
    manifest = json.loads((tmp_path / "p" / "proxy.json").read_text())
    assert manifest["metric"] == "valid_acc" and manifest["fingerprint"] == data.space.fingerprint()
    assert manifest["space"] == data.space.to_dict()
    loaded = Proxy.load(tmp_path / "p", data.space)
    mean2, std2 = loaded.predict_dist(data.designs[100:])
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(std, std2)


def test_mismatched_space_is_refused(data, tmp_path: Path) -> None:
    Proxy(data.space, "valid_acc", "rf", model_args=SMALL["rf"]).fit(data.designs, data.y).save(tmp_path / "p")
    other = make_problem(ENV, dataset="proteins").space
    with pytest.raises(ConfigError, match="fingerprint"):
        Proxy.load(tmp_path / "p", other)
    from archgym.proxies.serve import apply_simulator_override

    with pytest.raises(ConfigError, match="only serves the exact space"):
        apply_simulator_override(make_problem(ENV, dataset="citeseer"), f"proxy:{tmp_path / 'p'}")
    with pytest.raises(ConfigError, match="allowed: proxy:PATH"):
        apply_simulator_override(make_problem(ENV), "table:x")


def test_tampered_model_file_is_refused(data, tmp_path: Path) -> None:
    Proxy(data.space, "valid_acc", "rf", model_args=SMALL["rf"]).fit(data.designs, data.y).save(tmp_path / "p")
    with open(tmp_path / "p" / "model.skops", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(LogError, match="checksum"):
        Proxy.load(tmp_path / "p", data.space)


class _Flaky(Simulator):
    """NAS-Bench-Graph that crashes on every design whose first operation is 'gat'."""

    def __init__(self) -> None:
        self.inner = make_problem(ENV).simulator
        self.space, self.metrics, self.name = self.inner.space, self.inner.metrics, "flaky"

    def evaluate(self, design, fidelity=None, workdir=None):
        if design["op0"] == "gat":
            raise RuntimeError("simulated crash")
        return self.inner.evaluate(design)


def test_log_with_failed_trials_trains(tmp_path: Path) -> None:
    sim = _Flaky()
    with TrialLog(tmp_path / "log.sqlite") as log:
        rid = log.start_run(env=ENV, env_args={"dataset": "cora"}, simulator=sim.name, space=sim.space.to_dict(),
                            fingerprint=sim.space.fingerprint())
        ev = Evaluator(sim, log=log, run_id=rid)
        ev.evaluate_many([sim.space.sample(np.random.default_rng(i)) for i in range(120)])
        ev.close()
        n_failed = log.count(rid, "failed")
    assert n_failed > 0
    ds = load_dataset([tmp_path / "log.sqlite"], "latency")
    assert ds.n_failed == n_failed and len(ds) + n_failed + ds.n_duplicates == 120
    proxy, report = train_and_evaluate(ds, "rf", cv=3, holdout=0.2, log_target=True, model_args=SMALL["rf"])
    assert report["n_failed_excluded"] == n_failed
    assert np.all(proxy.predict(ds.designs) > 0)
    assert set(report["holdout"]) >= {"rmse", "rmse_pct_mean", "rmse_pct_range", "mape", "r2", "kendall_tau", "n"}


def test_fidelity_figures() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = fidelity(y, y)
    assert perfect["rmse"] == 0 and perfect["kendall_tau"] == pytest.approx(1.0) and perfect["r2"] == 1.0
    off = fidelity(y, y + 0.5)
    assert off["rmse"] == pytest.approx(0.5) and off["rmse_pct_mean"] == pytest.approx(20.0)
    assert off["rmse_pct_range"] == pytest.approx(100 * 0.5 / 3) and off["kendall_tau"] == pytest.approx(1.0)
    assert fidelity(y, y[::-1])["kendall_tau"] == pytest.approx(-1.0)


def test_dag_layout_graph(data) -> None:
    layout = DagLayout.detect(data.space)
    d = {"in0": 0, "in1": 0, "in2": 1, "in3": 2, "op0": "gcn", "op1": "gat", "op2": "sage", "op3": "fc"}
    x, edges = layout.graph(d)
    assert x.shape == (6, len(layout.ops) + 2)
    # nodes 3 (op2) and 4 (op3) feed nobody else, so the output reads them
    assert sorted(edges[0][edges[1] == 5].tolist()) == [3, 4]
    assert layout.summary(d)[-2:].tolist() == [2.0, 2.0]  # depth 2, two output-feeding nodes
    with pytest.raises(ConfigError, match="DAG space"):
        DagLayout.detect(make_problem("archgym/NASBenchGraph-v0").space.__class__([]))


def test_learning_curve_png(data, tmp_path: Path) -> None:
    from archgym.proxies.evaluate import plot_learning_curve

    rows = learning_curve(data, [20, 60, 120], "rf", model_args=SMALL["rf"])
    assert [r["n_train"] for r in rows] == [20, 60, 120]
    png = plot_learning_curve(rows, tmp_path / "lc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_train_eval_and_search_on_proxy(run_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from archgym.cli import app

    cli = CliRunner()
    art = tmp_path / "art"
    res = cli.invoke(app, ["proxy", "train", "--log", str(run_dir), "--target", "valid_acc", "--cv", "3",
                           "--model-arg", "n_estimators=20", "--out", str(art), "--learning-curve",
                           str(tmp_path / "lc.png")])
    assert res.exit_code == 0, res.output
    assert "Kendall" in res.output and (art / "proxy.json").exists() and (tmp_path / "lc.png").exists()
    other = _random_run(tmp_path / "other", 60, 7)
    res = cli.invoke(app, ["proxy", "eval", "--model", str(art), "--log", str(other)])
    assert res.exit_code == 0, res.output
    assert "not seen in training" in res.output or "were in its training set" in res.output

    out = tmp_path / "search"
    res = cli.invoke(app, ["search", "--env", ENV, "--simulator", f"proxy:{art}", "--budget", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with TrialLog(log_path(out), readonly=True) as log:
        rid = log.run_ids()[0]
        assert log.run(rid)["simulator"] == f"proxy:{art.resolve()}"
        trials = log.trials(rid)
        assert all(t["status"] == "ok" and "valid_acc_std" in t["metrics"] for t in trials)
    proxy = Proxy.load(art)
    assert trials[0]["metrics"]["valid_acc"] == pytest.approx(float(proxy.predict([trials[0]["design"]])[0]))
    # a resumed run keeps its proxy simulator; switching it at resume time is refused
    with TrialLog(log_path(out)) as log:
        log.set_status(rid, "running")
        log._db.execute("UPDATE runs SET budget=15 WHERE run_id=?", (rid,))
    res = cli.invoke(app, ["search", "--resume", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with TrialLog(log_path(out), readonly=True) as log:
        assert log.count(rid) == 15 and all("valid_acc_std" in t["metrics"] for t in log.trials(rid))
    with TrialLog(log_path(out)) as log:
        log.set_status(rid, "running")
    res = cli.invoke(app, ["search", "--resume", "--out", str(out), "--simulator", f"proxy:{tmp_path}"])
    assert isinstance(res.exception, ConfigError)
    res = cli.invoke(app, ["search", "--env", ENV, "--env-arg", "dataset=citeseer", "--simulator", f"proxy:{art}",
                           "--budget", "5", "--out", str(tmp_path / "bad")])
    assert isinstance(res.exception, ConfigError) and "fingerprint" in str(res.exception)


def _drive(searcher, problem, budget: int, batch: int = 5) -> list[float]:
    ev = Evaluator(problem.simulator, problem.objective)
    rewards: list[float] = []
    while len(rewards) < budget:
        designs = searcher.ask(batch)
        results = ev.evaluate_many(designs)
        searcher.tell(designs, results)
        rewards += [r.reward for r in results]
    return rewards


def test_proxy_loop_screens_and_resumes_exactly() -> None:
    problem = make_problem(ENV)
    kw = {"warmup": 10, "candidates": 20, "retrain_every": 5, "model_args": {"n_estimators": 20}}
    a = make_searcher("proxy-loop", problem.space, seed=4, **kw)
    full = _drive(a, problem, 40)
    assert a.n_screened > 0 and len(a.rewards) == 40
    b = make_searcher("proxy-loop", problem.space, seed=4, **kw)
    first = _drive(b, problem, 20)
    state = json.loads(json.dumps(b.state_dict()))
    c = make_searcher("proxy-loop", problem.space, seed=4, **kw)
    c.load_state_dict(state)
    assert first + _drive(c, problem, 20) == full
    with pytest.raises(ConfigError, match="acquisition"):
        make_searcher("proxy-loop", problem.space, acquisition="pi")
