"""The single run: dataset -> model -> training -> evaluation -> MLflow.

``fit_and_score`` is the pure part (no files, no MLflow) that sweeps and tuning studies reuse;
``run_and_log`` wraps it in one MLflow run with every parameter, score, figure and the trained model.
Nothing else knows how a run is made.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from vaebench import __version__, tracking
from vaebench.config import RunConfig
from vaebench.data import Dataset
from vaebench.data.dataset import NO_LABELS
from vaebench.data.external import ExternalEmbedding
from vaebench.data.matrix import in_memory
from vaebench.data.registry import require_counts
from vaebench.evaluate import (
    Evaluation,
    ProtocolSettings,
    evaluate_embedding,
    kmeans_comparison_figure,
    loss_curve_figure,
    map_figure,
    score_heatmap,
    tsne3d_figure,
    tsne_figure,
)
from vaebench.evaluate.collapse import collapse_scores
from vaebench.evaluate.subsample import take
from vaebench.models import get_model
from vaebench.models.architecture import optimizer_for
from vaebench.training.hardware import (
    cpu_name,
    peak_rss_mb,
    release_freed_memory,
    resolve_device,
    set_threads,
)
from vaebench.training.loop import (
    EpochCallback,
    TrainResult,
    as_tensor,
    encode,
    posterior_moments,
    seed_everything,
    train,
)

LatentProbe = Callable[[], np.ndarray]
"""The latent code of every training cell under the model as it is between two epochs (its train mode
kept): what a tuning study scores and prunes on."""
EpochHook = Callable[[int, float, LatentProbe], None]
"""Called after each epoch with (epoch, loss, latent probe); a tuning study scores and prunes here."""

PARQUET_FROM_CELLS = 100_000
"""From this many cells on, a run's latent codes are logged as ``latent/latent_codes.parquet``, below it as
the CSV they always were. At 10 dimensions the CSV is 13 MB and 1.8 s of text formatting at 100,000 cells
but 130 MB and 18 s at a million (more rows than a spreadsheet opens), where zstd Parquet is 43 MB in 1 s,
typed; small data, and every test and user reading them, keep the CSV."""


@dataclass
class RunOutcome:
    """Everything one run produced, before anything is written anywhere."""

    config: RunConfig
    dataset: Dataset
    model: Any
    latent: np.ndarray
    training: TrainResult
    evaluation: Evaluation
    peak_mb: dict[str, float] = field(default_factory=dict)
    """The process's peak resident memory so far (MB) at the end of each stage: data, train, evaluate."""

    @property
    def metrics(self) -> dict[str, float]:
        """Scores and timings under the names the runs are compared by."""
        metrics = dict(self.evaluation.metrics)
        metrics["train.seconds"] = self.training.seconds
        metrics["train.cpu_seconds"] = self.training.cpu_seconds
        if self.training.encode_seconds:
            metrics["eval.seconds.encode"] = self.training.encode_seconds
        if self.training.epochs:
            metrics["train.seconds_per_epoch"] = self.training.seconds_per_epoch
            metrics["train.final_loss"] = self.training.losses[-1]
        metrics.update({f"memory.peak_mb.{stage}": mb for stage, mb in self.peak_mb.items()})
        return metrics


def load_for(config: RunConfig) -> Dataset:
    """The dataset a configuration names, prepared as it says, checked against the configuration."""
    dataset = config.data.load()
    config.check_against(dataset.n_cells, dataset.n_genes)
    if get_model(config.model).needs_counts:
        require_counts(dataset, config.model)  # a user's file without counts: said before anything runs
    return dataset


def model_inputs(config: RunConfig, dataset: Dataset) -> Any:
    """What the model reads: the prepared matrix, or for a count model (nb_vae, scvi) the raw counts of the
    same cells and genes."""
    return require_counts(dataset, config.model) if get_model(config.model).needs_counts else dataset.X


