"""Per-run cost of the Dask backend and the MLflow server over the local backend with SQLite.

Runs one narrowed default suite (fresh experiment each time) three ways, ``--repeats`` times each, and prints
the wall seconds per run and the ratio to the local backend:

- ``local``: ``--jobs 2`` (spawned processes), SQLite store (today's default);
- ``dask+sqlite``: two Dask worker processes of one thread on this machine (what a ``LocalCluster`` would
  be), same SQLite store: the cost of the Dask code path alone;
- ``dask+server``: the same workers, tracking on an MLflow server over PostgreSQL that serves artifacts.

    python benchmarks/cluster_overhead.py --models beta_vae,pca --betas 1 --seeds 0-3 --repeats 3

(8 runs per suite, 9 suites.) ``--models pca --seeds 0-1 --repeats 1`` checks that it runs end to end in a
few minutes; its times mean nothing. It prints the CPU and the load average before and after: take the
figures on a quiet machine only. Services come from ``tests/services.py`` (a throwaway PostgreSQL, MLflow
server and Dask scheduler with two one-thread workers), all stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services import cluster_services
from vaebench.cli.run import parse_list
from vaebench.sets.suite import load_suite


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def timed_suite(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "vaebench", "run", "--all", *args], cwd=cwd, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="beta_vae,pca")
    parser.add_argument("--betas", default="1")
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    narrow = ["--models", options.models, "--betas", options.betas, "--seeds", options.seeds]
    print(f"CPU: {cpu_model()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="vaebench-overhead-"))
    times: dict[str, list[float]] = {"local": [], "dask+sqlite": [], "dask+server": []}
    with cluster_services(root, server_workers=2) as services:
        for repeat in range(options.repeats):
            sqlite = ["--tracking-uri", f"sqlite:///{root / f'local{repeat}.db'}"]
            times["local"].append(timed_suite([*narrow, "--jobs", "2", *sqlite], root))
            sqlite = ["--tracking-uri", f"sqlite:///{root / f'dask{repeat}.db'}"]
            times["dask+sqlite"].append(
                timed_suite([*narrow, "--cluster", services.scheduler, *sqlite], root)
            )
            server = ["--tracking-uri", services.mlflow_uri, "--experiment", f"overhead{repeat}"]
            times["dask+server"].append(
                timed_suite([*narrow, "--cluster", services.scheduler, *server], root)
            )
            print({k: round(v[-1], 1) for k, v in times.items()}, flush=True)
    suite = load_suite("default").narrowed(
        models=parse_list(options.models, str, "--models"),
        betas=parse_list(options.betas, float, "--betas"),
        seeds=parse_list(options.seeds, int, "--seeds"),
    )
    runs = len(suite.grid())
    local = statistics.median(times["local"]) / runs
    print(
        f"{runs} runs per suite, {options.repeats} repeats, medians (load average after: {os.getloadavg()[0]:.2f}):"
    )
    for name, values in times.items():
        per_run = statistics.median(values) / runs
        print(
            f"  {name:12s} {per_run:6.2f} s per run  ratio {per_run / local:.3f}  (suites: {[round(v, 1) for v in values]})"
        )


if __name__ == "__main__":
    main()
