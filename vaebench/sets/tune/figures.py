"""Figures of a tuning study: optimisation history, parameter importances, Pareto front, evaluation.

The first three are Optuna's own matplotlib plots (Akiba et al. 2019, KDD), drawn headless with Agg in
Optuna's ggplot style, which stays in their figures; parameter importances are fANOVA importances (Hutter,
Hoos & Leyton-Brown 2014, ICML), Optuna's default.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

if TYPE_CHECKING:
    from vaebench.sets.tune.results import PointEvaluation


class FigureSkipped(Exception):
    """A figure that cannot be drawn from this study (too few complete trials, say); the message says why."""


@contextmanager
def _optuna_plot() -> Iterator[None]:
    """Around one of Optuna's plots: its warnings are silenced, and its ``plt.style.use("ggplot")``, which
    would restyle every later figure of the process (grey axes in the evaluation figure, a report's, a run's
    maps), is undone when the figure is made."""
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _figure_of(axes: Any) -> Figure:
    ax = np.asarray(axes).ravel()[0] if not hasattr(axes, "figure") else axes
    figure = ax.figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    return figure


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _first_objective(objectives: Sequence[str]) -> Callable[[optuna.trial.FrozenTrial], float] | None:
    """Optuna's plots need an explicit target in multi-objective studies: the first objective."""
    return (lambda trial: trial.values[0]) if len(objectives) > 1 else None


def history_figure(study: optuna.Study, objectives: Sequence[str]) -> Figure:
    """The objective of every complete trial in order, with the best so far (first objective only)."""
    if not _complete(study):
        raise FigureSkipped("no trial has completed")
    from optuna.visualization.matplotlib import plot_optimization_history

    with _optuna_plot():
        axes = plot_optimization_history(
            study, target=_first_objective(objectives), target_name=objectives[0]
        )
        figure = _figure_of(axes)
    figure.axes[0].set_title(f"{study.study_name}: optimisation history")
    return figure


def importance_figure(study: optuna.Study, objectives: Sequence[str]) -> Figure:
    """fANOVA importance of each searched parameter for the first objective."""
    complete = _complete(study)
    if len(complete) < 2:
        raise FigureSkipped(
            f"parameter importances need at least 2 complete trials, the study has {len(complete)}"
        )
    from optuna.visualization.matplotlib import plot_param_importances

    with _optuna_plot():
        try:
            axes = plot_param_importances(
                study, target=_first_objective(objectives), target_name=objectives[0]
            )
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            raise FigureSkipped(f"parameter importances could not be computed ({error})") from None
        figure = _figure_of(axes)
    figure.axes[0].set_title(f"{study.study_name}: parameter importances (fANOVA)")
    return figure


def pareto_figure(study: optuna.Study, objectives: Sequence[str]) -> Figure:
    """Every complete trial in the plane of the two objectives, the Pareto front highlighted."""
    if not _complete(study):
        raise FigureSkipped("no trial has completed")
    from optuna.visualization.matplotlib import plot_pareto_front

    with _optuna_plot():
        axes = plot_pareto_front(study, target_names=list(objectives))
        figure = _figure_of(axes)
    figure.axes[0].set_title(f"{study.study_name}: Pareto front")
    return figure


def evaluation_figure(points: Sequence[PointEvaluation], objective: str, label_key: str) -> Figure:
    """The objective on the evaluation labels, one dot per fresh seed, per configuration and the baseline."""
    figure, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(points) + 2), 4.5))
    for x, point in enumerate(points):
        values = np.asarray(point.per_seed.get(objective, []), dtype=float)
        ax.scatter(np.full(values.size, x), values, alpha=0.7, zorder=3)
        if values.size:
            ax.errorbar(
                x + 0.15,
                values.mean(),
                yerr=values.std(ddof=1) if values.size > 1 else 0,
                fmt="o",
                color="black",
                capsize=4,
            )
    ax.set_xticks(range(len(points)), [p.entry for p in points], rotation=15, ha="right")
    ax.set_ylabel(f"{objective} on {label_key!r}")
    seeds = max((len(p.seeds) for p in points), default=0)
    ax.set_title(
        f"{seeds} fresh seeds, scored on {label_key!r}\n(dots: seeds; black: mean ± sd)", fontsize=11
    )
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure
