"""The study itself: :func:`tune`, and what it logs beside the trials.

:func:`tune` checks the settings, opens (or continues) the Optuna study on the data it started on, fails
and retries what a killed process left running, runs the missing trials under one MLflow parent run (in
this process, or in spawned workers on the same storage), reports each finished trial, logs the best
configuration(s) and the study's figures, and hands the best to the fresh-seed evaluation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.executor.ledger import process_owner
from vaebench.executor.runs import threads_per_job
from vaebench.sets.tune.evaluation import evaluate
from vaebench.sets.tune.results import TrialSummary, TuneResult, best_trials
from vaebench.sets.tune.settings import EventHook, TuneSettings, base_config, search_space
from vaebench.sets.tune.space import config_for
from vaebench.sets.tune.storage import (
    _DATA_HASH_ATTR,
    RUN_ID_ATTR,
    close_dead_runs,
    counted_trials,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    recover_dead_trials,
    refuse_mlflow_database,
    shown,
)
from vaebench.sets.tune.trials import run_trials

if TYPE_CHECKING:
    from vaebench.data import Dataset


def tune(
    settings: TuneSettings,
    *,
    experiment: str,
    tracking_uri: str | None = None,
    dataset: Dataset | None = None,
    on_event: EventHook | None = None,
) -> TuneResult:
    """Run (or continue) the Optuna study ``settings`` describes under one MLflow parent run, then
    re-train its best configuration(s) on fresh seeds and score them on the evaluation labels.

    ``dataset`` replaces loading the dataset the settings name (it must hold both label columns).
    Progress lines go to ``on_event``.
    """
    emit = on_event or (lambda message: None)
    settings = settings.resolved(registered_dataset=dataset is None)
    data = dataset if dataset is not None else _load(settings)
    with contextlib.ExitStack() as stack:
        client = None
        if settings.cluster is not None:
            from vaebench.executor.cluster import connect

            client = stack.enter_context(connect(settings.cluster))
        return _tune(settings, data, experiment, tracking_uri, emit, client)


@dataclass
class _Study:
    """One invocation's study: its settings, the data, where it logs, and its Dask client (if any)."""

    settings: TuneSettings
    data: Dataset
    experiment: str
    uri: str
    emit: EventHook
    client: Any

    @property
    def tune_data(self) -> Dataset:
        return self.data.with_label_key(self.settings.tune_label_key or "")


def _tune(
    settings: TuneSettings,
    data: Dataset,
    experiment: str,
    tracking_uri: str | None,
    emit: EventHook,
    client: Any,
) -> TuneResult:
    base = base_config(settings)
    base.check_against(data.n_cells, data.n_genes)
    refuse_mlflow_database(settings.storage, tracking.resolve_uri(tracking_uri))
    storage = open_storage(settings)
    study = open_study(settings, storage)
    uri = tracking.configure(tracking_uri, experiment)
    run = _Study(settings, data, experiment, uri, emit, client)
    _check_data(study, run.tune_data)
    _recover(run, study)
    counted = counted_trials(study)
    missing = max(0, settings.trials - counted)
    emit(
        f"Study {settings.study_name!r}: {counted} trial(s) already counted of {settings.trials}; running "
        f"{missing}"
        + (f" in {settings.jobs} processes" if settings.jobs > 1 and missing > 1 and client is None else "")
        + (f" on the Dask cluster {settings.cluster}" if client is not None else "")
        + "."
    )
    threads = threads_per_job(min(settings.jobs, max(missing, 1)))
    with tracking.start_run(run_name=f"tune {settings.study_name}", tags=_parent_tags(run)) as parent:
        _log_definition(parent, run, counted, threads)
        if missing:
            # A seeded sampler continues its stream: a continued study does not replay its first points.
            already = len(study.get_trials(deepcopy=False))
            if settings.sampler_seed is not None and already:
                study.sampler = make_sampler(replace(settings, sampler_seed=settings.sampler_seed + already))
            run_trials(
                settings, study, run.tune_data, parent.run_id, experiment, uri, missing, threads, emit, client
            )
        return _conclude(parent, run, open_study(settings, storage), base, counted)


def _recover(run: _Study, study: optuna.Study) -> None:
    """Fail and retry the trials a killed process left RUNNING, and end its MLflow runs KILLED."""
    recovered = recover_dead_trials(study, run.settings)
    if recovered:
        run.emit(
            f"Trial(s) {', '.join(map(str, recovered))} were left running by a killed process; they will be "
            "retried."
        )
    closed = close_dead_runs(run.experiment, run.settings.study_name or "")
    if closed:
        run.emit(f"Marked {len(closed)} MLflow run(s) of a killed process as KILLED.")


def _parent_tags(run: _Study) -> dict[str, Any]:
    settings = run.settings
    return {
        "vaebench.role": "tune",
        "study": settings.study_name,
        "model": settings.model,
        "dataset": settings.dataset_name,
        "objective": "+".join(settings.objectives),
        "tune_label_key": settings.tune_label_key,
        "eval_label_key": settings.eval_label_key,
        "optuna_storage": shown(settings.storage),
        "tune_owner": process_owner(),
        **({"cluster": settings.cluster} if run.client is not None else {}),
    }


