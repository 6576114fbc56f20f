"""What a study found, as plain dataclasses, and the few functions that read them.

:class:`TuneResult` is what :func:`vaebench.sets.tune.tune` returns: the trials' summaries, the fresh-seed
:class:`PointEvaluation` of each best configuration and of the baseline, and their paired
:class:`Comparison`. :func:`best_trials` picks the best trial (or the Pareto front), :func:`compare` pairs a
configuration with the baseline on the seed, :func:`summary_markdown` writes the evaluation as a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from vaebench.results.stats import PairedDifference, paired_difference
from vaebench.sets.tune.settings import PROTOCOL_METRICS
from vaebench.sets.tune.storage import RUN_ID_ATTR


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
            trial.user_attrs.get(RUN_ID_ATTR),
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


@dataclass(frozen=True)
class Comparison(PairedDifference):
    """A tuned configuration (``entry``) against the baseline on ``metric``, paired on the seed."""

    entry: str
    baseline: str
    metric: str


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
    """Paired (on the seed) differences point - baseline, summarised by :func:`vaebench.results.stats.paired_difference`."""
    rows = []
    for metric in metrics:
        mine = dict(zip(point.seeds, point.per_seed.get(metric, []), strict=False))
        theirs = dict(zip(baseline.seeds, baseline.per_seed.get(metric, []), strict=False))
        diffs = np.asarray([mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))], dtype=float)
        rows.append(
            Comparison(
                entry=point.entry,
                baseline=baseline.entry,
                metric=metric,
                **asdict(paired_difference(diffs, baseline.entry)),
            )
        )
    return rows


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
