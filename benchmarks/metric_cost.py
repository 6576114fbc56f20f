"""What each metric beyond the study costs per run: on pbmc68k, and on a large synthetic data set.

On pbmc68k (700 cells x 765 genes) the latent is a 6-d PCA and the input the scaled matrix; at
``--cells N`` (say 100000) both are synthetic: a 6-d latent of 9 clusters and a sparse 2,000-gene input,
which is what the subsampling (at most 5,000 cells for the label scores, 3,000 for the structure scores)
is there for. Each timing is the median of ``--repeats`` calls in one process after one warm-up call
(the first call of a process also pays imports). The last line printed is one JSON object.

    python benchmarks/metric_cost.py [--repeats 5] [--cells 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import scipy.sparse as sp

from vaebench.evaluate.beyond import beyond_study_scores
from vaebench.evaluate.protocol import BEYOND_STUDY_METRICS


def pbmc68k() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from vaebench.data import load_dataset
    from vaebench.models.pca import PCAModel

    data = load_dataset("pbmc68k")
    return PCAModel(6, 0).fit(data.X).encode(data.X), data.labels, data.X


def synthetic(n_cells: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    membership = rng.integers(0, 9, n_cells)
    latent = rng.normal(0, 5, (9, 6))[membership] + rng.normal(0, 1, (n_cells, 6))
    inputs = sp.random(n_cells, 2000, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    return latent, membership.astype(str), inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cells", type=int, default=0, help="synthetic data of this many cells (0: pbmc68k)")
    args = parser.parse_args()
    latent, labels, inputs = synthetic(args.cells) if args.cells else pbmc68k()
    beyond_study_scores(BEYOND_STUDY_METRICS, latent, labels, inputs, 0, {})  # warm-up
    timings: dict[str, list[float]] = {name: [] for name in BEYOND_STUDY_METRICS}
    totals = []
    for _ in range(args.repeats):
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        beyond_study_scores(BEYOND_STUDY_METRICS, latent, labels, inputs, 0, seconds)
        totals.append(time.perf_counter() - start)
        for name, value in seconds.items():
            timings[name].append(value)
    medians = {name: round(statistics.median(values), 4) for name, values in timings.items()}
    for name, value in medians.items():
        print(f"{name:18s} {value:8.4f} s")
    print(f"{'all':18s} {statistics.median(totals):8.4f} s")
    data = f"synthetic {args.cells} cells" if args.cells else "pbmc68k"
    print(
        json.dumps(
            {
                "data": data,
                "repeats": args.repeats,
                "median_seconds": medians,
                "all": statistics.median(totals),
            }
        )
    )


if __name__ == "__main__":
    main()
