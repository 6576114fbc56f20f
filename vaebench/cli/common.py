"""What every ``vaebench`` command shares: the consoles, the user-error guard, the MLflow and cluster
options, and the lines that say where a run is and what it scored. Run settings are option groups built
from the configuration's parts (:mod:`vaebench.cli.options`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from vaebench.errors import VaebenchError
from vaebench.executor.stopping import StopRequested, stop_on_signals
from vaebench.tracking.uris import MODEL_TRAINING_SWITCH, redact

out = Console()
err = Console(stderr=True)

DEFAULT_EXPERIMENT = "vaebench"

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's default sqlite:///mlflow.db here).",
        rich_help_panel="MLflow",
    ),
]
Cluster = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Dask scheduler address (tcp://HOST:8786): each run is a task on its workers (pip install 'vaebench[cluster]').",
        rich_help_panel="Cluster",
    ),
]
ClaimsDb = Annotated[
    str | None,
    typer.Option(
        "--claims-db",
        help="Database deciding which invocation runs a grid point (default: $VAEBENCH_CLAIMS_DB, else the "
        "tracking store's PostgreSQL, else SQLite vaebench-claims.db beside a SQLite store or here).",
        rich_help_panel="Cluster",
    ),
]
Experiment = Annotated[
    str, typer.Option("--experiment", help="MLflow experiment name.", rich_help_panel="MLflow")
]


class _NoteHandler(logging.Handler):
    """vaebench's notes (``logging.getLogger("vaebench")`` warnings) as one plain line on stderr each."""

    def emit(self, record: logging.LogRecord) -> None:
        note = escape(redact(record.getMessage()))
        err.print(f"[bold yellow]Note:[/] {note}", highlight=False, soft_wrap=True)


def show_notes() -> None:
    logger = logging.getLogger("vaebench")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler(logging.WARNING))
        logger.propagate = False


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user's mistake into one sentence on stderr and exit code 2; anything else is a bug.

    SIGTERM and SIGHUP stop the command as Ctrl-C does (open runs end KILLED), with exit code 128 + the
    signal's number."""
    show_notes()
    try:
        with stop_on_signals():
            yield
    except VaebenchError as error:
        # The sentence is text, not markup: "[scvi]" in a pip command or a column named "[x]" stays.
        # A sentence that echoes a URI (a driver's error) has its password redacted here at the latest.
        err.print(f"[bold red]Error:[/] {escape(redact(str(error)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    except StopRequested as stop:
        err.print(
            f"{stop.reason.capitalize()}; what was logged so far is kept (open runs are marked KILLED)."
        )
        raise typer.Exit(code=stop.exit_code) from None
    except KeyboardInterrupt:
        err.print("Interrupted; what was logged so far is kept (the run is marked KILLED).")
        raise typer.Exit(code=130) from None


def configure_tracking(tracking_uri: str | None, experiment: str) -> str:
    from vaebench import tracking

    return tracking.configure(tracking_uri, experiment)


def print_scores(title: str, metrics: dict[str, float]) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}")
    out.print(table)


def say_collapse(line: str) -> None:
    """A run whose posterior collapsed, in one sentence (:mod:`vaebench.evaluate.collapse`)."""
    out.print(line, style="bold yellow", markup=False, highlight=False, soft_wrap=True)


def print_run_location(experiment: str, run_id: str, what: str = "MLflow run") -> None:
    """Where the run is (its store, redacted) and the runs table of its experiment in the MLflow UI."""
    from vaebench import tracking

    where = tracking.ui_location(run_id)
    out.print(
        f"{what} [bold]{run_id}[/] in experiment [bold]{experiment}[/] at {escape(where.uri)}",
        highlight=False,
        soft_wrap=True,
    )
    print_runs_table(where)


def print_runs_table(where: Any) -> None:
    """The runs table's address in the MLflow UI (after the command that serves a local store), and the
    sidebar switch MLflow 3 needs; one line each, never wrapped, so they can be copied."""
    if where.command:
        out.print(f"  browse it with: {where.command}", highlight=False, markup=False, soft_wrap=True)
        out.print(f"  then open the runs table: {where.url}", highlight=False, markup=False, soft_wrap=True)
    else:
        out.print(f"  runs table: {where.url}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"  {MODEL_TRAINING_SWITCH}.", highlight=False, markup=False, soft_wrap=True)


def say_report(files: list[Path], folder: Path) -> None:
    """Where a report went: the one page to open first, then how many files stand beside it."""
    page = next((path for path in files if path.name == "report.html"), None)
    if page is not None:
        out.print(f"Report: open {page} ({len(files)} files in {folder}/)", highlight=False, soft_wrap=True)
    else:
        out.print(f"Report: {len(files)} files in {folder}/", highlight=False)
