"""The Ray Tune backend: the searcher adapter and batching (no cluster), then end-to-end runs on a 2-CPU local Ray:
same designs as the local runner, worker crashes retried then failed, ASHA on a per-epoch simulator, Ray's own search
algorithms, and SIGKILL of the driver followed by ``--resume``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from toy_sims import ToySim

pytest.importorskip("ray.tune")

from typer.testing import CliRunner  # noqa: E402

from archgym.cli import app  # noqa: E402
from archgym.errors import ConfigError  # noqa: E402
from archgym.evaluator import Evaluator, TrialResult  # noqa: E402
from archgym.log import TrialLog  # noqa: E402
from archgym.objective import SingleMetric  # noqa: E402
from archgym.ray_runner import (  # noqa: E402
    ArchgymTuneSearcher, RayOptions, RayRunner, _ArchgymProposer, _check_reachable, auto_designs_per_trial, ray_temp_dir, result_to_dict,
    run_search_ray,
)
from archgym.registry import ENVS, EnvEntry, Problem, make_searcher  # noqa: E402
from archgym.runner import RunSpec, log_path, prepare, start_run  # noqa: E402
from archgym.simulator import Metric, Simulator  # noqa: E402
from archgym.space import Categorical, DesignSpace, Integer  # noqa: E402

TESTS = Path(__file__).parent


# -- small simulators (pickled to Ray workers, which import this module through the driver's sys.path) ---------------


class SleepToy(ToySim):
    """The toy problem, ``delay`` seconds per evaluation."""

    name = "sleep-toy"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay

    def evaluate(self, design, fidelity=None, workdir=None):
        time.sleep(self.delay)
        return super().evaluate(design)

    def cost_hint(self):
        return self.delay or None


def make_sleep_problem(delay: float = 0.0) -> Problem:
    return Problem("sleep-toy", SleepToy(delay), SingleMetric("score"))


class CrashSim(Simulator):
    """Kills its own process (the Ray worker) for mode crash_always, and for crash_once until ``marker`` exists."""

    name = "crash"
    metrics = (Metric("score"),)

    def __init__(self, marker: str) -> None:
        self.space = DesignSpace([Categorical("mode", ("ok", "crash_once", "crash_always"))], name="crash")
        self.marker = marker

    def evaluate(self, design, fidelity=None, workdir=None):
        if design["mode"] == "crash_always":
            os._exit(3)
        if design["mode"] == "crash_once" and not Path(self.marker).exists():
            Path(self.marker).write_text("crashed once")
            os._exit(3)
        return {"score": 1.0}

    def cost_hint(self):
        return 0.01


class EpochSim(Simulator):
    """A training run in miniature: accuracy after e epochs is quality * (1 - 0.7**e); crashes at epoch 2 if asked."""

    name = "epochs"
    metrics = (Metric("acc", "%", "max"),)
    max_fidelity = 9

    def __init__(self, epoch_time: float = 0.0, crash_quality: int | None = None) -> None:
        self.space = DesignSpace([Integer("quality", 0, 8)], name="epochs")
        self.epoch_time = epoch_time
        self.crash_quality = crash_quality

    def evaluate_epochs(self, design, max_fidelity=None, workdir=None) -> Iterator[tuple[int, dict[str, float]]]:
        for e in range(1, int(max_fidelity or self.max_fidelity) + 1):
            time.sleep(self.epoch_time)
            if design["quality"] == self.crash_quality and e == 2:
                raise RuntimeError("loss is nan")
            yield e, {"acc": design["quality"] * (1 - 0.7 ** e)}

    def evaluate(self, design, fidelity=None, workdir=None):
        *_, (_, last) = self.evaluate_epochs(design, fidelity)
        return last


# -- no cluster needed ------------------------------------------------------------------------------------------------


def test_auto_designs_per_trial_from_cost_budget_and_workers():
    assert auto_designs_per_trial(1e-5, 300, 2) == 38  # lookups: the budget split into >= 4 trials per worker
    assert auto_designs_per_trial(1e-5, None, 2) == 10_000  # no budget: capped
    assert auto_designs_per_trial(0.05, 10_000, 2) == 40  # 2 s trials
    assert auto_designs_per_trial(600.0, 100, 8) == 1  # training runs: one design per trial


def test_options_are_checked_with_the_allowed_values():
    with pytest.raises(ConfigError, match="fifo, asha"):
        RayOptions(scheduler="hyperband").check()
    with pytest.raises(ConfigError, match="--workers"):
        RayOptions(workers=0).check()
    with pytest.raises(ConfigError, match="designs-per-trial"):
        RayOptions.from_meta(None, designs_per_trial=0)
    with pytest.raises(ConfigError, match="unknown Ray options"):
        RayOptions.from_meta(None, wrokers=2)
    opts = RayOptions.from_meta({"backend": "ray", "workers": 3, "scheduler": "asha"}, workers=None, gpus_per_trial=1)
    assert (opts.workers, opts.scheduler, opts.gpus_per_trial) == (3, "asha", 1)
    with pytest.raises(ConfigError, match="no Ray cluster answers"):
        _check_reachable("127.0.0.1:1")
    with pytest.raises(ConfigError, match="auto or HOST:PORT"):
        _check_reachable("my-cluster")
    spec = RunSpec("test/Sleep-v0", {}, "random", {}, budget=4)
    with pytest.raises(ConfigError, match="per-epoch"):
        run_search_ray(spec, Path("/nonexistent/never"), (make_sleep_problem(), None), scheduler="asha")


def test_a_local_run_is_not_resumed_on_ray(tmp_path):
    spec = RunSpec("test/Sleep-v0", {}, "random", {}, budget=3)
    problem = make_sleep_problem()
    with TrialLog(tmp_path / "t.sqlite") as log:
        runner = start_run(log, spec, (problem, make_searcher("random", problem.space)))
        runner.run()
        ray_runner = RayRunner(problem, make_searcher("random", problem.space), log, runner.run_id, tmp_path, 3, None,
                               RayOptions())
        with pytest.raises(ConfigError, match="started by the local runner"):
            ray_runner.run(resume=True)


def test_ray_session_dir_stays_short_for_unix_sockets(tmp_path):
    assert ray_temp_dir(Path("/r")) == Path("/r/ray")
    deep = tmp_path / ("x" * 60)
    short = ray_temp_dir(deep)
    assert len(str(short)) <= 40 and short == ray_temp_dir(deep) and short != ray_temp_dir(tmp_path / ("y" * 60))


def _payload(results: list[TrialResult]) -> dict:
    return {"payload": json.dumps({"results": [result_to_dict(r) for r in results], "worker": "w"})}


def test_adapter_batches_budget_failures_and_checkpoint_with_batches_in_flight():
    problem = make_sleep_problem()
    ev = Evaluator(problem.simulator, problem.objective)
    logged: list[tuple[list, list]] = []
    searcher = make_searcher("random", problem.space, seed=3)
    ad = ArchgymTuneSearcher(_ArchgymProposer(searcher), budget=7, designs_per_trial=3,
                             on_complete=lambda d, r, info: logged.append((d, r)), failure_reward=-1.0)
    c1, c2, c3 = ad.suggest("t1"), ad.suggest("t2"), ad.suggest("t3")
    assert [len(json.loads(c["designs"])) for c in (c1, c2, c3)] == [3, 3, 1]
    assert ad.suggest("t4") == "FINISHED"  # 7 designs in flight = the budget
    state = ad.state_dict()
    assert [len(b) for b in state["pending"]] == [3, 3, 1]

    ad.on_trial_complete("t2", _payload(ev.evaluate_many(json.loads(c2["designs"]))))
    assert ad.done == 3 and [r.ok for r in logged[0][1]] == [True] * 3
    ad.on_trial_complete("t1", error=True)
    ad.fail("t1", "worker died")
    assert [r.status for r in logged[1][1]] == ["failed"] * 3 and logged[1][1][0].error == "worker died"
    assert ad.state_dict()["pending"] == [json.loads(c3["designs"])]
    ad.on_trial_complete("t3", result={})  # stopped before reporting (interrupted): not logged, still in flight
    assert len(logged) == 2 and ad.state_dict()["pending"] == [json.loads(c3["designs"])]

    # a new driver restored from that checkpoint re-sends the batch in flight first, then asks the searcher
    searcher2 = make_searcher("random", problem.space, seed=3)
    ad2 = ArchgymTuneSearcher(_ArchgymProposer(searcher2), budget=9, designs_per_trial=3,
                              on_complete=lambda d, r, info: None, failure_reward=-1.0, done=6)
    ad2.proposer.load_state_dict(ad.state_dict()["searcher"])
    ad2.resubmit.extend(ad.state_dict()["pending"])
    assert ad2.suggest("u1")["designs"] == c3["designs"]
    nxt = json.loads(ad2.suggest("u2")["designs"])
    assert len(nxt) == 2 and nxt == make_searcher("random", problem.space, seed=3).ask(9)[7:]
    assert ad2.suggest("u3") == "FINISHED"


def test_evaluate_epochs_reports_each_epoch_and_a_crash_at_the_fidelity_reached():
    ev = Evaluator(EpochSim(crash_quality=5), SingleMetric("acc"))
    good = list(ev.evaluate_epochs({"quality": 8}, 9, None))
    assert [r.fidelity for r in good] == list(range(1, 10)) and good[-1].reward > good[0].reward
    bad = list(ev.evaluate_epochs({"quality": 5}, 9, None))
    assert bad[-1].status == "failed" and bad[-1].fidelity == 1 and "loss is nan" in bad[-1].error
    invalid = list(ev.evaluate_epochs({"quality": 99}, 9, None))
    assert [r.status for r in invalid] == ["invalid"]
    late = list(ev.evaluate_epochs({"quality": 3}, 9, deadline=time.monotonic() - 1))
    assert late[-1].status == "timeout" and late[-1].fidelity == 1


# -- on a local Ray with 2 CPUs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory) -> Iterator[str]:
    import tempfile

    import ray

    temp = tempfile.mkdtemp(prefix="agrt-")
    old = os.environ.get("PYTHONPATH")
    # Ray workers are started by the raylet, which takes its environment from here: they can import this module
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), old) if p)
    try:
        ctx = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture
def test_envs(monkeypatch, tmp_path):
    monkeypatch.setitem(ENVS, "test/Sleep-v0", EnvEntry("test_ray:make_sleep_problem", "toy that sleeps", {}))
    monkeypatch.setitem(ENVS, "test/Crash-v0", EnvEntry("test_ray:make_crash_problem", "crashes its worker",
                                                         {"marker": str(tmp_path / "crashed")}))
    monkeypatch.setitem(ENVS, "test/Epochs-v0", EnvEntry("test_ray:make_epoch_problem", "per-epoch toy", {}))


def make_crash_problem(marker: str) -> Problem:
    return Problem("crash", CrashSim(marker), SingleMetric("score"))


def make_epoch_problem(epoch_time: float = 0.03) -> Problem:
    return Problem("epochs", EpochSim(epoch_time), SingleMetric("acc"))


@pytest.mark.slow
def test_cli_ray_search_with_one_worker_proposes_what_the_local_runner_does(ray_cluster, test_envs, tmp_path):
    out = tmp_path / "ray"
    # an adaptive searcher: its proposals depend on the results it was told, in order
    hp = {"population_size": 4, "sample_size": 2}
    res = CliRunner().invoke(app, ["search", "--env", "test/Sleep-v0", "--searcher", "regularized_evolution",
                                   "--searcher-arg", "population_size=4", "--searcher-arg", "sample_size=2",
                                   "--seed", "5", "--budget", "12", "--backend", "ray", "--workers", "1",
                                   "--designs-per-trial", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "rank" in res.output
    spec = RunSpec("test/Sleep-v0", {}, "regularized_evolution", hp, seed=5, budget=12, batch_size=3)
    with TrialLog(tmp_path / "local.sqlite") as log:
        runner = start_run(log, spec, prepare(spec))
        runner.run()
        local = log.trials(runner.run_id)
    with TrialLog(log_path(out)) as log:
        (run_id,) = log.run_ids()
        remote = log.trials(run_id)
        assert log.run(run_id)["status"] == "finished" and log.run(run_id)["meta"]["backend"] == "ray"
    assert [t["design"] for t in remote] == [t["design"] for t in local]
    assert [t["reward"] for t in remote] == [t["reward"] for t in local]
    assert [t["trial_id"] for t in remote] == list(range(12))
    assert all(t["status"] == "ok" and t["worker"] for t in remote)


@pytest.mark.slow
def test_gpu_trials_are_refused_on_a_cluster_without_gpus(ray_cluster, test_envs, tmp_path):
    spec = RunSpec("test/Sleep-v0", {}, "random", {}, budget=4)
    with pytest.raises(ConfigError, match="--gpus-per-trial 1: the Ray cluster has 0 GPUs"):
        run_search_ray(spec, tmp_path / "run", gpus_per_trial=1, workers=1, quiet=True)


@pytest.mark.slow
def test_a_crashing_worker_is_retried_then_its_trial_fails_with_the_reason(ray_cluster, test_envs, tmp_path):
    spec = RunSpec("test/Crash-v0", {}, "random", {}, seed=0, budget=3)
    run_id = run_search_ray(spec, tmp_path / "run", workers=2, designs_per_trial=1, max_retries=1, quiet=True)
    with TrialLog(log_path(tmp_path / "run")) as log:
        trials = {t["design"]["mode"]: t for t in log.trials(run_id)}
    assert len(trials) == 3 and log_count_ok(trials) == 2
    assert trials["crash_once"]["status"] == "ok"  # the retry succeeded, and the trial is logged once
    failed = trials["crash_always"]
    assert failed["status"] == "failed" and "failed 2 time(s), 1 retry allowed" in failed["error"]


def log_count_ok(trials: dict) -> int:
    return sum(t["status"] == "ok" for t in trials.values())


@pytest.mark.slow
def test_asha_stops_weak_training_runs_early_and_logs_the_epochs_reached(ray_cluster, test_envs, tmp_path):
    spec = RunSpec("test/Epochs-v0", {}, "random", {}, seed=2, budget=9)
    run_id = run_search_ray(spec, tmp_path / "run", workers=2, scheduler="asha", quiet=True)
    with TrialLog(log_path(tmp_path / "run")) as log:
        trials = log.trials(run_id)
    assert sorted(t["design"]["quality"] for t in trials) == list(range(9))
    fid = {t["design"]["quality"]: t["fidelity"] for t in trials}
    assert set(fid.values()) <= {1.0, 3.0, 9.0} and min(fid.values()) < 9
    assert fid[8] == 9.0  # the best design trained to the end
    for t in trials:  # each logged result is the one of the epoch reached
        assert t["reward"] == pytest.approx(t["design"]["quality"] * (1 - 0.7 ** t["fidelity"]))


@pytest.mark.slow
def test_ray_search_algorithms_are_accepted(ray_cluster, test_envs, tmp_path):
    from ray.tune.search.optuna import OptunaSearch

    spec = RunSpec("test/Sleep-v0", {}, "random", {}, seed=0, budget=6)
    run_id = run_search_ray(spec, tmp_path / "run", workers=2, designs_per_trial=3, quiet=True,
                            search_alg=OptunaSearch(seed=1))
    with TrialLog(log_path(tmp_path / "run")) as log:
        trials = log.trials(run_id)
        assert log.run(run_id)["searcher"] == "ray:OptunaSearch"
    assert len(trials) == 6 and all(t["status"] == "ok" for t in trials)


@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume_gives_exactly_the_budget(ray_cluster, test_envs, tmp_path):
    out, budget = tmp_path / "run", 40
    script = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
        "from archgym.registry import ENVS, EnvEntry\n"
        "ENVS['test/Sleep-v0'] = EnvEntry('test_ray:make_sleep_problem', 'toy that sleeps', {})\n"
        "from archgym.cli import main\n"
        f"sys.argv = ['archgym', 'search', '--env', 'test/Sleep-v0', '--env-arg', 'delay=0.1', '--seed', '1',"
        f" '--budget', '{budget}', '--backend', 'ray', '--address', {ray_cluster!r}, '--workers', '2',"
        f" '--designs-per-trial', '2', '--out', {str(out)!r}]\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    at_kill = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            at_kill = _count(log_path(out))
            if at_kill >= 8:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.communicate()[1].decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert 8 <= at_kill < budget
    res = CliRunner().invoke(app, ["search", "--resume", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with TrialLog(log_path(out)) as log:
        (run_id,) = log.run_ids()
        trials = log.trials(run_id)
        assert log.run(run_id)["status"] == "finished"
    space = make_sleep_problem().space
    keys = [space.key(t["design"]) for t in trials]
    expected = [space.key(d) for d in make_searcher("random", space, seed=1).ask(budget)]
    assert [t["trial_id"] for t in trials] == list(range(budget))
    assert len(set(keys)) == budget and set(keys) == set(expected)  # none lost, none duplicated
    assert all(t["status"] == "ok" for t in trials)


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0
