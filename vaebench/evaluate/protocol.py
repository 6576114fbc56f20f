"""The seed study's evaluation protocol, and the scores vaebench adds to it.

Study (section 3): encode every cell, t-SNE to 2-d and 3-d with perplexity 40, k-means on the 2-d map with
k = the number of label classes and 100 restarts, then NMI, ARI, homogeneity and completeness of that
partition against the labels (``tsne_kmeans.*``), after Wang & Gu (2018), "VASC", GPB 16.
Added: the same four from k-means on the latent itself (``latent_kmeans.*``), which does not depend on
t-SNE's randomness, and the silhouette of the labels in the latent (``latent.silhouette``).
A latent of exactly 2 dimensions is its own map: t-SNE is skipped, as the study did for 2-d codes.
Beyond the study, by default: scIB's label scores and the structure kept from the input
(:mod:`vaebench.evaluate.beyond`), each on a seeded sample of at most a few thousand cells.

Without labels (most raw counts are unannotated) only what needs none is scored: the structure kept from
the input (trustworthiness, kNN preservation); there is no k, so no k-means, and the maps are drawn on a
plain seeded sample. Label scores are then absent, never zero (:func:`no_labels_message` says so).

At scale (:mod:`vaebench.evaluate.subsample`): above ``tsne_cells`` cells the map and the k-means on it
use a stratified seeded sample of that size, the 3-d map at most ``TSNE3D_CELLS`` cells, the silhouette a
sample; up to it every step sees every cell, as the study's protocol does.

Asked for (``maps`` holding ``umap``), a 2-d UMAP is drawn on the same cells as the 2-d t-SNE: a figure
beside it, scored by nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans

from vaebench.config.parts import ProtocolSettings
from vaebench.errors import VaebenchError
from vaebench.evaluate.beyond import beyond_study_scores
from vaebench.evaluate.embed import tsne, umap_map
from vaebench.evaluate.metrics import get_metric
from vaebench.evaluate.subsample import (
    SILHOUETTE_CELLS,
    TSNE3D_CELLS,
    sample_cells,
    stratified_sample,
    take,
)

STUDY_METRICS = ("nmi", "ari", "hom", "com", "silhouette")
BEYOND_STUDY_METRICS = (
    "leiden",
    "asw_label",
    "clisi",
    "isolated_label",
    "trustworthiness",
    "knn_preservation",
)
DEFAULT_METRICS = STUDY_METRICS + BEYOND_STUDY_METRICS
SPOKEN_NAMES = {
    "nmi": "NMI",
    "ari": "ARI",
    "hom": "homogeneity",
    "com": "completeness",
    "leiden": "Leiden",
    "asw_label": "label ASW",
    "clisi": "cLISI",
    "isolated_label": "isolated label",
    "knn_preservation": "kNN preservation",
}


def label_free(metric_names: Sequence[str]) -> tuple[str, ...]:
    """The metrics among ``metric_names`` that need no labels (the structure metrics)."""
    return tuple(name for name in metric_names if not get_metric(name).needs_labels)


def no_labels_message(metric_names: Sequence[str] = DEFAULT_METRICS) -> str:
    """The one line a run or suite on data without labels says about what it scores."""
    skipped = [SPOKEN_NAMES.get(n, n) for n in metric_names if get_metric(n).needs_labels]
    kept = [SPOKEN_NAMES.get(n, n) for n in label_free(metric_names)] + ["active units"]
    scored = ", ".join(kept[:-1]) + " and " + kept[-1] if len(kept) > 1 else kept[0]
    head = f"No labels: label scores ({', '.join(skipped)}) are skipped" if skipped else "No labels"
    return f"{head}; scoring {scored}."


@dataclass
class Evaluation:
    """Scores of one embedding and what the figures need.

    ``map_cells`` are the cells the 2-d map (and the k-means on it) was drawn on, and the UMAP ``umap2d``
    where it was asked for (None otherwise); ``tsne3d_cells`` those of the 3-d map; None means every cell. Without labels there is no k-means (``kmeans_labels`` and
    ``kmeans_centroids`` are None) and ``metrics`` holds no label score.
    """

    metrics: dict[str, float]
    tsne2d: np.ndarray
    tsne3d: np.ndarray | None
    kmeans_labels: np.ndarray | None
    kmeans_centroids: np.ndarray | None
    seconds: dict[str, float] = field(default_factory=dict)
    map_cells: np.ndarray | None = None
    tsne3d_cells: np.ndarray | None = None
    umap2d: np.ndarray | None = None

    @property
    def sizes(self) -> dict[str, int]:
        """How many cells the map and the 3-d map were drawn on, for logging."""
        n = len(self.tsne2d)
        sizes = {"eval.map_cells": n}
        if self.tsne3d is not None:
            sizes["eval.tsne3d_cells"] = len(self.tsne3d)
        return sizes


@dataclass(frozen=True)
class KMeansResult:
    labels: np.ndarray
    centroids: np.ndarray


def kmeans(coords: np.ndarray, n_clusters: int, n_init: int, seed: int) -> KMeansResult:
    """k-means (Lloyd 1982, k-means++ seeding of Arthur & Vassilvitskii 2007) with ``n_init`` restarts."""
    model = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(
        np.asarray(coords, dtype=np.float64)
    )
    return KMeansResult(model.labels_.astype(int), model.cluster_centers_)


def score_partition(
    labels_true: np.ndarray, labels_pred: np.ndarray, metric_names: Sequence[str]
) -> dict[str, float]:
    """Every partition metric among ``metric_names`` of ``labels_pred`` against ``labels_true``."""
    scores = {}
    for name in metric_names:
        metric = get_metric(name)
        if metric.kind == "partition":
            scores[name] = metric.fn(labels_true, labels_pred)
    return scores


def kmeans_scores(
    coords: np.ndarray,
    labels: np.ndarray,
    n_init: int = 100,
    seed: int = 0,
    metric_names: Sequence[str] = DEFAULT_METRICS,
) -> tuple[dict[str, float], KMeansResult]:
    """k-means with k = the number of label classes on ``coords``, scored against ``labels``."""
    result = kmeans(coords, len(np.unique(labels)), n_init, seed)
    return score_partition(labels, result.labels, metric_names), result


def check_embedding(latent: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The embedding as a finite 2-d float array and the labels as strings (None: no labels), or one clear
    error."""
    latent = np.asarray(latent, dtype=np.float64)
    if latent.ndim != 2:
        raise VaebenchError(f"An embedding must be cells x dimensions, got an array of shape {latent.shape}.")
    if latent.shape[0] < 2:
        raise VaebenchError(f"The embedding has {latent.shape[0]} cell(s); at least two are needed.")
    if not np.isfinite(latent).all():
        raise VaebenchError("The embedding has NaN or infinite values.")
    if labels is None:
        return latent, None
    labels = np.asarray(labels).astype(str)
    if latent.shape[0] != labels.shape[0]:
        raise VaebenchError(
            f"The embedding has {latent.shape[0]} cells but there are {labels.shape[0]} labels."
        )
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise VaebenchError("The labels have a single class; scoring needs at least two.")
    if n_classes > latent.shape[0] - 1:
        raise VaebenchError(
            f"There are {n_classes} label classes for {latent.shape[0]} cells; k-means needs fewer."
        )
    return latent, labels


