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

Trials run by ask-and-tell: the parent process asks Optuna for a trial, the executor runs it as a task
like a suite's point (in this process, in ``--jobs N`` worker processes, or on a Dask cluster), and the
parent tells the study its outcome. Studies live in an Optuna RDB storage (SQLite by default) and continue
where they stopped: ``trials`` is a total for the study, and trials left RUNNING by a killed process are
failed and retried (at once when the process ran on this machine and is gone, else after the storage's
heartbeat grace period).

The package, one job per module: :mod:`~vaebench.sets.tune.settings` (the constants and :class:`TuneSettings`),
:mod:`~vaebench.sets.tune.space` (registry tuples as Optuna distributions), :mod:`~vaebench.sets.tune.storage` (the
RDB storage, sampler, pruner and the recovery of dead trials), :mod:`~vaebench.sets.tune.objective` (one
trial in its worker, and the pruning hook), :mod:`~vaebench.sets.tune.trials` (ask-and-tell in the parent),
:mod:`~vaebench.sets.tune.results` (what a study found), :mod:`~vaebench.sets.tune.evaluation` (the fresh-seed
evaluation), :mod:`~vaebench.sets.tune.figures` (the study's figures) and :mod:`~vaebench.sets.tune.study`
(:func:`tune` itself). Everything callers use is re-exported here.
"""

from vaebench.executor.ledger import owner_alive, process_owner
from vaebench.sets.tune.objective import (
    EpochGuard,
    TrialOutcome,
    TrialTask,
    collapsed,
    intermediate_score,
    run_trial,
)
from vaebench.sets.tune.results import (
    Comparison,
    PointEvaluation,
    TrialSummary,
    TuneResult,
    best_trials,
    compare,
    summary_markdown,
)
from vaebench.sets.tune.settings import (
    CPU_OBJECTIVE,
    DEFAULT_BASELINE,
    DEFAULT_OBJECTIVE,
    DEFAULT_STORAGE,
    EVAL_SEED_START,
    PROTOCOL_METRICS,
    TUNING_SEED,
    EventHook,
    TuneSettings,
    base_config,
    default_study_name,
    honest_label_keys,
    parse_fixed,
    parse_set,
    protocol_metrics,
    search_space,
    settable_names,
)
from vaebench.sets.tune.space import config_for, distribution, suggest
from vaebench.sets.tune.storage import (
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
from vaebench.sets.tune.study import tune

__all__ = [
    "CPU_OBJECTIVE",
    "DEFAULT_BASELINE",
    "DEFAULT_OBJECTIVE",
    "DEFAULT_STORAGE",
    "EVAL_SEED_START",
    "PROTOCOL_METRICS",
    "TUNING_SEED",
    "Comparison",
    "EpochGuard",
    "EventHook",
    "PointEvaluation",
    "TrialOutcome",
    "TrialSummary",
    "TrialTask",
    "TuneResult",
    "TuneSettings",
    "base_config",
    "best_trials",
    "close_dead_runs",
    "collapsed",
    "compare",
    "config_for",
    "counted_trials",
    "default_study_name",
    "distribution",
    "honest_label_keys",
    "intermediate_score",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "owner_alive",
    "parse_fixed",
    "parse_set",
    "process_owner",
    "protocol_metrics",
    "recover_dead_trials",
    "refuse_mlflow_database",
    "run_trial",
    "search_space",
    "settable_names",
    "shown",
    "suggest",
    "summary_markdown",
    "tune",
]
