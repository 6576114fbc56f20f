"""The ``vaebench`` command: parses options, calls the library, prints. No logic of its own."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vaebench.cli.common import (
    DEFAULT_EXPERIMENT,
    Cells,
    ClaimsDb,
    Cluster,
    DataPath,
    DatasetName,
    Experiment,
    Genes,
    LabelsPath,
    NTopGenes,
    Preprocess,
    Scale,
    TrackingUri,
    TsneCells,
    err,
    one_data_source,
    out,
    user_errors,
)
from vaebench.cli.heap import freeze_imported_objects
from vaebench.cli.tune import tune
from vaebench.config import RunConfig, parse_hidden
from vaebench.errors import VaebenchError

app = typer.Typer(
    name="vaebench",
    help="Benchmark autoencoders on single-cell RNA-seq data with the protocol of the seed study, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _before_every_command() -> None:
    # Everything the command needs is imported by now: out of the collector's way (vaebench/heap.py).
    freeze_imported_objects()


def configure_tracking(tracking_uri: str | None, experiment: str) -> str:
    from vaebench import tracking

    return tracking.configure(tracking_uri, experiment)


@contextlib.contextmanager
def epoch_progress(total: int, description: str) -> Iterator[Any]:
    """A progress bar of epochs on a terminal; nothing when stderr is not one (logs, CI)."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(description, total=total, loss="-")

        def advance(epoch: int, loss: float, model: Any) -> None:
            progress.update(task, completed=epoch, loss=f"{loss:.4g}")

        yield advance


def print_scores(title: str, metrics: dict[str, float]) -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}")
    out.print(table)


def labels_phrase(label_key: str | None) -> str:
    return f"labels {label_key!r}" if label_key is not None else "no labels"


