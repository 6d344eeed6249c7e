"""PPO (stable-baselines3) as a searcher in both env modes: known optimum, seeded sequence, exact resume; and plain
SB3 learning on a registered env."""

from __future__ import annotations

import pytest
from test_searchers import HAVE_TORCH, check_optimum, check_sequence

pytestmark = pytest.mark.skipif(not HAVE_TORCH, reason="torch / stable-baselines3 are not installed")


@pytest.mark.parametrize("case", ["ppo", "ppo_constructive"])
def test_ppo_finds_the_known_optimum_on_4_of_5_seeds(case):
    check_optimum(case)


@pytest.mark.parametrize("case", ["ppo", "ppo_constructive"])
def test_ppo_same_seed_same_sequence_and_exact_resume(case):
    check_sequence(case)


def test_ppo_train_on_env_runs_sb3_learn_in_constructive_mode():
    from archgym.algorithms.ppo import train_on_env

    model = train_on_env("archgym/NASBenchGraph-v0", mode="constructive", total_timesteps=128, seed=0)
    assert model.num_timesteps >= 128
