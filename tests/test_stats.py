"""The statistics behind every "beyond the noise" statement: t-intervals and paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vaebench.results.stats import paired_difference, t_interval


def test_t_interval_matches_scipy_and_ignores_nan() -> None:
    values = np.array([0.31, 0.35, 0.29, 0.40, 0.33, np.nan])
    clean = values[:-1]
    expected = stats.t.interval(0.95, len(clean) - 1, loc=clean.mean(), scale=stats.sem(clean))
    assert t_interval(values) == pytest.approx(expected)
    assert all(math.isnan(x) for x in t_interval(np.array([0.3])))


def test_a_consistent_difference_is_beyond_the_noise_in_its_direction() -> None:
    worse = paired_difference(np.array([-0.10, -0.12, -0.09, -0.11, -0.08]), "pca")
    assert worse.verdict == "worse than pca" and worse.ci95_high < 0
    assert worse.n_pairs == 5 and worse.mean_difference == pytest.approx(-0.10)
    # all five pairs on one side: the exact two-sided Wilcoxon p is its floor, 2 / 2**5
    assert worse.wilcoxon_p == pytest.approx(0.0625)
    assert paired_difference(np.array([0.05, 0.07, 0.06]), "pca").verdict == "better than pca"


def test_differences_of_both_signs_are_within_the_noise() -> None:
    mixed = paired_difference(np.array([-0.10, 0.12, -0.05, 0.06, 0.01]), "pca")
    assert mixed.verdict == "within noise" and mixed.ci95_low < 0 < mixed.ci95_high
    assert mixed.wilcoxon_p > 0.5


def test_one_pair_is_too_few_and_identical_runs_have_no_wilcoxon_p() -> None:
    assert paired_difference(np.array([0.2]), "pca").verdict == "too few seeds"
    assert paired_difference(np.array([]), "pca").n_pairs == 0
    same = paired_difference(np.zeros(5), "pca")
    assert math.isnan(same.wilcoxon_p) and same.verdict == "within noise"
