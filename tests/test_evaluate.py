"""Metrics and the study's protocol: known values, invariances, and the 2-d shortcut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaebench.errors import VaebenchError
from vaebench.evaluate import (
    METRICS,
    ProtocolSettings,
    evaluate_embedding,
    get_metric,
    kmeans_comparison_figure,
    loss_curve_figure,
    score_heatmap,
    tsne,
    tsne3d_figure,
    tsne_figure,
)
from vaebench.evaluate.metrics import ari, completeness, homogeneity, nmi, silhouette

FAST = ProtocolSettings(perplexity=20, n_init=5, tsne_3d=False)


def blobs(
    n_per: int = 40, dims: int = 6, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 10, (3, dims))
    labels = np.repeat(["T cell", "B cell", "NK"], n_per)
    return centers[np.repeat([0, 1, 2], n_per)] + rng.normal(0, spread, (3 * n_per, dims)), labels


def test_partition_metrics_on_known_cases() -> None:
    truth = np.array(["a", "a", "b", "b"])
    renamed = np.array([7, 7, 3, 3])
    for metric in (nmi, ari, homogeneity, completeness):
        assert metric(truth, renamed) == pytest.approx(1.0)
    # One cluster holding everything: perfectly complete, not homogeneous at all.
    one = np.zeros(4, dtype=int)
    assert completeness(truth, one) == pytest.approx(1.0)
    assert homogeneity(truth, one) == pytest.approx(0.0)
    assert ari(truth, one) == pytest.approx(0.0)
    assert ari(truth, np.array([1, 1, 2, 3])) == pytest.approx(0.5714285714285715)


def test_silhouette_separated_and_mixed() -> None:
    coords, labels = blobs()
    assert silhouette(coords, labels) > 0.9
    assert abs(silhouette(coords, np.random.default_rng(0).permutation(labels))) < 0.1


def test_metric_registry_lists_known_names() -> None:
    assert set(METRICS) >= {"nmi", "ari", "hom", "com", "silhouette", "leiden", "clisi", "trustworthiness"}
    with pytest.raises(VaebenchError, match="known metrics are: ari, asw_label, clisi, com, hom, "):
        get_metric("accuracy")


def test_protocol_scores_clusters_high_and_shuffled_labels_near_zero() -> None:
    coords, labels = blobs()
    good = evaluate_embedding(coords, labels, FAST)
    assert set(good.metrics) == {
        *(f"{block}.{m}" for block in ("tsne_kmeans", "latent_kmeans") for m in ("nmi", "ari", "hom", "com")),
        "latent.silhouette",
        *("leiden.nmi", "leiden.ari", "leiden.resolution"),
        *("latent.asw_label", "latent.clisi", "latent.isolated_label"),
    }
    assert good.metrics["tsne_kmeans.ari"] > 0.95 and good.metrics["latent_kmeans.nmi"] > 0.95
    shuffled = evaluate_embedding(coords, np.random.default_rng(1).permutation(labels), FAST)
    assert shuffled.metrics["latent_kmeans.ari"] < 0.1
    assert good.tsne2d.shape == (120, 2) and good.tsne3d is None
    assert good.kmeans_centroids.shape == (3, 2)


def test_same_seed_same_map_and_scores() -> None:
    coords, labels = blobs()
    a, b = evaluate_embedding(coords, labels, FAST), evaluate_embedding(coords, labels, FAST)
    np.testing.assert_array_equal(a.tsne2d, b.tsne2d)
    assert a.metrics == b.metrics


def test_a_2d_embedding_is_its_own_map() -> None:
    coords, labels = blobs(dims=2)
    result = evaluate_embedding(coords, labels, ProtocolSettings(n_init=5))
    np.testing.assert_array_equal(result.tsne2d, coords)
    assert result.tsne3d is None and "tsne2d" not in result.seconds


def test_3d_tsne_is_computed_when_asked() -> None:
    coords, labels = blobs(n_per=20)
    result = evaluate_embedding(coords, labels, ProtocolSettings(perplexity=10, n_init=2, tsne_3d=True))
    assert result.tsne3d is not None and result.tsne3d.shape == (60, 3)


def test_perplexity_is_capped_for_small_data() -> None:
    coords, _ = blobs(n_per=5)
    assert tsne(coords, 2, perplexity=40.0).shape == (15, 2)


@pytest.mark.parametrize(
    ("latent", "labels", "message"),
    [
        (np.array([[np.nan, 1.0], [0.0, 1.0], [1.0, 1.0]]), ["a", "b", "a"], "NaN or infinite"),
        (np.zeros((1, 3)), ["a"], "at least two"),
        (np.zeros((4, 3)), ["a", "a", "a", "a"], "single class"),
        (np.zeros((4, 3)), ["a", "b"], "4 cells but there are 2 labels"),
    ],
)
def test_bad_embeddings_are_one_sentence(latent: np.ndarray, labels: list[str], message: str) -> None:
    with pytest.raises(VaebenchError, match=message):
        evaluate_embedding(latent, np.array(labels), FAST)


def test_figures_render_to_real_pngs(tmp_path: Path) -> None:
    coords, labels = blobs(n_per=20)
    result = evaluate_embedding(coords, labels, ProtocolSettings(perplexity=10, n_init=2, tsne_3d=True))
    figures = {
        "tsne.png": tsne_figure(result.tsne2d, labels, "t-SNE"),
        "kmeans.png": kmeans_comparison_figure(
            result.tsne2d, labels, result.kmeans_labels, result.kmeans_centroids, "k"
        ),
        "tsne3d.png": tsne3d_figure(result.tsne3d, labels, "3-d"),
        "heat.png": score_heatmap(pd.DataFrame({"NMI": [0.7, 0.6]}, index=["ae", "pca"]), "scores"),
        "loss.png": loss_curve_figure([3.0, 2.0, 1.5], "loss"),
    }
    for name, figure in figures.items():
        figure.savefig(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    legend = figures["tsne.png"].axes[0].get_legend()
    assert {t.get_text().split(" (")[0] for t in legend.get_texts()} == {"T cell", "B cell", "NK"}


@pytest.mark.parametrize(
    "names",
    [
        ["B cell", "CD14+ Monocyte", "NK"],  # the 3-d map once clipped this legend at the figure's edge
        ["CD14+ Monocyte", "CD4+/CD45RA+/CD25- Naive T", "CD8+/CD45RA+ Naive Cytotoxic", "Dendritic"],
    ],
)
def test_the_maps_legends_and_labels_lie_inside_the_figure(names: list[str]) -> None:
    labels = np.array(names * 30)
    rng = np.random.default_rng(0)
    for figure in (
        tsne_figure(rng.normal(size=(len(labels), 2)), labels, "2-d"),
        tsne3d_figure(rng.normal(size=(len(labels), 3)), labels, "3-d"),
    ):
        figure.canvas.draw()
        legend = figure.legends[0] if figure.legends else figure.axes[0].get_legend()
        assert [text.get_text().split(" (")[0] for text in legend.get_texts()] == sorted(names)
        parts = [legend, *legend.get_texts(), figure.axes[0].xaxis.label, figure.axes[0].yaxis.label]
        for part in parts:
            box = part.get_window_extent()
            assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, part
            assert figure.bbox.y0 <= box.y0 and box.y1 <= figure.bbox.y1, part
        if hasattr(figure.axes[0], "zaxis"):
            z_label = figure.axes[0].zaxis.label.get_window_extent()
            assert z_label.x1 < legend.get_window_extent().x0  # the z label stays off the legend


@pytest.mark.parametrize("dpi", [None, 110])
def test_figures_are_written_with_the_pixels_savefig_gives(tmp_path: Path, dpi: float | None) -> None:
    import matplotlib.pyplot as plt
    from PIL import Image

    from vaebench.evaluate.figures import save_png

    rng = np.random.default_rng(0)
    labels = np.array(["CD14+ Monocyte", "B cell", "NK"] * 50)
    coords, coords3d = rng.normal(size=(150, 2)), rng.normal(size=(150, 3))
    kmeans, centroids = rng.integers(0, 3, 150), rng.normal(size=(3, 2))
    makers = {
        "comparison": lambda: kmeans_comparison_figure(coords, labels, kmeans, centroids, "k-means"),
        "map3d": lambda: tsne3d_figure(coords3d, labels, "3-d"),
    }
    open_before = plt.get_fignums()
    for name, make in makers.items():
        figure = make()
        figure.savefig(tmp_path / f"{name}-savefig.png", **({} if dpi is None else {"dpi": dpi}))
        plt.close(figure)
        figure = make()
        save_png(figure, tmp_path / f"{name}.png", dpi)
        plt.close(figure)
        expected, written = (Image.open(tmp_path / f"{name}{suffix}.png") for suffix in ("-savefig", ""))
        assert written.size == expected.size and written.info["dpi"] == expected.info["dpi"]
        np.testing.assert_array_equal(np.asarray(written), np.asarray(expected))
    assert plt.get_fignums() == open_before  # a figure drawn on its own canvas still closes