def fit(
    config: RunConfig, dataset: Dataset, on_epoch: EpochHook | None = None
) -> tuple[Any, np.ndarray, TrainResult]:
    """Build the configured model, fit it to the dataset and return it with the latent code of every cell.

    ``on_epoch`` is called after each epoch with the epoch, its loss and a :data:`LatentProbe`.
    """
    spec = get_model(config.model)
    seed_everything(config.seed)
    if not spec.is_trained:
        model = spec.baseline(dataset.n_cells, dataset.n_genes, config.latent_dim, config.seed)
        X = in_memory(dataset.X)  # PCA and the controls fit the whole matrix: read it whole if it is stored
        wall0, cpu0 = time.perf_counter(), time.process_time()
        model.fit(X)
        result = TrainResult(
            seconds=time.perf_counter() - wall0,
            cpu_seconds=time.process_time() - cpu0,
            threads=torch.get_num_threads(),
            cpu=cpu_name(),
        )
        return model, model.encode(X), result
    inputs = model_inputs(config, dataset)
    device = resolve_device(config.device)
    training = {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "seed": config.seed,
    }
    if spec.trainer is not None:  # trained by its own library, on the matrix in memory
        inputs = in_memory(inputs)
        model = spec.trainer(config.options)
        probe: LatentProbe = partial(model.encode, inputs)
        result = model.fit(inputs, device=device, on_epoch=_with_probe(on_epoch, probe), **training)
        return model, model.encode(inputs), result
    model = spec.build(dataset.n_genes, config.options)
    X = as_tensor(inputs, device)
    probe: LatentProbe = partial(encode_keeping_mode, model, X)
    result = train(
        model, X, on_epoch=_with_probe(on_epoch, probe), **training, **optimizer_for(config.variant)
    )
    start = time.perf_counter()
    latent = encode(model, X)
    result.encode_seconds = time.perf_counter() - start
    return model, latent, result


def encode_keeping_mode(model: torch.nn.Module, X: Any) -> np.ndarray:
    """The latent of ``X`` between two epochs, the network left in the mode it was in."""
    was_training = model.training
    latent = encode(model, X)
    model.train(was_training)
    return latent


def _with_probe(on_epoch: EpochHook | None, probe: LatentProbe) -> EpochCallback | None:
    if on_epoch is None:
        return None

    def callback(epoch: int, loss: float) -> None:
        on_epoch(epoch, loss, probe)

    return callback


def fit_and_score(
    config: RunConfig, dataset: Dataset | None = None, on_epoch: EpochHook | None = None
) -> RunOutcome:
    """Train (or fit) the configured model and score its latent code with the study's protocol."""
    set_threads(config.threads)
    dataset = dataset if dataset is not None else load_for(config)
    peak_mb = {"data": peak_rss_mb()}
    model, latent, training = fit(config, dataset, on_epoch)
    peak_mb["train"] = peak_rss_mb()
    release_freed_memory()  # the training loop's malloc setting ends with training
    evaluation = evaluate_embedding(
        latent, dataset.labels, config.protocol, dataset.X, seed=config.seed, n_jobs=torch.get_num_threads()
    )
    start = time.perf_counter()
    evaluation.metrics.update(latent_scores(config, dataset, model, latent))
    evaluation.seconds["collapse"] = time.perf_counter() - start
    peak_mb["evaluate"] = peak_rss_mb()
    return RunOutcome(config, dataset, model, latent, training, evaluation, peak_mb)


def latent_scores(config: RunConfig, dataset: Dataset, model: Any, latent: np.ndarray) -> dict[str, float]:
    """Active units of every model's latent and, for a model with a posterior, the KL of each dimension
    (:mod:`vaebench.evaluate.collapse`). A torch model's posterior is read by
    :func:`vaebench.training.loop.posterior_moments`; a fitted object (an adapter to another library) may offer
    ``posterior_moments(X) -> (means, variances)``; without either, the codes stand for the means."""
    inputs = model_inputs(config, dataset)
    if get_model(config.model).is_torch:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        moments = posterior_moments(model, as_tensor(inputs, device))
    else:
        moments_of = getattr(model, "posterior_moments", None)
        moments = moments_of(in_memory(inputs)) if callable(moments_of) else None
    return collapse_scores(latent) if moments is None else collapse_scores(*moments)


def dataset_params(dataset: Dataset) -> dict[str, Any]:
    params = {
        "dataset.name": dataset.name,
        "dataset.n_cells": dataset.n_cells,
        "dataset.n_genes": dataset.n_genes,
        "dataset.hash": dataset.content_hash(),
        "dataset.label_key": dataset.label_key or NO_LABELS,
        "dataset.preprocessing": dataset.preprocessing,
        "dataset.sparse": dataset.is_sparse,
        "dataset.streamed": dataset.is_stored,
    }
    if dataset.labels is not None:
        params["dataset.n_classes"] = len(set(dataset.labels))
    if "cache" in dataset.provenance:
        params["dataset.cache"] = dataset.provenance["cache"]
    return params


def data_seconds(dataset: Dataset) -> dict[str, float]:
    """How long reading and preparing the data took in the process that loaded them."""
    return {f"data.{k}": float(v) for k, v in dataset.provenance.items() if k.startswith("seconds.")}


