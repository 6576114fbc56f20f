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

UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426; umap-learn) is an optional second map
(``--maps tsne,umap``), a figure and not a score, drawn on the t-SNE map's cells. umap-learn and numba
are imported only by a run that asks for it: its first map in a process compiles umap-learn's functions
(measured in docs/performance.md#umap).
"""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE

from vaebench.errors import VaebenchError
from vaebench.models.requires import installed

MAPS = {"tsne": None, "umap": ("umap", "umap-learn", "pip install 'vaebench[umap]'")}
"""The 2-d maps a run can draw, by name, each with what it needs: (module, package, install command)."""


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


def check_maps(maps: tuple[str, ...]) -> None:
    """Refuse, in one sentence, maps that are unknown, none at all, or need a package that is missing
    (looked for without importing it, so that asking costs nothing before the run)."""
    if not maps:
        raise VaebenchError("--maps is empty; give tsne, or tsne,umap.")
    for name in maps:
        if name not in MAPS:
            raise VaebenchError(f"Unknown map {name!r}; known maps are: {', '.join(MAPS)}.")
        requires = MAPS[name]
        if requires is not None and not installed(requires[0]):
            raise VaebenchError(
                f"--maps {name} needs the Python package {requires[1]}, which is not installed; install "
                f"it with: {requires[2]}"
            )


def umap_map(latent: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.5) -> np.ndarray:
    """The 2-d UMAP of the rows of ``latent`` with scanpy's defaults (15 neighbours, min_dist 0.5,
    spectral initialisation); ``random_state=seed`` makes it reproducible (and single-threaded)."""
    x = np.asarray(latent, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 4:
        raise VaebenchError(f"UMAP needs at least 4 cells in a 2-d array, got shape {x.shape}.")
    model = umap_class()(
        n_components=2,
        n_neighbors=min(n_neighbors, x.shape[0] - 1),
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1,
    )
    return np.asarray(model.fit_transform(x), dtype=np.float64)


UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.distances", "umap.spectral")
"""umap-learn's modules whose numba functions a 2-d map of a dense latent compiles."""


def umap_class() -> type:
    """umap-learn's ``UMAP``, imported on first use, with its compiled code cached on disk
    (:func:`cache_compiled`)."""
    import importlib

    from umap import UMAP

    for name in UMAP_MODULES:
        cache_compiled(importlib.import_module(name))
    return UMAP


def cache_compiled(module: object) -> int:
    """Turn on numba's on-disk cache for the jitted functions of ``module`` that did not ask for it.

    umap-learn declares ``cache=True`` on one of its functions (pynndescent on most of its own), so each new
    process compiled the rest again, the larger part of a first map's seconds. ``enable_caching`` is what
    ``cache=True`` does; numba keeps the cache beside the module's source (or in ``NUMBA_CACHE_DIR``, or the
    user's cache folder where that is read-only), keyed by the source file's time stamp, so a new
    umap-learn compiles afresh. Functions numba cannot cache are compiled as before. Returns how many it
    turned on."""
    from numba.core.dispatcher import Dispatcher

    turned_on = 0
    for value in vars(module).values():
        if isinstance(value, Dispatcher) and value._cache.__class__.__name__ == "NullCache":
            value.enable_caching()
            turned_on += 1
    return turned_on
