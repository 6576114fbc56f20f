"""Throwaway services on loopback for the cluster tests and the overhead benchmark: a PostgreSQL 15, an MLflow
tracking server on it that serves artifacts itself, and a Dask scheduler with worker processes; and, for the
tests that no secret is printed or stored, a PostgreSQL that requires a password (:func:`secured_postgres`).

Each service runs in its own session (process group) and :meth:`Services.stop` ends every group it started,
so nothing outlives the tests, also when one fails. As root, PostgreSQL runs as the ``postgres`` user
(``runuser``) in a temporary folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vaebench.executor.stopping import set_parent_death_signal

PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, if PostgreSQL is installed."""
    for folder in PG_BIN_DIRS:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")


@dataclass
class Services:
    """What was started, and how to stop it all."""

    root: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    pg_data: Path | None = None
    pg_bin: Path | None = None
    pg_port: int = 0
    pg_password: str | None = None  # the superuser's, when connections need one (scram-sha-256)
    mlflow_uri: str = ""
    server_workers: int = 1
    scheduler: str = ""
    workers: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        user = f"postgres:{self.pg_password}" if self.pg_password else "postgres"
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.pg_port}/{name}"

    def _as_postgres(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def start_postgres(self, databases: tuple[str, ...], password: str | None = None) -> None:
        """PostgreSQL on loopback with ``databases``; with a ``password``, every connection (local and TCP)
        must give it (scram-sha-256), else none needs one."""
        self.pg_bin = postgres_bin()
        if self.pg_bin is None:
            raise FileNotFoundError("PostgreSQL's initdb and pg_ctl were not found")
        folder = Path(tempfile.mkdtemp(prefix="vaebench-pg-"))
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        self.pg_data, self.pg_port = folder / "data", free_port()
        log = folder / "postgres.log"
        self.logs.append(log)
        auth = ["--auth=trust"]
        if password:
            secret = folder / "password"
            secret.write_text(password + "\n")
            if os.geteuid() == 0:
                shutil.chown(secret, "postgres", "postgres")
            auth = ["--auth=scram-sha-256", f"--pwfile={secret}"]
            self.pg_password = password
        subprocess.run(
            self._as_postgres(str(self.pg_bin / "initdb"), "-D", str(self.pg_data), "-U", "postgres", *auth),
            check=True,
            capture_output=True,
        )
        options = f"-p {self.pg_port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            self._as_postgres(
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        import psycopg

        admin = self.database_url("postgres").replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in databases:
                connection.execute(f'CREATE DATABASE "{name}"')

    def spawn(self, name: str, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        handle = log.open("w")
        process = subprocess.Popen(
            list(command),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,
            env={**os.environ, **(env or {})},
            # A test process killed before its clean-up (an interrupted pytest-xdist worker) takes its
            # services with it.
            preexec_fn=set_parent_death_signal,
        )
        self.processes.append(process)
        return process

    def start_mlflow(
        self, database: str = "mlflow", port: int | None = None, workers: int | None = None
    ) -> None:
        """The tracking server on ``port`` (a free one by default), serving artifacts from ``root``, with
        ``workers`` worker processes (by default as many as the last start had, first 1)."""
        self.server_workers = workers or self.server_workers
        port = port or free_port()
        artifacts = self.root / "mlflow-artifacts"
        self.spawn(
            "mlflow",
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.database_url(database),
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(self.server_workers),
            # uvicorn restarts a worker that does not answer its health check within 5 s; on a loaded
            # machine a worker still importing MLflow never would, and the server would never come up.
            "--uvicorn-opts",
            "--timeout-worker-healthcheck 60",
            # MLflow 3's server otherwise starts seven job-queue processes (GenAI scorers and the like)
            # that vaebench never uses.
            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        self.mlflow_uri = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: urllib.request.urlopen(f"{self.mlflow_uri}/health", timeout=2).status == 200,
            180,
            "MLflow",
        )

    def stop_mlflow(self) -> None:
        for process in list(self.processes):
            if "mlflow" in " ".join(map(str, process.args)):
                _end(process)
                self.processes.remove(process)

    def restart_mlflow(self) -> None:
        """Stop the tracking server and start it again at the same address (as an upgrade or a crash
        followed by systemd's restart would)."""
        port = int(self.mlflow_uri.rsplit(":", 1)[1])
        self.stop_mlflow()
        self.start_mlflow(port=port)

    def start_dask(self, workers: int = 2) -> None:
        port = free_port()
        self.scheduler = f"tcp://127.0.0.1:{port}"
        self.spawn(
            "dask-scheduler",
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        )
        for index in range(workers):
            self.workers.append(self.start_worker(index))
        from distributed import Client

        def ready() -> bool:
            with Client(self.scheduler, timeout=5) as client:
                return len(client.scheduler_info(n_workers=-1)["workers"]) >= workers

        wait_for(ready, 180, "the Dask workers")

    def start_worker(self, index: int) -> subprocess.Popen:
        return self.spawn(
            f"dask-worker-{index}",
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            self.scheduler,
            "--nthreads",
            "1",
            "--nworkers",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        )

    def stop(self) -> None:
        _end_all(list(reversed(self.processes)))
        self.processes.clear()
        if self.pg_data is not None and self.pg_bin is not None:
            subprocess.run(
                self._as_postgres(
                    str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_data), "-m", "immediate", "stop"
                ),
                capture_output=True,
                check=False,
            )
            shutil.rmtree(self.pg_data.parent, ignore_errors=True)
            self.pg_data = None


def _end(process: subprocess.Popen) -> None:
    """Terminate a service's whole process group, then kill what is left."""
    _end_all([process])


def _end_all(processes: list[subprocess.Popen]) -> None:
    """Terminate the services' process groups all at once, give them 15 s together, kill what is left."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


@contextlib.contextmanager
def cluster_services(root: Path, workers: int = 2, server_workers: int = 1) -> Iterator[Services]:
    """PostgreSQL (databases ``mlflow``, ``optuna`` and ``claims``), the MLflow server with
    ``server_workers`` worker processes (one serves the tests' few requests; each costs an import of the
    server at every start) and a Dask scheduler with ``workers`` workers; all stopped on the way out."""
    services = Services(root)
    try:
        services.start_postgres(("mlflow", "optuna", "claims"))
        services.start_mlflow(workers=server_workers)
        services.start_dask(workers)
        yield services
    finally:
        services.stop()


@contextlib.contextmanager
def secured_postgres(root: Path, password: str) -> Iterator[Services]:
    """PostgreSQL that requires ``password`` of its user ``postgres``, with the databases ``mlflow`` (a
    tracking store) and ``optuna`` (a study's storage); stopped on the way out."""
    services = Services(root)
    try:
        services.start_postgres(("mlflow", "optuna"), password=password)
        yield services
    finally:
        services.stop()
