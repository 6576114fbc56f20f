"""``vaebench tune``: the typer command around :func:`vaebench.sets.tune.tune` (mounted by :mod:`vaebench.cli`).

``python -m vaebench.cli.tune`` runs the command on its own.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich.table import Table

from vaebench.cli.common import (
    DEFAULT_EXPERIMENT,
    Cluster,
    Experiment,
    TrackingUri,
    err,
    out,
    print_run_location,
    user_errors,
)
from vaebench.cli.options import one_data_source, part_options
from vaebench.sets.tune import (
    DEFAULT_OBJECTIVE,
    DEFAULT_STORAGE,
    EVAL_SEED_START,
    PROTOCOL_METRICS,
    TuneResult,
    TuneSettings,
    parse_set,
)
from vaebench.sets.tune import tune as run_study
from vaebench.tracking.uris import redact

_TUNING = "Tuning"
_HONESTY = "Honest evaluation"
_OWN = ("dataset", "data_path", "labels_path")
"""Settings of the data part that are the study's own (a study is tuned on one data source)."""

ModelName = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Model to tune (see `vaebench list`), or your own as package.module:Class."
    ),
]
Trials = Annotated[
    int, typer.Option(help="Total trials of the study; a continued study runs only the missing ones.")
]
Timeout = Annotated[float | None, typer.Option(help="Stop starting new trials after this many seconds.")]
Jobs = Annotated[
    int, typer.Option(help="Trials run at once, in separate processes sharing the storage and the cores.")
]
Objective = Annotated[
    str,
    typer.Option(help=f"Protocol score to maximise: {', '.join(PROTOCOL_METRICS)}.", rich_help_panel=_TUNING),
]
TuneLabelKey = Annotated[
    str | None,
    typer.Option(
        "--tune-label-key",
        help="Labels the objective is computed on (pbmc68k: louvain).",
        rich_help_panel=_TUNING,
    ),
]
MultiObjective = Annotated[
    bool,
    typer.Option(
        "--multi-objective",
        help="Also minimise training CPU seconds; the result is the Pareto front. Pruning is off "
        "(Optuna cannot prune multi-objective studies).",
        rich_help_panel=_TUNING,
    ),
]
FixedSettings = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Fix a setting as part.field=value or name=value (repeatable), removing it from the search "
        "space, e.g. --set model.latent_dim=6 --set training.epochs=200 (an option such as --epochs 200 "
        "fixes it too). Trials skip the 3-d t-SNE (it enters no score) unless --set tsne_3d=true.",
        rich_help_panel=_TUNING,
    ),
]
PruningInterval = Annotated[
    int,
    typer.Option(
        "--pruning-interval",
        help="Score the latent code every K epochs (k-means, 2 restarts) and stop trials below the "
        "median of earlier ones at the same epoch (Optuna's MedianPruner, after 5 trials, from epoch 2K "
        "on); 0 turns pruning off.",
        rich_help_panel=_TUNING,
    ),
]
SamplerSeed = Annotated[
    int | None,
    typer.Option(
        "--sampler-seed", help="Seed of Optuna's TPE sampler (repeatable studies).", rich_help_panel=_TUNING
    ),
]
Storage = Annotated[
    str,
    typer.Option(help="Optuna storage URL (SQLAlchemy), shared by parallel jobs.", rich_help_panel=_TUNING),
]
StudyName = Annotated[
    str | None,
    typer.Option(
        "--study-name",
        help="Default <model>-<dataset>-<objective>; the same name continues the study, after a crash too.",
        rich_help_panel=_TUNING,
    ),
]
EvaluateSeeds = Annotated[
    int,
    typer.Option(
        "--evaluate-seeds",
        help=f"Re-train the best configuration (each Pareto point) on N fresh seeds ({EVAL_SEED_START}, "
        f"{EVAL_SEED_START + 1}, ...; never the tuning seed) scored on --eval-label-key; 0 skips it.",
        rich_help_panel=_HONESTY,
    ),
]
EvalLabelKey = Annotated[
    str | None,
    typer.Option(
        "--eval-label-key",
        help="Labels the result is reported on, not those tuned on (pbmc68k: bulk_labels).",
        rich_help_panel=_HONESTY,
    ),
]
Baseline = Annotated[
    str,
    typer.Option(
        help="Model evaluated on the same fresh seeds for a paired comparison; 'none' skips it.",
        rich_help_panel=_HONESTY,
    ),
]


