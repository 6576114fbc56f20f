"""What every ``vaebench`` command shares: the consoles, the user-error guard and the common options."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
LabelsPath = Annotated[
    Path | None,
    typer.Option(
        "--labels", help="Labels CSV for a 10x folder or a genes x cells CSV.", rich_help_panel="Data"
    ),
]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user's mistake into one sentence on stderr and exit code 2; anything else is a bug.

    SIGTERM and SIGHUP stop the command as Ctrl-C does (open runs end KILLED), with exit code 128 + the
    signal's number."""
    try:
        with stop_on_signals():
            yield
    except VaebenchError as error:
        err.print(f"[bold red]Error:[/] {error}", highlight=False, soft_wrap=True)
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
