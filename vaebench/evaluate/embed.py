"""t-SNE of latent codes, as the study drew them (perplexity 40).

van der Maaten & Hinton (2008), "Visualizing data using t-SNE", JMLR 9; Barnes-Hut approximation:
van der Maaten (2014), JMLR 15. Kobak & Berens (2019), "The art of using t-SNE for single-cell
transcriptomics", Nat. Commun. 10, for PCA initialisation.

Backend chosen by size, from measurements (``benchmarks/tsne_speed.py``, 6-d latents, one thread; the
docs/performance.md has the figures): scikit-learn's Barnes-Hut is faster on the sizes of the study's data (700 and
2,638 cells) and is used up to ``FFT_FROM_CELLS`` cells and for every 3-d map; above it the 2-d map uses
openTSNE's FFT-accelerated interpolation (Linderman et al. 2019, "Fast interpolation-based t-SNE for
improved visualization of single-cell RNA-seq data", Nat. Methods 16; Policar, Strazar & Zupan 2024,
"openTSNE", JMLR 25), whose cost grows linearly in the cells where Barnes-Hut's grows as n log n with a
large constant. Below the threshold the maps, and so the study's scores, are exactly those of before.
"""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE

from vaebench.errors import VaebenchError


def effective_perplexity(n_cells: int, perplexity: float) -> float:
    """The perplexity actually used: t-SNE needs it below the number of cells, so it is capped at (n - 1) / 3."""
    return float(min(perplexity, max(1.0, (n_cells - 1) / 3)))


FFT_FROM_CELLS = 5_000


def tsne(
    x: np.ndarray, n_components: int = 2, perplexity: float = 40.0, seed: int = 0, n_jobs: int = 1
) -> np.ndarray:
    """The ``n_components``-d t-SNE of the rows of ``x`` (PCA initialisation; same seed, same map)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 4:
        raise VaebenchError(f"t-SNE needs at least 4 cells in a 2-d array, got shape {x.shape}.")
    if n_components == 2 and x.shape[0] > FFT_FROM_CELLS:
        return fft_tsne(x, perplexity, seed)
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


def fft_tsne(x: np.ndarray, perplexity: float = 40.0, seed: int = 0) -> np.ndarray:
    """openTSNE's 2-d t-SNE with FFT-accelerated gradients (PCA initialisation, as scikit-learn's above).

    One thread, always: openTSNE's map depends on its thread count (its approximate neighbour search and
    gradient are split between threads), and a seed must give the same map on a laptop and on a server.
    (scikit-learn's maps are identical at any ``n_jobs``, which only parallelises its exact neighbours.)
    """
    from openTSNE import TSNE as OpenTSNE

    model = OpenTSNE(
        n_components=2,
        perplexity=effective_perplexity(x.shape[0], perplexity),
        initialization="pca",
        negative_gradient_method="fft",
        random_state=seed,
        n_jobs=1,
        verbose=False,
    )
    return np.asarray(model.fit(x.astype(np.float64)), dtype=np.float64)
