"""What separates vaebench's ``nb_vae`` from scvi-tools' ``SCVI``: an ablation over seeds, on raw counts.

Each variant is ``nb_vae`` with one thing changed (or the study's architecture with everything scVI has);
each is trained ``--epochs`` epochs with batch 256 and Adam 1e-3 on the raw counts of the prepared genes,
beside ``scvi`` (the registry's adapter, scvi-tools' defaults, KL weight 1) and ``pca`` on the same data,
seeds and CPU. Scores: Leiden ARI/NMI (scIB's resolution sweep), k-means ARI on the latent, the label ASW,
trustworthiness, active units; and the training seconds per epoch. Labels are used for scoring only.

    python benchmarks/nb_parity.py --data synthetic_counts --seeds 0-4 --out parity-synthetic
    python benchmarks/nb_parity.py --data other_counts.h5ad --seeds 0-4 --variants default,scvi_like
    python benchmarks/nb_parity.py --data pbmc68k_counts --seeds 0-4

Writes ``OUT/runs.csv`` (one row per variant and seed) and ``OUT/summary.md`` (means and standard
deviations over the seeds, and each variant's seconds per epoch as a ratio to scvi's median).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaebench.data.registry import require_counts
from vaebench.data.source import DataSource
from vaebench.evaluate.beyond import beyond_study_scores
from vaebench.evaluate.protocol import kmeans_scores
from vaebench.models import get_model
from vaebench.models.architecture import Architecture, architecture_for, optimizer_for
from vaebench.models.nb_vae import NegativeBinomialVAE
from vaebench.models.registry import ModelOptions
from vaebench.models.vae import BetaVAE
from vaebench.training.hardware import cpu_name, set_threads
from vaebench.training.loop import as_tensor, encode, seed_everything, train

STUDY = architecture_for("nb_vae", "text")
SCVI_LIKE = Architecture(
    trunk=(128,), head=None, decoder=(128,), first_activation=True, batch_norm=True, dropout=0.1
)
SCVI_ADAM = {"adam_eps": 0.01, "weight_decay": 1e-6}
# name -> (architecture, beta, Adam settings): one change at a time from the study's nb_vae (default) or
# from the scVI-like network (scvi_like).
VARIANTS: dict[str, tuple[Architecture, float, dict[str, float]]] = {
    "default": (STUDY, 2.0, {}),
    "beta1": (STUDY, 1.0, {}),
    "scvi_like": (SCVI_LIKE, 1.0, SCVI_ADAM),
    "scvi_like_beta2": (SCVI_LIKE, 2.0, SCVI_ADAM),
    "scvi_like_no_bn": (replace(SCVI_LIKE, batch_norm=False), 1.0, SCVI_ADAM),
    "scvi_like_no_dropout": (replace(SCVI_LIKE, dropout=0.0), 1.0, SCVI_ADAM),
    "scvi_like_torch_adam": (SCVI_LIKE, 1.0, {}),
    "study_widths_bn_dropout": (replace(STUDY, batch_norm=True, dropout=0.1), 1.0, SCVI_ADAM),
    # --variant scvi at the study's beta: what the study's networks get from it
    "scvi_variant_beta2": (architecture_for("beta_vae", "scvi"), 2.0, optimizer_for("scvi")),
}
REGISTRY = "registry"
"""What ``--model nb_vae`` (or ``beta_vae``) trains with its registry defaults: beta, variant and the
variant's Adam settings."""
SCORES = ("leiden.ari", "leiden.nmi", "latent_kmeans.ari", "latent.asw_label", "structure.trustworthiness")


def scores(latent: np.ndarray, labels: np.ndarray, inputs, seed: int) -> dict[str, float]:
    values = beyond_study_scores(("leiden", "asw_label", "trustworthiness"), latent, labels, inputs, seed, {})
    kmeans, _ = kmeans_scores(latent, labels, n_init=10, seed=seed, metric_names=("ari",))
    values["latent_kmeans.ari"] = kmeans["ari"]
    values["active_units"] = int((latent.var(axis=0) > 0.01).sum())
    return values


NETWORKS = {"nb_vae": NegativeBinomialVAE, "beta_vae": BetaVAE}


def run_variant(
    name: str, inputs, n_genes: int, seed: int, epochs: int, network: str
) -> tuple[np.ndarray, float]:
    seed_everything(seed)
    if name == REGISTRY:
        spec = get_model(network)
        options = ModelOptions(beta=spec.default_beta, variant=spec.default_variant)
        model, adam = spec.build(n_genes, options), optimizer_for(options.variant)
    else:
        arch, beta, adam = VARIANTS[name]
        model = NETWORKS[network](n_genes, 6, arch, beta)
    X = as_tensor(inputs, torch.device("cpu"))
    result = train(model, X, epochs=epochs, batch_size=256, lr=1e-3, seed=seed, **adam)
    return encode(model, X), result.seconds_per_epoch


