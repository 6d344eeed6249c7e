"""Optuna's Gaussian-process searcher (about 0.3 s per proposal once fitted, hence its own slow file): known optimum,
seeded sequence, exact resume."""

from __future__ import annotations

import pytest
from test_searchers import BATCHES, HAVE_TORCH, check_optimum, check_sequence

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not HAVE_TORCH, reason="Optuna's GPSampler needs torch")]


def test_gp_finds_the_known_optimum_on_4_of_5_seeds():
    check_optimum("optuna_gp")


def test_gp_same_seed_same_sequence_and_exact_resume():
    check_sequence("optuna_gp", BATCHES[:8])
