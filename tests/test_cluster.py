"""Through the real parts: suites on a Dask scheduler with two workers, tracked on an MLflow server over
PostgreSQL (the session's ``cluster`` fixture); a worker killed mid-run; services that cannot be reached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import artifact_paths, experiment_runs, invoke
from tests.services import Services, free_port
from tests.test_suite import children, parents, suite_file


def cluster_args(cluster: Services, experiment: str) -> list[str]:
    return ["--cluster", cluster.scheduler, "--tracking-uri", cluster.mlflow_uri, "--experiment", experiment]


def test_a_suite_runs_on_the_cluster_and_its_artifacts_are_on_the_server(
    cluster: Services, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae", "pca"), seeds=(0, 1), epochs=2)
    result = invoke("run", "--suite", str(path), *cluster_args(cluster, "cluster-suite"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[4/4]" in result.stdout  # plain progress lines where stdout is not a terminal (a log file)
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
    server = invoke("run", "--all", "--tracking-uri", f"http://{nobody}", cwd=tmp_path)
    assert server.returncode == 2
    assert "tracking server at http://" in server.stderr and "Traceback" not in server.stderr
    scheduler = invoke(
        "run",
        "--all",
        "--cluster",
        f"tcp://{nobody}",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
        cwd=tmp_path,
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


def wait_for_running_children(cluster: Services, experiment: str, count: int) -> list:
    """The RUNNING child runs once ``count`` of them have logged their parameters (they are training)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        running = [
            k
            for k in children(experiment_runs(cluster.mlflow_uri, experiment))
            if k.info.status == "RUNNING" and k.data.params
        ]
        if len(running) >= count:
            return running
        time.sleep(0.3)
    raise AssertionError(f"{count} run(s) did not start on the cluster in time")


