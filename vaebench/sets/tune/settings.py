"""What one tuning invocation is asked to do: the protocol's constants and :class:`TuneSettings`.

The scores an objective can be (:data:`PROTOCOL_METRICS`), the tuning seed and the first evaluation seed,
the default storage and baseline, a registered dataset's (tuning, evaluation) label keys, the checks that
turn a request into complete settings, the ``--set`` values a study fixes, the search space they leave,
and the configuration every trial starts from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna

from vaebench.config.run_config import EXECUTION_FIELDS, RunConfig, split_assignment
from vaebench.data import DEFAULT_DATASET
from vaebench.data.source import resolved_path
from vaebench.errors import VaebenchError, unknown_name
from vaebench.models import get_model

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
    names += [name for m in METRICS.values() if m.kind != "partition" for name in m.logged_names]
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
_STUDY_NAME = re.compile(r"[\w.+:@=\-]+")

EventHook = Callable[[str], None]
"""Receives one line of progress at a time (a finished trial, a skipped figure...)."""


@dataclass(frozen=True)
class TuneSettings:
    """Everything one ``vaebench tune`` invocation is asked to do.

    ``fixed`` holds ``--set`` values (``name -> text``); a fixed name leaves the search space.
    ``pruner`` replaces the default ``MedianPruner`` (tests use it to force pruning). ``cluster`` is a
    Dask scheduler's address: each trial is then a task on its workers, which need a ``storage`` they can
    all reach (a database server, not a SQLite file).
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
    cluster: str | None = None

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
    def parallel(self) -> bool:
        """Whether trials may run at once (several jobs, or a cluster)."""
        return self.jobs > 1 or self.cluster is not None

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
        then passed to :func:`vaebench.sets.tune.tune` as an object)."""
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
        if self.cluster is not None and self.storage.startswith("sqlite"):
            raise VaebenchError(
                f"--cluster needs an Optuna storage every worker can reach, such as --storage "
                f"postgresql+psycopg://USER@DBHOST/optuna; {self.storage} is a file on this machine."
            )
        if self.objective not in PROTOCOL_METRICS:
            raise unknown_name("objective", self.objective, PROTOCOL_METRICS)
        settings = self.with_data_source(registered_dataset)
        fixed = parse_fixed(settings.fixed)
        family = self.objective.rsplit(".", 1)[-1]
        if "metrics" in fixed and family not in str(fixed["metrics"]).split(","):
            raise VaebenchError(
                f"--set metrics={fixed['metrics']} leaves out {family}, which the objective {self.objective} needs."
            )
        settings = replace(settings, fixed=fixed)
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

    def with_data_source(self, registered_dataset: bool = True) -> TuneSettings:
        """The data source made explicit: files resolved (one study is one study however its files are
        spelt), a file instead of the default dataset, the dataset's (tuning, evaluation) label keys."""
        path, labels = self.data_path, self.labels_path
        settings = replace(
            self,
            dataset=None if path is not None else self.dataset,
            data_path=resolved_path(path) if path is not None else None,
            labels_path=resolved_path(labels) if labels is not None else None,
        )
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
        return replace(settings, tune_label_key=tune_key, eval_label_key=eval_key)

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
    return [name for name in RunConfig.flat_names() if name not in _OWN_OPTION]


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """``["latent_dim=4", "training.epochs=50"]`` -> ``{"latent_dim": "4", "epochs": "50"}``: a flat name
    or ``part.field``, names checked."""
    return parse_fixed(dict(split_assignment(item, value_required=True) for item in items))


def parse_fixed(fixed: dict[str, Any]) -> dict[str, str]:
    """Check the names of fixed settings and return them as text."""
    for name in fixed:
        if name in _OWN_OPTION:
            raise VaebenchError(f"--set cannot fix {name!r}; use {_OWN_OPTION[name]} instead.")
        if name not in RunConfig.flat_names():
            raise VaebenchError(
                f"Unknown setting {name!r} in --set; known settings are: {', '.join(settable_names())}."
            )
    return {name: str(value) for name, value in fixed.items()}


def search_space(settings: TuneSettings) -> dict[str, tuple[Any, ...]]:
    """The model's registered search space less the parameters fixed with ``--set``."""
    return {k: v for k, v in get_model(settings.model).search_space.items() if k not in settings.fixed}


def base_config(settings: TuneSettings) -> RunConfig:
    """The configuration every trial starts from: fixed settings, the tuning labels and the tuning seed."""
    return RunConfig.from_params(
        {
            **settings.fixed,
            "model": settings.model,
            "dataset": settings.dataset,
            "data_path": settings.data_path,
            "labels_path": settings.labels_path,
            "label_key": settings.tune_label_key,
            "seed": settings.tuning_seed,
        }
    )
