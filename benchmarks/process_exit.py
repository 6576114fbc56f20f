"""What freezing the imported objects (``vaebench/executor/heap.py``) saves a vaebench process, measured A/B.

Each repeat starts fresh processes, alternating the two ways so that the machine's drift falls on both:

- ``import``: ``import vaebench.cli`` and exit, as every command and worker process begins and ends;
- ``run``: one whole ``vaebench run`` (``--run-args``, by default a small network on the bundled synthetic
  data) in one process, against an experiment store made beforehand.

``frozen`` calls :func:`vaebench.executor.heap.freeze_imported_objects` as the CLI does; ``unfrozen`` replaces it
with a no-op before the CLI is imported. The last line printed is one JSON object with the medians (s) and
the frozen/unfrozen ratios, and the CPU.

    python benchmarks/process_exit.py [--repeats 5] [--run-args "--model ae --epochs 50"]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaebench.training.hardware import cpu_name

UNFREEZE = "import vaebench.executor.heap as h; h.freeze_imported_objects = lambda: None; "
IMPORT_ONLY = "import vaebench.cli; from vaebench.executor.heap import freeze_imported_objects as f; f()"
RUN = "import sys; from vaebench.cli import app; app(args=sys.argv[1:], prog_name='vaebench')"


def wall_seconds(code: str, args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--run-args",
        default="--model ae --dataset synthetic --epochs 50 --n-init 10 --no-tsne-3d",
        help="the options of the timed `vaebench run`",
    )
    options = parser.parse_args()
    run_args = ["run", *shlex.split(options.run_args)]
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        wall_seconds(RUN, run_args, cwd)  # makes the store's tables and the data cache, not timed
        for repeat in range(options.repeats):
            for kind, code, args in (("import", IMPORT_ONLY, []), ("run", RUN, run_args)):
                ways = [("frozen", ""), ("unfrozen", UNFREEZE)]
                for way, prefix in ways if repeat % 2 == 0 else ways[::-1]:
                    seconds = wall_seconds(prefix + code, args, cwd)
                    times.setdefault(f"{kind}.{way}", []).append(seconds)
                    print(f"repeat {repeat + 1}: {kind:6} {way:8} {seconds:6.2f} s", flush=True)
    medians = {key: round(statistics.median(values), 3) for key, values in sorted(times.items())}
    ratios = {
        f"{kind}.ratio": round(medians[f"{kind}.frozen"] / medians[f"{kind}.unfrozen"], 3)
        for kind in ("import", "run")
    }
    print(json.dumps({"cpu": cpu_name(), "repeats": options.repeats, **medians, **ratios}))


if __name__ == "__main__":
    main()
