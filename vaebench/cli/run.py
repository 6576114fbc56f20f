"""``vaebench run``: one run (:func:`run_one`) or, with ``--all`` or ``--suite``, a suite (:func:`run_suite`).

Its run settings are the option groups of the configuration's parts (:mod:`vaebench.cli.options`), the
same for a single run and for every run of a suite, where they apply to each grid point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from vaebench.cli.common import (
    DEFAULT_EXPERIMENT,
    ClaimsDb,
    Cluster,
    Experiment,
    TrackingUri,
    configure_tracking,
    err,
    out,
    print_run_location,
    print_scores,
    say_collapse,
    say_report,
    user_errors,
)
from vaebench.cli.options import SetOption, one_data_source, parse_set, part_options
from vaebench.config.run_config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.tracking.uris import redact

_SUITE = "Suite"
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model to train (see `vaebench list`), or your own as package.module:Class.",
        show_default="ae",
    ),
]
Seed = Annotated[
    int | None, typer.Option(help="Seed of weights, batches, sampling, t-SNE and k-means.", show_default="0")
]
RunAll = Annotated[
    bool,
    typer.Option("--all", help="Run a whole suite (default: the default suite).", rich_help_panel=_SUITE),
]
SuiteName = Annotated[
    str | None, typer.Option(help="Suite name or TOML path (implies --all).", rich_help_panel=_SUITE)
]
Models = Annotated[
    str | None, typer.Option(help="Comma-separated models to keep from the suite.", rich_help_panel=_SUITE)
]
Betas = Annotated[
    str | None, typer.Option(help="Comma-separated betas replacing the suite's.", rich_help_panel=_SUITE)
]
Seeds = Annotated[
    str | None, typer.Option(help="Comma-separated seeds, or a range like 0-4.", rich_help_panel=_SUITE)
]
Jobs = Annotated[
    int, typer.Option(help="Children trained at once, in separate processes.", rich_help_panel=_SUITE)
]
Force = Annotated[bool, typer.Option(help="Rerun grid points that already finished.", rich_help_panel=_SUITE)]
ReportDir = Annotated[
    Path, typer.Option("--report-dir", help="Where the suite's report is written.", rich_help_panel=_SUITE)
]


@dataclass(frozen=True)
class SuiteRequest:
    """What ``run --all`` / ``run --suite`` asks for: the suite, its narrowed axes, settings for every run
    (flat names), and where it runs and logs."""

    name: str
    models: str | None
    betas: str | None
    seeds: str | None
    settings: dict[str, Any]
    jobs: int
    force: bool
    report_dir: Path
    tracking_uri: str | None
    experiment: str
    cluster: str | None
    claims_db: str | None


@part_options("data", "model", "training", "protocol", "execution")
def run(
    model: ModelName = None,
    seed: Seed = None,
    set_: SetOption = None,
    run_all: RunAll = False,
    suite: SuiteName = None,
    models: Models = None,
    betas: Betas = None,
    seeds: Seeds = None,
    jobs: Jobs = 1,
    force: Force = False,
    report_dir: ReportDir = Path("reports"),
    cluster: Cluster = None,
    claims_db: ClaimsDb = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = DEFAULT_EXPERIMENT,
    given: dict[str, Any] | None = None,
) -> None:
    """Train one model on one dataset, score it with the study's protocol and log it all to MLflow.

    With --all (or --suite), run a whole suite: every model over its betas and seeds, resuming what an
    earlier invocation left unfinished.
    """
    with user_errors():
        settings = {**(given or {}), **parse_set(set_)}
        one_data_source(settings)
        if run_all or suite is not None:
            # Every run setting the user gave applies to each of the suite's runs (its own axes, --model,
            # --beta and --seed, are refused by Suite.narrowed).
            axes = {name: value for name, value in (("model", model), ("seed", seed)) if value is not None}
            request = SuiteRequest(
                suite or "default",
                models,
                betas,
                seeds,
                {**axes, **settings},
                jobs,
                force,
                report_dir,
                tracking_uri,
                experiment,
                cluster,
                claims_db,
            )
            run_suite(request)
            return
        if cluster is not None:
            raise VaebenchError("--cluster runs suites (--all or --suite); a single run trains here.")
        run_one(RunConfig.of(model=model or "ae", seed=seed or 0, **settings), tracking_uri, experiment)


def run_one(config: RunConfig, tracking_uri: str | None, experiment: str) -> None:
    """Train (or fit) one configuration, log it and print its scores."""
    from vaebench.evaluate.collapse import run_collapse_message, run_name
    from vaebench.models import get_model
    from vaebench.runner import load_for, run_and_log

    dataset = load_for(config)
    configure_tracking(tracking_uri, experiment)
    spec = get_model(config.model)
    what = f"for {config.epochs} epochs" if spec.is_trained else "(fitted, no epochs)"
    what += " on its raw counts" if spec.needs_counts else ""
    out.print(
        f"Training [bold]{config.model}[/] on {dataset.name} ({dataset.n_cells:,} cells x "
        f"{dataset.n_genes:,} genes{', sparse' if dataset.is_sparse else ''}, "
        f"preprocessing {dataset.preprocessing}, {labels_phrase(dataset.label_key)}) {what}",
        highlight=False,
    )
    if not dataset.has_labels:
        say_no_labels(config.metrics)
    with epoch_progress(config.epochs, config.model) as on_epoch:
        outcome, run_id = run_and_log(config, dataset=dataset, on_epoch=on_epoch)
    training = outcome.training
    print_scores(
        f"{config.model} on {dataset.name} ({dataset.label_key or 'no labels'})", outcome.evaluation.metrics
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
    print_run_location(experiment, run_id)


def run_suite(request: SuiteRequest) -> None:
    """Run the suite a ``run --all`` asks for, with a progress bar, then its report."""
    from vaebench.sets.suite import dataset_of, load_suite, point_label
    from vaebench.sets.suite import run_suite as run_points

    suite = load_suite(request.name).narrowed(
        models=parse_list(request.models, str, "--models"),
        betas=parse_list(request.betas, float, "--betas"),
        seeds=parse_list(request.seeds, int, "--seeds"),
        settings=request.settings,
    )
    grid = suite.grid()
    where = f"on the Dask cluster {redact(request.cluster)}" if request.cluster else f"{request.jobs} job(s)"
    out.print(
        f"Suite [bold]{suite.name}[/]: {len(grid)} grid points ({', '.join(suite.models)}; seeds "
        f"{list(suite.seeds)}) on {grid[0].data.name}, {where}",
        highlight=False,
    )
    if not dataset_of(grid[0]).has_labels:  # loaded once per process: run_suite reads this same copy
        say_no_labels(grid[0].metrics)

    def write_report(parent: Any, results: list[Any]) -> None:
        from vaebench.sets.report import report_suite

        data = dataset_of(grid[0])  # loaded once per process: the copy the suite ran on
        files = report_suite(
            parent, results, data, request.report_dir, request.experiment, on_collapse=say_collapse
        )
        say_report(files, request.report_dir)

    with suite_progress(suite.name) as on_progress:
        result = run_points(
            suite,
            experiment=request.experiment,
            tracking_uri=request.tracking_uri,
            jobs=request.jobs,
            force=request.force,
            on_progress=on_progress,
            after_runs=write_report,
            cluster=request.cluster,
            claims_db=request.claims_db,
        )
    counts = {s: len(result.with_status(s)) for s in ("finished", "skipped", "failed", "held")}
    out.print(
        f"Suite run {result.parent_run_id}: {counts['finished']} trained, {counts['skipped']} already "
        f"finished, {counts['failed']} failed"
        + (f", {counts['held']} left to another invocation that holds them" if counts["held"] else "")
    )
    print_run_location(request.experiment, result.parent_run_id, what="Suite's parent run")
    if result.failed:
        for point in result.failed:
            reason = redact(point.reason or "")
            err.print(f"FAILED {point_label(point.config)}: {reason}", highlight=False, markup=False)
        raise typer.Exit(code=1)


@contextlib.contextmanager
def suite_progress(name: str) -> Iterator[Any]:
    """A progress bar of a suite's points on a terminal; plain lines to stdout when it is not a terminal
    (else to stderr when that is not one), so that a log file shows where the suite is."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    plain = out if not out.is_terminal else (err if not err.is_terminal else None)
    with Progress(*columns, console=err, disable=not err.is_terminal) as progress:
        task = progress.add_task(f"suite {name}", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=f"run {done}/{total} {what}")
            if plain is not None:
                plain.print(f"[{done}/{total}] {what}", highlight=False, soft_wrap=True)

        yield on_progress


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
