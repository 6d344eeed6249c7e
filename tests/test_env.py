"""Every registered env passes Gymnasium's checker in both modes, vectorises, and trains PPO briefly."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import archgym  # noqa: F401  (registers the envs)
from archgym.env import ArchGymEnv
from archgym.registry import ENVS, make_problem

ENV_IDS = sorted(ENVS)


def _make(env_id: str, mode: str) -> gymnasium.Env:
    return gymnasium.make(env_id, mode=mode, **ENVS[env_id].test_kwargs)


@pytest.mark.parametrize("mode", ["oneshot", "constructive"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_every_registered_env(env_id, mode):
    env = _make(env_id, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded metric observations draw a precision warning, not an error
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_oneshot_episode_and_info():
    env = gymnasium.make("archgym/NASBenchGraph-v0", max_steps=3)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4,) and not obs.any()
    steps = 0
    while True:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert info["status"] == "ok" and reward == info["metrics"]["valid_acc"]
        assert obs[0] == pytest.approx(reward / 100.0)
        if terminated or truncated:
            break
    assert steps == 3 and truncated


def test_constructive_mode_builds_valid_designs_with_masks():
    env = ArchGymEnv(make_problem("archgym/NASBenchGraph-v0"), mode="constructive")
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs, info = env.reset()
        done = False
        n = 0
        while not done:
            allowed = np.flatnonzero(info["action_mask"])
            obs, reward, done, _, info = env.step(int(rng.choice(allowed)))
            n += 1
        assert n == 8 and info["status"] == "ok"
        for i in range(4):
            assert info["design"][f"in{i}"] <= i


def test_target_spec_terminates_episode():
    from archgym.objective import TargetSpec

    problem = make_problem("archgym/NASBenchGraph-v0")
    problem.objective = TargetSpec({"valid_acc": (">=", 70.0)})
    env = ArchGymEnv(problem, max_steps=50)
    env.reset(seed=0)
    for _ in range(50):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated:
            assert reward == 0.0 and info["metrics"]["valid_acc"] >= 70.0
            break
    else:
        pytest.fail("no design met a 70% target in 50 random steps")


def test_sync_vector_env():
    venv = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("archgym/NASBenchGraph-v0") for _ in range(3)])
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (3, 4)
    obs, rewards, _, _, _ = venv.step(venv.action_space.sample())
    assert rewards.shape == (3,) and (rewards > 0).all()
    venv.close()


def test_env_logs_every_step(tmp_path):
    from archgym.log import TrialLog

    env = gymnasium.make("archgym/NASBenchGraph-v0", log=str(tmp_path / "env.sqlite"))
    env.reset(seed=0)
    for _ in range(7):
        env.step(env.action_space.sample())
    env.close()
    with TrialLog(tmp_path / "env.sqlite", readonly=True) as log:
        (run,) = log.run_ids()
        assert log.count(run) == 7 and log.run(run)["searcher"] == "gymnasium:oneshot"


@pytest.mark.parametrize("mode", ["oneshot", "constructive"])
def test_ppo_trains_a_few_hundred_steps(mode):
    sb3 = pytest.importorskip("stable_baselines3")
    import torch

    torch.set_num_threads(1)
    env = gymnasium.make("archgym/NASBenchGraph-v0", mode=mode, max_steps=16)
    model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    env.close()


@pytest.mark.parametrize("mode", ["oneshot", "constructive"])
def test_check_env_mixed_space_with_floats(mode):
    from toy_sims import ToySim

    from archgym.objective import SingleMetric
    from archgym.registry import Problem

    env = ArchGymEnv(Problem("toy", ToySim(), SingleMetric("score"), max_steps=5), mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    if mode == "oneshot":
        assert isinstance(env.action_space, gymnasium.spaces.Box)
    else:
        assert env.action_space.n == 8  # the float is offered as 8 bins, the widest decision
