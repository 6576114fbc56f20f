"""Seconds per epoch of ``nb_vae`` (its registry defaults) against scvi-tools' ``SCVI``, in one process.

Both train on the same raw counts (``synthetic_counts``, sparse, ``--cells`` x ``--genes``), batch 256,
Adam 1e-3, on the same threads; the two are timed in turn, ``--repeats`` times each, so that a machine's
load drifts over both alike, and the medians are compared. scvi's time is its ``train`` call over the
epochs (Lightning's loop included, as a user pays it); nb_vae's is vaebench's training loop.

    python benchmarks/count_speed.py --cells 20000 --genes 2000 --epochs 3 --repeats 3 --threads 2

The last line printed is one JSON object: each model's median seconds per epoch and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from vaebench.data.synthetic import make_synthetic_counts
from vaebench.models import ModelOptions, get_model
from vaebench.models.architecture import optimizer_for
from vaebench.training.hardware import cpu_name, set_threads
from vaebench.training.loop import as_tensor, seed_everything, train


def nb_vae_epoch_seconds(counts, epochs: int, seed: int) -> float:
    spec = get_model("nb_vae")
    options = ModelOptions(beta=spec.default_beta, variant=spec.default_variant)
    seed_everything(seed)
    model = spec.build(counts.shape[1], options)
    X = as_tensor(counts, torch.device("cpu"))
    result = train(
        model, X, epochs=epochs, batch_size=256, lr=1e-3, seed=seed, **optimizer_for(options.variant)
    )
    return result.seconds_per_epoch


def scvi_epoch_seconds(counts, epochs: int, seed: int) -> float:
    model = get_model("scvi").trainer(ModelOptions(beta=1.0))
    result = model.fit(counts, epochs=epochs, batch_size=256, lr=1e-3, seed=seed, device=torch.device("cpu"))
    return result.seconds_per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    counts = make_synthetic_counts(args.cells, args.genes, seed=0).X
    scvi_epoch_seconds(counts[:512], 1, 0)  # scvi-tools' and Lightning's first-use costs, outside the timing
    timings: dict[str, list[float]] = {"nb_vae": [], "scvi": []}
    for repeat in range(args.repeats):
        timings["nb_vae"].append(nb_vae_epoch_seconds(counts, args.epochs, repeat))
        timings["scvi"].append(scvi_epoch_seconds(counts, args.epochs, repeat))
        print(
            f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.3f} s/epoch" for k, v in timings.items()),
            flush=True,
        )
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(
        json.dumps(
            {
                "cells": args.cells,
                "genes": args.genes,
                "epochs": args.epochs,
                "repeats": args.repeats,
                "threads": threads,
                "cpu": cpu_name(),
                "nb_vae_seconds_per_epoch": round(medians["nb_vae"], 4),
                "scvi_seconds_per_epoch": round(medians["scvi"], 4),
                "ratio": round(medians["nb_vae"] / medians["scvi"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
