"""Hyperparameter tuning with Optuna, honest about the labels it was tuned on.

A study samples configurations with Optuna (Akiba, Sano, Yanase, Ohta & Koyama 2019, "Optuna: A
Next-generation Hyperparameter Optimization Framework", KDD) and its tree-structured Parzen estimator
(Bergstra, Bardenet, Bengio & Kégl 2011, NeurIPS). Each trial is exactly the single run of
:func:`vaebench.runner.run_and_log`, nested under one MLflow parent run per invocation, trained with one
seed (:data:`TUNING_SEED`) and scored against the *tuning* labels.

Pruning follows the median stopping rule (Golovin et al. 2017, "Google Vizier", KDD) as Optuna's
``MedianPruner``: every ``pruning_interval`` epochs the trial's latent code is clustered with a cheap
k-means and scored against the tuning labels with the objective's metric family; a trial whose score is
below the median of earlier trials' scores at the same epoch is stopped. Optuna cannot prune
multi-objective studies, so pruning is off there.

Honesty: a configuration chosen on a set of labels scores optimistically on those labels. The study
therefore tunes on one annotation (``tune_label_key``) and reports on another (``eval_label_key``), refuses
to use the same one for both, and re-trains the chosen configuration(s) on fresh seeds
(:data:`EVAL_SEED_START` onwards, never the tuning seed) before it reports a number.

Studies live in an Optuna RDB storage (SQLite by default) and continue where they stopped: ``trials`` is
a total for the study, and trials left RUNNING by a killed process are failed and retried (at once when
the process ran on this machine and is gone, else after the storage's heartbeat grace period).
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from vaebench import tracking
from vaebench.config import EXECUTION_FIELDS, RunConfig, parse_hidden
from vaebench.data import DEFAULT_DATASET
from vaebench.errors import VaebenchError, unknown_name
from vaebench.models import get_model
from vaebench.stats import paired_difference
from vaebench.suite import threads_per_job

if TYPE_CHECKING:
    from vaebench.data import Dataset

DEFAULT_OBJECTIVE = "tsne_kmeans.ari"
CPU_OBJECTIVE = "train.cpu_seconds"


def protocol_metrics() -> tuple[str, ...]:
    """The scores the study's protocol produces (``<block>.<metric>``); any of them can be the objective
    (all are maximised)."""
    from vaebench.evaluate import METRICS

    names = [
        f"{block}.{m.name}"
        for block in ("tsne_kmeans", "latent_kmeans")
        for m in METRICS.values()
        if m.kind == "partition"
    ]
    names += [f"latent.{m.name}" for m in METRICS.values() if m.kind == "embedding"]
    return tuple(names)


PROTOCOL_METRICS = protocol_metrics()


def honest_label_keys(dataset: str | None, registered: bool = True) -> tuple[str | None, str | None]:
    """A registered dataset's (tuning, evaluation) label keys, where it declares a tuning annotation
    (pbmc68k: louvain, bulk_labels); (None, None) otherwise. An unknown name is an error unless
    ``registered`` is False (a dataset passed in as an object)."""
    from vaebench.data import DATASETS, get_dataset_spec

    if dataset is None or (not registered and dataset not in DATASETS):
        return None, None
    spec = get_dataset_spec(dataset)
    if spec.tune_label_key is None:
        return None, None
    return spec.tune_label_key, spec.default_label_key


TUNING_SEED = 0
EVAL_SEED_START = 1000
DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_BASELINE = "pca"

# Settings that have their own option and cannot be fixed with --set.
_OWN_OPTION = {
    "model": "--model",
    "dataset": "--dataset",
    "data_path": "--data",
    "labels_path": "--labels",
    "label_key": "--tune-label-key and --eval-label-key",
}
_OWNER_ATTR = "vaebench.owner"
_FAILURE_ATTR = "vaebench.failure"
_DEFINITION_ATTR = "vaebench.definition"
_DATA_HASH_ATTR = "vaebench.data_hash"
_STUDY_NAME = re.compile(r"[\w.+:@=\-]+")

EventHook = Callable[[str], None]
"""Receives one line of progress at a time (a finished trial, a skipped figure...)."""


# --------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class TuneSettings:
    """Everything one ``vaebench tune`` invocation is asked to do.

    ``fixed`` holds ``--set`` values (``name -> text``); a fixed name leaves the search space.
    ``pruner`` replaces the default ``MedianPruner`` (tests use it to force pruning).
    """

    model: str
    trials: int = 50
    dataset: str | None = DEFAULT_DATASET
    data_path: str | None = None
    labels_path: str | None = None
    tune_label_key: str | None = None
    eval_label_key: str | None = None
    objective: str = DEFAULT_OBJECTIVE
    multi_objective: bool = False
    fixed: dict[str, str] = field(default_factory=dict)
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    timeout: float | None = None
    jobs: int = 1
    pruning_interval: int = 20
    pruning_startup_trials: int = 5
    evaluate_seeds: int = 5
    baseline: str | None = DEFAULT_BASELINE
    heartbeat_interval: int = 30
    grace_period: int | None = None
    max_retry: int = 3
    sampler_seed: int | None = None
    pruner: optuna.pruners.BasePruner | None = None

    @property
    def dataset_name(self) -> str:
        """The dataset as named in the study name: the registered name, or the data file's stem."""
        if self.data_path is not None:
            return Path(self.data_path).name.split(".")[0] or "data"
        return self.dataset or "data"

    @property
    def objectives(self) -> tuple[str, ...]:
        return (self.objective, CPU_OBJECTIVE) if self.multi_objective else (self.objective,)

    @property
    def directions(self) -> list[str]:
        return ["maximize", "minimize"] if self.multi_objective else ["maximize"]

    @property
    def pruning(self) -> bool:
        return not self.multi_objective and (self.pruning_interval > 0 or self.pruner is not None)

    @property
    def tuning_seed(self) -> int:
        return int(self.fixed.get("seed", TUNING_SEED))

    @property
    def eval_seeds(self) -> list[int]:
        return list(range(EVAL_SEED_START, EVAL_SEED_START + self.evaluate_seeds))

    def resolved(self, registered_dataset: bool = True) -> TuneSettings:
        """Check every setting, fill the default label keys and study name; return the complete settings.

        ``registered_dataset=False`` accepts a dataset name that is not in the registry (the dataset is
        then passed to :func:`tune` as an object)."""
        spec = get_model(self.model)
        if self.baseline is not None:
            get_model(self.baseline)
        checks: list[tuple[bool, str]] = [
            (self.trials >= 1, f"--trials must be at least 1, got {self.trials}."),
            (self.jobs >= 1, f"--jobs must be at least 1, got {self.jobs}."),
            (self.timeout is None or self.timeout > 0, f"--timeout must be positive, got {self.timeout}."),
            (
                self.pruning_interval >= 0,
                f"--pruning-interval must be 0 (off) or more, got {self.pruning_interval}.",
            ),
            (self.evaluate_seeds >= 0, f"--evaluate-seeds must be 0 or more, got {self.evaluate_seeds}."),
            (
                self.heartbeat_interval >= 1,
                f"The heartbeat interval must be at least 1 s, got {self.heartbeat_interval}.",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise VaebenchError(message)
        if self.objective not in PROTOCOL_METRICS:
            raise unknown_name("objective", self.objective, PROTOCOL_METRICS)
        settings = replace(self, dataset=None) if self.data_path is not None else self
        if settings.data_path is None and settings.dataset is None:
            raise VaebenchError("Give a dataset to tune on with --dataset or --data.")
        default_tune, default_eval = honest_label_keys(settings.dataset, registered_dataset)
        tune_key = settings.tune_label_key or default_tune
        eval_key = settings.eval_label_key or default_eval
        if tune_key is None or eval_key is None:
            raise VaebenchError(
                f"Dataset {settings.dataset_name!r} has no default labels to tune and report on; give both "
                "--tune-label-key (the labels the objective is computed on) and --eval-label-key (the labels "
                "the result is reported on)."
            )
        if tune_key == eval_key:
            raise VaebenchError(
                f"--tune-label-key and --eval-label-key are both {tune_key!r}; a study must not be scored on the "
                "labels it was tuned on, so give two different annotations."
            )
        fixed = parse_fixed(settings.fixed)
        family = self.objective.rsplit(".", 1)[-1]
        if "metrics" in fixed and family not in str(fixed["metrics"]).split(","):
            raise VaebenchError(
                f"--set metrics={fixed['metrics']} leaves out {family}, which the objective {self.objective} needs."
            )
        settings = replace(settings, tune_label_key=tune_key, eval_label_key=eval_key, fixed=fixed)
        if settings.tuning_seed in settings.eval_seeds:
            raise VaebenchError(
                f"The tuning seed {settings.tuning_seed} is among the evaluation seeds {settings.eval_seeds}; "
                f"pick a tuning seed below {EVAL_SEED_START}."
            )
        if not search_space(settings):
            raise VaebenchError(
                f"Every parameter of {spec.name}'s search space ({', '.join(spec.search_space)}) is fixed by "
                "--set; nothing is left to tune."
            )
        base_config(settings)  # validates the fixed values
        name = settings.study_name or default_study_name(settings)
        if not _STUDY_NAME.fullmatch(name):
            raise VaebenchError(
                f"Study name {name!r} may hold only letters, digits and . + : @ = - _ characters."
            )
        return replace(settings, study_name=name)

    def definition(self) -> dict[str, Any]:
        """What defines the study's trials: continuing a study with a different definition is refused."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "data_path": self.data_path,
            "labels_path": self.labels_path,
            "tune_label_key": self.tune_label_key,
            "objectives": list(self.objectives),
            "fixed": {k: v for k, v in sorted(self.fixed.items()) if k not in EXECUTION_FIELDS},
        }


def default_study_name(settings: TuneSettings) -> str:
    """``<model>-<dataset>-<objective>``, with ``+train.cpu_seconds`` in multi-objective mode."""
    name = f"{settings.model}-{settings.dataset_name}-{'+'.join(settings.objectives)}"
    return re.sub(r"[^\w.+:@=\-]", "_", name)


def settable_names() -> list[str]:
    """The run settings ``--set`` can fix."""
    return [name for name in RunConfig.field_names() if name not in _OWN_OPTION]


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """``["latent_dim=4", "tsne_3d=false"]`` -> ``{"latent_dim": "4", "tsne_3d": "false"}``, names checked."""
    fixed: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise VaebenchError(f"--set takes name=value, such as --set latent_dim=8, got {item!r}.")
        fixed[name] = value
    return parse_fixed(fixed)


def parse_fixed(fixed: dict[str, Any]) -> dict[str, str]:
    """Check the names of fixed settings and return them as text."""
    for name in fixed:
        if name in _OWN_OPTION:
            raise VaebenchError(f"--set cannot fix {name!r}; use {_OWN_OPTION[name]} instead.")
        if name not in RunConfig.field_names():
            raise VaebenchError(
                f"Unknown setting {name!r} in --set; known settings are: {', '.join(settable_names())}."
            )
    return {name: str(value) for name, value in fixed.items()}


def search_space(settings: TuneSettings) -> dict[str, tuple[Any, ...]]:
    """The model's registered search space less the parameters fixed with ``--set``."""
    return {k: v for k, v in get_model(settings.model).search_space.items() if k not in settings.fixed}


def base_config(settings: TuneSettings) -> RunConfig:
    """The configuration every trial starts from: fixed settings, the tuning labels and the tuning seed."""
    config = RunConfig.from_params(dict(settings.fixed))
    return replace(
        config,
        model=settings.model,
        dataset=settings.dataset,
        data_path=settings.data_path,
        labels_path=settings.labels_path,
        label_key=settings.tune_label_key,
        seed=settings.tuning_seed,
    ).validate()


# --------------------------------------------------------------------------------------------------------
# Search space and trial configurations


def distribution(spec: tuple[Any, ...]) -> optuna.distributions.BaseDistribution:
    """A registry tuple as an Optuna distribution: ``("log_float", lo, hi)``, ``("int", lo, hi)``,
    ``("float", lo, hi)`` or ``("categorical", choices)``."""
    kind = spec[0]
    if kind == "log_float":
        return optuna.distributions.FloatDistribution(float(spec[1]), float(spec[2]), log=True)
    if kind == "float":
        return optuna.distributions.FloatDistribution(float(spec[1]), float(spec[2]))
    if kind == "int":
        return optuna.distributions.IntDistribution(int(spec[1]), int(spec[2]))
    if kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(spec[1]))
    raise ValueError(f"Unknown search-space kind {kind!r} in {spec!r}.")


def suggest(trial: optuna.Trial, space: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    """Ask the trial for a value of every parameter of ``space``."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        dist = distribution(spec)
        if isinstance(dist, optuna.distributions.FloatDistribution):
            params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high)
        else:
            params[name] = trial.suggest_categorical(name, dist.choices)
    return params


def config_for(base: RunConfig, params: dict[str, Any], **overrides: Any) -> RunConfig:
    """``base`` with a trial's parameters (``hidden`` parsed from text such as ``"128,32"``)."""
    values = {k: parse_hidden(v) if k == "hidden" else v for k, v in params.items()}
    return replace(base, **values, **overrides).validate()


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


# --------------------------------------------------------------------------------------------------------
# Storage, study, and the processes that own trials


class _RetryStaleTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, less the dead process's ownership attributes."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if not k.startswith("vaebench.")}
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
            f"The Optuna storage {redact(url)!r} could not be opened ({reason}); give a database URL such "
            "as sqlite:///optuna.db."
        ) from None


def redact(url: str) -> str:
    """A storage URL without its password, and a relative SQLite path made absolute."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        url = f"sqlite:///{Path(url[len('sqlite:///') :]).resolve()}"
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def make_sampler(settings: TuneSettings) -> optuna.samplers.BaseSampler:
    """TPE (with the constant liar when trials run in parallel, so workers do not sample the same point).

    A ``sampler_seed`` makes the sequence of configurations repeatable in one process (with parallel jobs
    the order in which trials finish still varies)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.samplers.TPESampler(constant_liar=settings.jobs > 1, seed=settings.sampler_seed)


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
            f"Study {settings.study_name!r} in {redact(settings.storage)} was started with other settings "
            f"({', '.join(f'{k}: {stored.get(k)!r}' for k in changed)}); continue it with those or give a new "
            "--study-name."
        )
    return study


