"""The executor's local pool when a worker process is killed from outside: real spawned processes, a real
SIGKILL. (Through Dask the same is tested in test_cluster.py.)"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from vaebench.executor.tasks import RETRIES, open_tasks, run_tasks


def die_once(marker: str, value: int) -> int:
    """Kills its own worker the first time it is given ``value`` 1 (the marker file remembers)."""
    if value == 1 and not Path(marker).exists():
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return value * 10


def always_die(value: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return value


def test_a_worker_killed_mid_task_is_replaced_and_every_task_ends(tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    told: list[str] = []
    outcomes = list(run_tasks(die_once, [(marker, v) for v in range(4)], jobs=2, on_retry=told.append))
    assert Path(marker).exists()  # a worker did die under a task
    assert sorted(o.value for o in outcomes) == [0, 10, 20, 30]
    assert all(o.ok for o in outcomes)
    assert len(told) == 1 and "running them again in new workers" in told[0]


def test_a_task_whose_workers_keep_dying_is_given_up_with_a_sentence(tmp_path: Path) -> None:
    told: list[str] = []
    (outcome,) = run_tasks(always_die, [(7,)], jobs=2, on_retry=told.append)
    assert not outcome.ok and outcome.error == f"its worker processes died {RETRIES + 1} times"
    assert len(told) == RETRIES + 1 and "giving them up" in told[-1]


def test_tasks_handed_one_at_a_time_keep_at_most_jobs_in_flight(tmp_path: Path) -> None:
    # What ask-and-tell needs: the next task is submitted only once one has ended.
    marker = str(tmp_path / "never")
    ended: list[int] = []
    with open_tasks(jobs=2) as tasks:
        for value in (1, 2):
            tasks.submit(value, die_once, marker + "-kept", value if value != 1 else 2)
        for value in (3, 4, 5):
            done = tasks.next_done()
            ended.append(done.value)
            assert len(tasks) == 1
            tasks.submit(value, die_once, marker, value)
        while len(tasks):
            ended.append(tasks.next_done().value)
    assert sorted(ended) == [20, 20, 30, 40, 50]


def test_in_process_tasks_run_here_and_a_raising_task_is_a_sentence() -> None:
    with open_tasks(jobs=1, in_process=True) as tasks:
        tasks.submit("a", int, "7")
        tasks.submit("b", int, "x")
        first, second = tasks.next_done(), tasks.next_done()
    assert (first.index, first.value) == ("a", 7)
    assert second.index == "b" and second.error is not None and second.error.startswith("ValueError")
