"""The honest number: the best configuration(s) and the baseline re-trained on fresh seeds.

Each point is trained on the evaluation seeds (never the tuning seed) and scored on the evaluation labels;
runs a previous invocation finished are reused (the untuned baseline's runs across studies too), the runs
of configurations no longer best are tagged ``tuned=superseded``, each tuned point is compared with the
baseline paired on the seed, and the summary (metrics, ``eval/summary.json``, ``eval/summary.md``, a figure)
goes to the study's parent run.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.executor.ledger import process_owner
from vaebench.executor.runs import FAILED, RunJob, RunSpec, execute, reuse_finished, threads_per_job
from vaebench.sets.tune.objective import divergence_guard
from vaebench.sets.tune.results import PointEvaluation, TuneResult, compare, summary_markdown
from vaebench.sets.tune.settings import PROTOCOL_METRICS, EventHook, TuneSettings
from vaebench.sets.tune.space import config_for

if TYPE_CHECKING:
    from vaebench.data import Dataset
    from vaebench.executor.runs import RunResult


Point = tuple[str, "int | None", RunConfig, dict[str, Any]]
"""An evaluated configuration: its entry name, its trial's number (None: the baseline), its configuration
on the evaluation labels, and the tags that say which it is."""


def evaluate(
    parent: tracking.RunHandle,
    settings: TuneSettings,
    base: RunConfig,
    best: list[FrozenTrial],
    eval_data: Dataset,
    experiment: str,
    uri: str,
    result: TuneResult,
    emit: EventHook,
    client: Any = None,
) -> None:
    """Re-train each best configuration (and the baseline) on the fresh seeds, scored on the eval labels,
    as runs of the executor (here, in ``jobs`` processes, or on the Dask ``client``'s workers)."""
    suite = f"tune:{settings.study_name}"
    points = _points(settings, base, best)
    data_hash = eval_data.content_hash()
    done = tracking.experiment_runs(experiment, f"tags.suite = '{suite}'")
    # On a cluster each worker divides its own machine's cores (vaebench.executor.cluster).
    threads = threads_per_job(settings.jobs) if client is None else None
    specs = _specs(points, settings, parent.run_id, suite, threads)
    # The baseline is not tuned: a finished run of the same configuration (the data's hash included) from
    # another study's evaluation is the same run, so studies of several models share it.
    reuse_from = [f"tags.suite = '{suite}'"] + (["tags.baseline = 'true'"] if settings.baseline else [])
    todo, runs = reuse_finished(specs, data_hash, experiment, reuse_from, with_metrics=True)
    if runs:
        emit(f"Reusing {len(runs)} finished evaluation run(s) (this study's, or the baseline's of another).")
    what = f"{len(best)} tuned configuration(s)" + (f" and {settings.baseline}" if settings.baseline else "")
    emit(
        f"Evaluating {what} on fresh seeds {settings.eval_seeds} with labels {settings.eval_label_key!r}: "
        f"{len(todo)} run(s) to train."
    )
    job = RunJob(parent.run_id, epoch_hook=divergence_guard)
    evaluated = execute(
        todo, job, jobs=settings.jobs, tracking_uri=uri, experiment=experiment, dataset=eval_data,
        cluster=client, on_retry=emit,
    )  # fmt: skip
    with contextlib.closing(evaluated):
        for run in evaluated:
            runs.append(run)
            emit(
                f"evaluated {points[run.spec.key][0]} seed {run.config.seed}: "
                + (run.reason or _score_line(run.metrics, settings.objective))
            )
    evaluations = _collect(points, runs, settings.eval_label_key or "")
    _retire_superseded(done, {spec.config.config_hash(data_hash) for spec in specs})
    if settings.baseline is not None:
        result.baseline = evaluations.pop()
    result.evaluations = evaluations
    compared = list(dict.fromkeys([settings.objective, *PROTOCOL_METRICS]))
    if result.baseline is not None:
        for point in evaluations:
            result.comparisons.extend(compare(point, result.baseline, compared))
    _log_evaluation_summary(parent, settings, result)


def _points(settings: TuneSettings, base: RunConfig, best: list[FrozenTrial]) -> list[Point]:
    """The best configuration(s), and the baseline, on the evaluation labels."""
    label = settings.eval_label_key
    points: list[Point] = []
    for trial in best:
        entry = (
            f"{settings.model} (tuned)"
            if len(best) == 1
            else f"{settings.model} (tuned, trial {trial.number})"
        )
        config = config_for(base, trial.params, label_key=label)
        points.append((entry, trial.number, config, {"tuned": "true", "trial_number": trial.number}))
    if settings.baseline is not None:
        config = base.with_settings(model=settings.baseline, label_key=label)
        points.append((settings.baseline, None, config, {"tuned": "false", "baseline": "true"}))
    return points


def _specs(
    points: list[Point], settings: TuneSettings, parent_run_id: str, suite: str, threads: int | None
) -> list[RunSpec]:
    """One run per point and fresh seed, keyed by the point's index."""
    specs: list[RunSpec] = []
    for index, (entry, _number, config, extra) in enumerate(points):
        for seed in settings.eval_seeds:
            seeded = config.with_settings(seed=seed, threads=config.threads or threads)
            tags = {
                "suite": suite,
                "suite_parent": parent_run_id,
                "entry": entry,
                "vaebench.role": "tune-eval",
                "study": settings.study_name,
                "tune_parent": parent_run_id,
                "eval_label_key": settings.eval_label_key,
                "tune_owner": process_owner(),
                **extra,
            }
            specs.append(RunSpec(seeded, tags, key=index))
    return specs


def _collect(points: list[Point], runs: list[RunResult], label: str) -> list[PointEvaluation]:
    """Each point's scores per seed (and the seeds that failed, with their reasons)."""
    evaluations = [
        PointEvaluation(entry, number, config.params(), label, [], [], {})
        for entry, number, config, _extra in points
    ]
    for run in sorted(runs, key=lambda r: (r.spec.key, r.config.seed)):
        point = evaluations[run.spec.key]
        if run.status == FAILED:
            point.failed.append(f"seed {run.config.seed}: {run.reason}")
            continue
        point.seeds.append(run.config.seed)
        point.run_ids.append(run.run_id)
        for name, value in run.metrics.items():
            point.per_seed.setdefault(name, []).append(value)
    return evaluations


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

    from vaebench.sets.tune import figures

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
        figure = figures.evaluation_figure(points, settings.objective, settings.eval_label_key or "")
        parent.log_figure(figure, "figures/evaluation.png")
        plt.close(figure)
        result.figures.append("figures/evaluation.png")