def machine_tags(threads: int) -> dict[str, Any]:
    tags: dict[str, Any] = {
        "cpu": cpu_name(),
        "threads": threads,
        "torch_version": torch.__version__,
        "vaebench_version": __version__,
        "python_version": platform.python_version(),
    }
    commit = tracking.git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def latent_codes_artifact(n_cells: int, parquet_from: int = PARQUET_FROM_CELLS) -> str:
    """Where a run's latent codes of ``n_cells`` cells are logged: Parquet from ``parquet_from`` cells on
    (:data:`PARQUET_FROM_CELLS`), else CSV."""
    return "latent/latent_codes.parquet" if n_cells >= parquet_from else "latent/latent_codes.csv"


def latent_table(cell_ids: np.ndarray, labels: np.ndarray | None, latent: np.ndarray) -> pd.DataFrame:
    """Latent codes with cell ids and labels (when there are labels), one row per cell; the codes' columns
    are ``latent`` itself, not a copy of it (a million cells' codes are held once)."""
    table = pd.DataFrame(latent, columns=[f"z{i}" for i in range(latent.shape[1])])
    if labels is not None:
        table.insert(0, "label", labels)
    table.insert(0, "cell_id", cell_ids)
    return table


def log_evaluation(
    run: tracking.RunHandle,
    title: str,
    evaluation: Evaluation,
    cell_ids: np.ndarray,
    labels: np.ndarray | None,
    latent: np.ndarray,
    parquet_from: int = PARQUET_FROM_CELLS,
) -> None:
    """Scores, the study's figures and the latent codes of one evaluated embedding (without labels: maps
    in one colour, and no k-means comparison or score heatmap, which compare with labels). The codes are
    Parquet from ``parquet_from`` cells on (:func:`latent_codes_artifact`); the sampled maps stay CSV."""
    run.log_metrics(evaluation.metrics)
    run.log_metrics({f"eval.seconds.{k}": v for k, v in evaluation.seconds.items()})
    run.log_params(evaluation.sizes)
    map_labels = take(labels, evaluation.map_cells)
    sampled = "" if evaluation.map_cells is None else f", {len(evaluation.map_cells):,} sampled cells"
    figures = {
        "figures/tsne2d.png": tsne_figure(evaluation.tsne2d, map_labels, f"{title}: 2-d t-SNE{sampled}")
    }
    if map_labels is not None and evaluation.kmeans_labels is not None:
        figures["figures/kmeans_comparison.png"] = kmeans_comparison_figure(
            evaluation.tsne2d,
            map_labels,
            evaluation.kmeans_labels,
            evaluation.kmeans_centroids,
            f"{title}: k-means on the 2-d t-SNE",
        )
        figures["figures/scores.png"] = score_heatmap(score_matrix(evaluation.metrics), f"{title}: scores")
    if evaluation.tsne3d is not None:
        figures["figures/tsne3d.png"] = tsne3d_figure(
            evaluation.tsne3d, take(labels, evaluation.tsne3d_cells), f"{title}: 3-d t-SNE"
        )
    if evaluation.umap2d is not None:
        figures["figures/umap.png"] = map_figure(
            evaluation.umap2d, map_labels, f"{title}: UMAP{sampled}", "UMAP"
        )
    for path, figure in figures.items():
        run.log_figure(figure, path)
        plt.close(figure)
    run.log_table(latent_table(cell_ids, labels, latent), latent_codes_artifact(len(latent), parquet_from))
    map_ids = take(cell_ids, evaluation.map_cells)
    tsne = map_table(evaluation.tsne2d, map_ids, map_labels)
    if evaluation.kmeans_labels is not None:
        tsne["kmeans"] = evaluation.kmeans_labels
    run.log_table(tsne, "latent/tsne2d.csv")
    if evaluation.umap2d is not None:
        run.log_table(map_table(evaluation.umap2d, map_ids, map_labels), "latent/umap.csv")


def map_table(coords: np.ndarray, cell_ids: np.ndarray, labels: np.ndarray | None) -> pd.DataFrame:
    """A 2-d map as a table, one row per mapped cell: cell id, label (where there are labels), x, y."""
    table = pd.DataFrame(coords, columns=["x", "y"])
    if labels is not None:
        table.insert(0, "label", labels)
    table.insert(0, "cell_id", cell_ids)
    return table


