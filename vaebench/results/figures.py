"""The report's figures, each a pure function of the summary (or of the runs) returning a matplotlib Figure.

The heatmap of the study's k-means scores on the 2-d t-SNE, scores against beta (error bars of one
standard deviation over seeds), scores against training CPU seconds, the t-SNE maps of each model at its
best beta, and one results table in the spirit of scib-metrics' ``Benchmarker.plot_results_table``: rows
are entries sorted by the total aggregate, columns the scaled scores grouped as in
:mod:`vaebench.results.scaling`, each cell coloured on a scale that spans the values shown and annotated
with its mean over seeds, and the aggregates on the right as bars with their 95% t-interval.
"""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from vaebench.evaluate import score_heatmap
from vaebench.evaluate.figures import data_range, label_map_axes, label_palette
from vaebench.results.scaling import GROUPS, TOTAL, aggregate_name, scaled_name
from vaebench.results.tables import SCORES

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

_ENTRY_COLORS: dict[str, tuple[float, ...]] = {}


def _color(entry: str) -> tuple[float, ...]:
    """One colour per entry for the whole process, so that an entry keeps its colour from figure to figure."""
    if entry not in _ENTRY_COLORS:
        _ENTRY_COLORS[entry] = plt.get_cmap("tab10")(len(_ENTRY_COLORS) % 10)
    return _ENTRY_COLORS[entry]


def row_label(entry: str, beta: float) -> str:
    return entry if pd.isna(beta) else f"{entry} (beta={beta:.3g})"


def heatmap_figure(summary: pd.DataFrame, subtitle: str) -> Figure:
    """The study's heatmap (models x NMI/ARI/HOM/COM of k-means on the 2-d t-SNE), of means over seeds."""
    table = pd.DataFrame(
        {metric.split(".")[1].upper(): summary[f"{metric} mean"].to_numpy() for metric in SCORES},
        index=[row_label(e, b) for e, b in zip(summary["entry"], summary["beta"], strict=True)],
    )
    return score_heatmap(table, f"Mean scores of k-means on the 2-d t-SNE\n{subtitle}")


def beta_figure(summary: pd.DataFrame, metric: str, subtitle: str) -> Figure:
    """Score against beta per model, with error bars of one standard deviation over seeds."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    # Ticks at the betas of the grid (entries run at several betas); a tuned entry's single beta is a
    # point of its own, left unlabelled so that its ticks do not crowd the grid's.
    grid = summary.groupby("entry")["beta"].transform("nunique") > 1
    betas = summary.loc[grid, "beta"].dropna()
    if betas.empty:
        betas = summary["beta"].dropna()
    for entry, group in summary.groupby("entry", sort=True):
        mean, sd = group[f"{metric} mean"], group[f"{metric} sd"].fillna(0)
        if group["beta"].isna().all():
            ax.axhline(
                mean.iloc[0], linestyle="--", linewidth=1.2, label=f"{entry} (no beta)", color=_color(entry)
            )
            ax.axhspan(mean.iloc[0] - sd.iloc[0], mean.iloc[0] + sd.iloc[0], alpha=0.12, color=_color(entry))
        else:
            ax.errorbar(group["beta"], mean, yerr=sd, marker="o", capsize=4, label=entry, color=_color(entry))
    if not betas.empty:
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(betas)), [f"{b:.3g}" for b in sorted(set(betas))])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("beta (weight of the KL term)")
    ax.set_ylabel(f"{metric} (mean ± sd over seeds)")
    ax.set_title(f"{metric} against beta\n{subtitle}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def cost_figure(frame: pd.DataFrame, metric: str, subtitle: str) -> Figure:
    """Score against training CPU seconds, one point per run."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for entry, group in frame.groupby("entry", sort=True):
        ax.scatter(group["train.cpu_seconds"], group[metric], label=entry, alpha=0.8, color=_color(entry))
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("training CPU seconds (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against training cost, one point per run\n{subtitle}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def tsne_grid_figure(panels: list[tuple[str, pd.DataFrame]], subtitle: str) -> Figure:
    """One 2-d t-SNE panel per model at its best beta, coloured by cell type, one shared legend (maps of
    cells without labels in one colour, without a legend)."""
    panels = [(title, table if "label" in table else table.assign(label="cells")) for title, table in panels]
    n = len(panels)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    colors = label_palette(list(set().union(*(set(table["label"].astype(str)) for _, table in panels))))
    labels = list(colors)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.5 * cols + 2.5, 5 * rows), squeeze=False, layout="constrained"
    )
    for ax, (title, table) in zip(axes.flat, panels, strict=False):
        for label in labels:
            cells = table[table["label"].astype(str) == label]
            ax.scatter(cells["x"], cells["y"], s=6, color=colors[label], label=label, linewidths=0)
        ax.set_title(title)
        label_map_axes(ax)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=colors[label], label=label) for label in labels
    ]
    if labels != ["cells"]:
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="cell type")
    fig.suptitle(f"2-d t-SNE of each model at its best beta\n{subtitle}")
    return fig


