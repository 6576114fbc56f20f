"""Which t-SNE to use on latent codes: scikit-learn's Barnes-Hut or openTSNE, measured on this shape of data.

Latents are 6-d Gaussian mixtures of 9 clusters at the sizes vaebench meets (700 cells: pbmc68k; 2,638:
PBMC3k; 5,000 and 10,000: the subsample a large dataset's map is drawn on, ``--tsne-cells``), embedded in
2-d and 3-d with perplexity 40 on one thread; each timing is the median of ``--repeats`` runs in one
process (3-d only up to 2,638 cells unless ``--sizes`` says otherwise). openTSNE is optional (``pip install openTSNE``); its FFT method only
handles 2-d, so its 3-d timings use its Barnes-Hut method. The last line printed is one JSON object.

    python benchmarks/tsne_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from sklearn.manifold import TSNE


def latent(n_cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (9, 6))
    return (centers[rng.integers(0, 9, n_cells)] + rng.normal(0, 1, (n_cells, 6))).astype(np.float32)


def sklearn_tsne(x: np.ndarray, dims: int) -> None:
    TSNE(n_components=dims, perplexity=40, init="pca", random_state=0, n_jobs=1).fit_transform(x)


def opentsne_tsne(x: np.ndarray, dims: int) -> None:
    from openTSNE import TSNE as OpenTSNE

    method = "fft" if dims <= 2 else "bh"
    OpenTSNE(n_components=dims, perplexity=40, random_state=0, n_jobs=1, negative_gradient_method=method).fit(
        x
    )


def median_seconds(fn, x: np.ndarray, dims: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x, dims)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # scikit-learn's Barnes-Hut gradient is OpenMP: one thread, as openTSNE's
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="700,2638,5000,10000", help="Cell counts, comma-separated.")
    parser.add_argument("--max-3d", type=int, default=2638, help="Largest cell count timed in 3-d.")
    args = parser.parse_args()
    backends = {"sklearn": sklearn_tsne}
    try:
        import openTSNE  # noqa: F401

        backends["opentsne"] = opentsne_tsne
    except ImportError:
        print("openTSNE is not installed: measuring scikit-learn only")
    results = []
    for n_cells in (int(n) for n in args.sizes.split(",")):
        x = latent(n_cells)
        for dims in (2, 3) if n_cells <= args.max_3d else (2,):
            row = {"cells": n_cells, "dims": dims}
            for name, fn in backends.items():
                row[name] = round(median_seconds(fn, x, dims, args.repeats), 2)
            print(row, flush=True)
            results.append(row)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