def process_owner() -> str:
    """``host:pid:start`` naming this process (its start time tells a reused pid apart)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by :func:`process_owner` still runs; None when it ran on another host."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    pid, start = int(parts[1]), parts[2]
    if Path("/proc").is_dir():
        current = _start_time(pid)
        return current is not None and (not start or current == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, from /proc; None if it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if Path("/proc").is_dir() else ""
    fields = text[text.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def recover_dead_trials(study: optuna.Study, settings: TuneSettings) -> list[int]:
    """Fail, and queue again, the RUNNING trials whose process on this machine is gone (a kill -9, a crash).

    Trials of processes on other machines are left to the storage's heartbeat. Returns the trial numbers.
    """
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = _RetryStaleTrial(max_retry=settings.max_retry)
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(_OWNER_ATTR)
        if owner is None or owner_alive(owner) is not False:
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
    closed = []
    for run_id, tags in tracking.running_runs(experiment, f"tags.study = '{study_name}'"):
        owner = tags.get("tune_owner")
        if owner is None or owner_alive(owner) is not False:
            continue
        extra = {"trial_state": "FAIL"} if tags.get("vaebench.role") == "tune-trial" else {}
        tracking.close_run(run_id, tracking.KILLED, {**extra, "failure_reason": "its process was killed"})
        closed.append(run_id)
    return closed


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


# --------------------------------------------------------------------------------------------------------
# The objective


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
        self._X: Any = None

    def _latent(self, model: Any) -> np.ndarray:
        from vaebench.train import as_tensor, encode

        if self._X is None:
            self._X = as_tensor(self.dataset.X, next(model.parameters()).device)
        was_training = model.training
        latent = encode(model, self._X)
        model.train(was_training)
        return latent

    def __call__(self, epoch: int, loss: float, model: Any) -> None:
        if epoch >= self.epochs:
            latent = self._latent(model)
            if not np.isfinite(latent).all() or collapsed(latent):
                raise VaebenchError(
                    f"The latent code collapsed to a single point (or became non-finite) after {epoch} "
                    "epochs; this configuration cannot be scored."
                )
            return
        if self.trial is None or self.interval <= 0 or epoch % self.interval:
            return
        score = intermediate_score(self._latent(model), self.dataset.labels, self.objective, self.seed)
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
        self, settings: TuneSettings, dataset: Dataset, parent_run_id: str, experiment: str, threads: int
    ) -> None:
        self.settings = settings
        self.dataset = dataset.with_label_key(settings.tune_label_key or "")
        self.parent_run_id = parent_run_id
        self.experiment = experiment
        self.space = search_space(settings)
        base = base_config(settings)
        # The 3-d t-SNE enters no score, only a figure: trials skip it unless --set tsne_3d=true.
        tsne_3d = base.tsne_3d if "tsne_3d" in settings.fixed else False
        self.base = replace(base, threads=base.threads or threads, tsne_3d=tsne_3d)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        from vaebench.runner import run_and_log

        owner = process_owner()
        trial.set_user_attr(_OWNER_ATTR, owner)
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
                config, tags=tags, parent_run_id=self.parent_run_id, on_epoch=hook, dataset=self.dataset
            )
        except optuna.TrialPruned:
            self._close(
                key, tracking.KILLED, "PRUNED", hook, trial, pruned_at_epoch=hook.pruned_at if hook else ""
            )
            raise
        except VaebenchError as error:
            trial.set_user_attr(_FAILURE_ATTR, str(error))
            self._close(key, tracking.FAILED, "FAIL", hook, trial)
            raise
        except KeyboardInterrupt:
            self._close(key, tracking.KILLED, "FAIL", hook, trial)
            raise
        except BaseException:
            self._close(key, tracking.FAILED, "FAIL", hook, trial)
            raise
        metrics = outcome.metrics
        value = float(metrics[self.settings.objective])
        if not math.isfinite(value):
            trial.set_user_attr(_FAILURE_ATTR, f"{self.settings.objective} was {value}")
            self._close(key, tracking.FAILED, "FAIL", hook, trial)
            raise VaebenchError(f"Trial {trial.number} scored {self.settings.objective} = {value}.")
        trial.set_user_attr("mlflow_run_id", run_id)
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
        self, key: str, status: str, state: str, hook: EpochGuard | None, trial: optuna.Trial, **tags: Any
    ) -> None:
        """Give the trial's MLflow run (if it was opened) its final status and ``trial_state`` tag."""
        run_id = tracking.latest_run(self.experiment, f"tags.tune_trial = '{key}'")
        if run_id is None:
            return
        trial.set_user_attr("mlflow_run_id", run_id)
        remove = ("failure_reason",) if state == "PRUNED" else ()
        tracking.close_run(run_id, status, {"trial_state": state, **tags}, remove_tags=remove)
        if hook is not None and hook.values:
            handle = tracking.run_handle(run_id)
            for epoch, score in hook.values.items():
                handle.log_metrics({"tune.intermediate": score}, step=epoch)


