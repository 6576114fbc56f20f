"""A run's peak memory by group of metrics: the peak of the whole should be its largest stage's, not a sum.

Raw counts of ``synthetic_counts`` (default 20,000 cells x 2,000 genes, sparse) are written as an ``.h5ad``
once, as ``scale.py`` writes them; the preprocessing cache is filled by one run, and then each group runs
in its own fresh process, as a user types it:

    vaebench run --model pca --data counts.h5ad --label-key cell_type --preprocess standard --no-tsne-3d \
        --threads 1 --metrics GROUP

The groups: the study's k-means scores and silhouette, the structure scores, scIB's label scores, and all
of them (the default). Each peak resident memory is measured from outside (``wait4``); with ``--repeats N``
each figure is the median of N. Every run draws the 2-d t-SNE map, so each group's peak includes it. The
last line printed is one JSON object: ``{"peak_rss_mb": {group: MB}, ...}``.

    python benchmarks/stage_memory.py [--cells 20000] [--genes 2000] [--model pca] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from scale import cpu_name, make_counts, timed_run

GROUPS = {
    "kmeans": "nmi,ari,hom,com,silhouette",
    "structure": "trustworthiness,knn_preservation",
    "scib": "leiden,asw_label,clisi,isolated_label",
    "all": "",
}


def peak_mb(path: Path, metrics: str, scratch: str, args: argparse.Namespace) -> int:
    """Peak RSS (MB) of one run on ``path`` scoring ``metrics`` (all when empty), in a fresh process."""
    env = {
        **os.environ,
        "VAEBENCH_DATA_DIR": f"{scratch}/cache",
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "vaebench", "run", "--model", args.model, "--data", str(path)]
    command += ["--label-key", "cell_type", "--preprocess", "standard", "--no-tsne-3d", "--threads", "1"]
    command += ["--metrics", metrics] if metrics else []
    _, rss, code, output = timed_run(command, env)
    if code != 0:
        print(output)
        raise SystemExit(f"the run scoring {metrics or 'every metric'} failed with exit code {code}")
    return round(rss)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--model", default="pca")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per group; figures are medians.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "vaebench-scale",
        help="Where the counts are kept.",
    )
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    path = args.data_dir / f"counts_{args.cells}x{args.genes}_seed0.h5ad"
    if not path.exists():
        make_counts(path, args.cells, args.genes, 0, workers=1)
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores)", flush=True)
    peaks: dict[str, list[int]] = {group: [] for group in GROUPS}
    with tempfile.TemporaryDirectory() as scratch:
        peak_mb(path, "nmi", scratch, args)  # fills the preprocessing cache: the groups then compare alike
        for repeat in range(args.repeats):
            for group, metrics in GROUPS.items():
                peaks[group].append(peak_mb(path, metrics, scratch, args))
                print(json.dumps({"repeat": repeat + 1, "group": group, "peak_rss_mb": peaks[group][-1]}))
    summary = {
        "peak_rss_mb": {group: round(statistics.median(values)) for group, values in peaks.items()},
        "cells": args.cells,
        "genes": args.genes,
        "model": args.model,
        "cpu": cpu_name(),
        "runs": peaks,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
