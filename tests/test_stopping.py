"""Stopping a suite with --jobs 2: SIGTERM ends every run KILLED and exits 143; after SIGKILL no worker is
left and the rerun finishes every point once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import experiment_runs, invoke
from tests.test_suite import children, parents, suite_file

# A run of 400 epochs on the synthetic data takes about 6 s alone, 1.1 s of it training (AMD EPYC,
# 2026-12-03): both runs are in flight when the signal comes unless one worker started seconds before the
# other, which the tests allow for. The SIGKILL test trains the points to the end on the rerun, so longer
# runs cost twice.
EPOCHS = 400


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parent_of.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def start_suite(path: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vaebench", "run", "--suite", str(path), "--jobs", "2"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until_both_train(process: subprocess.Popen, tracking_uri: str) -> set[int]:
    """Wait until two children are RUNNING and have logged their parameters; the suite's processes then."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        running = [k for k in children(experiment_runs(tracking_uri)) if k.info.status == "RUNNING"]
        if len(running) == 2 and all(k.data.params for k in running):
            time.sleep(1.0)  # into training
            return descendants(process.pid)
        time.sleep(0.3)
    raise AssertionError("the two workers did not start their runs in time")


def wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if alive(p)}


def test_sigterm_ends_every_run_killed_leaves_no_process_and_exits_143(
    tracking_uri: str, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae",), seeds=(0, 1, 2), epochs=EPOCHS)
    process = start_suite(path, tmp_path)
    try:
        workers = wait_until_both_train(process, tracking_uri)
        assert len(workers) >= 2
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)  # to the main process only, as `timeout` or SLURM send it
        code = process.wait(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert code == 128 + signal.SIGTERM, process.stderr.read()
    assert took < 20, f"stopping took {took:.1f} s"
    assert wait_gone(workers, 5) == set(), "a worker outlived the suite"
    runs = experiment_runs(tracking_uri)
    (parent,) = parents(runs)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["failure_reason"] == "stopped by SIGTERM"
    # The two runs in flight end KILLED; one may have finished just before the signal (a short run on a
    # fast machine), and then the point that took its place, if it had started, is the one killed.
    killed = [k for k in children(runs) if k.info.status == "KILLED"]
    assert 1 <= len(killed) <= 2
    assert {k.info.status for k in children(runs)} <= {"KILLED", "FINISHED"}
    assert {k.data.tags["failure_reason"] for k in killed} == {"stopped by SIGTERM"}
    assert all(r.info.status != "RUNNING" for r in runs)


def test_after_sigkill_no_worker_is_left_and_the_rerun_finishes_each_point_once(
    tracking_uri: str, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae",), seeds=(0, 1), epochs=EPOCHS)
    process = start_suite(path, tmp_path)
    try:
        workers = wait_until_both_train(process, tracking_uri)
        killed_at_ms = time.time() * 1000
        process.kill()  # the main process only: its workers must notice on their own
        process.wait(timeout=30)
        left = wait_gone(workers, 20)
    finally:
        for pid in descendants(process.pid) | workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert left == set(), "a worker outlived its killed parent"
    kids = children(experiment_runs(tracking_uri))
    # The workers saw their parent die and ended their runs in flight KILLED before they left. A worker
    # that started well before the other (its process imported faster) may have finished its run in the
    # second before the kill: that run ended before it, FINISHED; the other was in flight.
    in_flight = [k for k in kids if k.info.end_time is None or k.info.end_time >= killed_at_ms]
    assert len(kids) == 2 and 1 <= len(in_flight) <= 2
    assert {k.info.status for k in in_flight} == {"KILLED"}
    assert {k.data.tags["failure_reason"] for k in in_flight} == {"its parent process died"}
    assert {k.info.status for k in kids if k not in in_flight} <= {"FINISHED"}

    # The rerun is not the subject: in this process, one point after the other (no worker processes).
    resumed = invoke("run", "--suite", str(path), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    kids = children(experiment_runs(tracking_uri))
    finished = sorted(k.data.tags["seed"] for k in kids if k.info.status == "FINISHED")
    assert finished == ["0", "1"]
    assert all(r.info.status != "RUNNING" for r in experiment_runs(tracking_uri))
