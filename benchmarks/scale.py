"""How one whole run grows with the cells: raw counts in, beta_vae for 20 epochs, the full protocol, MLflow.

For each size (default 100,000, 300,000 and a million cells x 20,000 genes) a raw-count ``.h5ad`` is
made once with vaebench's count generator (``SyntheticCounts``: negative-binomial counts of 12 cell types,
about 6 % non-zeros), written a block of 2,000 cells at a time by two processes (a million cells: about
10 GB, 8 minutes), and kept in ``--data-dir``. Then, each in its own fresh process and with an empty
preprocessing cache, exactly what a user types:

    vaebench run --model beta_vae --epochs 20 --data counts.h5ad --label-key cell_type --preprocess standard

The wall seconds and the peak resident memory of that process (``wait4``) are measured from outside; the
stages (read, preprocess, train, each evaluation step, logging) are read back from the run's MLflow
metrics, and so is the process's peak memory so far at the end of the data, train, evaluate and log
stages (``memory.peak_mb.*``), printed beside the seconds of the stage's last row (``MB``): a peak so far
never falls, so a stage's own peak shows where the figure rises. With ``--repeats N`` each size runs N
times (each in a fresh process with an empty cache, the sizes taken in turn so that the machine's drift
falls on all of them) and every figure is the median of its N. The last line printed is one JSON object:
``{"cells": [...], "seconds": [...], "peak_rss_mb": [...], "exponent": x, "stages": [...],
"stage_peak_mb": [{"data": MB, "train": MB, "evaluate": MB, "log": MB}, ...], ...}``, one entry per size,
the exponent being the least-squares slope of log seconds on log cells, and ``"runs"`` every single
measurement.

    python benchmarks/scale.py [--sizes 100000,300000,1000000] [--genes 20000] [--epochs 20] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STAGES = (
    ("read", "data.seconds.read"),
    ("preprocess", "data.seconds.preprocess"),
    ("train", "train.seconds"),
    ("encode", "eval.seconds.encode"),
    ("tsne2d", "eval.seconds.tsne2d"),
    ("tsne3d", "eval.seconds.tsne3d"),
    ("kmeans_tsne", "eval.seconds.kmeans_tsne"),
    ("kmeans_latent", "eval.seconds.kmeans_latent"),
    ("silhouette", "eval.seconds.latent_silhouette"),
    ("collapse", "eval.seconds.collapse"),
    ("logging", "log.seconds"),
)
PEAKS = {"preprocess": "data", "encode": "train", "collapse": "evaluate", "logging": "log"}
"""The row of the stage table ending each stage whose peak memory so far (``memory.peak_mb.<stage>``) the
run logs: the evaluation's is shown on its last row."""


def cpu_name() -> str:
    from vaebench.training.hardware import cpu_name as name

    return name()


GENERATED_CELLS_PER_BLOCK = 2_000
_SOURCE = None


def _start_worker(source) -> None:  # type: ignore[no-untyped-def]
    global _SOURCE
    _SOURCE = source


def _block(index: int):  # type: ignore[no-untyped-def]
    return _SOURCE.block_by_inversion(index, GENERATED_CELLS_PER_BLOCK)


def make_counts(path: Path, cells: int, genes: int, seed: int, workers: int = 2) -> None:
    """Write the generator's raw counts as an .h5ad a block of 2,000 cells at a time, drawn by
    ``workers`` processes (``SyntheticCounts.block_by_inversion``: each block its own random stream); a
    million cells x 20,000 genes is about 10 GB on disk and never whole in memory."""
    import multiprocessing

    import pandas as pd

    from vaebench.data.stored import write_h5ad_blocks
    from vaebench.data.synthetic import SyntheticCounts

    source = SyntheticCounts(cells, genes, seed=seed)
    obs = source.obs().set_index(pd.Index(source.cell_ids()))
    var = pd.DataFrame(index=source.gene_names())
    n_blocks = -(-cells // GENERATED_CELLS_PER_BLOCK)
    partial = Path(f"{path}.part")
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (source,)) as pool:
        blocks = pool.imap(_block, range(n_blocks))
        write_h5ad_blocks(partial, obs, var, ({"X": block} for block in blocks))
    partial.replace(path)


