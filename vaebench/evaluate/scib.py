"""Label-aware scores of an embedding as the single-cell integration benchmark (scIB) defines them.

Luecken et al. (2022), "Benchmarking atlas-level data integration in single-cell genomics", Nat. Methods
19; the definitions follow scib-metrics (YosefLab, ``scib_metrics.metrics``): Leiden NMI/ARI at the best of
ten resolutions in 0.2..2.0, the label silhouette rescaled to [0, 1], the cell-type LISI scaled to [0, 1],
and the isolated-label silhouette. Every score is higher-is-better with 1 at the top.

Libraries, chosen by measurement (docs/metrics-and-protocol.md): scanpy's kNN graph,
LISI of ``harmonypy`` (the port of the LISI authors' code), igraph's Leiden, scikit-learn's silhouette. scib-metrics itself
was not taken: it adds JAX (about 400 MB installed) and a numba/JAX compilation of several seconds in every
new process, more than the whole evaluation of a 700-cell run.

Each function scores a seeded subsample of at most ``max_cells`` cells (all cells below that), so that
their cost stays bounded at 100,000 cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples
from sklearn.neighbors import KNeighborsTransformer

from vaebench.evaluate.subsample import sampled_rows

MAX_CELLS = 5000
"""Cells scored at most by each function here (above that, a seeded sample stratified by label, so that a
rare cell type keeps its share)."""
LEIDEN_RESOLUTIONS = tuple(round(2 * i / 10, 1) for i in range(1, 11))
"""scib-metrics' sweep: 0.2, 0.4, ..., 2.0."""
LEIDEN_NEIGHBOURS = 15
LISI_PERPLEXITY = 30.0
DISTANCE_BLOCK_MB = 64
"""Memory (MB) scikit-learn may give one block of a silhouette's pairwise distances. Its default, 1,024,
made the silhouette of a 10,000-cell sample one 10,000 x 10,000 float64 block (800 MB), the largest
allocation of a run; the widths are computed row by row, so they do not depend on the block's size."""


