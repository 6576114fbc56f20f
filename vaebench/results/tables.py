"""The report's tables, from the one-row-per-run frame of :func:`vaebench.results.records.records_frame`.

Every number is a mean over seeds with its standard deviation and a 95% t-interval, and says how many
seeds stand behind it (:func:`summarise`). Each model is compared with the ``pca`` baseline seed by seed
(:func:`paired_against_baseline`, paired on the seed): the 95% t-interval of the mean paired difference,
the Wilcoxon signed-rank test (Wilcoxon 1945) and Holm's adjustment over the whole table (Holm 1979); see
:mod:`vaebench.results.stats`. Pure functions of DataFrames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd

from vaebench.data.dataset import NO_LABELS
from vaebench.evaluate.collapse import ACTIVE_FRACTION, ACTIVE_UNITS, KL_TOTAL, collapse_message, run_name
from vaebench.evaluate.metrics import BIO, METRICS, STRUCTURE
from vaebench.results.records import LOSS_PART_PREFIX, RAW_KL
from vaebench.results.scaling import CONTROLS, GROUPS, TOTAL, aggregate_name
from vaebench.results.stats import holm_adjusted, paired_difference, t_interval

SCORES = ("tsne_kmeans.nmi", "tsne_kmeans.ari", "tsne_kmeans.hom", "tsne_kmeans.com")
SUMMARY_METRICS = (
    *SCORES,
    "latent_kmeans.nmi",
    "latent_kmeans.ari",
    "latent_kmeans.hom",
    "latent_kmeans.com",
    "latent.silhouette",
    "leiden.nmi",
    "leiden.ari",
    "latent.asw_label",
    "latent.clisi",
    "latent.isolated_label",
    *GROUPS[STRUCTURE],  # trustworthiness, kNN preservation
    ACTIVE_UNITS,
    ACTIVE_FRACTION,
    KL_TOTAL,
    "train.seconds",
    "train.cpu_seconds",
)
BASELINE = "pca"
RANK_METRIC = "tsne_kmeans.ari"
STRUCTURE_SCORE = "structure.mean"
"""Without labels, runs are ranked on the mean of their structure scores (trustworthiness, kNN kept)."""
PAIRED_METRICS = (
    "tsne_kmeans.ari",
    "tsne_kmeans.nmi",
    "leiden.ari",
    "leiden.nmi",
    "latent.asw_label",
    "latent.clisi",
    "latent.isolated_label",
    "structure.trustworthiness",
    "structure.knn_preservation",
    aggregate_name(BIO),
    aggregate_name(STRUCTURE),
    aggregate_name(TOTAL),
)
"""Compared with the baseline, paired on the seed; Holm's correction runs over all of them at once."""


def label_metric_names() -> set[str]:
    """The logged names of every score that needs labels (absent from runs on data without labels)."""
    return {name for metric in METRICS.values() if metric.needs_labels for name in metric.logged_names}


def has_labels(frame: pd.DataFrame) -> bool:
    """Whether any run of ``frame`` was scored against labels (data without labels log ``none``)."""
    return bool((frame["label_key"] != NO_LABELS).any()) if "label_key" in frame else True


