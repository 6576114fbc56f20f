"""The study's figures: t-SNE maps (and UMAP where asked for) coloured by cell type, the k-means comparison, the score heatmap.

Each function returns a matplotlib Figure and never shows it; the caller saves or logs it, as the PNG of
:func:`png_image`. Cell types get the same colour in every figure of a label set (sorted names -> tab10,
or tab20 above ten types), and the legend lists the names outside the plotting area.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

POINT_SIZE = 8


def png_image(figure: Figure, dpi: float | None = None) -> Image.Image:
    """``figure`` rendered once, at ``dpi`` (default: the figure's own), as an RGBA image to save as PNG.

    ``savefig`` draws a figure with a layout engine (the 2-d figures here are constrained) twice, once with
    painting disabled to place its parts and once to paint them; one draw does both and gives the same
    pixels (checked, with the dpi :func:`save_png` records, on the k-means comparison and the 3-d map, at the
    figure's dpi and at 110: identical arrays). Measured on 700 cells, median of 5, AMD EPYC: the map
    0.24-0.29 s -> 0.15-0.18 s, the k-means comparison 0.39 s -> 0.27 s."""
    if dpi is not None:
        figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)  # whatever backend the figure was made under
    canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)


def save_png(figure: Figure, path: str | Path, dpi: float | None = None) -> None:
    """Write ``figure`` to ``path`` as a PNG (:func:`png_image`), its dpi recorded as by ``savefig``."""
    png_image(figure, dpi).save(path, format="png", dpi=(figure.dpi, figure.dpi))


def label_palette(labels: Sequence[str] | np.ndarray) -> dict[str, tuple[float, ...]]:
    """A fixed colour per label name: the sorted names take the qualitative colours in order."""
    names = sorted({str(label) for label in labels})
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _scatter_by_label(
    ax: Axes, coords: np.ndarray, labels: np.ndarray, palette: dict[str, tuple[float, ...]]
) -> None:
    labels = np.asarray(labels).astype(str)
    for name, color in palette.items():
        cells = labels == name
        ax.scatter(
            coords[cells, 0],
            coords[cells, 1],
            s=POINT_SIZE,
            color=color,
            label=f"{name} ({cells.sum()})",
            linewidths=0,
        )


def label_map_axes(ax: Axes, name: str = "t-SNE") -> None:
    """Name a map's axes (``name`` 1, 2) and draw no ticks: its coordinates have no unit or meaning, only
    the neighbourhoods do (scanpy's embedding plots show none either), and ticks were half of a map's
    drawing time."""
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_xticks([])
    ax.set_yticks([])
    if hasattr(ax, "set_zlabel"):  # a 3-d map
        ax.set_zlabel(f"{name} 3")
        ax.set_zticks([])


def _legend_right(ax: Axes, title: str) -> None:
    ax.legend(
        title=title, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, markerscale=2.5, fontsize=9
    )


UNLABELLED_COLOR = "#4c72b0"
"""The one colour of a map of cells without labels."""


def tsne_figure(coords2d: np.ndarray, labels: np.ndarray | None, title: str) -> Figure:
    """The 2-d t-SNE coloured by cell type, with a legend of names and cell counts; one colour and no
    legend for cells without labels."""
    return map_figure(coords2d, labels, title, "t-SNE")


def map_figure(coords2d: np.ndarray, labels: np.ndarray | None, title: str, name: str) -> Figure:
    """A 2-d map (t-SNE, UMAP: ``name`` labels its axes) drawn as :func:`tsne_figure` draws the t-SNE."""
    fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
    coords2d = np.asarray(coords2d)
    if labels is None:
        ax.scatter(coords2d[:, 0], coords2d[:, 1], s=POINT_SIZE, color=UNLABELLED_COLOR, linewidths=0)
    else:
        _scatter_by_label(ax, coords2d, labels, label_palette(labels))
        _legend_right(ax, "cell type")
    label_map_axes(ax, name)
    ax.set_title(title)
    return fig


def kmeans_comparison_figure(
    coords2d: np.ndarray, labels: np.ndarray, kmeans_labels: np.ndarray, centroids: np.ndarray, title: str
) -> Figure:
    """The study's side-by-side: true cell types | the k-means partition with its centroids marked."""
    coords2d = np.asarray(coords2d)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6), layout="constrained", sharex=True, sharey=True)
    _scatter_by_label(left, coords2d, labels, label_palette(labels))
    left.set_title("true labels")
    _legend_right(left, "cell type")
    clusters = np.asarray(kmeans_labels)
    cmap = plt.get_cmap("tab10" if clusters.max() < 10 else "tab20")
    right.scatter(
        coords2d[:, 0], coords2d[:, 1], s=POINT_SIZE, c=[cmap(k % cmap.N) for k in clusters], linewidths=0
    )
    right.scatter(
        centroids[:, 0], centroids[:, 1], marker="X", s=160, c="black", edgecolors="white", label="centroid"
    )
    right.set_title(f"k-means partition (k = {len(centroids)})")
    right.legend(loc="upper right", frameon=True)
    for ax in (left, right):
        label_map_axes(ax)
    fig.suptitle(title)
    return fig


def tsne3d_figure(coords3d: np.ndarray, labels: np.ndarray | None, title: str) -> Figure:
    """The 3-d t-SNE coloured by cell type, the legend of names to its right (one colour and no legend
    for cells without labels).

    No layout engine: constrained layout sizes a 3-d axes by the projection of its last draw, so one draw
    and ``savefig`` could place it differently, and it clipped a legend of long names at the figure's edge.
    The legend is measured instead and the axes take the width it leaves."""
    coords3d = np.asarray(coords3d)
    fig = plt.figure(figsize=(9, 7))
    ax = fig.add_subplot(projection="3d")
    if labels is None:
        ax.scatter(*coords3d.T, s=POINT_SIZE, color=UNLABELLED_COLOR, depthshade=False)
        label_map_axes(ax)
        ax.set_title(title)
        return fig
    labels = np.asarray(labels).astype(str)
    for name, color in label_palette(labels).items():
        cells = labels == name
        ax.scatter(*coords3d[cells].T, s=POINT_SIZE, color=color, label=name, depthshade=False)
    label_map_axes(ax)
    ax.set_title(title)
    legend = fig.legend(
        *ax.get_legend_handles_labels(),
        title="cell type",
        loc="center right",
        bbox_to_anchor=(0.99, 0.5),
        frameon=False,
        markerscale=2.5,
        fontsize=9,
    )
    legend_width = legend.get_window_extent().width / fig.bbox.width  # a fraction of the figure's width
    # The z axis's label is drawn right of the axes' box: 0.06 of the width keeps it off the legend.
    ax.set_position((0.02, 0.02, max(0.91 - legend_width, 0.3), 0.9))
    return fig


def data_range(values: np.ndarray) -> tuple[float, float]:
    """The (low, high) of the finite values, widened around a single value; (0, 1) without any."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-9:
        return (low - 0.5, high + 0.5)
    return (low, high)


def score_heatmap(table: pd.DataFrame, title: str) -> Figure:
    """The study's heatmap: rows (models) x columns (scores), each cell annotated with its value.

    The colour scale spans the values shown (a fixed 0..1 scale gave scores within 0.1 of each other one
    colour), so the colours rank the cells and the annotations give the values.
    """
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(
        figsize=(1.6 * table.shape[1] + 3.5, 0.6 * table.shape[0] + 2), layout="constrained"
    )
    low, high = data_range(values)
    image = ax.imshow(values, cmap="viridis", vmin=low, vmax=high, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    middle = (low + high) / 2
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(
                col,
                row,
                f"{value:.3f}",
                ha="center",
                va="center",
                color="white" if value < middle else "black",
            )
    fig.colorbar(image, ax=ax, label="score")
    ax.set_title(title)
    return fig


def loss_curve_figure(losses: Sequence[float], title: str) -> Figure:
    """Training loss per epoch."""
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, marker="o" if len(losses) <= 30 else None, markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (per cell)")
    if len(losses) > 1 and min(losses) > 0 and max(losses) / min(losses) > 20:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig
