"""t-SNE of latent codes, as the study drew them (perplexity 40).

van der Maaten & Hinton (2008), "Visualizing data using t-SNE", JMLR 9; Barnes-Hut approximation:
van der Maaten (2014), JMLR 15. Kobak & Berens (2019), "The art of using t-SNE for single-cell
transcriptomics", Nat. Commun. 10, for PCA initialisation.

Backend chosen by measurement (``benchmarks/tsne_speed.py``): on 6-d latents, single thread, scikit-learn's
Barnes-Hut t-SNE took 1.1 s (700 cells, 2-d), 2.2 s (700, 3-d), 5.3 s (2,638, 2-d) and 13.9 s (2,638, 3-d);
openTSNE took 11.2, 1.8, 13.9 and 12.8 s (its FFT method only does 2-d, so 3-d used its Barnes-Hut; each
new process also pays its numba compilation). scikit-learn is used for both.
"""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE

from vaebench.errors import VaebenchError


def effective_perplexity(n_cells: int, perplexity: float) -> float:
    """The perplexity actually used: t-SNE needs it below the number of cells, so it is capped at (n - 1) / 3."""
    return float(min(perplexity, max(1.0, (n_cells - 1) / 3)))


def tsne(
    x: np.ndarray, n_components: int = 2, perplexity: float = 40.0, seed: int = 0, n_jobs: int = 1
) -> np.ndarray:
    """The ``n_components``-d t-SNE of the rows of ``x`` (PCA initialisation; same seed, same map)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 4:
        raise VaebenchError(f"t-SNE needs at least 4 cells in a 2-d array, got shape {x.shape}.")
    model = TSNE(
        n_components=n_components,
        perplexity=effective_perplexity(x.shape[0], perplexity),
        init="pca",
        learning_rate="auto",
        method="barnes_hut",
        random_state=seed,
        n_jobs=n_jobs,
    )
    return model.fit_transform(x).astype(np.float64)