def timed_run(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MB) and exit code of one command, measured from outside with wait4."""
    start = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), output


def run_metrics(tracking_uri: str, experiment: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    run = client.search_runs([exp.experiment_id], order_by=["start_time DESC"], max_results=1)[0]
    return dict(run.data.metrics)


def measure(path: Path, cells: int, args: argparse.Namespace) -> dict:
    """One whole run on ``path`` in a fresh process with an empty cache: wall seconds, peak RSS, stages."""
    with tempfile.TemporaryDirectory() as scratch:
        uri = f"sqlite:///{scratch}/mlflow.db"
        env = {**os.environ, "VAEBENCH_DATA_DIR": f"{scratch}/cache", "MLFLOW_TRACKING_URI": uri}
        command = [
            sys.executable,
            "-m",
            "vaebench",
            "run",
            "--model",
            args.model,
            "--epochs",
            str(args.epochs),
        ]
        command += ["--data", str(path), "--label-key", "cell_type", "--preprocess", "standard"]
        command += ["--experiment", "scale", *args.extra.split()]
        seconds, rss, code, output = timed_run(command, env)
        if code != 0:
            print(output)
            raise SystemExit(f"the run at {cells} cells failed with exit code {code}")
        metrics = run_metrics(uri, "scale")
    stages = {name: round(metrics.get(key, 0.0), 1) for name, key in STAGES}
    listed = {key for _, key in STAGES}
    stages["other_metrics"] = round(  # the scIB and structure scores, UMAP: each on a capped sample
        sum(v for k, v in metrics.items() if k.startswith("eval.seconds.") and k not in listed), 1
    )
    stages["other"] = round(seconds - sum(stages.values()), 1)  # start-up, imports, hashing, MLflow set-up
    peaks = {stage: metrics.get(f"memory.peak_mb.{stage}") for stage in PEAKS.values()}
    return {
        "cells": cells,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(rss),
        "stages": stages,
        "stage_peak_mb": {stage: None if mb is None else round(mb) for stage, mb in peaks.items()},
    }


def median_row(cells: int, measured: list[dict]) -> dict:
    """The median of each figure over the repeats of one size."""
    return {
        "cells": cells,
        "seconds": round(statistics.median(r["seconds"] for r in measured), 1),
        "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in measured)),
        "stages": {
            name: round(statistics.median(r["stages"][name] for r in measured), 1)
            for name in measured[0]["stages"]
        },
        "stage_peak_mb": {
            stage: _median_or_none([r["stage_peak_mb"][stage] for r in measured])
            for stage in measured[0]["stage_peak_mb"]
        },
    }


def _median_or_none(values: list) -> int | None:
    """The median of the values a run logged (None: a vaebench that logs no peak memory by stage)."""
    known = [v for v in values if v is not None]
    return round(statistics.median(known)) if known else None


def stage_cell(row: dict, name: str) -> str:
    """One size's cell of the stage table: the stage's seconds and, on the row ending a stage with a logged
    peak, the process's peak memory so far."""
    seconds = f"{row['stages'][name]:>8.1f}"
    peak = row["stage_peak_mb"].get(PEAKS.get(name, ""))
    return seconds + (f"{peak:>8,} MB" if peak is not None else " " * 11)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,300000,1000000", help="Cell counts, comma-separated.")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="beta_vae")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "vaebench-scale",
        help="Where the counts are kept.",
    )
    parser.add_argument("--extra", default="", help="More `vaebench run` options, space-separated.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per size; figures are medians.")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores), Python {platform.python_version()}", flush=True)

    paths = {}
    for cells in sizes:
        path = args.data_dir / f"counts_{cells}x{args.genes}_seed{args.seed}.h5ad"
        if not path.exists():
            start = time.perf_counter()
            make_counts(path, cells, args.genes, args.seed)
            print(f"made {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
        paths[cells] = path

    runs: dict[int, list[dict]] = {cells: [] for cells in sizes}
    for repeat in range(args.repeats):
        for cells in sizes:
            row = measure(paths[cells], cells, args)
            runs[cells].append(row)
            print(json.dumps({"repeat": repeat + 1, **row}), flush=True)
    rows = [median_row(cells, runs[cells]) for cells in sizes]

    cells = np.array([r["cells"] for r in rows], dtype=float)
    seconds = np.array([r["seconds"] for r in rows], dtype=float)
    exponent = float(np.polyfit(np.log(cells), np.log(seconds), 1)[0]) if len(rows) > 1 else float("nan")
    print("seconds of each stage; MB: peak memory so far at the end of the data, train, evaluate, log stages")
    print(f"{'stage':<14}" + "".join(f"{int(c):>19,}" for c in cells))
    for name in [*(n for n, _ in STAGES), "other_metrics", "other"]:
        print(f"{name:<14}" + "".join(stage_cell(r, name) for r in rows))
    print(f"{'total s':<14}" + "".join(f"{r['seconds']:>8.1f}{'':11}" for r in rows))
    print(f"{'peak RSS MB':<14}" + "".join(f"{r['peak_rss_mb']:>16,} MB" for r in rows))
    summary = {
        "cells": [r["cells"] for r in rows],
        "seconds": [r["seconds"] for r in rows],
        "peak_rss_mb": [r["peak_rss_mb"] for r in rows],
        "exponent": round(exponent, 3),
        "genes": args.genes,
        "epochs": args.epochs,
        "model": args.model,
        "cpu": cpu_name(),
        "stages": [r["stages"] for r in rows],
        "stage_peak_mb": [r["stage_peak_mb"] for r in rows],
        "repeats": args.repeats,
        "runs": {str(cells): runs[cells] for cells in sizes},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
