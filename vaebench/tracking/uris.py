"""URIs that may hold a password, and where the MLflow UI shows a store's runs.

:func:`redact` is the one place a password is taken out of a URI (or out of a sentence or a value that
holds one): every URI vaebench prints, logs, tags or writes goes through it (the tracking store, the
claims database, the Optuna storage, the Dask scheduler). Nothing here imports mlflow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HIDDEN = "***"

# scheme://user:password@ as SQLAlchemy reads it (the user stops at ':' or '/', the password at '@') and
# as urllib reads it (the password runs to the last '@' of the address, before any '/', '?' or '#').
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)"
    r"(?P<password>[^\s@'\"]*(?:@[^\s@/?#'\"]*(?=@))*)@"
)
# ...?password=secret, &pwd=secret (libpq's and several drivers' query parameters)
_QUERY = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|pass)=)[^&;\s'\"]*", re.IGNORECASE)

DEFAULT_UI = "http://127.0.0.1:5000"
"""Where ``mlflow ui`` serves by default."""

MODEL_TRAINING_SWITCH = (
    "MLflow 3's sidebar starts on GenAI: flip its 'GenAI / Model training' switch to Model training for "
    "the runs, metrics and models views (docs/mlflow.md)"
)


def redact(text: str) -> str:
    """``text`` with the password of every URI in it replaced by ``***``: user, host, port, database and
    path are kept (``postgresql+psycopg://user:***@host:5432/db``, ``https://user:***@host``); a URI
    without a password, a SQLite or file path, and a sentence without a URI come back as they were."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}{HIDDEN}@" if m["password"] else m[0], text)
    return _QUERY.sub(lambda m: f"{m['head']}{HIDDEN}", text)


def redact_all(value: Any) -> Any:
    """:func:`redact` applied to every string in ``value`` (dicts, lists and tuples are walked; keys too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_all(v) for v in value)
    return value


def is_server(uri: str) -> bool:
    """Whether ``uri`` is an MLflow tracking server (http or https)."""
    return uri.startswith(("http://", "https://"))


def runs_table_url(uri: str, experiment_id: str) -> str:
    """The address of the runs table of ``experiment_id`` in the MLflow UI: on the server ``uri`` itself,
    else where ``mlflow ui`` (:func:`ui_command`) serves it. Redacted."""
    base = uri.rstrip("/") if is_server(uri) else DEFAULT_UI
    return redact(f"{base}/#/experiments/{experiment_id}/runs")


def ui_command(uri: str, environment_uri: str | None = None) -> str | None:
    """The ``mlflow ui`` command that serves a local store (None for a tracking server, which serves
    itself). A store whose password is redacted is named as ``"$MLFLOW_TRACKING_URI"`` where that
    variable holds it (``environment_uri``), so the command runs as printed; else the user is told to put
    the password back."""
    if is_server(uri) or uri.startswith("databricks"):
        return None
    if redact(uri) == uri:
        return f"mlflow ui --backend-store-uri {uri}"
    if environment_uri == uri:
        return 'mlflow ui --backend-store-uri "$MLFLOW_TRACKING_URI"'
    return f"mlflow ui --backend-store-uri '{redact(uri)}' (your password in place of {HIDDEN})"


def absolute_sqlite(url: str) -> str:
    """A SQLite URL with a relative path made absolute (another folder's process finds the same file)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        return f"sqlite:///{Path(url[len('sqlite:///') :]).resolve()}"
    return url


def same_database(first: str, second: str) -> bool:
    """Whether two SQLAlchemy URLs name the same database (driver, user, password and options aside)."""
    import sqlalchemy as sa

    try:
        a, b = (sa.engine.make_url(absolute_sqlite(url)) for url in (first, second))
    except Exception:  # not a database URL (an http server, a folder): nothing to compare
        return False
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return bool(a.database) and a.database == b.database
    port = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(a.get_backend_name())
    return (a.host or "localhost", a.port or port, a.database) == (
        b.host or "localhost",
        b.port or port,
        b.database,
    )


MLFLOW_TABLES = frozenset({"experiments", "runs"})
"""Tables of MLflow's own schema; a database holding them is a tracking store."""


def holds_mlflow_tables(url: str) -> bool:
    """Whether the database at ``url`` already holds MLflow's tables (looked at, not changed: a SQLite file
    that does not exist is not created, and a database that cannot be reached is not MLflow's)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and not (
            parsed.database and parsed.database != ":memory:" and Path(parsed.database).is_file()
        ):
            return False
        engine = sa.create_engine(url)
    except Exception:  # not a URL SQLAlchemy can open: whoever opens it says why
        return False
    try:
        return set(sa.inspect(engine).get_table_names()) >= MLFLOW_TABLES
    except Exception:  # unreachable, or no such database: not MLflow's either
        return False
    finally:
        engine.dispose()
