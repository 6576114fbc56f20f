"""Where a study lives and which process owns its trials.

The Optuna RDB storage with a heartbeat, the sampler and the pruner, opening (or continuing) a study whose
definition must not change, and the recovery of what a killed process left RUNNING: each trial records its
owner as ``host:pid:start``, and a trial (or MLflow run) whose owner on this machine is gone is failed and
retried at once, without waiting for the heartbeat's grace period. :func:`counted_trials` says which trials
count toward the study's total.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from vaebench.errors import VaebenchError
from vaebench.executor.ledger import Ledger, is_dead
from vaebench.sets.tune.settings import TuneSettings
from vaebench.tracking.uris import absolute_sqlite, holds_mlflow_tables, redact, same_database

# User attributes the study and its trials keep in the storage.
_OWNER_ATTR = "vaebench.owner"
_PARENT_ATTR = "vaebench.parent"  # the MLflow parent run of the invocation that ran the trial
_FAILURE_ATTR = "vaebench.failure"
_DEFINITION_ATTR = "vaebench.definition"
_DATA_HASH_ATTR = "vaebench.data_hash"
RUN_ID_ATTR = "mlflow_run_id"  # the trial's MLflow run, set as soon as that run starts


class _RetryStaleTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, less the dead process's ownership attributes and MLflow run."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {
            k: v for k, v in trial.user_attrs.items() if not k.startswith("vaebench.") and k != RUN_ID_ATTR
        }
        super().__call__(study, trial)


def open_storage(settings: TuneSettings) -> optuna.storages.RDBStorage:
    """The study's RDB storage with a heartbeat: trials whose process stops beating are failed and retried.

    Raises :class:`VaebenchError` for a URL that cannot be opened.
    """
    url = settings.storage
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=settings.heartbeat_interval,
                grace_period=settings.grace_period,
                heartbeat_stale_trial_callback=_RetryStaleTrial(max_retry=settings.max_retry),
            )
    except Exception as error:  # SQLAlchemy and Optuna raise many types for a bad URL
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise VaebenchError(
            redact(
                f"The Optuna storage {shown(url)!r} could not be opened ({reason}); give a database URL "
                "such as sqlite:///optuna.db."
            )
        ) from None


def shown(url: str) -> str:
    """A storage URL as vaebench prints, tags and writes it: its password redacted, a relative SQLite
    path made absolute."""
    return redact(absolute_sqlite(url))


def refuse_mlflow_database(url: str, tracking_uri: str) -> None:
    """Refuse, before Optuna touches it, a storage that is the MLflow tracking store's own database: the
    two schemas share the table ``alembic_version``, and Optuna would fail on MLflow's revision."""
    if same_database(url, tracking_uri) or holds_mlflow_tables(url):
        raise VaebenchError(
            f"The Optuna storage {shown(url)} is a database MLflow already uses; give Optuna a database of "
            "its own, such as "
            f"{shown(own_database_example(url))}."
        )


def own_database_example(url: str) -> str:
    """``url`` with its database renamed ``optuna`` (a SQLite file ``optuna.db`` beside it)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return "sqlite:///optuna.db"
    if parsed.get_backend_name() == "sqlite":
        folder = Path(absolute_sqlite(url)[len("sqlite:///") :]).parent
        return f"sqlite:///{folder / 'optuna.db'}"
    return parsed.set(database="optuna").render_as_string(hide_password=False)


def make_sampler(settings: TuneSettings) -> optuna.samplers.BaseSampler:
    """TPE (with the constant liar when trials run in parallel, so workers do not sample the same point).

    A ``sampler_seed`` makes the sequence of configurations repeatable in one process (with parallel jobs
    the order in which trials finish still varies)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.samplers.TPESampler(constant_liar=settings.parallel, seed=settings.sampler_seed)


def make_pruner(settings: TuneSettings) -> optuna.pruners.BasePruner:
    """Optuna's ``MedianPruner`` (the median stopping rule of Golovin et al. 2017), after
    ``pruning_startup_trials`` unpruned trials and never before epoch ``2 * pruning_interval`` (early
    scores favour configurations that take more steps per epoch, such as small batches); no pruning in
    multi-objective mode or with interval 0."""
    if settings.multi_objective:
        return optuna.pruners.NopPruner()
    if settings.pruner is not None:
        return settings.pruner
    if settings.pruning_interval == 0:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=settings.pruning_startup_trials, n_warmup_steps=2 * settings.pruning_interval
    )


def open_study(settings: TuneSettings, storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """Create the study, or load it to continue; a study started with another definition is refused."""
    storage = storage or open_storage(settings)
    study = optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        directions=settings.directions,
        sampler=make_sampler(settings),
        pruner=make_pruner(settings),
        load_if_exists=True,
    )
    definition = json.loads(json.dumps(settings.definition()))
    stored = study.user_attrs.get(_DEFINITION_ATTR)
    if stored is None:
        study.set_user_attr(_DEFINITION_ATTR, definition)
    elif stored != definition:
        changed = [k for k in definition if stored.get(k) != definition[k]]
        raise VaebenchError(
            f"Study {settings.study_name!r} in {shown(settings.storage)} was started with other settings "
            f"({', '.join(f'{k}: {stored.get(k)!r}' for k in changed)}); continue it with those or give a new "
            "--study-name."
        )
    return study


def recover_dead_trials(study: optuna.Study, settings: TuneSettings) -> list[int]:
    """Fail, and queue again, the RUNNING trials whose process on this machine is gone (a kill -9, a crash),
    and those of processes elsewhere whose heartbeat stopped longer than the grace period ago.

    Returns the numbers of the trials of this machine (the heartbeat's retries are Optuna's).
    """
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = _RetryStaleTrial(max_retry=settings.max_retry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # elsewhere: those whose heartbeat stopped, retried
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(_OWNER_ATTR)
        if owner is None or not is_dead(owner):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            retry(study, copy.deepcopy(storage.get_trial(trial_id)))
        recovered.append(trial.number)
    return recovered


def close_dead_runs(experiment: str, study_name: str) -> list[str]:
    """End as KILLED the MLflow runs of ``study_name`` left RUNNING by a process on this machine that is gone."""
    return Ledger(experiment).close_dead_runs(
        f"tags.study = '{study_name}'",
        "tune_owner",
        extra_tags=lambda tags: {"trial_state": "FAIL"} if tags.get("vaebench.role") == "tune-trial" else {},
    )


def counted_trials(study: optuna.Study) -> int:
    """Trials that count toward the study's total: finished, pruned, or failed for a reason of their own
    (a diverging configuration), not those failed because their process was killed (they are retried)."""
    counted = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            trial.state == TrialState.FAIL and _FAILURE_ATTR in trial.user_attrs
        ):
            counted += 1
    return counted