# --------------------------------------------------------------------------------------------------------
# Results


@dataclass
class TrialSummary:
    """One trial as the study recorded it."""

    number: int
    state: str
    values: list[float] | None
    params: dict[str, Any]
    run_id: str | None = None

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialSummary:
        return cls(
            trial.number,
            trial.state.name,
            list(trial.values) if trial.values else None,
            dict(trial.params),
            trial.user_attrs.get("mlflow_run_id"),
        )


@dataclass
class PointEvaluation:
    """A configuration re-trained on fresh seeds and scored on the evaluation labels."""

    entry: str
    trial_number: int | None
    config: dict[str, Any]
    label_key: str
    seeds: list[int]
    run_ids: list[str]
    per_seed: dict[str, list[float]]
    failed: list[str] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        values = np.asarray(self.per_seed.get(metric, []), dtype=float)
        return float(np.mean(values)) if values.size else math.nan

    def sd(self, metric: str) -> float:
        values = np.asarray(self.per_seed.get(metric, []), dtype=float)
        return float(np.std(values, ddof=1)) if values.size > 1 else math.nan

    def summary(self) -> dict[str, dict[str, float]]:
        return {m: {"mean": self.mean(m), "sd": self.sd(m), "n": len(v)} for m, v in self.per_seed.items()}