def score_matrix(metrics: dict[str, float]) -> pd.DataFrame:
    """The four partition scores of both k-means blocks as a 2 x 4 table for the heatmap."""
    rows = {}
    for block, name in (("tsne_kmeans", "k-means on 2-d t-SNE"), ("latent_kmeans", "k-means on latent")):
        rows[name] = {m.upper(): metrics.get(f"{block}.{m}", np.nan) for m in ("nmi", "ari", "hom", "com")}
    return pd.DataFrame.from_dict(rows, orient="index")


def run_title(config: RunConfig, dataset: Dataset) -> str:
    beta = f", beta={config.beta:g}" if get_model(config.model).has_beta else ""
    return f"{config.model}{beta}, seed {config.seed} | {dataset.name} ({dataset.label_key or 'no labels'})"


def run_and_log(
    config: RunConfig,
    *,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
    on_epoch: EpochHook | None = None,
    dataset: Dataset | None = None,
    on_start: Callable[[str], None] | None = None,
) -> tuple[RunOutcome, str]:
    """One MLflow run around :func:`fit_and_score`; returns the outcome and the run id.

    MLflow must already be configured (:func:`vaebench.tracking.configure`). Parameters and tags are
    written before training starts, so a run that fails or is killed still says what it was; ``on_start``
    is told the run's id as soon as it exists, so that a caller whose run raises still knows which it was.
    """
    threads = set_threads(config.threads)
    dataset = dataset if dataset is not None else load_for(config)
    run_tags = {
        "model": config.model,
        "seed": config.seed,
        "config_hash": config.config_hash(dataset.content_hash()),
        **machine_tags(threads),
        **(tags or {}),
    }
    if get_model(config.model).has_beta:
        run_tags["beta"] = config.beta
    with tracking.start_run(
        run_name=run_title(config, dataset).split(" |")[0], tags=run_tags, parent_run_id=parent_run_id
    ) as run:
        if on_start is not None:
            on_start(run.run_id)
        run.log_params({**config.params(), **dataset_params(dataset)})
        run.log_input(dataset.name, dataset.content_hash(), dataset.shape_profile(), dataset.description)
        run.log_dict(config.params(), "config/config.json")
        outcome = fit_and_score(config, dataset, on_epoch)
        logging_start = time.perf_counter()
        curves = {f"train.loss.{part}": curve for part, curve in outcome.training.parts.items()}
        run.log_curves({"train.loss": outcome.training.losses, **curves})
        run.log_metrics({**outcome.metrics, **data_seconds(dataset)})
        run.set_tags({"device": outcome.training.device, "latent_dims": outcome.latent.shape[1]})
        title = run_title(config, dataset)
        log_evaluation(run, title, outcome.evaluation, dataset.cell_ids, dataset.labels, outcome.latent)
        if outcome.training.losses:
            figure = loss_curve_figure(outcome.training.losses, f"{title}: training loss")
            run.log_figure(figure, "figures/loss.png")
            plt.close(figure)
        if get_model(config.model).is_torch:
            run.log_torch_model(outcome.model, dataset.n_genes)
        elif get_model(config.model).trainer is not None:
            run.log_model_folder(outcome.model.save)
        elif outcome.model.estimator is not None:
            run.log_sklearn_model(outcome.model.estimator)
        run.log_metrics(
            {"log.seconds": time.perf_counter() - logging_start, "memory.peak_mb.log": peak_rss_mb()}
        )
        return outcome, run.run_id


def evaluate_external_and_log(
    embedding: ExternalEmbedding,
    settings: ProtocolSettings,
    *,
    name: str,
    seed: int = 0,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> tuple[Evaluation, str]:
    """Score an embedding made elsewhere with the study's protocol and log it as a run like any other."""
    evaluation_tags = {"model": name, "source": "external", **machine_tags(set_threads(None)), **(tags or {})}
    with tracking.start_run(run_name=name, tags=evaluation_tags, parent_run_id=parent_run_id) as run:
        run.log_params(
            {
                "model": name,
                "source_path": embedding.source,
                "label_key": embedding.label_column,
                "latent_dim": embedding.latent.shape[1],
                "dataset.n_cells": embedding.latent.shape[0],
                "dataset.hash": embedding.content_hash(),
                "dataset.n_classes": len(set(embedding.labels)),
                "perplexity": settings.perplexity,
                "n_init": settings.n_init,
                "seed": seed,
            }
        )
        evaluation = evaluate_embedding(embedding.latent, embedding.labels, settings, seed=seed)
        title = f"{name} | {Path(embedding.source).name} ({embedding.label_column})"
        log_evaluation(run, title, evaluation, embedding.cell_ids, embedding.labels, embedding.latent)
        return evaluation, run.run_id
