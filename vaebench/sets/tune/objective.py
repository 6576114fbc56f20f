"""One trial: a configuration trained as a nested MLflow run on the tuning labels, pruned when it lags.

:func:`intermediate_score` is the cheap stand-in for the objective that the pruner sees every few epochs;
:class:`EpochGuard` is the training loop's ``on_epoch`` hook that reports it, and that refuses a latent code
which diverged or collapsed; :func:`run_trial` runs one trial the parent asked (a :class:`TrialTask`, as a
task of the executor) and gives the trial's MLflow run its final status and ``trial_state`` tag whatever
happens, returning a :class:`TrialOutcome` for the parent to tell the study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.executor.ledger import StopRequested, process_owner
from vaebench.executor.runs import worker_dataset
from vaebench.sets.tune.settings import CPU_OBJECTIVE, DEFAULT_OBJECTIVE, TuneSettings, base_config
from vaebench.sets.tune.storage import _OWNER_ATTR, RUN_ID_ATTR, make_pruner, open_storage

if TYPE_CHECKING:
    from vaebench.data import Dataset
    from vaebench.runner import EpochHook, LatentProbe


def intermediate_score(
    latent: np.ndarray, labels: np.ndarray, objective: str, seed: int, n_init: int = 2
) -> float:
    """A cheap stand-in for ``objective`` while a trial trains, for the pruner.

    Partition scores (``*.nmi``, ``*.ari``, ...) come from k-means with ``n_init`` restarts directly on the
    latent code (no t-SNE), k = the number of classes, scored by the same metric function as the
    objective; embedding scores (``latent.silhouette``) are computed on at most 2000 cells.
    """
    from vaebench.evaluate import get_metric, kmeans_scores

    if not np.isfinite(latent).all():
        raise VaebenchError(
            "Training diverged: the latent code became NaN or infinite; try a smaller learning rate."
        )
    metric = get_metric(objective.rsplit(".", 1)[-1])
    if metric.kind == "embedding":
        rng = np.random.default_rng(seed)
        keep = rng.choice(len(labels), size=min(len(labels), 2000), replace=False)
        return float(metric.fn(latent[keep], np.asarray(labels)[keep]))
    scores, _ = kmeans_scores(latent, labels, n_init=n_init, seed=seed, metric_names=(metric.name,))
    return float(scores[metric.name])


def collapsed(latent: np.ndarray) -> bool:
    """Whether every cell has (nearly) the same latent code, which t-SNE cannot embed."""
    scale = max(1.0, float(np.abs(latent).max())) if latent.size else 1.0
    return latent.shape[0] < 2 or float(latent.std(axis=0).max()) <= 1e-6 * scale


class EpochGuard:
    """The ``on_epoch`` hook of a tuning run.

    Every ``interval`` epochs (when a ``trial`` is given) it scores the latent code with
    :func:`intermediate_score`, reports it and raises :class:`optuna.TrialPruned` when the pruner says so.
    After the last epoch it checks that the latent code is finite and has not collapsed to one point:
    tuning explores configurations extreme enough for that, and such a code is refused before the
    protocol's t-SNE sees it.
    """

    def __init__(
        self,
        epochs: int,
        dataset: Dataset,
        objective: str,
        seed: int,
        trial: optuna.Trial | None = None,
        interval: int = 0,
    ) -> None:
        self.epochs, self.dataset, self.objective, self.seed = epochs, dataset, objective, seed
        self.trial, self.interval = trial, interval
        self.values: dict[int, float] = {}
        self.pruned_at: int | None = None

    def __call__(self, epoch: int, loss: float, latent_probe: LatentProbe) -> None:
        if epoch >= self.epochs:
            latent = latent_probe()
            if not np.isfinite(latent).all() or collapsed(latent):
                raise VaebenchError(
                    f"The latent code collapsed to a single point (or became non-finite) after {epoch} "
                    "epochs; this configuration cannot be scored."
                )
            return
        if self.trial is None or self.interval <= 0 or epoch % self.interval:
            return
        score = intermediate_score(latent_probe(), self.dataset.labels, self.objective, self.seed)
        self.values[epoch] = score
        self.trial.report(score, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            raise optuna.TrialPruned(
                f"pruned at epoch {epoch} with intermediate {self.objective} {score:.4f}"
            )


@dataclass(frozen=True)
class TrialTask:
    """One trial as a task of the executor: the configuration the parent built from Optuna's suggestion,
    and what the worker needs to report to the trial in the shared storage."""

    settings: TuneSettings
    trial_id: int
    number: int
    config: RunConfig
    parent_run_id: str
    asked_by: str  # the owner of the process that asked the trial (and will tell its outcome)


@dataclass
class TrialOutcome:
    """What became of a trial, for the parent to tell the study: ``COMPLETE`` with its ``values``,
    ``PRUNED`` at epoch ``pruned_at``, ``FAIL`` with a sentence (it counts), or ``LOST`` (its worker died:
    it does not count)."""

    state: str
    values: tuple[float, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    pruned_at: int | None = None


def trial_base(settings: TuneSettings, threads: int | None) -> RunConfig:
    """The configuration every trial starts from: ``threads`` each, and no 3-d t-SNE (it enters no score,
    only a figure) unless ``--set tsne_3d=true``."""
    base = base_config(settings)
    tsne_3d = base.tsne_3d if "tsne_3d" in settings.fixed else False
    return base.with_settings(threads=base.threads or threads, tsne_3d=tsne_3d)


def run_trial_on_cluster(task: TrialTask) -> TrialOutcome:
    """:func:`run_trial` as a Dask task: its share of the machine's cores, and a trial whose client went
    away stops at its next epoch (its run ends KILLED)."""
    from vaebench.executor.cluster import StopIfCancelled, worker_threads

    if task.config.threads is None:
        task = replace(task, config=task.config.with_settings(threads=worker_threads()))
    try:
        return run_trial(task, StopIfCancelled)
    except StopRequested as stop:
        return TrialOutcome("LOST", reason=f"killed: {stop.reason}")


def run_trial(task: TrialTask, epoch_check: Callable[[EpochHook], EpochHook] | None = None) -> TrialOutcome:
    """One trial in a worker (or in the parent, with one job): the nested MLflow run of
    :func:`vaebench.runner.run_and_log` on the tuning labels, reporting to the trial in the storage so that
    the pruner can stop it. ``epoch_check`` wraps the epoch hook (on Dask: stop once the client is gone)."""
    settings = task.settings
    storage = open_storage(settings)
    try:
        study = optuna.Study(
            study_name=settings.study_name or "",
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),  # the parent samples; this study only reports
            pruner=make_pruner(settings),
        )
        trial = optuna.trial.Trial(study, task.trial_id)
        if trial.user_attrs.get(_OWNER_ATTR, task.asked_by) != task.asked_by:
            return _lost_attempt(trial)
        trial.set_user_attr(_OWNER_ATTR, process_owner())
        with get_heartbeat_thread(task.trial_id, storage):
            return _TrialRun(task, trial, epoch_check).run()
    finally:
        storage.engine.dispose()


def _lost_attempt(trial: optuna.Trial) -> TrialOutcome:
    """The trial was started by a worker that died (this task is the executor's retry): end that attempt's
    run KILLED and give the trial up; the parent asks another."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if run_id:
        tracking.close_run(
            run_id, tracking.KILLED, {"trial_state": "FAIL", "failure_reason": "its worker died"}
        )
    return TrialOutcome("LOST", reason="its worker died")


class _TrialRun:
    """The MLflow run of one trial, given its final status and ``trial_state`` tag whatever happens."""

    def __init__(
        self, task: TrialTask, trial: optuna.Trial, epoch_check: Callable[[EpochHook], EpochHook] | None
    ) -> None:
        self.task, self.trial, self.epoch_check = task, trial, epoch_check
        settings = task.settings
        pruning = settings.pruning
        self.hook = EpochGuard(
            task.config.epochs,
            worker_dataset(),
            settings.objective,
            task.config.seed,
            trial=trial if pruning else None,
            interval=(settings.pruning_interval or 1) if pruning else 0,
        )
        self.started: list[str] = []

    def record_run(self, run_id: str) -> None:
        # Named in the trial as soon as it exists: a running trial links to its run in the MLflow UI.
        self.started.append(run_id)
        self.trial.set_user_attr(RUN_ID_ATTR, run_id)

    def run(self) -> TrialOutcome:
        from vaebench.runner import run_and_log

        task = self.task
        tags = {
            "vaebench.role": "tune-trial",
            "study": task.settings.study_name,
            "tune_parent": task.parent_run_id,
            "tune_trial": f"{task.parent_run_id}:{task.number}",
            "trial_number": task.number,
            "trial_state": "RUNNING",
            "tune_owner": process_owner(),
        }
        hook = self.epoch_check(self.hook) if self.epoch_check is not None else self.hook
        try:
            outcome, _run_id = run_and_log(
                task.config,
                tags=tags,
                parent_run_id=task.parent_run_id,
                on_epoch=hook,
                dataset=self.hook.dataset,
                on_start=self.record_run,
            )
        except optuna.TrialPruned:
            self.close(tracking.KILLED, "PRUNED", pruned_at_epoch=self.hook.pruned_at or "")
            return TrialOutcome("PRUNED", pruned_at=self.hook.pruned_at)
        except KeyboardInterrupt:
            self.close(tracking.KILLED, "FAIL")
            raise
        except Exception as error:  # a bug in one trial must not stop the study; its run is FAILED
            self.close(tracking.FAILED, "FAIL")
            reason = str(error) if isinstance(error, VaebenchError) else f"{type(error).__name__}: {error}"
            return TrialOutcome("FAIL", reason=reason)
        return self.scored({k: float(v) for k, v in outcome.metrics.items()})

    def scored(self, metrics: dict[str, float]) -> TrialOutcome:
        settings = self.task.settings
        value = metrics[settings.objective]
        if not math.isfinite(value):
            self.close(tracking.FAILED, "FAIL")
            return TrialOutcome("FAIL", reason=f"{settings.objective} was {value}")
        self.close(None, "COMPLETE")
        values = (value, metrics[CPU_OBJECTIVE]) if settings.multi_objective else (value,)
        finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
        return TrialOutcome("COMPLETE", values=values, metrics=finite)

    def close(self, status: str | None, state: str, **tags: Any) -> None:
        """Give the trial's MLflow run (if it was opened) its final status (None: it has one) and
        ``trial_state`` tag, and the intermediate scores the pruner saw."""
        if not self.started:
            return
        run_id = self.started[0]
        if status is None:
            tracking.run_handle(run_id).set_tags({"trial_state": state})
        else:
            remove = ("failure_reason",) if state == "PRUNED" else ()
            tracking.close_run(run_id, status, {"trial_state": state, **tags}, remove_tags=remove)
        if self.hook.values:
            handle = tracking.run_handle(run_id)
            for epoch, score in self.hook.values.items():
                handle.log_metrics({"tune.intermediate": score}, step=epoch)


def divergence_guard(config: RunConfig, dataset: Dataset) -> EpochGuard:
    """Stops an evaluation run whose loss diverges (it ends FAILED with the epoch named)."""
    return EpochGuard(config.epochs, dataset, DEFAULT_OBJECTIVE, config.seed)