@dataclass
class Comparison:
    """A tuned configuration against the baseline, paired on the seed."""

    entry: str
    baseline: str
    metric: str
    n_pairs: int
    mean_difference: float
    sd_difference: float
    ci95_low: float
    ci95_high: float
    wilcoxon_p: float
    verdict: str


@dataclass
class TuneResult:
    """What a tuning invocation did and found."""

    study_name: str
    storage: str
    parent_run_id: str
    tracking_uri: str
    experiment: str
    objectives: tuple[str, ...]
    trials_total: int
    trials_run: int
    states: dict[str, int]
    best: list[TrialSummary]
    evaluations: list[PointEvaluation] = field(default_factory=list)
    baseline: PointEvaluation | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def best_trials(study: optuna.Study, multi_objective: bool) -> list[FrozenTrial]:
    """The best trial, or the Pareto front (ordered by the first objective) in multi-objective mode."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if multi_objective:
        return sorted(study.best_trials, key=lambda t: -t.values[0])
    return [study.best_trial]


def compare(point: PointEvaluation, baseline: PointEvaluation, metrics: Sequence[str]) -> list[Comparison]:
    """Paired (on the seed) differences point - baseline, summarised by :func:`vaebench.stats.paired_difference`."""
    rows = []
    for metric in metrics:
        mine = dict(zip(point.seeds, point.per_seed.get(metric, []), strict=False))
        theirs = dict(zip(baseline.seeds, baseline.per_seed.get(metric, []), strict=False))
        diffs = np.asarray([mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))], dtype=float)
        rows.append(
            Comparison(
                point.entry, baseline.entry, metric, **asdict(paired_difference(diffs, baseline.entry))
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------------
# Processes


_worker_state: dict[str, Any] = {}


def _worker_init(tracking_uri: str, experiment: str, verbosity: int, dataset: Dataset) -> None:
    optuna.logging.set_verbosity(verbosity)
    tracking.configure(tracking_uri, experiment)
    _worker_state.update(experiment=experiment, dataset=dataset)


def _optimize(
    settings: TuneSettings,
    dataset: Dataset,
    parent_run_id: str,
    experiment: str,
    n_trials: int,
    timeout: float | None,
    threads: int,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    study = open_study(settings)
    objective = TrialObjective(settings, dataset, parent_run_id, experiment, threads)
    study.optimize(
        objective, n_trials=n_trials, timeout=timeout, catch=(VaebenchError,), callbacks=list(callbacks)
    )


def _optimize_worker(
    settings: TuneSettings,
    parent_run_id: str,
    n_trials: int,
    deadline: float | None,
    threads: int,
    index: int,
) -> int:
    timeout = None if deadline is None else max(1e-3, deadline - time.time())
    if settings.sampler_seed is not None:  # each worker its own stream, else they sample the same points
        settings = replace(settings, sampler_seed=settings.sampler_seed + index)
    _optimize(
        settings,
        _worker_state["dataset"],
        parent_run_id,
        _worker_state["experiment"],
        n_trials,
        timeout,
        threads,
    )
    return n_trials


def _evaluate_one(
    config: RunConfig, tags: dict[str, Any], parent_run_id: str, dataset: Dataset | None = None
) -> tuple[str | None, dict[str, float], str]:
    """Train and score one evaluation point; returns (run id, metrics, failure reason)."""
    from vaebench.runner import run_and_log

    data = dataset if dataset is not None else _worker_state["dataset"]
    try:
        guard = EpochGuard(config.epochs, data, DEFAULT_OBJECTIVE, config.seed)
        outcome, run_id = run_and_log(
            config, tags=tags, parent_run_id=parent_run_id, dataset=data, on_epoch=guard
        )
    except VaebenchError as error:
        return None, {}, str(error)
    except Exception as error:  # one failing seed must not lose the others; its run is marked FAILED
        return None, {}, f"{type(error).__name__}: {error}"
    return run_id, {k: float(v) for k, v in outcome.metrics.items()}, ""


def _pool(jobs: int, tracking_uri: str, experiment: str, dataset: Dataset) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(tracking_uri, experiment, optuna.logging.get_verbosity(), dataset),
    )


# --------------------------------------------------------------------------------------------------------
# The study


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
    study_name = settings.study_name or ""
    data = dataset if dataset is not None else _load(settings)
    tune_data = data.with_label_key(settings.tune_label_key or "")
    eval_data = data.with_label_key(settings.eval_label_key or "")
    base = base_config(settings)
    base.check_against(data.n_cells, data.n_genes)
    storage = open_storage(settings)
    study = open_study(settings, storage)
    _check_data(study, tune_data)
    uri = tracking.configure(tracking_uri, experiment)

    recovered = recover_dead_trials(study, settings)
    if recovered:
        emit(
            f"Trial(s) {', '.join(map(str, recovered))} were left running by a killed process; they will be retried."
        )
    closed = close_dead_runs(experiment, study_name)
    if closed:
        emit(f"Marked {len(closed)} MLflow run(s) of a killed process as KILLED.")
    counted = counted_trials(study)
    missing = max(0, settings.trials - counted)
    emit(
        f"Study {study_name!r}: {counted} trial(s) already counted of {settings.trials}; running {missing}"
        + (f" in {settings.jobs} processes" if settings.jobs > 1 and missing > 1 else "")
        + "."
    )
    threads = threads_per_job(min(settings.jobs, max(missing, 1)))
    owner = process_owner()
    parent_tags = {
        "vaebench.role": "tune",
        "study": study_name,
        "model": settings.model,
        "dataset": settings.dataset_name,
        "objective": "+".join(settings.objectives),
        "tune_label_key": settings.tune_label_key,
        "eval_label_key": settings.eval_label_key,
        "optuna_storage": redact(settings.storage),
        "tune_owner": owner,
    }
    with tracking.start_run(run_name=f"tune {study_name}", tags=parent_tags) as parent:
        parent.log_params(
            {
                "study": study_name,
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
        if missing:
            _run_trials(settings, study, tune_data, parent.run_id, experiment, uri, missing, threads, emit)
        study = open_study(settings, storage)
        states = _state_counts(study)
        parent.log_metrics({f"tune.trials.{k.lower()}": v for k, v in states.items()})
        parent.log_metrics({"tune.trials.counted": counted_trials(study)})
        best = best_trials(study, settings.multi_objective)
        result = TuneResult(
            study_name=study_name,
            storage=redact(settings.storage),
            parent_run_id=parent.run_id,
            tracking_uri=uri,
            experiment=experiment,
            objectives=settings.objectives,
            trials_total=settings.trials,
            trials_run=counted_trials(study) - counted,
            states=states,
            best=[TrialSummary.of(t) for t in best],
        )
        _log_best(parent, settings, base, best, result)
        _log_figures(parent, study, settings, result, emit)
        if best and settings.evaluate_seeds:
            _evaluate(parent, settings, base, best, eval_data, experiment, uri, result, emit)
        elif not best:
            result.notes.append("No trial completed, so there is no best configuration to evaluate.")
        elif not settings.evaluate_seeds:
            result.notes.append(
                f"Not evaluated on fresh seeds: the best {settings.objective} is the tuning score on "
                f"{settings.tune_label_key!r}, optimistic by construction."
            )
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
    from vaebench.data import load_dataset

    return load_dataset(
        settings.dataset,
        path=settings.data_path,
        label_key=settings.tune_label_key,
        labels_path=settings.labels_path,
    )


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


def _describe(trial: FrozenTrial, settings: TuneSettings) -> str:
    if trial.state == TrialState.COMPLETE:
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(settings.objectives, trial.values, strict=True))
        what = f"COMPLETE {values}"
    elif trial.state == TrialState.PRUNED:
        last = trial.last_step
        what = f"PRUNED at epoch {last}" if last is not None else "PRUNED"
    else:
        what = f"{trial.state.name}" + (
            f": {trial.user_attrs[_FAILURE_ATTR]}" if _FAILURE_ATTR in trial.user_attrs else ""
        )
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    return f"trial {trial.number} {what} ({params})"


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _run_trials(
    settings: TuneSettings,
    study: optuna.Study,
    dataset: Dataset,
    parent_run_id: str,
    experiment: str,
    uri: str,
    missing: int,
    threads: int,
    emit: EventHook,
) -> None:
    """Run ``missing`` trials in this process, or split over ``jobs`` spawned processes on the same storage."""

    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        emit(_describe(trial, settings))

    jobs = min(settings.jobs, missing)
    if jobs == 1:
        _optimize(settings, dataset, parent_run_id, experiment, missing, settings.timeout, threads, [report])
        return
    deadline = None if settings.timeout is None else time.time() + settings.timeout
    shares = [missing // jobs + (1 if i < missing % jobs else 0) for i in range(jobs)]
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    with _pool(jobs, uri, experiment, dataset) as pool:
        pending: set[Future[int]] = {
            pool.submit(_optimize_worker, settings, parent_run_id, share, deadline, threads, index)
            for index, share in enumerate(shares)
        }
        while pending:
            done, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    emit(_describe(trial, settings))
            for future in done:
                future.result()


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
                "mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
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
    parent.set_tags({"best_trial": trial.number, "best_run_id": trial.user_attrs.get("mlflow_run_id", "")})


def _log_figures(
    parent: tracking.RunHandle,
    study: optuna.Study,
    settings: TuneSettings,
    result: TuneResult,
    emit: EventHook,
) -> None:
    import matplotlib.pyplot as plt

    from vaebench import tune_figures

    makers: dict[str, Callable[[], Any]] = {
        "figures/optimization_history.png": lambda: tune_figures.history_figure(study, settings.objectives),
        "figures/param_importances.png": lambda: tune_figures.importance_figure(study, settings.objectives),
    }
    if settings.multi_objective:
        makers["figures/pareto_front.png"] = lambda: tune_figures.pareto_figure(study, settings.objectives)
    for path, make in makers.items():
        try:
            figure = make()
        except tune_figures.FigureSkipped as reason:
            note = f"Skipped {Path(path).name}: {reason}"
            result.notes.append(note)
            emit(note)
            continue
        parent.log_figure(figure, path)
        plt.close(figure)
        result.figures.append(path)


def _evaluate(
    parent: tracking.RunHandle,
    settings: TuneSettings,
    base: RunConfig,
    best: list[FrozenTrial],
    eval_data: Dataset,
    experiment: str,
    uri: str,
    result: TuneResult,
    emit: EventHook,
) -> None:
    """Re-train each best configuration (and the baseline) on the fresh seeds, scored on the eval labels."""
    suite = f"tune:{settings.study_name}"
    label = settings.eval_label_key
    threads = threads_per_job(settings.jobs)
    points: list[tuple[str, int | None, RunConfig, dict[str, Any]]] = []
    for trial in best:
        entry = (
            f"{settings.model} (tuned)"
            if len(best) == 1
            else f"{settings.model} (tuned, trial {trial.number})"
        )
        config = config_for(base, trial.params, label_key=label)
        points.append((entry, trial.number, config, {"tuned": "true", "trial_number": trial.number}))
    if settings.baseline is not None:
        config = replace(base, model=settings.baseline, label_key=label).validate()
        points.append((settings.baseline, None, config, {"tuned": "false", "baseline": "true"}))
    data_hash = eval_data.content_hash()
    done = tracking.experiment_runs(experiment, f"tags.suite = '{suite}'")
    finished: dict[str, str] = {}
    if settings.baseline is not None:
        # The baseline is not tuned: a finished run of the same configuration (the data's hash included)
        # from another study's evaluation is the same run, so studies of several models share it.
        shared = tracking.experiment_runs(experiment, "tags.baseline = 'true'")
        if not shared.empty and "tags.config_hash" in shared:
            finished.update(zip(shared["tags.config_hash"], shared["run_id"], strict=True))
    if not done.empty and "tags.config_hash" in done:
        finished.update(zip(done["tags.config_hash"], done["run_id"], strict=True))
    tasks: list[tuple[int, RunConfig, dict[str, Any]]] = []
    evaluations: list[PointEvaluation] = []
    for index, (entry, number, config, extra) in enumerate(points):
        evaluations.append(PointEvaluation(entry, number, config.params(), label or "", [], [], {}))
        for seed in settings.eval_seeds:
            seeded = replace(config, seed=seed, threads=config.threads or threads)
            tags = {
                "suite": suite,
                "suite_parent": parent.run_id,
                "entry": entry,
                "vaebench.role": "tune-eval",
                "study": settings.study_name,
                "tune_parent": parent.run_id,
                "eval_label_key": label,
                "tune_owner": process_owner(),
                **extra,
            }
            tasks.append((index, seeded, tags))
    runs: list[tuple[int, RunConfig, str | None, dict[str, float], str]] = []
    todo = []
    for index, config, tags in tasks:
        run_id = finished.get(config.config_hash(data_hash))
        if run_id is not None:
            runs.append((index, config, run_id, tracking.run_metrics(run_id), ""))
        else:
            todo.append((index, config, tags))
    if runs:
        emit(f"Reusing {len(runs)} finished evaluation run(s) of this study.")
    what = f"{len(best)} tuned configuration(s)" + (f" and {settings.baseline}" if settings.baseline else "")
    emit(
        f"Evaluating {what} on fresh seeds {settings.eval_seeds} with labels {label!r}: "
        f"{len(todo)} run(s) to train."
    )
    jobs = min(settings.jobs, len(todo))
    if jobs <= 1:
        for index, config, tags in todo:
            run_id, metrics, reason = _evaluate_one(config, tags, parent.run_id, eval_data)
            runs.append((index, config, run_id, metrics, reason))
            emit(
                f"evaluated {points[index][0]} seed {config.seed}: "
                + (reason or _score_line(metrics, settings.objective))
            )
    else:
        with _pool(jobs, uri, experiment, eval_data) as pool:
            futures = {
                pool.submit(_evaluate_one, config, tags, parent.run_id): (index, config)
                for index, config, tags in todo
            }
            for future in futures:
                index, config = futures[future]
                run_id, metrics, reason = future.result()
                runs.append((index, config, run_id, metrics, reason))
                emit(
                    f"evaluated {points[index][0]} seed {config.seed}: "
                    + (reason or _score_line(metrics, settings.objective))
                )
    for index, config, run_id, metrics, reason in sorted(runs, key=lambda r: (r[0], r[1].seed)):
        point = evaluations[index]
        if run_id is None:
            point.failed.append(f"seed {config.seed}: {reason}")
            continue
        point.seeds.append(config.seed)
        point.run_ids.append(run_id)
        for name, value in metrics.items():
            point.per_seed.setdefault(name, []).append(value)
    _retire_superseded(done, {config.config_hash(data_hash) for _, config, _ in tasks})
    if settings.baseline is not None:
        result.baseline = evaluations.pop()
    result.evaluations = evaluations
    compared = list(dict.fromkeys([settings.objective, *PROTOCOL_METRICS]))
    if result.baseline is not None:
        for point in evaluations:
            result.comparisons.extend(compare(point, result.baseline, compared))
    _log_evaluation_summary(parent, settings, result)


def _retire_superseded(done: Any, current: set[str]) -> None:
    """Tag ``tuned=superseded`` the study's earlier evaluation runs of configurations no longer its best,
    so that reports (which gather ``tuned=true`` runs) do not pool two different tuned configurations."""
    if done.empty or "tags.tuned" not in done:
        return
    for run_id, tuned, config_hash in zip(
        done["run_id"], done["tags.tuned"], done["tags.config_hash"], strict=True
    ):
        if tuned == "true" and config_hash not in current:
            tracking.run_handle(run_id).set_tags({"tuned": "superseded"})


def _score_line(metrics: dict[str, float], objective: str) -> str:
    return f"{objective} {metrics.get(objective, math.nan):.4f}"


def _log_evaluation_summary(parent: tracking.RunHandle, settings: TuneSettings, result: TuneResult) -> None:
    import matplotlib.pyplot as plt

    from vaebench import tune_figures

    single = len(result.evaluations) == 1
    metrics: dict[str, float] = {}
    for point in result.evaluations:
        prefix = "eval" if single else f"eval.trial{point.trial_number}"
        for name, stats in point.summary().items():
            metrics[f"{prefix}.{name}.mean"] = stats["mean"]
            if not math.isnan(stats["sd"]):
                metrics[f"{prefix}.{name}.sd"] = stats["sd"]
    if result.baseline is not None:
        for name, stats in result.baseline.summary().items():
            metrics[f"baseline.{name}.mean"] = stats["mean"]
            if not math.isnan(stats["sd"]):
                metrics[f"baseline.{name}.sd"] = stats["sd"]
    parent.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
    parent.log_dict(
        {
            "eval_label_key": settings.eval_label_key,
            "seeds": settings.eval_seeds,
            "points": [
                {
                    "entry": p.entry,
                    "trial": p.trial_number,
                    "seeds": p.seeds,
                    "run_ids": p.run_ids,
                    "failed": p.failed,
                    "summary": p.summary(),
                    "per_seed": p.per_seed,
                }
                for p in [*result.evaluations, *([result.baseline] if result.baseline else [])]
            ],
            "comparisons": [asdict(c) for c in result.comparisons],
        },
        "eval/summary.json",
    )
    parent.log_text(summary_markdown(result, settings.objective), "eval/summary.md")
    points = [*result.evaluations, *([result.baseline] if result.baseline else [])]
    if any(p.seeds for p in points):
        figure = tune_figures.evaluation_figure(points, settings.objective, settings.eval_label_key or "")
        parent.log_figure(figure, "figures/evaluation.png")
        plt.close(figure)
        result.figures.append("figures/evaluation.png")


def summary_markdown(result: TuneResult, objective: str) -> str:
    """The evaluation as a Markdown table: mean ± sd over the fresh seeds, and the paired comparison."""
    points = [*result.evaluations, *([result.baseline] if result.baseline else [])]
    metrics = list(dict.fromkeys([objective, *PROTOCOL_METRICS, "train.cpu_seconds"]))
    lines = ["| entry | seeds | " + " | ".join(metrics) + " |", "|" + "---|" * (2 + len(metrics))]
    for p in points:
        cells = [f"{p.mean(m):.3f} ± {p.sd(m):.3f}" for m in metrics]
        lines.append(f"| {p.entry} | {len(p.seeds)} | " + " | ".join(cells) + " |")
    if result.comparisons:
        lines += [
            "",
            "| entry | vs | metric | pairs | mean difference | 95% interval | Wilcoxon p | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in result.comparisons:
            lines.append(
                f"| {c.entry} | {c.baseline} | {c.metric} | {c.n_pairs} | {c.mean_difference:+.3f} | "
                f"[{c.ci95_low:+.3f}, {c.ci95_high:+.3f}] | {c.wilcoxon_p:.3g} | {c.verdict} |"
            )
    return "\n".join(lines) + "\n"


def _result_record(result: TuneResult) -> dict[str, Any]:
    record = asdict(result)
    record.pop("evaluations", None)
    record.pop("baseline", None)
    return record
