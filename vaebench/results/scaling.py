"""Scores scaled between control methods, and their aggregate per group, one value per run.

Open Problems (Luecken et al. 2025, "Defining and benchmarking open problems in single-cell analysis",
Nat. Biotechnol.) scales each metric between its controls, ``(x - worst control) / (best control - worst
control)``, so that 0 means "no better than the worst control" and 1 "as good as the best" on every data
set; a method can fall outside [0, 1]. The controls here are ``random`` and ``pca50`` (their means over
seeds). Groups follow scIB (Luecken et al. 2022, Nat. Methods): bio-conservation (label scores),
structure (neighbourhoods kept from the input) and cost. Training cost has no control that brackets it
(a control trains in no time), so it is scaled between the cheapest and the dearest entry of the report
on a log scale: 1 for the cheapest, 0 for the dearest. A group's aggregate is the mean of its scaled
scores; ``total`` is the mean of bio-conservation and structure (cost is a trade-off left to the reader),
and for a run on data without labels (``label_key`` ``none``), which has no bio-conservation score, its
structure aggregate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaebench.data.dataset import NO_LABELS
from vaebench.evaluate.metrics import BIO, STRUCTURE

CONTROLS = ("random", "pca50")
COST = "cost"
GROUPS: dict[str, tuple[str, ...]] = {
    BIO: (
        "tsne_kmeans.nmi",
        "tsne_kmeans.ari",
        "latent_kmeans.nmi",
        "latent_kmeans.ari",
        "leiden.nmi",
        "leiden.ari",
        "latent.asw_label",
        "latent.clisi",
        "latent.isolated_label",
    ),
    STRUCTURE: ("structure.trustworthiness", "structure.knn_preservation"),
    COST: ("train.cpu_seconds",),
}
TOTAL = "total"
COST_FLOOR_SECONDS = 0.1
"""Added to CPU seconds before the log, so that an entry that costs nothing does not sit at minus infinity."""


def scaled_name(metric: str) -> str:
    return f"scaled.{metric}"


def aggregate_name(group: str) -> str:
    return f"aggregate.{group}"


def control_bounds(
    frame: pd.DataFrame, metric: str, controls: tuple[str, ...] = CONTROLS
) -> tuple[float, float]:
    """(worst, best) of the controls' mean scores of ``metric``; NaNs when a control has no score."""
    means = [frame.loc[frame["entry"] == c, metric].mean() for c in controls]
    if len(means) < 2 or any(pd.isna(m) for m in means):
        return (np.nan, np.nan)
    return (float(min(means)), float(max(means)))


def scale_between(values: pd.Series, worst: float, best: float) -> pd.Series:
    """``(x - worst) / (best - worst)``; NaN where the controls do not differ."""
    if not np.isfinite(worst) or not np.isfinite(best) or best == worst:
        return pd.Series(np.nan, index=values.index)
    return (values - worst) / (best - worst)


def scaled_cost(seconds: pd.Series, entries: pd.Series) -> pd.Series:
    """Log CPU seconds scaled between the dearest (0) and the cheapest (1) entry's mean."""
    logs = np.log10(seconds.astype(float) + COST_FLOOR_SECONDS)
    by_entry = logs.groupby(entries).mean()
    return scale_between(logs, worst=float(by_entry.max()), best=float(by_entry.min()))


def add_scaled_scores(frame: pd.DataFrame, controls: tuple[str, ...] = CONTROLS) -> pd.DataFrame:
    """``frame`` (one row per run, an ``entry`` column and the metrics) with a scaled column per metric and
    an aggregate per group and in total; all NaN when the controls are not in ``frame``."""
    out = frame.copy()
    key = _entry_key(out)
    for group, metrics in GROUPS.items():
        for metric in metrics:
            if metric not in out:
                out[scaled_name(metric)] = np.nan
            elif group == COST:
                out[scaled_name(metric)] = scaled_cost(out[metric], key)
            else:
                out[scaled_name(metric)] = scale_between(out[metric], *control_bounds(out, metric, controls))
        scaled = out[[scaled_name(m) for m in metrics]]
        out[aggregate_name(group)] = scaled.mean(axis=1, skipna=True).where(scaled.notna().any(axis=1))
    parts = out[[aggregate_name(BIO), aggregate_name(STRUCTURE)]]
    unlabelled = out["label_key"] == NO_LABELS if "label_key" in out else pd.Series(False, index=out.index)
    both = parts.notna().all(axis=1)
    out[aggregate_name(TOTAL)] = parts.mean(axis=1).where(both | (unlabelled & parts.iloc[:, 1].notna()))
    return out


def scaled_columns() -> list[str]:
    """Every column :func:`add_scaled_scores` adds, metrics first, then the aggregates."""
    columns = [scaled_name(m) for metrics in GROUPS.values() for m in metrics]
    return columns + [aggregate_name(g) for g in (*GROUPS, TOTAL)]


def _entry_key(frame: pd.DataFrame) -> pd.Series:
    beta = frame["beta"].map(lambda b: "" if pd.isna(b) else f"{b:.3g}")
    return frame["entry"].astype(str) + "|" + beta