def say_no_labels(metrics: tuple[str, ...] | None) -> None:
    """The one line a run or suite on data without labels says about the scores it skips."""
    from vaebench.evaluate.protocol import DEFAULT_METRICS, no_labels_message

    out.print(
        no_labels_message(metrics or DEFAULT_METRICS),
        style="yellow",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def say_collapse(line: str) -> None:
    """A run whose posterior collapsed, in one sentence (:mod:`vaebench.evaluate.collapse`)."""
    out.print(line, style="bold yellow", markup=False, highlight=False, soft_wrap=True)


def print_run_location(tracking_uri: str, experiment: str, run_id: str) -> None:
    out.print(f"MLflow run [bold]{run_id}[/] in experiment [bold]{experiment}[/] at {tracking_uri}")
    out.print(f"  browse it with: mlflow ui --backend-store-uri {tracking_uri}", highlight=False)


# `run`'s parameters whose RunConfig field has another name.
CONFIG_FIELD_OF = {"data": "data_path", "labels": "labels_path"}


def given_options(ctx: typer.Context) -> set[str]:
    """The parameters of a command the user set (on the command line or through the environment), as
    opposed to those left at their defaults."""
    # By name: typer may carry a click of its own, whose ParameterSource is not click.core's.
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return {
        name for name, source in sources.items() if source and source.name not in ("DEFAULT", "DEFAULT_MAP")
    }


@app.command()
def run(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model to train (see `vaebench list`), or your own as package.module:Class."
        ),
    ] = "ae",
    dataset: DatasetName = None,
    data: DataPath = None,
    labels: LabelsPath = None,
    label_key: Annotated[
        str | None,
        typer.Option(
            "--label-key",
            help="Annotation column used as ground truth; none scores without labels.",
            rich_help_panel="Data",
        ),
    ] = None,
    preprocess: Preprocess = None,
    n_top_genes: NTopGenes = RunConfig.n_top_genes,
    scale: Scale = RunConfig.scale,
    cells: Cells = None,
    genes: Genes = None,
    beta: Annotated[
        float | None,
        typer.Option(help="Weight of the KL term (default: the model's; 2 for the study's networks)."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of weights, batches, sampling, t-SNE and k-means.")
    ] = RunConfig.seed,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = RunConfig.epochs,
    latent_dim: Annotated[
        int, typer.Option("--latent-dim", help="Size of the latent code.")
    ] = RunConfig.latent_dim,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = RunConfig.lr,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Cells per mini-batch.")
    ] = RunConfig.batch_size,
    variant: Annotated[
        str | None,
        typer.Option(
            help="Network: the study's 'text' or its published 'code' widths, or scVI's 'scvi' "
            "(default: the model's; text for the study's networks)."
        ),
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="Encoder trunk widths, e.g. 128,32 (decoder mirrors).")
    ] = None,
    flows: Annotated[
        int, typer.Option(help="Planar flows refining the posterior (flow_vae).")
    ] = RunConfig.flows,
    perplexity: Annotated[
        float, typer.Option(help="t-SNE perplexity.", rich_help_panel="Evaluation")
    ] = RunConfig.perplexity,
    n_init: Annotated[
        int, typer.Option("--n-init", help="k-means restarts.", rich_help_panel="Evaluation")
    ] = RunConfig.n_init,
    tsne_3d: Annotated[
        bool,
        typer.Option(
            "--tsne-3d/--no-tsne-3d",
            help="Also compute and plot the 3-d t-SNE.",
            rich_help_panel="Evaluation",
        ),
    ] = True,
    tsne_cells: TsneCells = RunConfig.tsne_cells,
    metrics: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated metrics (default: all; see `vaebench list`).", rich_help_panel="Evaluation"
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: all cores).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = RunConfig.device,
    run_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Run a whole suite (default: the default suite).", rich_help_panel="Suite"
        ),
    ] = False,
    suite: Annotated[
        str | None, typer.Option(help="Suite name or TOML path (implies --all).", rich_help_panel="Suite")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated models to keep from the suite.", rich_help_panel="Suite"),
    ] = None,
    betas: Annotated[
        str | None, typer.Option(help="Comma-separated betas replacing the suite's.", rich_help_panel="Suite")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds, or a range like 0-4.", rich_help_panel="Suite")
    ] = None,
    jobs: Annotated[
        int, typer.Option(help="Children trained at once, in separate processes.", rich_help_panel="Suite")
    ] = 1,
    force: Annotated[
        bool, typer.Option(help="Rerun grid points that already finished.", rich_help_panel="Suite")
    ] = False,
    report_dir: Annotated[
        Path,
        typer.Option("--report-dir", help="Where the suite's report is written.", rich_help_panel="Suite"),
    ] = Path("reports"),
    cluster: Cluster = None,
    claims_db: ClaimsDb = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = DEFAULT_EXPERIMENT,
) -> None:
    """Train one model on one dataset, score it with the study's protocol and log it all to MLflow.

    With --all (or --suite), run a whole suite: every model over its betas and seeds, resuming what an
    earlier invocation left unfinished.
    """
    with user_errors():
        one_data_source(dataset, data)
        settings: dict[str, Any] = {
            "model": model,
            "dataset": dataset,
            "data_path": str(data) if data is not None else None,
            "labels_path": str(labels) if labels is not None else None,
            "label_key": label_key,
            "preprocess": preprocess,
            "n_top_genes": n_top_genes,
            "scale": scale,
            "cells": cells,
            "genes": genes,
            "beta": beta,
            "seed": seed,
            "epochs": epochs,
            "latent_dim": latent_dim,
            "lr": lr,
            "batch_size": batch_size,
            "variant": variant,
            "hidden": parse_hidden(hidden),
            "flows": flows,
            "perplexity": perplexity,
            "n_init": n_init,
            "tsne_3d": tsne_3d,
            "tsne_cells": tsne_cells,
            "metrics": tuple(parse_list(metrics, str, "--metrics")) if metrics else None,
            "threads": threads,
            "device": device,
        }
        if run_all or suite is not None:
            # Every run option the user gave applies to each of the suite's runs (its own axes, --model,
            # --beta and --seed, are refused by Suite.narrowed).
            overrides = {
                field: settings[field]
                for field in (CONFIG_FIELD_OF.get(name, name) for name in given_options(ctx))
                if field in settings
            }
            run_suite_command(
                suite or "default",
                models,
                betas,
                seeds,
                overrides,
                jobs,
                force,
                report_dir,
                tracking_uri,
                experiment,
                cluster,
                claims_db,
            )
            return
        if cluster is not None:
            raise VaebenchError("--cluster runs suites (--all or --suite); a single run trains here.")
        # Without --dataset or --data, RunConfig's data source is the default dataset.
        config = RunConfig(**settings)
        config = config.validate()
        from vaebench.evaluate.collapse import run_collapse_message, run_name
        from vaebench.models import get_model
        from vaebench.runner import load_for, run_and_log

        dataset_obj = load_for(config)
        uri = configure_tracking(tracking_uri, experiment)
        spec = get_model(config.model)
        what = f"for {config.epochs} epochs" if spec.is_trained else "(fitted, no epochs)"
        what += " on its raw counts" if spec.needs_counts else ""
        out.print(
            f"Training [bold]{config.model}[/] on {dataset_obj.name} ({dataset_obj.n_cells:,} cells x "
            f"{dataset_obj.n_genes:,} genes{', sparse' if dataset_obj.is_sparse else ''}, "
            f"preprocessing {dataset_obj.preprocessing}, {labels_phrase(dataset_obj.label_key)}) {what}",
            highlight=False,
        )
        if not dataset_obj.has_labels:
            say_no_labels(config.metrics)
        with epoch_progress(config.epochs, config.model) as on_epoch:
            outcome, run_id = run_and_log(config, dataset=dataset_obj, on_epoch=on_epoch)
        training = outcome.training
        print_scores(
            f"{config.model} on {dataset_obj.name} ({dataset_obj.label_key or 'no labels'})",
            outcome.evaluation.metrics,
        )
        collapsed = run_collapse_message(
            run_name(config.model, config.beta if spec.has_beta else None, config.seed),
            outcome.evaluation.metrics,
        )
        if collapsed:
            say_collapse(collapsed)
        out.print(
            f"Training: {training.seconds:.2f} s wall, {training.cpu_seconds:.2f} s CPU"
            + (f", {training.seconds_per_epoch:.4f} s/epoch" if training.epochs else "")
            + f" on {training.device} ({training.cpu}, {training.threads} threads)",
            highlight=False,
        )
        print_run_location(uri, experiment, run_id)


