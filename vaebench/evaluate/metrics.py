"""Metrics: pure functions of (labels, partition) or (embedding, labels), each with its reference.

The registry's keys are the names users type (``--metrics nmi,ari``); scores are logged as
``<block>.<name>`` where the block says what was clustered (``tsne_kmeans``, ``latent_kmeans``) or
which space was scored (``latent``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from vaebench.registry import Registry


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
    return float(skm.silhouette_score(embedding, labels, metric="euclidean"))


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``partition`` metrics compare labels with a clustering, ``embedding`` metrics
    score the labels in a space."""

    name: str
    kind: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    description: str
    reference: str


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


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; an unknown name is answered with the known ones."""
    return METRICS.lookup(name)