def evaluate_embedding(
    latent: np.ndarray,
    labels: np.ndarray | None,
    settings: ProtocolSettings | None = None,
    inputs: np.ndarray | None = None,
    *,
    seed: int = 0,
    n_jobs: int = 1,
) -> Evaluation:
    """Score ``latent`` against ``labels`` with the study's protocol (see the module docstring); the
    structure metrics compare it with ``inputs``, the cells x genes matrix it encodes, when given.
    Without labels (None) only the metrics that need none are scored. ``seed`` seeds the samples, t-SNE
    and k-means (the run's seed); ``n_jobs`` threads scikit-learn's t-SNE neighbour search (its maps do not
    depend on it)."""
    settings = settings or ProtocolSettings()
    names = metric_names(settings)
    for name in names:
        get_metric(name)
    latent, labels = check_embedding(latent, labels)
    if labels is None:
        return _evaluate_unlabelled(latent, settings, inputs, seed, n_jobs)
    seconds: dict[str, float] = {}

    def timed(key: str, fn, *args, **kwargs):
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds[key] = time.perf_counter() - start
        return value

    map2d, map3d, map_cells, tsne3d_cells = _maps(latent, labels, settings, seconds, seed, n_jobs)
    map_labels = take(labels, map_cells)
    tsne_scores, on_map = timed("kmeans_tsne", kmeans_scores, map2d, map_labels, settings.n_init, seed, names)
    latent_scores, _ = timed("kmeans_latent", kmeans_scores, latent, labels, settings.n_init, seed, names)
    metrics = {f"tsne_kmeans.{k}": v for k, v in tsne_scores.items()}
    metrics.update({f"latent_kmeans.{k}": v for k, v in latent_scores.items()})
    sampled = stratified_sample(labels, SILHOUETTE_CELLS, seed + 1)
    for name in names:
        metric = get_metric(name)
        if metric.kind == "embedding":
            metrics[f"latent.{name}"] = timed(
                f"latent_{name}", metric.fn, take(latent, sampled), take(labels, sampled)
            )
    metrics.update(beyond_study_scores(names, latent, labels, inputs, seed, seconds))
    umap2d = umap_of(latent, map_cells, settings.maps, seconds, seed)
    return Evaluation(
        metrics, map2d, map3d, on_map.labels, on_map.centroids, seconds, map_cells, tsne3d_cells, umap2d
    )


