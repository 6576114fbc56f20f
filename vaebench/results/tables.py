"""One results table as a figure, in the spirit of scib-metrics' ``Benchmarker.plot_results_table``.

Rows are entries (model, and beta where it has one), sorted by the total aggregate; columns are the scaled
scores grouped as in :mod:`vaebench.results.scaling`, each cell coloured on a scale that spans the values shown
and annotated with its mean over seeds; the aggregates on the right are bars with their 95% t-interval.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from vaebench.evaluate.figures import data_range
from vaebench.results.scaling import GROUPS, TOTAL, aggregate_name, scaled_name

SHORT_NAMES = {
    "tsne_kmeans.nmi": "t-SNE k-means NMI",
    "tsne_kmeans.ari": "t-SNE k-means ARI",
    "latent_kmeans.nmi": "k-means NMI",
    "latent_kmeans.ari": "k-means ARI",
    "leiden.nmi": "Leiden NMI",
    "leiden.ari": "Leiden ARI",
    "latent.asw_label": "label ASW",
    "latent.clisi": "cLISI",
    "latent.isolated_label": "isolated label",
    "structure.trustworthiness": "trustworthiness",
    "structure.knn_preservation": "kNN kept",
    "train.cpu_seconds": "train CPU s",
}


def _two_decimals(value: float) -> str:
    return f"{0.0 if abs(value) < 0.005 else value:.2f}"


def _shown(summary: pd.DataFrame, column: str) -> bool:
    """Whether the summary has means of ``column`` (scores that need labels have none without labels)."""
    return f"{column} mean" in summary and bool(summary[f"{column} mean"].notna().any())


def row_label(entry: str, beta: float) -> str:
    return entry if pd.isna(beta) else f"{entry} (beta={beta:.3g})"


def results_table_figure(summary: pd.DataFrame, subtitle: str) -> Figure:
    """The table of scaled scores (means over seeds) and group aggregates (bars with 95% intervals)."""
    metrics = [
        (group, m) for group, names in GROUPS.items() for m in names if _shown(summary, scaled_name(m))
    ]
    aggregates = [g for g in (*GROUPS, TOTAL) if _shown(summary, aggregate_name(g))]
    order = summary.sort_values(f"{aggregate_name(TOTAL)} mean", ascending=False, na_position="last")
    labels = [row_label(e, b) for e, b in zip(order["entry"], order["beta"], strict=True)]
    values = np.array([order[f"{scaled_name(m)} mean"].to_numpy(dtype=float) for _, m in metrics]).T
    n_rows, n_cols = values.shape
    width = 0.95 * n_cols + 1.6 * len(aggregates) + 2.5
    fig = plt.figure(figsize=(width, 0.45 * n_rows + 2.6), layout="constrained")
    grid = fig.add_gridspec(1, 1 + len(aggregates), width_ratios=[0.95 * n_cols] + [1.5] * len(aggregates))
    table = fig.add_subplot(grid[0])
    low, high = data_range(values)
    norm = Normalize(vmin=low, vmax=high)
    cmap = plt.get_cmap("YlGnBu")
    table.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            dark = norm(value) > 0.6
            table.text(
                col,
                row,
                _two_decimals(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    table.set_xticks(range(n_cols), [SHORT_NAMES.get(m, m) for _, m in metrics], rotation=45, ha="right")
    table.set_yticks(range(n_rows), labels)
    start = 0
    for group in GROUPS:
        count = sum(1 for g, _ in metrics if g == group)
        if count:
            table.text(
                (start + start + count - 1) / 2, -0.8, group, ha="center", va="bottom", fontweight="bold"
            )
            if start:
                table.axvline(start - 0.5, color="white", linewidth=3)
        start += count
    bar_axes = []
    for i, group in enumerate(aggregates):
        ax = fig.add_subplot(grid[1 + i])
        bar_axes.append(ax)
        mean = order[f"{aggregate_name(group)} mean"].to_numpy(dtype=float)
        low_ci = order[f"{aggregate_name(group)} ci95_low"].to_numpy(dtype=float)
        high_ci = order[f"{aggregate_name(group)} ci95_high"].to_numpy(dtype=float)
        error = np.vstack([mean - low_ci, high_ci - mean])
        error = np.where(np.isfinite(error), error, 0.0)
        ax.barh(range(n_rows), np.nan_to_num(mean), xerr=error, color=cmap(0.65), capsize=2)
        for row, value in enumerate(mean):
            if np.isfinite(value):
                ax.text(
                    0.02,
                    row,
                    f"{value:.2f}",
                    va="center",
                    ha="left",
                    fontsize=8,
                    transform=ax.get_yaxis_transform(),
                )
        ax.set_ylim(-0.5, n_rows - 0.5)
        ax.invert_yaxis()
        ax.set_yticks([])
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.axvline(1, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(group, fontsize=9, fontweight="bold")
        ax.tick_params(axis="x", labelsize=7)
    # The colour bar sits on the right of the whole row, so the table and the bars keep equal heights.
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=[table, *bar_axes],
        location="right",
        shrink=0.7,
        label="scaled score",
    )
    fig.suptitle(
        f"Scores scaled between the controls (0: worst control, 1: best), means over seeds; {subtitle}",
        x=0.01,
        ha="left",
    )
    return fig
