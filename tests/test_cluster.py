"""Through the real parts: suites on a Dask scheduler with two workers, tracked on an MLflow server over
PostgreSQL (the session's ``cluster`` fixture); a worker killed mid-run; services that cannot be reached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import artifact_paths, experiment_runs, run_cli
from tests.services import Services, free_port
from tests.test_suite import children, parents, suite_file


def cluster_args(cluster: Services, experiment: str) -> list[str]:
    return ["--cluster", cluster.scheduler, "--tracking-uri", cluster.mlflow_uri, "--experiment", experiment]


def test_a_suite_runs_on_the_cluster_and_its_artifacts_are_on_the_server(
    cluster: Services, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae", "pca"), seeds=(0, 1), epochs=2)
    result = run_cli("run", "--suite", str(path), *cluster_args(cluster, "cluster-suite"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[4/4]" in result.stderr  # plain progress lines where stderr is not a terminal
    runs = experiment_runs(cluster.mlflow_uri, "cluster-suite")
    (parent,) = parents(runs)
    kids = children(runs)
    assert sorted((k.data.tags["model"], k.data.tags["seed"], k.info.status) for k in kids) == [
        ("ae", "0", "FINISHED"),
        ("ae", "1", "FINISHED"),
        ("pca", "0", "FINISHED"),
        ("pca", "1", "FINISHED"),
    ]
    assert parent.data.tags["cluster"] == cluster.scheduler
    # The workers ran in their own processes and sent the artifacts to the server, not to a shared folder.
    assert {k.data.tags["run_owner"].split(":")[1] for k in kids}.isdisjoint({str(os.getpid())})
    assert {"figures/tsne2d.png", "latent/latent_codes.csv"} <= artifact_paths(
        cluster.mlflow_uri, kids[0].info.run_id
    )
    assert kids[0].info.artifact_uri.startswith("mlflow-artifacts:")


def test_a_worker_killed_mid_run_has_its_point_run_again_and_its_run_killed(
    cluster: Services, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae",), seeds=(0, 1), epochs=300)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vaebench",
            "run",
            "--suite",
            str(path),
            *cluster_args(cluster, "worker-killed"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline:
            running = [
                k
                for k in children(experiment_runs(cluster.mlflow_uri, "worker-killed"))
                if k.info.status == "RUNNING" and k.data.params
            ]
            victim = running[0] if running else None
            time.sleep(0.3)
        assert victim is not None, "no run started on the cluster in time"
        os.kill(int(victim.data.tags["run_owner"].split(":")[1]), signal.SIGKILL)
        _stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    kids = children(experiment_runs(cluster.mlflow_uri, "worker-killed"))
    assert sorted(k.data.tags["seed"] for k in kids if k.info.status == "FINISHED") == ["0", "1"]
    killed = next(k for k in kids if k.info.run_id == victim.info.run_id)
    assert killed.info.status == "KILLED"
    assert killed.data.tags["failure_reason"] == "its worker died"
    assert all(k.info.status in ("FINISHED", "KILLED") for k in kids)


def test_a_tracking_server_or_scheduler_that_cannot_be_reached_is_one_sentence_and_exit_2(
    tmp_path: Path,
) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    server = run_cli("run", "--all", "--tracking-uri", f"http://{nobody}", cwd=tmp_path, timeout=60)
    assert server.returncode == 2
    assert "tracking server at http://" in server.stderr and "Traceback" not in server.stderr
    scheduler = run_cli(
        "run",
        "--all",
        "--cluster",
        f"tcp://{nobody}",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
        cwd=tmp_path,
        timeout=60,
    )
    assert scheduler.returncode == 2, scheduler.stderr
    assert "Dask scheduler at tcp://" in scheduler.stderr and "Traceback" not in scheduler.stderr


def test_two_invocations_at_once_run_each_point_once_and_neither_fails(
    cluster: Services, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae", "pca"), seeds=(0, 1), epochs=2)
    command = [
        sys.executable,
        "-m",
        "vaebench",
        "run",
        "--suite",
        str(path),
        *cluster_args(cluster, "twice"),
        "--claims-db",
        cluster.database_url("claims"),
    ]
    both = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in both]
    assert [p.returncode for p in both] == [0, 0], [err[-1500:] for _, err in outputs]
    kids = children(experiment_runs(cluster.mlflow_uri, "twice"))
    points = sorted((k.data.tags["model"], k.data.tags["seed"]) for k in kids if k.info.status == "FINISHED")
    assert points == [("ae", "0"), ("ae", "1"), ("pca", "0"), ("pca", "1")]
    # Each point was trained by one of the two; the other left it (held) or found it finished.
    trained = sum(int(out.split(" trained")[0].rsplit(" ", 1)[-1]) for out, _ in outputs)
    assert trained == 4