def run_scvi(counts, seed: int, epochs: int) -> tuple[np.ndarray, float]:
    from vaebench.models.scvi_model import SCVIModel

    model = SCVIModel(ModelOptions(latent_dim=6, beta=1.0))
    result = model.fit(counts, epochs=epochs, batch_size=256, lr=1e-3, seed=seed, device=torch.device("cpu"))
    return model.encode(counts), result.seconds_per_epoch


def run_pca(X, seed: int) -> tuple[np.ndarray, float]:
    from vaebench.models.pca import PCAModel

    start = time.perf_counter()
    model = PCAModel(6, seed).fit(X)
    return model.encode(X), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthetic_counts")
    parser.add_argument("--cells", type=int, default=20_000, help="cells of synthetic_counts")
    parser.add_argument("--label-key", default="cell_type", help="label column of an .h5ad (scoring only)")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"names from VARIANTS, or {REGISTRY}: the registry's defaults",
    )
    parser.add_argument("--no-scvi", action="store_true")
    parser.add_argument(
        "--network",
        choices=tuple(NETWORKS),
        default="nb_vae",
        help="beta_vae: the variants on the Gaussian network and the prepared values (any dataset)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("parity"))
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = range(int(low), int(high or low) + 1)
    threads = set_threads(args.threads)
    if args.data.endswith(".h5ad"):
        source = DataSource(path=args.data, label_key=args.label_key, preprocess="standard")
    else:
        sized = args.data == "synthetic_counts"
        source = DataSource(
            dataset=args.data, cells=args.cells if sized else None, genes=2000 if sized else None
        )
    dataset = source.load()
    inputs = require_counts(dataset, "nb_vae") if args.network == "nb_vae" else dataset.X
    labels = dataset.labels
    print(
        f"{args.network} on {dataset.name}: {dataset.n_cells} cells x {dataset.n_genes} genes; {cpu_name()}, {threads} threads"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    names = [v for v in args.variants.split(",") if v]
    entries = [*names, *([] if args.no_scvi else ["scvi"]), "pca"]
    for seed in seeds:
        for name in entries:
            if name == "scvi":
                latent, per_epoch = run_scvi(inputs, seed, args.epochs)
            elif name == "pca":
                latent, per_epoch = run_pca(dataset.X, seed)
            else:
                latent, per_epoch = run_variant(
                    name, inputs, dataset.n_genes, seed, args.epochs, args.network
                )
            row = {"entry": name, "seed": seed, "seconds_per_epoch": per_epoch}
            row.update(scores(latent, labels, dataset.X, seed))
            rows.append(row)
            print(
                f"seed {seed} {name:>24}: Leiden ARI {row['leiden.ari']:.3f}, k-means ARI "
                f"{row['latent_kmeans.ari']:.3f}, ASW {row['latent.asw_label']:.3f}, active "
                f"{row['active_units']}, {per_epoch:.3f} s/epoch",
                flush=True,
            )
            pd.DataFrame(rows).to_csv(args.out / "runs.csv", index=False)
    frame = pd.DataFrame(rows)
    summary = frame.groupby("entry", sort=False).agg(["mean", "std"])
    columns = [*SCORES, "active_units", "seconds_per_epoch"]
    table = pd.DataFrame(
        {
            c: [f"{m:.3f} ± {s:.3f}" for m, s in zip(summary[c]["mean"], summary[c]["std"], strict=True)]
            for c in columns
        },
        index=summary.index,
    )
    if "scvi" in frame["entry"].values:
        reference = frame.loc[frame["entry"] == "scvi", "seconds_per_epoch"].median()
        medians = frame.groupby("entry", sort=False)["seconds_per_epoch"].median()
        table["time / scvi"] = [f"{medians[e] / reference:.2f}" for e in table.index]
    header = (
        f"{args.network} variants on {dataset.name}, {dataset.n_cells:,} cells x {dataset.n_genes:,} genes, {args.epochs} epochs, batch 256, "
        f"seeds {args.seeds} ({len(seeds)}), {cpu_name()}, {threads} threads; mean ± sd over seeds\n\n"
    )
    (args.out / "summary.md").write_text(header + table.to_markdown() + "\n")
    print(header + table.to_markdown())


if __name__ == "__main__":
    main()