def with_structure_score(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with :data:`STRUCTURE_SCORE`, each run's mean of the structure scores it has."""
    columns = [m for m in SUMMARY_METRICS if m.startswith(f"{STRUCTURE}.") and m in frame]
    return frame.assign(**{STRUCTURE_SCORE: frame[columns].mean(axis=1, skipna=True) if columns else np.nan})


def collapse_lines(frame: pd.DataFrame) -> list[str]:
    """One sentence per run of a variational model (one that logged ``latent.kl``) with fewer than half of
    its latent dimensions active (Burda et al. 2016; :mod:`vaebench.evaluate.collapse`)."""
    lines: list[str] = []
    needed = {KL_TOTAL, ACTIVE_UNITS, "latent_dims"}
    if not needed <= set(frame.columns):
        return lines
    runs = frame.dropna(subset=list(needed)).sort_values(["entry", "beta", "seed"], na_position="first")
    for _, run in runs.iterrows():
        beta = None if pd.isna(run["beta"]) else float(run["beta"])
        name = run_name(str(run["entry"]), beta, None if pd.isna(run["seed"]) else int(run["seed"]))
        line = collapse_message(name, int(run[ACTIVE_UNITS]), int(run["latent_dims"]))
        if line is not None:
            lines.append(line)
    return lines


def loss_part_columns(frame: pd.DataFrame) -> list[str]:
    """The final-epoch loss parts the runs logged (``train.loss.<part>``), then the raw KL where there is one."""
    parts = [c for c in frame.columns if c.startswith(LOSS_PART_PREFIX) and frame[c].notna().any()]
    return parts + ([RAW_KL] if RAW_KL in frame and frame[RAW_KL].notna().any() else [])


def summarise(frame: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Mean, standard deviation and 95% t-interval (Student's t, n - 1 degrees of freedom) over seeds of
    every metric, per (entry, beta), with the number of seeds behind them."""
    rows = []
    for (entry, beta), group in frame.groupby(["entry", "beta"], dropna=False, sort=True):
        row: dict[str, object] = {"entry": entry, "beta": beta, "n_seeds": int(group["seed"].nunique())}
        for metric in metrics:
            values = group[metric].to_numpy(dtype=float)
            low, high = t_interval(values)
            row[f"{metric} mean"] = np.nanmean(values) if np.isfinite(values).any() else np.nan
            row[f"{metric} sd"] = np.nanstd(values, ddof=1) if np.isfinite(values).sum() > 1 else np.nan
            row[f"{metric} ci95_low"] = low
            row[f"{metric} ci95_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)


def _paired_rows(group: pd.DataFrame, base: pd.DataFrame, metric: str, baseline: str) -> dict[str, object]:
    """One entry's (and beta's) runs against the baseline's on ``metric``, paired on the seed."""
    paired = (
        group.set_index("seed")[metric]
        .to_frame("model")
        .join(base.groupby("seed")[metric].mean().to_frame("baseline"), how="inner")
        .dropna()
    )
    diff = (paired["model"] - paired["baseline"]).to_numpy(dtype=float)
    return asdict(paired_difference(diff, baseline))


def paired_against_baseline(
    frame: pd.DataFrame,
    metrics: Sequence[str] = ("tsne_kmeans.ari", "tsne_kmeans.nmi"),
    baseline: str = BASELINE,
) -> pd.DataFrame:
    """Each (entry, beta) but the controls against the baseline, paired on the seed: mean difference, its
    95% t-interval, the Wilcoxon signed-rank p-value (Wilcoxon 1945), whether the interval excludes zero,
    and the paired t-test's p-value adjusted with Holm's method (Holm 1979) over every comparison of the
    table (``holm_p``, ``holm_verdict``). See :mod:`vaebench.results.stats`."""
    base = frame[frame["entry"] == baseline]
    rows: list[dict[str, object]] = []
    if base.empty:
        return pd.DataFrame(rows)
    compared = frame[(frame["entry"] != baseline) & ~frame["entry"].isin(CONTROLS)]
    for (entry, beta), group in compared.groupby(["entry", "beta"], dropna=False, sort=True):
        for metric in metrics:
            if metric in frame and not frame[metric].isna().all():
                row = _paired_rows(group, base, metric, baseline)
                rows.append({"entry": entry, "beta": beta, "metric": metric, **row})
    paired = pd.DataFrame(rows)
    if not paired.empty:
        paired["holm_p"] = holm_adjusted(paired["t_p"].to_numpy())
        paired["holm_verdict"] = [
            "too few seeds"
            if np.isnan(p)
            else (f"{'better' if d > 0 else 'worse'} than {baseline}" if p < 0.05 else "within noise")
            for p, d in zip(paired["holm_p"], paired["mean_difference"], strict=True)
        ]
    return paired


def best_runs(frame: pd.DataFrame, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Per entry, the run at its best beta (by mean ``metric`` over seeds) whose score is that beta's median."""
    picks = []
    for _entry, group in frame.groupby("entry", sort=True):
        means = group.groupby("beta", dropna=False)[metric].mean()
        best_beta = means.idxmax()
        at_best = group[group["beta"].isna()] if pd.isna(best_beta) else group[group["beta"] == best_beta]
        at_best = at_best.sort_values(metric)
        picks.append(at_best.iloc[(len(at_best) - 1) // 2])
    return pd.DataFrame(picks)


def ranking(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``frame`` and the score its runs are ranked on: the t-SNE k-means ARI with labels, else
    :data:`STRUCTURE_SCORE` (added to the frame)."""
    if has_labels(frame):
        return frame, RANK_METRIC
    return with_structure_score(frame), STRUCTURE_SCORE


def subtitle(frame: pd.DataFrame) -> str:
    """What the runs were scored on and over how many seeds, for every figure's and table's title."""
    datasets = ", ".join(sorted(set(frame["dataset"]) - {""})) or "data"
    labels = ", ".join(sorted(set(frame["label_key"]) - {"", NO_LABELS})) or "labels"
    labels = f"labels {labels}" if has_labels(frame) else "no labels"
    seeds = frame.groupby(["entry", "beta"], dropna=False)["seed"].nunique()
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    return f"{datasets}, {labels}, {n} seeds"