def parse_list(text: str | None, kind: type, option: str) -> list | None:
    """``"0,1,2"`` or ``"0-4"`` (integers) -> a list; None stays None."""
    if text is None:
        return None
    items: list = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if kind is int and "-" in part[1:]:
                low, high = part.split("-", 1)
                items.extend(range(int(low), int(high) + 1))
            else:
                items.append(kind(part))
    except ValueError:
        raise VaebenchError(
            f"{option} must be a comma-separated list of {kind.__name__} values, got {text!r}."
        ) from None
    if not items:
        raise VaebenchError(f"{option} is empty.")
    return items


def run_suite_command(
    name: str,
    models: str | None,
    betas: str | None,
    seeds: str | None,
    overrides: dict[str, Any],
    jobs: int,
    force: bool,
    report_dir: Path,
    tracking_uri: str | None,
    experiment: str,
    cluster: str | None = None,
    claims_db: str | None = None,
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from vaebench.sets.suite import dataset_of, load_suite, point_label, run_suite

    suite = load_suite(name).narrowed(
        models=parse_list(models, str, "--models"),
        betas=parse_list(betas, float, "--betas"),
        seeds=parse_list(seeds, int, "--seeds"),
        settings=overrides,
    )
    grid = suite.grid()
    where = f"on the Dask cluster {cluster}" if cluster else f"{jobs} job(s)"
    data = grid[0].data_source().name
    out.print(
        f"Suite [bold]{suite.name}[/]: {len(grid)} grid points ({', '.join(suite.models)}; seeds {list(suite.seeds)}) "
        f"on {data}, {where}",
        highlight=False,
    )
    if not dataset_of(grid[0]).has_labels:  # loaded once per process: run_suite reads this same copy
        say_no_labels(grid[0].metrics)

    def write_report(parent: Any, results: list[Any]) -> None:
        from vaebench.sets.report import report_suite

        data = dataset_of(grid[0])  # loaded once per process: the copy the suite ran on
        files = report_suite(parent, results, data, report_dir, experiment, on_collapse=say_collapse)
        out.print(f"Report: {len(files)} files in {report_dir}/")

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    # A log file shows where the suite is: plain lines to stdout when it is not a terminal (else to
    # stderr when that is not one), besides the progress bar on a terminal.
    plain = out if not out.is_terminal else (err if not err.is_terminal else None)
    with Progress(*columns, console=err, disable=not err.is_terminal) as progress:
        task = progress.add_task(f"suite {suite.name}", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=f"run {done}/{total} {what}")
            if plain is not None:
                plain.print(f"[{done}/{total}] {what}", highlight=False, soft_wrap=True)

        result = run_suite(
            suite,
            experiment=experiment,
            tracking_uri=tracking_uri,
            jobs=jobs,
            force=force,
            on_progress=on_progress,
            after_runs=write_report,
            cluster=cluster,
            claims_db=claims_db,
        )
    counts = {s: len(result.with_status(s)) for s in ("finished", "skipped", "failed", "held")}
    out.print(
        f"Suite run {result.parent_run_id}: {counts['finished']} trained, {counts['skipped']} already finished, {counts['failed']} failed"
        + (f", {counts['held']} left to another invocation that holds them" if counts["held"] else "")
    )
    if result.failed:
        for point in result.failed:
            err.print(f"FAILED {point_label(point.config)}: {point.reason}", highlight=False)
        raise typer.Exit(code=1)


@app.command()
def evaluate(
    path: Annotated[
        Path,
        typer.Argument(help="CSV (cell ids first, one column per dimension, the label column) or .h5ad."),
    ],
    label_column: Annotated[
        str, typer.Option("--label-column", help="Column holding the ground-truth labels.")
    ],
    obsm: Annotated[str | None, typer.Option(help="For .h5ad: the obsm key of the embedding.")] = None,
    name: Annotated[str, typer.Option(help="Name the run carries as its model.")] = "external",
    seed: Annotated[int, typer.Option(help="Seed of t-SNE and k-means.")] = 0,
    perplexity: Annotated[float, typer.Option(help="t-SNE perplexity.")] = RunConfig.perplexity,
    n_init: Annotated[int, typer.Option("--n-init", help="k-means restarts.")] = RunConfig.n_init,
    tsne_3d: Annotated[
        bool, typer.Option("--tsne-3d/--no-tsne-3d", help="Also compute and plot the 3-d t-SNE.")
    ] = True,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = DEFAULT_EXPERIMENT,
) -> None:
    """Score an embedding made elsewhere with the same protocol and log it as a run.

    Embeddings of 2 dimensions are scored as they are, without t-SNE, as the study did.
    """
    with user_errors():
        if perplexity <= 0 or n_init < 1:
            raise VaebenchError("--perplexity must be positive and --n-init at least 1.")
        from vaebench.data.external import read_embedding
        from vaebench.evaluate import ProtocolSettings
        from vaebench.runner import evaluate_external_and_log

        embedding = read_embedding(path, label_column, obsm)
        settings = ProtocolSettings(perplexity=perplexity, n_init=n_init, tsne_3d=tsne_3d, seed=seed)
        uri = configure_tracking(tracking_uri, experiment)
        evaluation, run_id = evaluate_external_and_log(embedding, settings, name=name)
        print_scores(f"{name}: {path.name} ({label_column})", evaluation.metrics)
        print_run_location(uri, experiment, run_id)


@app.command()
def report(
    experiment: Experiment = DEFAULT_EXPERIMENT,
    suite_run: Annotated[
        str | None, typer.Option("--suite-run", help="Parent run id of a suite (default: the latest).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder the tables and figures are written to.")
    ] = Path("reports"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Tables and figures over seeds from a finished suite, written to --out and logged to its parent run.

    Tuned models (`vaebench tune`) evaluated on the same dataset and labels stand beside the suite's
    entries, paired with the baseline on their own fresh seeds.
    """
    with user_errors():
        from vaebench.sets.report import report_experiment

        configure_tracking(tracking_uri, experiment)
        files = report_experiment(experiment, out_dir, suite_run, on_collapse=say_collapse)
        out.print(f"Report: {len(files)} files in {out_dir}/", highlight=False)
        for path in files:
            out.print(f"  {path.name}", highlight=False)


@app.command("list")
def list_registries() -> None:
    """Name the registered models, metrics and datasets."""
    from vaebench.data import DATASETS
    from vaebench.evaluate import METRICS
    from vaebench.models import all_models

    for title, rows in (
        ("Models", [(m.name, m.description, m.reference) for m in all_models().values()]),
        ("Metrics", [(m.name, m.description, m.reference) for m in METRICS.values()]),
        ("Datasets", [(d.name, d.description, f"labels: {d.default_label_key}") for d in DATASETS.values()]),
    ):
        table = Table(title=title, show_header=False, title_justify="left")
        for row in rows:
            table.add_row(*row)
        out.print(table)


app.command()(tune)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