@part_options("data", "model", "training", "protocol", "execution", skip=("label_key",))
def tune(
    model: ModelName,
    trials: Trials = 50,
    timeout: Timeout = None,
    jobs: Jobs = 1,
    objective: Objective = DEFAULT_OBJECTIVE,
    tune_label_key: TuneLabelKey = None,
    multi_objective: MultiObjective = False,
    set_: FixedSettings = None,
    pruning_interval: PruningInterval = 20,
    sampler_seed: SamplerSeed = None,
    storage: Storage = DEFAULT_STORAGE,
    study_name: StudyName = None,
    evaluate_seeds: EvaluateSeeds = 5,
    eval_label_key: EvalLabelKey = None,
    baseline: Baseline = "pca",
    cluster: Cluster = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = DEFAULT_EXPERIMENT,
    given: dict[str, Any] | None = None,
) -> None:
    """Tune a model's hyperparameters with Optuna, then report the best on labels and seeds it never saw.

    Trials are nested MLflow runs under one parent run (with the optimisation history, parameter
    importances and, with --multi-objective, the Pareto front). Tuning uses one seed and the tuning labels;
    the chosen configuration is then re-trained on fresh seeds and scored on the evaluation labels.
    With --cluster each trial (and each evaluation run) is a task on the Dask workers, on a --storage they
    all reach. Run settings given as options (--epochs 200) are fixed as --set fixes them.
    """
    with user_errors():
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        given = given or {}
        one_data_source(given)
        source = {name: given.pop(name) for name in _OWN if name in given}
        settings = TuneSettings(
            model=model,
            trials=trials,
            dataset=source.get("dataset", TuneSettings.dataset if "data_path" not in source else None),
            data_path=source.get("data_path"),
            labels_path=source.get("labels_path"),
            tune_label_key=tune_label_key,
            eval_label_key=eval_label_key,
            objective=objective,
            multi_objective=multi_objective,
            fixed={**{name: as_text(value) for name, value in given.items()}, **parse_set(set_ or [])},
            storage=storage,
            study_name=study_name,
            timeout=timeout,
            jobs=jobs,
            pruning_interval=pruning_interval,
            sampler_seed=sampler_seed,
            evaluate_seeds=evaluate_seeds,
            baseline=None if baseline.lower() == "none" else baseline,
            cluster=cluster,
        ).resolved()
        run_and_print(settings, experiment, tracking_uri)


def run_and_print(settings: TuneSettings, experiment: str, tracking_uri: str | None) -> None:
    """Run the study, saying what it tunes first and what came of it after."""
    out.print(
        f"Tuning [bold]{settings.model}[/] on {settings.dataset_name}: {' and '.join(settings.objectives)} "
        f"on labels {settings.tune_label_key!r}, reported on {settings.eval_label_key!r}",
        highlight=False,
    )

    def on_event(message: str) -> None:
        err.print(redact(message), highlight=False, markup=False, soft_wrap=True)

    result = run_study(settings, experiment=experiment, tracking_uri=tracking_uri, on_event=on_event)
    print_result(result)


def as_text(value: Any) -> str:
    """A typed setting as the text ``--set`` would give it (widths and metrics comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def print_result(result: TuneResult) -> None:
    """The best trial(s), the fresh-seed evaluation and where everything is."""
    states = ", ".join(f"{n} {s.lower()}" for s, n in result.states.items() if n)
    out.print(
        f"Study [bold]{result.study_name}[/]: {states} ({result.trials_run} counted this time, "
        f"{result.trials_total} asked for in total)",
        highlight=False,
    )
    if result.best:
        title = "Pareto front" if len(result.objectives) > 1 else "Best trial (tuning labels, tuning seed)"
        table = Table(title=title, show_header=True, header_style="bold", title_justify="left")
        table.add_column("trial", justify="right")
        for name in result.objectives:
            table.add_column(name, justify="right")
        table.add_column("parameters")
        for trial in result.best:
            params = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()
            )
            table.add_row(str(trial.number), *(f"{v:.4f}" for v in trial.values or []), params)
        out.print(table)
    print_fresh_seeds(result)
    for note in result.notes:
        out.print(note, highlight=False)
    out.print(
        f"Optuna study [bold]{result.study_name}[/] in {result.storage} (optuna-dashboard {result.storage})",
        highlight=False,
    )
    out.print(f"Figures: {', '.join(result.figures) or 'none'}", highlight=False)
    print_run_location(result.experiment, result.parent_run_id, what="MLflow parent run")


def print_fresh_seeds(result: TuneResult) -> None:
    """The fresh-seed evaluation of the best configuration(s) and the baseline, and their comparison."""
    points = [*result.evaluations, *([result.baseline] if result.baseline else [])]
    if not points:
        return
    objective = result.objectives[0]
    label = points[0].label_key
    table = Table(
        title=f"Fresh seeds on labels {label!r} (mean ± sd)",
        show_header=True,
        header_style="bold",
        title_justify="left",
    )
    table.add_column("entry")
    table.add_column("seeds", justify="right")
    metrics = [
        objective,
        *(m for m in ("tsne_kmeans.nmi", "tsne_kmeans.ari", "latent.silhouette") if m != objective),
    ]
    for metric in metrics:
        table.add_column(metric, justify="right")
    for point in points:
        table.add_row(
            point.entry,
            str(len(point.seeds)),
            *(f"{point.mean(m):.3f} ± {point.sd(m):.3f}" for m in metrics),
        )
    out.print(table)
    for point in points:
        for failure in point.failed:
            err.print(f"FAILED {point.entry} {redact(failure)}", highlight=False, markup=False)
    for c in result.comparisons:
        if c.metric == objective:
            p = "n/a" if math.isnan(c.wilcoxon_p) else f"{c.wilcoxon_p:.3g}"
            out.print(
                f"{c.entry} - {c.baseline}: {c.metric} {c.mean_difference:+.3f}, 95% interval "
                f"[{c.ci95_low:+.3f}, {c.ci95_high:+.3f}] over {c.n_pairs} paired seeds: [bold]{c.verdict}[/] "
                f"(Wilcoxon p = {p}; with {c.n_pairs} pairs it cannot go below {2 / 2**c.n_pairs:.3g})",
                highlight=False,
            )


def main() -> None:  # pragma: no cover - ``python -m vaebench.cli.tune``
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(tune)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