def start(command: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_to_the_client_ends_its_runs_on_the_workers_killed(cluster: Services, tmp_path: Path) -> None:
    path = suite_file(tmp_path, models=("ae",), seeds=(0, 1), epochs=20_000)
    command = [sys.executable, "-m", "vaebench", "run", "--suite", str(path)]
    process = start([*command, *cluster_args(cluster, "client-stopped")], tmp_path)
    try:
        wait_for_running_children(cluster, "client-stopped", 2)
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    # The client ends its parent and the runs in flight KILLED on its way out ("stopped by SIGTERM"); the
    # workers hear that their tasks were released and stop training at the next epoch, long before the
    # 20,000 epochs would end, and end the runs KILLED too with their own reason (whichever of the two
    # writes last leaves its reason).
    wait_until_no_task_executes(cluster, 60)
    runs = experiment_runs(cluster.mlflow_uri, "client-stopped")
    (parent,) = parents(runs)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["failure_reason"] == "stopped by SIGTERM"
    kids = children(runs)
    assert [k.info.status for k in kids] == ["KILLED", "KILLED"]
    reasons = {"stopped by SIGTERM", "its client went away (the task was cancelled)"}
    assert {k.data.tags["failure_reason"] for k in kids} <= reasons


def wait_until_no_task_executes(cluster: Services, seconds: float) -> None:
    from distributed import Client

    with Client(cluster.scheduler, timeout=10) as client:
        deadline = time.monotonic() + seconds
        # A lambda is sent by value (the workers cannot import this test module); it counts the tasks a
        # worker still runs, those whose client released them included.
        while sum(counts := client.run(lambda dask_worker: len(dask_worker.state.executing)).values()) > 0:
            assert time.monotonic() < deadline, f"the workers still run tasks: {counts}"
            time.sleep(0.5)


def test_a_tracking_server_restarted_mid_suite_loses_nothing_and_a_rerun_completes(
    cluster: Services, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae", "pca"), seeds=(0, 1), epochs=600)
    command = [sys.executable, "-m", "vaebench", "run", "--suite", str(path)]
    command += cluster_args(cluster, "server-restart")
    process = start(command, tmp_path)
    try:
        wait_for_running_children(cluster, "server-restart", 1)
        cluster.restart_mlflow()
        _stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # MLflow's client retries with back-off across the restart; a point whose requests still failed is
    # recorded failed with its reason (exit 1), never a traceback.
    assert process.returncode in (0, 1), stderr
    assert "Traceback" not in stderr
    before = {
        k.info.run_id: k.data.tags["config_hash"]
        for k in children(experiment_runs(cluster.mlflow_uri, "server-restart"))
        if k.info.status == "FINISHED"
    }
    rerun = invoke(*command[3:], cwd=tmp_path)  # the same command, in this process
    assert rerun.returncode == 0, rerun.stderr
    kids = children(experiment_runs(cluster.mlflow_uri, "server-restart"))
    finished = {k.info.run_id: k.data.tags["config_hash"] for k in kids if k.info.status == "FINISHED"}
    assert len(finished) == len(set(finished.values())) == 4  # one FINISHED run per point
    assert before.items() <= finished.items()  # nothing finished before was lost or run again
    assert all(k.info.status != "RUNNING" for k in kids)


def test_a_study_on_the_cluster_continues_after_a_worker_is_killed_mid_trial(
    cluster: Services, tmp_path: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    from tests.test_tune import FAST, write_h5ad

    data = tmp_path / "toy.h5ad"
    write_h5ad(data)
    storage = cluster.database_url("optuna")
    sets = [arg for k, v in {**FAST, "epochs": "300"}.items() for arg in ("--set", f"{k}={v}")]
    command = [
        sys.executable, "-m", "vaebench", "tune", "--model", "ae", "--trials", "3", "--data", str(data),
        "--tune-label-key", "cluster", "--eval-label-key", "celltype", "--storage", storage,
        "--study-name", "worker-killed", "--evaluate-seeds", "1", "--baseline", "none",
        "--pruning-interval", "0", "--sampler-seed", "0", *sets, *cluster_args(cluster, "tune-cluster"),
    ]  # fmt: skip
    # One storage (one connection pool) for the polling below: a storage per look would open connections
    # faster than they are collected and run PostgreSQL out of them.
    polling = optuna.storages.RDBStorage(storage)
    process = start(command, tmp_path)
    try:
        deadline = time.monotonic() + 240
        victim = None
        while victim is None and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            try:
                trials = optuna.load_study(study_name="worker-killed", storage=polling).trials
            except KeyError:  # the study does not exist yet
                trials = []
            # A trial whose MLflow run has started: killed earlier, it would have no run to mark KILLED.
            running = [
                t
                for t in trials
                if t.state == TrialState.RUNNING and {"vaebench.owner", "mlflow_run_id"} <= set(t.user_attrs)
            ]
            victim = running[0] if running else None
            time.sleep(0.2)
        assert victim is not None, "no trial started on the cluster in time"
        os.kill(int(victim.user_attrs["vaebench.owner"].split(":")[1]), signal.SIGKILL)
        _stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    trials = optuna.load_study(study_name="worker-killed", storage=polling).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 3, stderr  # the asked number, the killed one not counted
    assert trials[victim.number].state == TrialState.FAIL
    assert TrialState.RUNNING not in states
    runs = experiment_runs(cluster.mlflow_uri, "tune-cluster")
    assert all(r.info.status != "RUNNING" for r in runs)
    trial_runs = [r for r in runs if r.data.tags.get("vaebench.role") == "tune-trial"]
    killed = next(r for r in trial_runs if r.data.tags["trial_number"] == str(victim.number))
    assert killed.info.status == "KILLED" and killed.data.tags["trial_state"] == "FAIL"
    assert killed.data.tags["failure_reason"] == "its worker died"
    # Trials and the fresh-seed evaluation ran in the workers, not in the client.
    (evaluation,) = [r for r in runs if r.data.tags.get("vaebench.role") == "tune-eval"]
    assert evaluation.info.status == "FINISHED"
    owners = [r.data.tags["tune_owner"] for r in trial_runs] + [evaluation.data.tags["run_owner"]]
    assert str(process.pid) not in {owner.split(":")[1] for owner in owners}
