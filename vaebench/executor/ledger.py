"""The run ledger: which process runs what, and what a process that died left behind.

Everything a set of runs (a suite, a study) needs to know about who runs what goes through this module:

- **ownership**: every run, trial and claim names its process as ``host:pid:start``
  (:func:`process_owner`); :func:`is_dead` says whether that process is known to be gone (on this machine,
  from /proc; a process elsewhere is not known dead, and what it held waits for a lease or a heartbeat);
- **claims**: which invocation runs a suite's point (:meth:`Ledger.claims`, over
  :mod:`vaebench.executor.claims`);
- **recovery**: MLflow runs left RUNNING by a dead process ended KILLED with the reason
  (:meth:`Ledger.close_dead_runs`, :meth:`Ledger.close_stale_suite_runs`, :meth:`Ledger.close_lost_attempts`);
  an Optuna study fails and retries its dead trials with :func:`is_dead` (vaebench.sets.tune.storage);
- **stopping**: SIGTERM and SIGHUP as Ctrl-C (:func:`stop_on_signals`, :class:`StopRequested`), runs ended
  KILLED on the way out, worker processes bound to their parent (:mod:`vaebench.executor.stopping`).

The ledger sits above :mod:`vaebench.tracking` (it reads and closes runs through it); tracking imports
nothing from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vaebench import tracking
from vaebench.executor.claims import Claims, claim_points, claims_url
from vaebench.executor.owners import owner_alive, process_owner
from vaebench.executor.stopping import StopRequested, stop_on_signals

__all__ = [
    "Claims",
    "Ledger",
    "StopRequested",
    "claim_points",
    "is_dead",
    "owner_alive",
    "process_owner",
    "stop_on_signals",
]


def is_dead(owner: str | None) -> bool:
    """Whether the process ``owner`` names is known to be gone (never for one on another machine). A run or
    trial that names no owner at all is a dead process's too (it never got as far as naming one)."""
    return owner is None or owner_alive(owner) is False


class Ledger:
    """The ledger of one invocation (this process) in ``experiment``."""

    def __init__(self, experiment: str, owner: str | None = None) -> None:
        self.experiment = experiment
        self.owner = owner or process_owner()

    def claims(self, claims_db: str | None, tracking_uri: str) -> Claims:
        """The claims table (``--claims-db``, else the default beside the tracking store), held by this
        invocation; enter :meth:`Claims.renewing` while its points run."""
        return Claims(claims_url(claims_db, tracking_uri), self.owner)

    def close_dead_runs(
        self,
        filter_string: str,
        owner_tag: str,
        reason: str = "its process was killed",
        extra_tags: Callable[[dict[str, str]], dict[str, str]] = lambda tags: {},
    ) -> list[str]:
        """End KILLED, with ``reason``, the RUNNING runs matching ``filter_string`` whose ``owner_tag``
        names a process that is gone; ``extra_tags`` (given a run's tags) adds tags of the caller's own."""
        closed = []
        for run_id, tags in tracking.running_runs(self.experiment, filter_string):
            owner = tags.get(owner_tag)
            if owner is None or not is_dead(owner):
                continue
            tracking.close_run(run_id, tracking.KILLED, {**extra_tags(tags), "failure_reason": reason})
            closed.append(run_id)
        return closed

    def close_stale_suite_runs(self, suite: str, config_hashes: Sequence[str]) -> list[str]:
        """End KILLED what a killed earlier invocation of ``suite`` left RUNNING: its runs of
        ``config_hashes`` (the points this invocation now holds the claims of, so no live invocation runs
        them) and the suite's parent runs whose ``run_owner`` is gone."""
        wanted = set(config_hashes)
        closed = []
        for run_id, tags in tracking.running_runs(self.experiment, f"tags.suite = '{suite}'"):
            if tags.get("vaebench.role") == "suite":
                if not is_dead(tags.get("run_owner")):
                    continue
            elif tags.get("config_hash") not in wanted:
                continue
            tracking.close_run(run_id, tracking.KILLED, {"failure_reason": "its invocation was killed"})
            closed.append(run_id)
        return closed

    @staticmethod
    def close_lost_attempts(
        parent_run_id: str, reason: str = "its worker died", config_hash: str | None = None
    ) -> list[str]:
        """End KILLED the runs under ``parent_run_id`` (of ``config_hash`` only, if given) still RUNNING
        when no worker runs them any more: a lost attempt's, before it is run again."""
        return tracking.kill_running_children(parent_run_id, reason, config_hash=config_hash)