def maps_beside_figure(panels: list[tuple[str, pd.DataFrame]], subtitle: str) -> Figure:
    """Each entry's 2-d t-SNE with its UMAP beside it (columns ``umap_x``, ``umap_y`` of the same cells;
    a run without a UMAP leaves its place empty and says so), one row per entry, one shared legend."""
    panels = [(title, table if "label" in table else table.assign(label="cells")) for title, table in panels]
    colors = label_palette(list(set().union(*(set(table["label"].astype(str)) for _, table in panels))))
    fig, axes = plt.subplots(
        len(panels), 2, figsize=(10.5, 4.2 * len(panels)), squeeze=False, layout="constrained"
    )
    for (tsne_ax, umap_ax), (title, table) in zip(axes, panels, strict=True):
        for ax, (x, y), name in ((tsne_ax, ("x", "y"), "t-SNE"), (umap_ax, ("umap_x", "umap_y"), "UMAP")):
            cells = table.dropna(subset=[x, y]) if x in table else table.iloc[:0]
            if cells.empty:
                ax.axis("off")
                ax.text(0.5, 0.5, f"{title}:\nno {name} logged", ha="center", va="center")
                continue
            for label, color in colors.items():
                group = cells[cells["label"].astype(str) == label]
                ax.scatter(group[x], group[y], s=5, color=color, label=label, linewidths=0)
            ax.set_title(f"{title}\n{name}", fontsize=10)
            label_map_axes(ax, name)
    if list(colors) != ["cells"]:
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=n) for n, c in colors.items()]
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="cell type")
    fig.suptitle(f"2-d t-SNE and UMAP of each model at its best beta\n{subtitle}")
    return fig


def _shown(summary: pd.DataFrame, column: str) -> bool:
    """Whether the summary has means of ``column`` (scores that need labels have none without labels)."""
    return f"{column} mean" in summary and bool(summary[f"{column} mean"].notna().any())


def _two_decimals(value: float) -> str:
    return f"{0.0 if abs(value) < 0.005 else value:.2f}"


def _draw_scaled_cells(
    table: Axes, values: np.ndarray, metrics: list[tuple[str, str]], norm: Normalize, cmap: Colormap
) -> None:
    """The scaled scores as coloured cells with their values, the groups named above their columns."""
    table.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            color = "white" if norm(value) > 0.6 else "black"
            table.text(col, row, _two_decimals(value), ha="center", va="center", fontsize=8, color=color)
    table.set_xticks(
        range(len(metrics)), [SHORT_NAMES.get(m, m) for _, m in metrics], rotation=45, ha="right"
    )
    start = 0
    for group in GROUPS:
        count = sum(1 for g, _ in metrics if g == group)
        if count:
            middle = (start + start + count - 1) / 2
            table.text(middle, -0.8, group, ha="center", va="bottom", fontweight="bold")
            if start:
                table.axvline(start - 0.5, color="white", linewidth=3)
        start += count


def _draw_aggregate_bars(ax: Axes, order: pd.DataFrame, group: str, color: tuple[float, ...]) -> None:
    """One group's aggregate per row as a bar with its 95% t-interval and its value written in."""
    column = aggregate_name(group)
    mean = order[f"{column} mean"].to_numpy(dtype=float)
    low = order[f"{column} ci95_low"].to_numpy(dtype=float)
    high = order[f"{column} ci95_high"].to_numpy(dtype=float)
    error = np.vstack([mean - low, high - mean])
    error = np.where(np.isfinite(error), error, 0.0)
    ax.barh(range(len(mean)), np.nan_to_num(mean), xerr=error, color=color, capsize=2)
    for row, value in enumerate(mean):
        if np.isfinite(value):
            transform = ax.get_yaxis_transform()
            ax.text(0.02, row, f"{value:.2f}", va="center", ha="left", fontsize=8, transform=transform)
    ax.set_ylim(-0.5, len(mean) - 0.5)
    ax.invert_yaxis()
    ax.set_yticks([])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.axvline(1, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(group, fontsize=9, fontweight="bold")
    ax.tick_params(axis="x", labelsize=7)


def results_table_figure(summary: pd.DataFrame, subtitle: str) -> Figure:
    """The table of scaled scores (means over seeds) and group aggregates (bars with 95% intervals)."""
    metrics = [
        (group, m) for group, names in GROUPS.items() for m in names if _shown(summary, scaled_name(m))
    ]
    aggregates = [g for g in (*GROUPS, TOTAL) if _shown(summary, aggregate_name(g))]
    order = summary.sort_values(f"{aggregate_name(TOTAL)} mean", ascending=False, na_position="last")
    values = np.array([order[f"{scaled_name(m)} mean"].to_numpy(dtype=float) for _, m in metrics]).T
    n_rows, n_cols = values.shape
    width = 0.95 * n_cols + 1.6 * len(aggregates) + 2.5
    fig = plt.figure(figsize=(width, 0.45 * n_rows + 2.6), layout="constrained")
    grid = fig.add_gridspec(1, 1 + len(aggregates), width_ratios=[0.95 * n_cols] + [1.5] * len(aggregates))
    table = fig.add_subplot(grid[0])
    norm = Normalize(*data_range(values))
    cmap = plt.get_cmap("YlGnBu")
    _draw_scaled_cells(table, values, metrics, norm, cmap)
    table.set_yticks(
        range(n_rows), [row_label(e, b) for e, b in zip(order["entry"], order["beta"], strict=True)]
    )
    bar_axes = [fig.add_subplot(grid[1 + i]) for i in range(len(aggregates))]
    for ax, group in zip(bar_axes, aggregates, strict=True):
        _draw_aggregate_bars(ax, order, group, cmap(0.65))
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