def metric_names(settings: ProtocolSettings) -> tuple[str, ...]:
    """The metrics the protocol scores: those named, else :data:`DEFAULT_METRICS`."""
    return settings.metrics or DEFAULT_METRICS


def _maps(
    latent: np.ndarray,
    labels: np.ndarray | None,
    settings: ProtocolSettings,
    seconds: dict[str, float],
    seed: int,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The 2-d map, the 3-d map (or None) and the cells each was drawn on (None: all)."""
    map_cells = sample_cells(labels, latent.shape[0], settings.tsne_cells, seed)
    if latent.shape[1] == 2:
        return take(latent, map_cells), None, map_cells, None
    start = time.perf_counter()
    map2d = tsne(take(latent, map_cells), 2, settings.perplexity, seed, n_jobs)
    seconds["tsne2d"] = time.perf_counter() - start
    if not settings.tsne_3d:
        return map2d, None, map_cells, None
    start = time.perf_counter()
    tsne3d_cells = sample_cells(labels, latent.shape[0], TSNE3D_CELLS, seed)
    map3d = tsne(take(latent, tsne3d_cells), 3, settings.perplexity, seed, n_jobs)
    seconds["tsne3d"] = time.perf_counter() - start
    return map2d, map3d, map_cells, tsne3d_cells


def _evaluate_unlabelled(
    latent: np.ndarray, settings: ProtocolSettings, inputs: np.ndarray | None, seed: int, n_jobs: int
) -> Evaluation:
    """The protocol without labels: the maps on a plain seeded sample, the structure scores, no k-means."""
    seconds: dict[str, float] = {}
    map2d, map3d, map_cells, tsne3d_cells = _maps(latent, None, settings, seconds, seed, n_jobs)
    names = label_free(metric_names(settings))
    metrics = beyond_study_scores(names, latent, None, inputs, seed, seconds)
    umap2d = umap_of(latent, map_cells, settings.maps, seconds, seed)
    return Evaluation(metrics, map2d, map3d, None, None, seconds, map_cells, tsne3d_cells, umap2d)


def umap_of(
    latent: np.ndarray, cells: np.ndarray | None, maps: tuple[str, ...], seconds: dict[str, float], seed: int
) -> np.ndarray | None:
    """The 2-d UMAP of the t-SNE map's ``cells`` where ``maps`` asks for it, timed as ``umap``; None
    otherwise, and for a 2-d latent, which is its own map."""
    if "umap" not in maps or latent.shape[1] == 2:
        return None
    start = time.perf_counter()
    coords = umap_map(take(latent, cells), seed)
    seconds["umap"] = time.perf_counter() - start
    return coords
