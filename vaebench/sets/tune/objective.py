"""One trial: a configuration trained as a nested MLflow run on the tuning labels, pruned when it lags.

:func:`intermediate_score` is the cheap stand-in for the objective that the pruner sees every few epochs;
:class:`EpochGuard` is the training loop's ``on_epoch`` hook that reports it, and that refuses a latent code
which diverged or collapsed; :class:`TrialObjective` is what ``study.optimize`` calls, and gives the trial's
MLflow run its final status and ``trial_state`` tag whatever happens.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from vaebench import tracking
from vaebench.errors import VaebenchError
from vaebench.executor.owners import process_owner
from vaebench.sets.tune.settings import CPU_OBJECTIVE, TuneSettings, base_config, search_space
from vaebench.sets.tune.space import config_for, suggest
from vaebench.sets.tune.storage import _FAILURE_ATTR, _OWNER_ATTR, _PARENT_ATTR, RUN_ID_ATTR

if TYPE_CHECKING:
    from collections.abc import Callable

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


class TrialObjective:
    """One Optuna trial = one nested MLflow run of :func:`vaebench.runner.run_and_log` on the tuning labels."""

    def __init__(
        self,
        settings: TuneSettings,
        dataset: Dataset,
        parent_run_id: str,
        experiment: str,
        threads: int,
        epoch_check: Callable[[EpochHook], EpochHook] | None = None,
    ) -> None:
        """``epoch_check`` wraps the trial's epoch hook (on a Dask worker: stop once the client is gone)."""
        self.settings = settings
        self.epoch_check = epoch_check
        self.dataset = dataset.with_label_key(settings.tune_label_key or "")
        self.parent_run_id = parent_run_id
        self.experiment = experiment
        self.space = search_space(settings)
        base = base_config(settings)
        # The 3-d t-SNE enters no score, only a figure: trials skip it unless --set tsne_3d=true.
        tsne_3d = base.tsne_3d if "tsne_3d" in settings.fixed else False
        self.base = base.with_settings(threads=base.threads or threads, tsne_3d=tsne_3d)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        from vaebench.runner import run_and_log

        owner = process_owner()
        trial.set_user_attr(_OWNER_ATTR, owner)
        trial.set_user_attr(_PARENT_ATTR, self.parent_run_id)
        params = suggest(trial, self.space)
        key = f"{self.parent_run_id}:{trial.number}"
        tags = {
            "vaebench.role": "tune-trial",
            "study": self.settings.study_name,
            "tune_parent": self.parent_run_id,
            "tune_trial": key,
            "trial_number": trial.number,
            "trial_state": "RUNNING",
            "tune_owner": owner,
        }
        hook = None
        started: list[str] = []

        def record_run(run_id: str) -> None:
            # Named in the trial as soon as it exists: a running trial links to its run in the MLflow UI.
            started.append(run_id)
            trial.set_user_attr(RUN_ID_ATTR, run_id)

        try:
            config = config_for(self.base, params)
            pruning = self.settings.pruning
            hook = EpochGuard(
                config.epochs,
                self.dataset,
                self.settings.objective,
                config.seed,
                trial=trial if pruning else None,
                interval=(self.settings.pruning_interval or 1) if pruning else 0,
            )
            outcome, run_id = run_and_log(
                config,
                tags=tags,
                parent_run_id=self.parent_run_id,
                on_epoch=self.epoch_check(hook) if self.epoch_check is not None else hook,
                dataset=self.dataset,
                on_start=record_run,
            )
        except optuna.TrialPruned:
            self._close(
                started,
                tracking.KILLED,
                "PRUNED",
                hook,
                trial,
                pruned_at_epoch=hook.pruned_at if hook else "",
            )
            raise
        except VaebenchError as error:
            trial.set_user_attr(_FAILURE_ATTR, str(error))
            self._close(started, tracking.FAILED, "FAIL", hook, trial)
            raise
        except KeyboardInterrupt:
            self._close(started, tracking.KILLED, "FAIL", hook, trial)
            raise
        except BaseException:
            self._close(started, tracking.FAILED, "FAIL", hook, trial)
            raise
        metrics = outcome.metrics
        value = float(metrics[self.settings.objective])
        if not math.isfinite(value):
            trial.set_user_attr(_FAILURE_ATTR, f"{self.settings.objective} was {value}")
            self._close(started, tracking.FAILED, "FAIL", hook, trial)
            raise VaebenchError(f"Trial {trial.number} scored {self.settings.objective} = {value}.")
        trial.set_user_attr("metrics", {k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        handle = tracking.run_handle(run_id)
        handle.set_tags({"trial_state": "COMPLETE"})
        if hook is not None and hook.values:
            for epoch, score in hook.values.items():
                handle.log_metrics({"tune.intermediate": score}, step=epoch)
        if self.settings.multi_objective:
            return value, float(metrics[CPU_OBJECTIVE])
        return value

    def _close(
        self,
        started: list[str],
        status: str,
        state: str,
        hook: EpochGuard | None,
        trial: optuna.Trial,
        **tags: Any,
    ) -> None:
        """Give the trial's MLflow run (if it was opened) its final status and ``trial_state`` tag."""
        if not started:
            return
        run_id = started[0]
        remove = ("failure_reason",) if state == "PRUNED" else ()
        tracking.close_run(run_id, status, {"trial_state": state, **tags}, remove_tags=remove)
        if hook is not None and hook.values:
            handle = tracking.run_handle(run_id)
            for epoch, score in hook.values.items():
                handle.log_metrics({"tune.intermediate": score}, step=epoch)
