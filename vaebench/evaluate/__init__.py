"""Evaluation: t-SNE embeddings, the metric registry, the study's protocol and its figures."""

from vaebench.evaluate.embed import tsne
from vaebench.evaluate.figures import (
    kmeans_comparison_figure,
    label_palette,
    loss_curve_figure,
    map_figure,
    score_heatmap,
    tsne3d_figure,
    tsne_figure,
)
from vaebench.evaluate.metrics import METRICS, Metric, get_metric
from vaebench.evaluate.protocol import (
    Evaluation,
    ProtocolSettings,
    evaluate_embedding,
    kmeans_scores,
    score_partition,
)

__all__ = [
    "METRICS",
    "Evaluation",
    "Metric",
    "ProtocolSettings",
    "evaluate_embedding",
    "get_metric",
    "kmeans_comparison_figure",
    "kmeans_scores",
    "label_palette",
    "loss_curve_figure",
    "map_figure",
    "score_heatmap",
    "score_partition",
    "tsne",
    "tsne3d_figure",
    "tsne_figure",
]
