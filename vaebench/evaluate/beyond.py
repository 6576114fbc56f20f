"""The scores vaebench adds beyond the study's protocol: scIB's label scores and the structure kept from the
input (see :mod:`vaebench.evaluate.scib` and :mod:`vaebench.evaluate.neighbours`).

Each metric times itself into ``seconds`` under its own name (logged as ``eval.seconds.<metric>``).
Structure metrics need the input matrix; without it (an embedding scored on its own) they are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from vaebench.evaluate.metrics import STRUCTURE, get_metric


def beyond_study_scores(
    metric_names: Sequence[str],
    latent: np.ndarray,
    labels: np.ndarray | None,
    inputs: np.ndarray | sp.spmatrix | None,
    seed: int,
    seconds: dict[str, float],
) -> dict[str, float]:
    """Every ``labelled`` and ``structure`` metric among ``metric_names``, under its logged names."""
    scores: dict[str, float] = {}
    for name in metric_names:
        metric = get_metric(name)
        if metric.kind not in ("labelled", STRUCTURE) or (metric.kind == STRUCTURE and inputs is None):
            continue
        start = time.perf_counter()
        if metric.kind == STRUCTURE:
            value = metric.fn(inputs, latent, seed=seed)
        else:
            value = metric.fn(latent, labels, seed=seed)
        seconds[name] = time.perf_counter() - start
        if isinstance(value, dict):
            scores.update({f"{name}.{key}": float(v) for key, v in value.items()})
        else:
            scores[metric.logged_names[0]] = float(value)
    return scores
