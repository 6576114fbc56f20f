"""What a UMAP map (``--maps tsne,umap``) costs a fresh process: importing umap-learn, the first map
(numba compiling umap-learn's functions) and a second map in the same process, with and without numba's
on-disk cache.

The latent is the 6-d PCA code of pbmc68k (700 cells), the map :func:`vaebench.evaluate.embed.umap_map`'s
(scanpy's defaults, seeded). Every measurement is a new Python process; ``--repeats`` of each, median:

- ``no cache``: umap-learn as installed, in an empty ``NUMBA_CACHE_DIR`` of its own, so nothing compiled
  before is found (what every process paid before, and pays where no cache folder can be written);
- ``numba's cache``: umap-learn as installed, ``NUMBA_CACHE_DIR`` shared and filled by one untimed process
  first: only the functions declared ``cache=True`` (most of pynndescent's, one of umap-learn's) are read;
- ``vaebench's cache``: as vaebench calls it (:func:`~vaebench.evaluate.embed.umap_class` turns numba's cache
  on for umap-learn's other functions too), the shared cache filled by one untimed process first.

The last line printed is one JSON object with the medians (s), the CPU and the versions.

    python benchmarks/umap_cost.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from vaebench.training.hardware import cpu_name

CHILD = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from vaebench.evaluate.embed import umap_class
import umap
vaebench_cache = sys.argv[2] == "vaebench"
UMAP = umap_class() if vaebench_cache else umap.UMAP
imported = time.perf_counter()
latent = np.load(sys.argv[1])
seconds = []
for _ in range(2):
    t0 = time.perf_counter()
    UMAP(n_components=2, n_neighbors=15, min_dist=0.5, random_state=0, n_jobs=1).fit_transform(latent)
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"import": imported - start, "first": seconds[0], "second": seconds[1]}))
"""


def pbmc68k_latent(path: Path) -> None:
    """The 6-d PCA code of pbmc68k's 700 cells, saved as float32 (what :func:`umap_map` hands umap)."""
    from vaebench.config import RunConfig
    from vaebench.runner import fit

    config = RunConfig.of(model="pca")
    _, latent, _ = fit(config, config.data.load())
    np.save(path, np.asarray(latent, dtype=np.float32))


def measure(latent: Path, way: str, cache_dir: Path) -> dict[str, float]:
    env_cache = {"NUMBA_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(latent), way],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env_cache},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        latent = root / "latent.npy"
        pbmc68k_latent(latent)
        for way in ("plain", "vaebench"):  # fill each shared cache once, untimed
            measure(latent, way, root / f"shared-{way}")
        for repeat in range(options.repeats):
            conditions = [
                ("no cache", "plain", root / f"empty-{repeat}"),
                ("numba's cache", "plain", root / "shared-plain"),
                ("vaebench's cache", "vaebench", root / "shared-vaebench"),
            ]
            for name, way, cache_dir in conditions:
                results.setdefault(name, []).append(measure(latent, way, cache_dir))
                print(name, results[name][-1], flush=True)
    medians = {
        name: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
        for name, runs in results.items()
    }
    import numba
    import umap

    versions = {"umap-learn": umap.__version__, "numba": numba.__version__}
    print(json.dumps({"repeats": options.repeats, "medians_s": medians, "cpu": cpu_name(), **versions}))


if __name__ == "__main__":
    main()
