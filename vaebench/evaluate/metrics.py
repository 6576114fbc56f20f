"""Metrics: pure functions of (labels, partition), (embedding, labels) or (input, embedding), each with its
reference.

The registry's keys are the names users type (``--metrics nmi,ari,leiden``); scores are logged as
``<block>.<name>`` where the block says what was clustered (``tsne_kmeans``, ``latent_kmeans``,
``leiden``), which space was scored (``latent``) or what was compared (``structure``: input and latent).
Kinds: ``partition`` (labels, clusters) -> float, scored for both k-means blocks; ``embedding``
(latent, labels) -> float; ``labelled`` (latent, labels, seed) -> float or named floats; ``structure``
(input matrix, latent, seed) -> float. ``outputs`` are the logged names of a metric's scores (all
higher-is-better) and ``group`` is how reports aggregate them (scIB's groups).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from vaebench.evaluate import neighbours, scib
from vaebench.registry import Registry

BIO, STRUCTURE = "bio-conservation", "structure"


def nmi(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Normalized mutual information, arithmetic-mean normalisation.

    Strehl & Ghosh (2002), "Cluster ensembles", JMLR 3. The seed study used scikit-learn of 2019, whose
    default was the geometric mean; the arithmetic mean (today's default) differs from it by < 0.003 on the
    study's own codes (see tests/test_golden.py).
    """
    return float(skm.normalized_mutual_info_score(labels_true, labels_pred, average_method="arithmetic"))


def ari(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Adjusted Rand index. Hubert & Arabie (1985), "Comparing partitions", J. Classification 2."""
    return float(skm.adjusted_rand_score(labels_true, labels_pred))


def homogeneity(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Homogeneity: each cluster holds one class. Rosenberg & Hirschberg (2007), "V-Measure", EMNLP-CoNLL."""
    return float(skm.homogeneity_score(labels_true, labels_pred))


def completeness(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Completeness: each class lies in one cluster. Rosenberg & Hirschberg (2007), "V-Measure", EMNLP-CoNLL."""
    return float(skm.completeness_score(labels_true, labels_pred))


def silhouette(embedding: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette width of the labels in the embedding, Euclidean, in [-1, 1].

    Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of cluster
    analysis", J. Comput. Appl. Math. 20. (scib-metrics rescales it to [0, 1]; this is the raw width.)
    """
    return float(
        skm.silhouette_score(embedding, labels, metric="euclidean", working_memory=scib.DISTANCE_BLOCK_MB)
    )


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``partition`` metrics compare labels with a clustering, ``embedding`` and
    ``labelled`` metrics score the labels in the latent, ``structure`` metrics compare it with the input."""

    name: str
    kind: str
    fn: Callable[..., Any]
    description: str
    reference: str
    outputs: tuple[str, ...] = ()
    group: str = BIO

    @property
    def needs_labels(self) -> bool:
        """Whether the metric scores labels (all but the structure metrics, which compare input and latent)."""
        return self.kind != STRUCTURE

    @property
    def logged_names(self) -> tuple[str, ...]:
        """The names this metric's scores are logged under."""
        if self.kind == "partition":
            return (f"tsne_kmeans.{self.name}", f"latent_kmeans.{self.name}")
        if self.outputs:
            return self.outputs
        return (f"{STRUCTURE if self.kind == STRUCTURE else 'latent'}.{self.name}",)


METRICS: Registry[Metric] = Registry("metric")
register = METRICS.register


register(
    Metric(
        "nmi",
        "partition",
        nmi,
        "normalized mutual information of k-means and labels",
        "Strehl & Ghosh 2002, JMLR",
    )
)
register(
    Metric(
        "ari",
        "partition",
        ari,
        "adjusted Rand index of k-means and labels",
        "Hubert & Arabie 1985, J. Classif.",
    )
)
register(
    Metric("hom", "partition", homogeneity, "homogeneity of k-means clusters", "Rosenberg & Hirschberg 2007")
)
register(
    Metric(
        "com", "partition", completeness, "completeness of k-means clusters", "Rosenberg & Hirschberg 2007"
    )
)
register(
    Metric(
        "silhouette",
        "embedding",
        silhouette,
        "silhouette width of the labels in the latent",
        "Rousseeuw 1987",
    )
)


register(
    Metric(
        "leiden",
        "labelled",
        scib.leiden_nmi_ari,
        "NMI and ARI of Leiden clusters of the latent's kNN graph, best NMI over resolutions 0.2..2.0",
        "Traag et al. 2019, Sci. Rep.; Luecken et al. 2022, Nat. Methods (scib-metrics)",
        outputs=("leiden.nmi", "leiden.ari"),
    )
)
register(
    Metric(
        "asw_label",
        "labelled",
        scib.asw_label,
        "silhouette of the labels in the latent, rescaled to [0, 1]",
        "Rousseeuw 1987; Luecken et al. 2022, Nat. Methods (scib-metrics)",
    )
)
register(
    Metric(
        "clisi",
        "labelled",
        scib.clisi,
        "cell-type LISI of the latent, scaled to [0, 1] (1: neighbourhoods of one type)",
        "Korsunsky et al. 2019, Nat. Methods; Luecken et al. 2022 (scib-metrics)",
    )
)
register(
    Metric(
        "isolated_label",
        "labelled",
        scib.isolated_label,
        "rescaled silhouette averaged per label, then over labels (every label is isolated in one batch)",
        "Luecken et al. 2022, Nat. Methods (scib-metrics, ASW variant)",
    )
)
register(
    Metric(
        "trustworthiness",
        STRUCTURE,
        neighbours.trustworthiness,
        "trustworthiness of the latent's 15 nearest neighbours with respect to the input",
        "Venna & Kaski 2001, ICANN (scikit-learn)",
        group=STRUCTURE,
    )
)
register(
    Metric(
        "knn_preservation",
        STRUCTURE,
        neighbours.knn_preservation,
        "share of each cell's 15 nearest input neighbours among its 15 nearest in the latent",
        "Lee & Verleysen 2009, Neurocomputing (Q_NX)",
        group=STRUCTURE,
    )
)


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; an unknown name is answered with the known ones."""
    return METRICS.lookup(name)
