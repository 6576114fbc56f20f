"""What every ``vaebench`` command shares: the consoles, the user-error guard and the common options."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from vaebench.errors import VaebenchError
from vaebench.executor.stopping import StopRequested, stop_on_signals

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
DatasetName = Annotated[
    str | None,
    typer.Option("--dataset", "-d", help="Registered dataset (default pbmc68k).", rich_help_panel="Data"),
]
DataPath = Annotated[
    Path | None,
    typer.Option("--data", help="Your own data: .h5ad, 10x folder or CSV.", rich_help_panel="Data"),
]
Preprocess = Annotated[
    str | None,
    typer.Option(
        "--preprocess",
        help="none, study (the seed's Seurat steps) or standard (normalise, log1p, top genes). "
        "Default: the dataset's own; raw counts get standard, with a note.",
        rich_help_panel="Data",
    ),
]
NTopGenes = Annotated[
    int,
    typer.Option(
        "--n-top-genes", help="Highly variable genes kept by --preprocess standard.", rich_help_panel="Data"
    ),
]
Scale = Annotated[
    bool,
    typer.Option(
        "--scale/--no-scale",
        help="With --preprocess standard: scale each gene to unit variance (makes the matrix dense).",
        rich_help_panel="Data",
    ),
]
Cells = Annotated[
    int | None,
    typer.Option(
        "--cells", help="Cells of a generated dataset (synthetic, synthetic_counts).", rich_help_panel="Data"
    ),
]
Genes = Annotated[
    int | None,
    typer.Option(
        "--genes", help="Genes of a generated dataset (synthetic, synthetic_counts).", rich_help_panel="Data"
    ),
]
TsneCells = Annotated[
    int,
    typer.Option(
        "--tsne-cells",
        help="Above this many cells, the t-SNE map and its k-means use a stratified seeded sample of this size.",
        rich_help_panel="Evaluation",
    ),
]
LabelsPath = Annotated[
    Path | None,
    typer.Option(
        "--labels", help="Labels CSV for a 10x folder or a genes x cells CSV.", rich_help_panel="Data"
    ),
]


class _NoteHandler(logging.Handler):
    """vaebench's notes (``logging.getLogger("vaebench")`` warnings) as one plain line on stderr each."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[bold yellow]Note:[/] {record.getMessage()}", highlight=False, soft_wrap=True)


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
        err.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    except StopRequested as stop:
        err.print(
            f"{stop.reason.capitalize()}; what was logged so far is kept (open runs are marked KILLED)."
        )
        raise typer.Exit(code=stop.exit_code) from None
    except KeyboardInterrupt:
        err.print("Interrupted; what was logged so far is kept (the run is marked KILLED).")
        raise typer.Exit(code=130) from None


def one_data_source(dataset: str | None, data: Path | None) -> None:
    """``--dataset`` and ``--data`` name the same thing: refuse both at once."""
    if dataset is not None and data is not None:
        raise VaebenchError("Give either --dataset or --data, not both.")