def _log_definition(parent: tracking.RunHandle, run: _Study, counted: int, threads: int) -> None:
    settings, tune_data = run.settings, run.tune_data
    parent.log_params(
        {
            "study": settings.study_name,
            "model": settings.model,
            "dataset.name": tune_data.name,
            "dataset.hash": tune_data.content_hash(),
            "objective": settings.objective,
            "multi_objective": settings.multi_objective,
            "tune_label_key": settings.tune_label_key,
            "eval_label_key": settings.eval_label_key,
            "tuning_seed": settings.tuning_seed,
            "eval_seeds": ",".join(map(str, settings.eval_seeds)),
            "trials_total": settings.trials,
            "trials_before": counted,
            "jobs": settings.jobs,
            "threads_per_job": threads,
            "pruning_interval": settings.pruning_interval if settings.pruning else 0,
            "pruner": type(make_pruner(settings)).__name__,
            "sampler": "TPESampler",
            "sampler_seed": settings.sampler_seed,
            **{f"fixed.{k}": v for k, v in settings.fixed.items()},
        }
    )
    parent.log_dict(
        {
            **settings.definition(),
            "search_space": {k: list(v) for k, v in search_space(settings).items()},
        },
        "tune/definition.json",
    )


def _conclude(
    parent: tracking.RunHandle, run: _Study, study: optuna.Study, base: RunConfig, counted: int
) -> TuneResult:
    """Log what the study found, and evaluate its best configuration(s) on fresh seeds."""
    settings = run.settings
    states = _state_counts(study)
    parent.log_metrics({f"tune.trials.{k.lower()}": v for k, v in states.items()})
    parent.log_metrics({"tune.trials.counted": counted_trials(study)})
    best = best_trials(study, settings.multi_objective)
    result = TuneResult(
        study_name=settings.study_name or "",
        storage=shown(settings.storage),
        parent_run_id=parent.run_id,
        tracking_uri=tracking.redact(run.uri),
        experiment=run.experiment,
        objectives=settings.objectives,
        trials_total=settings.trials,
        trials_run=counted_trials(study) - counted,
        states=states,
        best=[TrialSummary.of(t) for t in best],
    )
    _log_best(parent, settings, base, best, result)
    _log_figures(parent, study, settings, result, run.emit)
    if best and settings.evaluate_seeds:
        eval_data = run.data.with_label_key(settings.eval_label_key or "")
        evaluate(
            parent, settings, base, best, eval_data, run.experiment, run.uri, result, run.emit, run.client
        )
    elif not best:
        result.notes.append("No trial completed, so there is no best configuration to evaluate.")
    elif not settings.evaluate_seeds:
        result.notes.append(
            f"Not evaluated on fresh seeds: the best {settings.objective} is the tuning score on "
            f"{settings.tune_label_key!r}, optimistic by construction."
        )
    from vaebench.sets.report import report_study  # the study on one page: report/report.html

    report_study(parent, result)  # after the evaluation, so that its comparison and figure are in
    parent.log_dict(_result_record(result), "tune/result.json")
    return result


def _check_data(study: optuna.Study, dataset: Dataset) -> None:
    """A study continues only on the data it started on (same matrix, cells, genes and tuning labels)."""
    stored = study.user_attrs.get(_DATA_HASH_ATTR)
    if stored is None:
        study.set_user_attr(_DATA_HASH_ATTR, dataset.content_hash())
    elif stored != dataset.content_hash():
        raise VaebenchError(
            f"Study {study.study_name!r} was started on other data (content hash {stored}, now "
            f"{dataset.content_hash()}); give a new --study-name to tune on these data."
        )


def _load(settings: TuneSettings) -> Dataset:
    """The tuning data, read and prepared by the same rule as a run's (``--set preprocess=...`` included)."""
    from vaebench.sets.tune.settings import base_config

    return base_config(settings).data.load()


def _state_counts(study: optuna.Study) -> dict[str, int]:
    counts = {
        state.name: 0
        for state in (
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.FAIL,
            TrialState.RUNNING,
            TrialState.WAITING,
        )
    }
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def _log_best(
    parent: tracking.RunHandle,
    settings: TuneSettings,
    base: RunConfig,
    best: list[FrozenTrial],
    result: TuneResult,
) -> None:
    if not best:
        return
    records = []
    for trial in best:
        config = config_for(base, trial.params)
        records.append(
            {
                "trial": trial.number,
                "values": dict(zip(settings.objectives, trial.values, strict=True)),
                "params": trial.params,
                "config": config.params(),
                "mlflow_run_id": trial.user_attrs.get(RUN_ID_ATTR),
            }
        )
    parent.log_dict({"objectives": list(settings.objectives), "best": records}, "best/params.json")
    if settings.multi_objective:
        parent.log_metrics({"tune.pareto_size": len(best)})
        parent.log_params({"best.trials": ",".join(str(t.number) for t in best)})
        return
    trial = best[0]
    parent.log_params({**{f"best.{k}": v for k, v in trial.params.items()}, "best.trial": trial.number})
    parent.log_metrics({f"best.{settings.objective}": trial.values[0]})
    parent.set_tags({"best_trial": trial.number, "best_run_id": trial.user_attrs.get(RUN_ID_ATTR, "")})


def _log_figures(
    parent: tracking.RunHandle,
    study: optuna.Study,
    settings: TuneSettings,
    result: TuneResult,
    emit: EventHook,
) -> None:
    import matplotlib.pyplot as plt

    from vaebench.sets.tune import figures

    makers: dict[str, Callable[[], Any]] = {
        "figures/optimization_history.png": lambda: figures.history_figure(study, settings.objectives),
        "figures/param_importances.png": lambda: figures.importance_figure(study, settings.objectives),
    }
    if settings.multi_objective:
        makers["figures/pareto_front.png"] = lambda: figures.pareto_figure(study, settings.objectives)
    for path, make in makers.items():
        try:
            figure = make()
        except figures.FigureSkipped as reason:
            note = f"Skipped {Path(path).name}: {reason}"
            result.notes.append(note)
            emit(note)
            continue
        parent.log_figure(figure, path)
        plt.close(figure)
        result.figures.append(path)


def _result_record(result: TuneResult) -> dict[str, Any]:
    record = asdict(result)
    record.pop("evaluations", None)
    record.pop("baseline", None)
    return record
