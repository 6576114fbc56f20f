"""The ``vaebench`` command: parses options, calls the library, prints. No logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vaebench.cli.common import (
    DEFAULT_EXPERIMENT,
    Experiment,
    TrackingUri,
    configure_tracking,
    out,
    print_run_location,
    print_scores,
    say_collapse,
    say_report,
    user_errors,
)
from vaebench.cli.options import part_options
from vaebench.cli.run import run
from vaebench.cli.tune import tune
from vaebench.executor.heap import freeze_imported_objects

app = typer.Typer(
    name="vaebench",
    help="Benchmark autoencoders on single-cell RNA-seq data with the protocol of the seed study, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _before_every_command() -> None:
    # Everything the command needs is imported by now: out of the collector's way (vaebench/executor/heap.py).
    freeze_imported_objects()


app.command()(run)


@app.command()
@part_options("protocol")
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
    tracking_uri: TrackingUri = None,
    experiment: Experiment = DEFAULT_EXPERIMENT,
    given: dict[str, Any] | None = None,
) -> None:
    """Score an embedding made elsewhere with the same protocol and log it as a run.

    Embeddings of 2 dimensions are scored as they are, without t-SNE, as the study did.
    """
    with user_errors():
        from vaebench.config.parts import ProtocolSettings
        from vaebench.data.external import read_embedding
        from vaebench.runner import evaluate_external_and_log

        settings = ProtocolSettings(**(given or {}))  # checked before the embedding is read
        embedding = read_embedding(path, label_column, obsm)
        configure_tracking(tracking_uri, experiment)
        evaluation, run_id = evaluate_external_and_log(embedding, settings, name=name, seed=seed)
        print_scores(f"{name}: {path.name} ({label_column})", evaluation.metrics)
        print_run_location(experiment, run_id)


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
        say_report(files, out_dir)
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
