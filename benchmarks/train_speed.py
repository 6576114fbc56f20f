"""How close the training loop comes to the arithmetic it cannot avoid, on PBMC3k's shape.

Trains a registered network (``--model``, default the study's deep autoencoder ``ae``, text variant) on
random data of 2,638 cells x 13,714 genes for a few epochs with the project's own loop, and measures in the
same process the "floor": the five large matrix products one epoch needs (first-layer forward ``X W1``,
last-layer forward ``H W8``, the last layer's weight gradient and input gradient, the first layer's weight
gradient), with batches of the same size and the model's own first and last layer widths. A count model
(``nb_vae``) trains as a run would feed it: generated negative-binomial counts (``synthetic_counts`` at
this shape) kept sparse, a batch made dense at a time; its floor is timed on the dense copy.
With ``--dataloader`` it also times the same epochs fed by a per-cell ``TensorDataset`` and a shuffling
``DataLoader``, the usual alternative, for comparison. The last line printed is one JSON object:
seconds_per_epoch, floor_seconds_per_epoch, ratio, peak_rss_mb (and dataloader_ratio with --dataloader).

    python benchmarks/train_speed.py [--model ae] [--epochs 5] [--repeats 3] [--threads N] [--dataloader]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np
import torch

from vaebench.data.synthetic import make_synthetic_counts
from vaebench.models import ModelOptions, get_model
from vaebench.training.hardware import cpu_name, set_threads
from vaebench.training.loop import as_tensor, seed_everything, train

N_CELLS, N_GENES = 2638, 13714


def floor_seconds_per_epoch(X: torch.Tensor, batch_size: int, first: int, last: int, repeats: int) -> float:
    """Median time of one epoch's five large matrix products, batch by batch."""
    w1 = torch.randn(first, X.shape[1]) * 0.01
    w8 = torch.randn(X.shape[1], last) * 0.01
    h7 = torch.randn(batch_size, last)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, X.shape[0], batch_size):
            xb = X[start : start + batch_size]
            hb = h7[: xb.shape[0]]
            h1 = xb @ w1.T  # first layer forward
            out = hb @ w8.T  # last layer forward
            _ = out.T @ hb  # last layer weight gradient (grad_out^T H)
            _ = out @ w8  # last layer input gradient (grad_out W8)
            _ = h1.T @ xb  # first layer weight gradient (grad_h1^T X)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def outer_widths(model: torch.nn.Module, n_genes: int) -> tuple[int, int]:
    """The width after the first gene-wide layer and before the last one: what the floor multiplies by."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    first = next(m.out_features for m in linears if m.in_features == n_genes)
    last = next(m.in_features for m in reversed(linears) if m.out_features == n_genes)
    return first, last


def dataloader_seconds_per_epoch(X: torch.Tensor, batch_size: int, epochs: int, name: str = "ae") -> float:
    """Seconds per epoch of the same model and optimiser fed by a per-cell Dataset and a DataLoader."""
    from torch.utils.data import DataLoader, TensorDataset

    seed_everything(0)
    model = get_model(name).build(X.shape[1], ModelOptions())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loader = DataLoader(TensorDataset(X), batch_size=batch_size, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for (batch,) in loader:
            optimizer.zero_grad(set_to_none=True)
            model.loss(batch).total.backward()
            optimizer.step()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ae", help="registered network to train (see `vaebench list`)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed training run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--dataloader", action="store_true", help="also time a per-cell DataLoader")
    args = parser.parse_args()

    threads = set_threads(args.threads)
    spec = get_model(args.model)
    if not spec.is_torch:
        parser.error(f"{args.model} is not a network; it has no training epochs to time.")
    if spec.needs_counts:
        counts = make_synthetic_counts(N_CELLS, N_GENES).X
        dense = torch.from_numpy(counts.toarray())
        X = as_tensor(counts, torch.device("cpu"))
    else:
        rng = np.random.default_rng(0)
        X = dense = as_tensor(rng.standard_normal((N_CELLS, N_GENES), dtype=np.float32), torch.device("cpu"))
    per_epoch = []
    for repeat in range(args.repeats):
        seed_everything(repeat)
        model = spec.build(N_GENES, ModelOptions())
        result = train(model, X, epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, seed=repeat)
        per_epoch.append(result.seconds_per_epoch)
    first, last = outer_widths(model, N_GENES)
    floor = floor_seconds_per_epoch(dense, args.batch_size, first, last, repeats=max(3, args.repeats))
    seconds = statistics.median(per_epoch)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model: {args.model}  cpu: {cpu_name()}  threads: {threads}  torch {torch.__version__}")
    print(
        f"training  s/epoch (median of {args.repeats}): {seconds:.3f}   all: {[round(t, 3) for t in per_epoch]}"
    )
    print(f"floor     s/epoch (five matrix products):  {floor:.3f}")
    summary = {
        "model": args.model,
        "seconds_per_epoch": round(seconds, 4),
        "floor_seconds_per_epoch": round(floor, 4),
        "ratio": round(seconds / floor, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "threads": threads,
        "cells": N_CELLS,
        "genes": N_GENES,
    }
    if args.dataloader:
        loader = dataloader_seconds_per_epoch(dense, args.batch_size, args.epochs, args.model)
        print(f"DataLoader s/epoch (per-cell Dataset):    {loader:.3f}")
        summary["dataloader_seconds_per_epoch"] = round(loader, 4)
        summary["dataloader_ratio"] = round(loader / floor, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
