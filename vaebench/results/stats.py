"""Statistics over seeds: the t-interval of a mean and the paired comparison of two models.

A difference between two models counts as beyond the noise when the 95% t-interval of their mean paired
difference (paired on the seed) excludes zero. The Wilcoxon signed-rank test (Wilcoxon 1945,
Biometrics Bulletin 1(6)) is reported beside it: with n pairs its exact two-sided p-value cannot go below
2 / 2**n (0.0625 for 5 seeds), so on its own it could never call a 5-seed difference significant.
When many comparisons are made at once, the paired t-test's p-values (the same test as the interval) are
adjusted with Holm's step-down method (Holm 1979, "A simple sequentially rejective multiple test
procedure", Scand. J. Statist. 6), which keeps the family-wise error rate at 5%.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The t-interval of the mean of ``values``, NaNs dropped (NaN bounds with fewer than two values)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return (math.nan, math.nan)
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return (float(values.mean() - half), float(values.mean() + half))


@dataclass(frozen=True)
class PairedDifference:
    """``model - baseline`` over paired seeds."""

    n_pairs: int
    mean_difference: float
    sd_difference: float
    ci95_low: float
    ci95_high: float
    wilcoxon_p: float
    verdict: str
    t_p: float


def paired_difference(differences: np.ndarray, baseline: str) -> PairedDifference:
    """Summarise per-seed differences ``model - baseline``: mean, sd, 95% t-interval, Wilcoxon p, verdict.

    The verdict is ``better than <baseline>`` or ``worse than <baseline>`` when the interval excludes
    zero, ``within noise`` when it does not, and ``too few seeds`` below two pairs.
    """
    diff = np.asarray(differences, dtype=float)
    diff = diff[~np.isnan(diff)]
    low, high = t_interval(diff)
    p_value = math.nan
    if len(diff) >= 2 and np.any(diff != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns that small samples use the exact distribution
            p_value = float(stats.wilcoxon(diff).pvalue)
    t_p = math.nan
    if len(diff) >= 2 and diff.std(ddof=1) > 0:
        t_p = float(stats.ttest_1samp(diff, 0.0).pvalue)
    elif len(diff) >= 2:
        t_p = 1.0 if np.all(diff == 0) else 0.0
    if math.isnan(low):
        verdict = "too few seeds"
    elif low > 0:
        verdict = f"better than {baseline}"
    elif high < 0:
        verdict = f"worse than {baseline}"
    else:
        verdict = "within noise"
    return PairedDifference(
        n_pairs=len(diff),
        mean_difference=float(diff.mean()) if len(diff) else math.nan,
        sd_difference=float(diff.std(ddof=1)) if len(diff) > 1 else math.nan,
        ci95_low=low,
        ci95_high=high,
        wilcoxon_p=p_value,
        verdict=verdict,
        t_p=t_p,
    )


def holm_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaNs stay NaN and do not count)."""
    from statsmodels.stats.multitest import multipletests

    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, math.nan)
    known = ~np.isnan(p_values)
    if known.any():
        adjusted[known] = multipletests(p_values[known], alpha=0.05, method="holm")[1]
    return adjusted