def _sample(
    embedding: np.ndarray, labels: np.ndarray, max_cells: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rows = sampled_rows(labels, max_cells, seed)
    return np.asarray(embedding, dtype=np.float64)[rows], np.asarray(labels).astype(str)[rows]


def knn_graph(embedding: np.ndarray, n_neighbors: int = LEIDEN_NEIGHBOURS, seed: int = 0):
    """scanpy's kNN graph of the rows of ``embedding`` (exact neighbours, Gaussian-kernel connectivities).

    ``sc.pp.neighbors`` with ``method="gauss"`` (Coifman et al. 2005, PNAS 102, as scanpy implements it)
    rather than its UMAP default: the UMAP fuzzy set is compiled by numba in every new process, which cost
    11.7 s against 0.18 s for the Gaussian kernel on a 700-cell latent (measured, see docs/performance.md).
    """
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(X=np.zeros((embedding.shape[0], 0), dtype=np.float32), obsm={"latent": embedding})
    n_neighbors = max(2, min(n_neighbors, embedding.shape[0] - 1))
    # A tree search (scikit-learn's "auto"): scanpy's "sklearn" transformer forces brute force, 13x slower
    # on a 6-d latent.
    transformer = KNeighborsTransformer(n_neighbors=n_neighbors, mode="distance")
    sc.pp.neighbors(
        adata,
        n_neighbors=n_neighbors,
        use_rep="latent",
        method="gauss",
        transformer=transformer,
        random_state=seed,
    )
    return adata


def leiden_partitions(graph, resolutions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """igraph's Leiden (modularity, 2 iterations) of a weighted kNN graph at each resolution, seeded.

    The graph is made undirected as scanpy's ``tl.leiden`` makes it (as scib-metrics does too); igraph is
    called directly, once per resolution on one graph, instead of through scanpy, which rebuilds the graph
    on every call.
    """
    import random

    import igraph

    g = igraph.Graph.Weighted_Adjacency(graph, mode="directed")
    g.to_undirected(mode="each")
    partitions = []
    for resolution in resolutions:
        igraph.set_random_number_generator(random.Random(seed))
        try:
            clustering = g.community_leiden(
                objective_function="modularity", weights="weight", resolution=resolution, n_iterations=2
            )
        finally:
            igraph.set_random_number_generator(random)
        partitions.append(np.asarray(clustering.membership))
    return partitions


def leiden_nmi_ari(
    embedding: np.ndarray, labels: np.ndarray, seed: int = 0, max_cells: int = MAX_CELLS
) -> dict[str, float]:
    """NMI and ARI of Leiden clusters of the embedding's kNN graph against the labels, at the resolution of
    the sweep 0.2..2.0 with the best NMI; returns ``nmi``, ``ari`` and that ``resolution``.

    Traag, Waltman & van Eck (2019), "From Louvain to Leiden", Sci. Rep. 9; protocol of scib-metrics'
    ``nmi_ari_cluster_labels_leiden`` (15 neighbours, ten resolutions, keep the best NMI) after Luecken et
    al. (2022).
    """
    embedding, labels = _sample(embedding, labels, max_cells, seed)
    graph = knn_graph(embedding, seed=seed).obsp["connectivities"]
    best = {"nmi": -np.inf, "ari": np.nan, "resolution": np.nan}
    for resolution, clusters in zip(
        LEIDEN_RESOLUTIONS, leiden_partitions(graph, LEIDEN_RESOLUTIONS, seed), strict=True
    ):
        nmi = normalized_mutual_info_score(labels, clusters, average_method="arithmetic")
        if nmi > best["nmi"]:
            best = {"nmi": nmi, "ari": adjusted_rand_score(labels, clusters), "resolution": resolution}
    return {key: float(value) for key, value in best.items()}


def silhouette_widths(embedding: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each cell's Euclidean silhouette width (``sklearn.metrics.silhouette_samples``), the distances
    computed a block of at most :data:`DISTANCE_BLOCK_MB` at a time."""
    return silhouette_samples(embedding, labels, metric="euclidean", working_memory=DISTANCE_BLOCK_MB)


def asw_label(embedding: np.ndarray, labels: np.ndarray, seed: int = 0, max_cells: int = MAX_CELLS) -> float:
    """The labels' average silhouette width rescaled to [0, 1]: ``(ASW + 1) / 2``.

    Rousseeuw (1987), J. Comput. Appl. Math. 20; rescaling of Luecken et al. (2022) as scib-metrics'
    ``silhouette_label(rescale=True)`` (Euclidean).
    """
    embedding, labels = _sample(embedding, labels, max_cells, seed)
    return float((silhouette_widths(embedding, labels).mean() + 1) / 2)


def clisi(
    embedding: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    max_cells: int = MAX_CELLS,
    perplexity: float = LISI_PERPLEXITY,
) -> float:
    """Cell-type LISI scaled to [0, 1]: ``(L - median LISI) / (L - 1)`` for L label classes, 1 when every
    cell's neighbourhood holds its own type only.

    Korsunsky et al. (2019), "Fast, sensitive and accurate integration of single-cell data with Harmony",
    Nat. Methods 16 (LISI, perplexity 30, i.e. 90 neighbours); scaling of Luecken et al. (2022) as
    scib-metrics' ``clisi_knn(scale=True)``. LISI itself: ``harmonypy.compute_lisi``.
    """
    from harmonypy.lisi import compute_lisi

    embedding, labels = _sample(embedding, labels, max_cells, seed)
    n_labels = len(np.unique(labels))
    perplexity = min(perplexity, (embedding.shape[0] - 1) / 3)
    lisi = compute_lisi(embedding, pd.DataFrame({"label": labels}), ["label"], perplexity)[:, 0]
    return float((n_labels - np.nanmedian(lisi)) / (n_labels - 1))


def isolated_label(
    embedding: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    max_cells: int = MAX_CELLS,
    batches: np.ndarray | None = None,
) -> float:
    """Isolated-label score: the mean over isolated labels of their cells' rescaled silhouette width.

    Luecken et al. (2022), as scib-metrics' ``isolated_labels`` (ASW variant): a label is isolated when it
    occurs in the fewest batches. Without batches (vaebench's single-batch data) every label is isolated,
    so the score is the silhouette averaged per label and then over labels: unlike ``asw_label``, a rare
    cell type weighs as much as a common one.
    """
    rows = sampled_rows(labels, max_cells, seed)
    embedding = np.asarray(embedding, dtype=np.float64)[rows]
    labels = np.asarray(labels).astype(str)[rows]
    batches = np.zeros(len(rows), dtype=int) if batches is None else np.asarray(batches)[rows]
    per_label = pd.DataFrame({"label": labels, "batch": batches}).drop_duplicates().groupby("label")["batch"]
    n_batches = per_label.count()
    isolated = n_batches.index[n_batches == n_batches.min()]
    widths = (silhouette_widths(embedding, labels) + 1) / 2
    return float(np.mean([widths[labels == label].mean() for label in isolated]))
