"""Reports over finished runs: tables with the noise stated, the study's figures over seeds, paired tests.

Every number is a mean over seeds with its standard deviation and a 95% t-interval, and says how many
seeds stand behind it. Each model is compared with the ``pca`` baseline seed by seed (paired on the seed):
the 95% t-interval of the mean paired difference and the Wilcoxon signed-rank test (Wilcoxon 1945).
With n paired seeds the exact two-sided Wilcoxon p-value cannot go below 2 / 2**n (0.0625 for 5 seeds),
so the verdict "beyond noise" rests on the t-interval of the difference excluding zero, and the Wilcoxon
p-value is reported beside it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vaebench import tracking
from vaebench.data.dataset import NO_LABELS
from vaebench.errors import VaebenchError
from vaebench.evaluate import score_heatmap
from vaebench.evaluate.collapse import ACTIVE_FRACTION, ACTIVE_UNITS, KL_TOTAL, collapse_message, run_name
from vaebench.evaluate.figures import label_map_axes, label_palette, save_png
from vaebench.evaluate.metrics import BIO, METRICS, STRUCTURE
from vaebench.results.scaling import (
    CONTROLS,
    GROUPS,
    TOTAL,
    add_scaled_scores,
    aggregate_name,
    scaled_columns,
)
from vaebench.results.stats import holm_adjusted, paired_difference, t_interval
from vaebench.results.tables import results_table_figure

SCORES = ("tsne_kmeans.nmi", "tsne_kmeans.ari", "tsne_kmeans.hom", "tsne_kmeans.com")
SUMMARY_METRICS = (
    *SCORES,
    "latent_kmeans.nmi",
    "latent_kmeans.ari",
    "latent_kmeans.hom",
    "latent_kmeans.com",
    "latent.silhouette",
    "leiden.nmi",
    "leiden.ari",
    "latent.asw_label",
    "latent.clisi",
    "latent.isolated_label",
    "structure.trustworthiness",
    "structure.knn_preservation",
    ACTIVE_UNITS,
    ACTIVE_FRACTION,
    KL_TOTAL,
    "train.seconds",
    "train.cpu_seconds",
)
LOSS_PART_PREFIX = "train.loss."
"""Each part of a torch model's loss is logged per epoch as ``train.loss.<part>``; runs keep the last epoch's."""
BETA_KL = "train.loss.beta_kl"
RAW_KL = "train.kl"
"""The KL itself, ``beta_kl / beta``: what a beta sweep trades against the reconstruction."""
BASELINE = "pca"
RANK_METRIC = "tsne_kmeans.ari"
STRUCTURE_SCORE = "structure.mean"
"""Without labels, runs are ranked on the mean of their structure scores (trustworthiness, kNN kept)."""
PAIRED_METRICS = (
    "tsne_kmeans.ari",
    "tsne_kmeans.nmi",
    "leiden.ari",
    "leiden.nmi",
    "latent.asw_label",
    "latent.clisi",
    "latent.isolated_label",
    "structure.trustworthiness",
    "structure.knn_preservation",
    aggregate_name(BIO),
    aggregate_name(STRUCTURE),
    aggregate_name(TOTAL),
)
"""Compared with the baseline, paired on the seed; Holm's correction runs over all of them at once."""


def tidy_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: entry (model, or the tuned entry's name), model, beta (NaN without one), seed, metrics."""
    if runs.empty:
        raise VaebenchError(
            "There are no finished runs to report on; run a suite first (vaebench run --all)."
        )
    frame = pd.DataFrame({"run_id": runs["run_id"]})
    model = runs.get("tags.model", runs.get("params.model"))
    frame["model"] = model.astype(str)
    entry = runs["tags.entry"] if "tags.entry" in runs else pd.Series(np.nan, index=runs.index)
    frame["entry"] = entry.fillna(frame["model"]).astype(str)
    beta = runs["tags.beta"] if "tags.beta" in runs else pd.Series(np.nan, index=runs.index)
    frame["beta"] = pd.to_numeric(beta, errors="coerce")
    frame["seed"] = pd.to_numeric(runs.get("params.seed", runs.get("tags.seed")), errors="coerce").astype(
        "Int64"
    )
    frame["dataset"] = runs.get("params.dataset.name", pd.Series("", index=runs.index)).fillna("")
    frame["label_key"] = runs.get("params.dataset.label_key", pd.Series("", index=runs.index)).fillna("")
    dims = runs.get("tags.latent_dims", runs.get("params.latent_dim", pd.Series(np.nan, index=runs.index)))
    frame["latent_dims"] = pd.to_numeric(dims, errors="coerce")
    for metric in SUMMARY_METRICS:
        column = f"metrics.{metric}"
        frame[metric] = pd.to_numeric(runs[column], errors="coerce") if column in runs else np.nan
    for column in sorted(c for c in runs.columns if c.startswith(f"metrics.{LOSS_PART_PREFIX}")):
        frame[column.removeprefix("metrics.")] = pd.to_numeric(runs[column], errors="coerce")
    if BETA_KL in frame:
        frame[RAW_KL] = frame[BETA_KL] / frame["beta"].where(frame["beta"] > 0)
    return frame


def label_metric_names() -> set[str]:
    """The logged names of every score that needs labels (absent from runs on data without labels)."""
    return {name for metric in METRICS.values() if metric.needs_labels for name in metric.logged_names}


def has_labels(frame: pd.DataFrame) -> bool:
    """Whether any run of ``frame`` was scored against labels (data without labels log ``none``)."""
    return bool((frame["label_key"] != NO_LABELS).any()) if "label_key" in frame else True


def with_structure_score(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with :data:`STRUCTURE_SCORE`, each run's mean of the structure scores it has."""
    columns = [m for m in SUMMARY_METRICS if m.startswith(f"{STRUCTURE}.") and m in frame]
    return frame.assign(**{STRUCTURE_SCORE: frame[columns].mean(axis=1, skipna=True) if columns else np.nan})


def collapse_lines(frame: pd.DataFrame) -> list[str]:
    """One sentence per run of a variational model (one that logged ``latent.kl``) with fewer than half of
    its latent dimensions active (Burda et al. 2016; :mod:`vaebench.evaluate.collapse`)."""
    lines = []
    needed = {KL_TOTAL, ACTIVE_UNITS, "latent_dims"}
    if not needed <= set(frame.columns):
        return lines
    runs = frame.dropna(subset=list(needed)).sort_values(["entry", "beta", "seed"], na_position="first")
    for _, run in runs.iterrows():
        beta = None if pd.isna(run["beta"]) else float(run["beta"])
        name = run_name(str(run["entry"]), beta, None if pd.isna(run["seed"]) else int(run["seed"]))
        line = collapse_message(name, int(run[ACTIVE_UNITS]), int(run["latent_dims"]))
        if line is not None:
            lines.append(line)
    return lines


def loss_part_columns(frame: pd.DataFrame) -> list[str]:
    """The final-epoch loss parts the runs logged (``train.loss.<part>``), then the raw KL where there is one."""
    parts = [c for c in frame.columns if c.startswith(LOSS_PART_PREFIX) and frame[c].notna().any()]
    return parts + ([RAW_KL] if RAW_KL in frame and frame[RAW_KL].notna().any() else [])


def group_key(frame: pd.DataFrame) -> pd.Series:
    """``entry`` for models without a beta, ``entry (beta=B)`` for the others."""
    return frame.apply(
        lambda r: r["entry"] if pd.isna(r["beta"]) else f"{r['entry']} (beta={r['beta']:.3g})", axis=1
    )


def summarise(frame: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Mean, standard deviation and 95% t-interval over seeds of every metric, per (entry, beta)."""
    rows = []
    for (entry, beta), group in frame.groupby(["entry", "beta"], dropna=False, sort=True):
        row: dict[str, object] = {"entry": entry, "beta": beta, "n_seeds": int(group["seed"].nunique())}
        for metric in metrics:
            values = group[metric].to_numpy(dtype=float)
            low, high = t_interval(values)
            row[f"{metric} mean"] = np.nanmean(values) if np.isfinite(values).any() else np.nan
            row[f"{metric} sd"] = np.nanstd(values, ddof=1) if np.isfinite(values).sum() > 1 else np.nan
            row[f"{metric} ci95_low"] = low
            row[f"{metric} ci95_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(summary: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> str:
    """The summary as a Markdown table of ``mean ± sd [95% interval]`` cells."""
    lines = ["| entry | beta | seeds | " + " | ".join(metrics) + " |", "|" + "---|" * (3 + len(metrics))]
    for _, row in summary.iterrows():
        beta = "" if pd.isna(row["beta"]) else f"{row['beta']:.3g}"
        cells = []
        for metric in metrics:
            mean, sd = row[f"{metric} mean"], row[f"{metric} sd"]
            low, high = row[f"{metric} ci95_low"], row[f"{metric} ci95_high"]
            digits = 1 if metric.endswith("seconds") else 3
            cell = f"{mean:.{digits}f}"
            if not pd.isna(sd):
                cell += f" ± {sd:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
            cells.append(cell)
        lines.append(f"| {row['entry']} | {beta} | {row['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_against_baseline(
    frame: pd.DataFrame,
    metrics: Sequence[str] = ("tsne_kmeans.ari", "tsne_kmeans.nmi"),
    baseline: str = BASELINE,
) -> pd.DataFrame:
    """Each (entry, beta) but the controls against the baseline, paired on the seed: mean difference, its
    95% t-interval, the Wilcoxon signed-rank p-value, whether the interval excludes zero, and the paired
    t-test's p-value adjusted with Holm's method over every comparison of the table (``holm_p``,
    ``holm_verdict``)."""
    base = frame[frame["entry"] == baseline]
    rows = []
    if base.empty:
        return pd.DataFrame(rows)
    compared = frame[(frame["entry"] != baseline) & ~frame["entry"].isin(CONTROLS)]
    for (entry, beta), group in compared.groupby(["entry", "beta"], dropna=False, sort=True):
        for metric in metrics:
            if metric not in frame or frame[metric].isna().all():
                continue
            paired = (
                group.set_index("seed")[metric]
                .to_frame("model")
                .join(base.groupby("seed")[metric].mean().to_frame("baseline"), how="inner")
                .dropna()
            )
            diff = (paired["model"] - paired["baseline"]).to_numpy(dtype=float)
            rows.append(
                {"entry": entry, "beta": beta, "metric": metric, **asdict(paired_difference(diff, baseline))}
            )
    paired = pd.DataFrame(rows)
    if not paired.empty:
        paired["holm_p"] = holm_adjusted(paired["t_p"].to_numpy())
        paired["holm_verdict"] = [
            "too few seeds"
            if np.isnan(p)
            else (f"{'better' if d > 0 else 'worse'} than {baseline}" if p < 0.05 else "within noise")
            for p, d in zip(paired["holm_p"], paired["mean_difference"], strict=True)
        ]
    return paired


def _subtitle(frame: pd.DataFrame) -> str:
    datasets = ", ".join(sorted(set(frame["dataset"]) - {""})) or "data"
    labels = ", ".join(sorted(set(frame["label_key"]) - {"", NO_LABELS})) or "labels"
    labels = f"labels {labels}" if has_labels(frame) else "no labels"
    seeds = frame.groupby(["entry", "beta"], dropna=False)["seed"].nunique()
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    return f"{datasets}, {labels}, {n} seeds"


def heatmap_figure(summary: pd.DataFrame, subtitle: str) -> Figure:
    """The study's heatmap (models x NMI/ARI/HOM/COM of k-means on the 2-d t-SNE), of means over seeds."""
    table = pd.DataFrame(
        {metric.split(".")[1].upper(): summary[f"{metric} mean"].to_numpy() for metric in SCORES},
        index=[
            e if pd.isna(b) else f"{e} (beta={b:.3g})"
            for e, b in zip(summary["entry"], summary["beta"], strict=True)
        ],
    )
    return score_heatmap(table, f"Mean scores of k-means on the 2-d t-SNE\n{subtitle}")


def beta_figure(summary: pd.DataFrame, metric: str, subtitle: str) -> Figure:
    """Score against beta per model, with error bars of one standard deviation over seeds."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    # Ticks at the betas of the grid (entries run at several betas); a tuned entry's single beta is a
    # point of its own, left unlabelled so that its ticks do not crowd the grid's.
    grid = summary.groupby("entry")["beta"].transform("nunique") > 1
    betas = summary.loc[grid, "beta"].dropna()
    if betas.empty:
        betas = summary["beta"].dropna()
    for entry, group in summary.groupby("entry", sort=True):
        mean, sd = group[f"{metric} mean"], group[f"{metric} sd"].fillna(0)
        if group["beta"].isna().all():
            ax.axhline(
                mean.iloc[0], linestyle="--", linewidth=1.2, label=f"{entry} (no beta)", color=_color(entry)
            )
            ax.axhspan(mean.iloc[0] - sd.iloc[0], mean.iloc[0] + sd.iloc[0], alpha=0.12, color=_color(entry))
        else:
            ax.errorbar(group["beta"], mean, yerr=sd, marker="o", capsize=4, label=entry, color=_color(entry))
    if not betas.empty:
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(betas)), [f"{b:.3g}" for b in sorted(set(betas))])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("beta (weight of the KL term)")
    ax.set_ylabel(f"{metric} (mean ± sd over seeds)")
    ax.set_title(f"{metric} against beta\n{subtitle}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def cost_figure(frame: pd.DataFrame, metric: str, subtitle: str) -> Figure:
    """Score against training CPU seconds, one point per run."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for entry, group in frame.groupby("entry", sort=True):
        ax.scatter(group["train.cpu_seconds"], group[metric], label=entry, alpha=0.8, color=_color(entry))
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("training CPU seconds (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against training cost, one point per run\n{subtitle}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


_ENTRY_COLORS: dict[str, tuple[float, ...]] = {}


def _color(entry: str) -> tuple[float, ...]:
    if entry not in _ENTRY_COLORS:
        _ENTRY_COLORS[entry] = plt.get_cmap("tab10")(len(_ENTRY_COLORS) % 10)
    return _ENTRY_COLORS[entry]


def best_runs(frame: pd.DataFrame, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Per entry, the run at its best beta (by mean ``metric`` over seeds) whose score is that beta's median."""
    picks = []
    for _entry, group in frame.groupby("entry", sort=True):
        means = group.groupby("beta", dropna=False)[metric].mean()
        best_beta = means.idxmax()
        at_best = group[group["beta"].isna()] if pd.isna(best_beta) else group[group["beta"] == best_beta]
        at_best = at_best.sort_values(metric)
        picks.append(at_best.iloc[(len(at_best) - 1) // 2])
    return pd.DataFrame(picks)


def tsne_grid_figure(panels: list[tuple[str, pd.DataFrame]], subtitle: str) -> Figure:
    """One 2-d t-SNE panel per model at its best beta, coloured by cell type, one shared legend (maps of
    cells without labels in one colour, without a legend)."""
    panels = [(title, table if "label" in table else table.assign(label="cells")) for title, table in panels]
    n = len(panels)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    colors = label_palette(list(set().union(*(set(table["label"].astype(str)) for _, table in panels))))
    labels = list(colors)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.5 * cols + 2.5, 5 * rows), squeeze=False, layout="constrained"
    )
    for ax, (title, table) in zip(axes.flat, panels, strict=False):
        for label in labels:
            cells = table[table["label"].astype(str) == label]
            ax.scatter(cells["x"], cells["y"], s=6, color=colors[label], label=label, linewidths=0)
        ax.set_title(title)
        label_map_axes(ax)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=colors[label], label=label) for label in labels
    ]
    if labels != ["cells"]:
        fig.legend(handles=handles, loc="outside right center", frameon=False, title="cell type")
    fig.suptitle(f"2-d t-SNE of each model at its best beta\n{subtitle}")
    return fig


@dataclass
class Report:
    files: list[Path]
    summary: pd.DataFrame
    paired: pd.DataFrame
    collapsed: list[str] = field(default_factory=list)
    """One sentence per run whose posterior collapsed (:func:`collapse_lines`)."""


def write_report(
    frame: pd.DataFrame, out_dir: Path, panels: list[tuple[str, pd.DataFrame]] | None = None
) -> Report:
    """Write the tables (Markdown, CSV) and figures (PNG) of ``frame`` to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subtitle = _subtitle(frame)
    labelled = has_labels(frame)
    shown: tuple[str, ...] = SUMMARY_METRICS
    rank = RANK_METRIC
    if not labelled:  # ranked on what needs no labels; label scores are absent, not zero
        frame = with_structure_score(frame)
        rank = STRUCTURE_SCORE
        shown = (STRUCTURE_SCORE, *(m for m in SUMMARY_METRICS if m not in label_metric_names()))
    frame = add_scaled_scores(frame)
    summary = summarise(frame, (*shown, *scaled_columns()))
    paired = paired_against_baseline(frame, PAIRED_METRICS)
    files: list[Path] = []

    def save_text(name: str, text: str) -> None:
        path = out_dir / name
        path.write_text(text)
        files.append(path)

    def save_figure(name: str, figure: Figure) -> None:
        path = out_dir / name
        save_png(figure, path, dpi=110)
        plt.close(figure)
        files.append(path)

    save_text("summary.csv", summary.to_csv(index=False))
    header = f"# vaebench report\n\n{subtitle}. Cells: mean ± sd [95% t-interval] over seeds.\n\n"
    if not labelled:
        header += _no_labels_markdown(summary)
    collapsed = collapse_lines(frame)
    collapse = "".join(f"- {line}\n" for line in collapsed)
    collapse = f"\n## Posterior collapse\n\n{collapse}" if collapsed else ""
    save_text("summary.md", header + summary_markdown(summary, shown) + collapse)
    scaled = summary[f"{aggregate_name(TOTAL)} mean"].notna().any()  # the controls are in the report
    if scaled:
        save_text("scaled.md", _scaled_markdown(summary, subtitle))
    if not paired.empty:
        save_text("paired_vs_pca.csv", paired.to_csv(index=False))
        save_text("paired_vs_pca.md", _paired_markdown(paired))
    runs_table = frame.drop(columns=[c for c in ("dataset", "label_key", "latent_dims") if c in frame])
    save_text("runs.csv", runs_table.to_csv(index=False))
    if labelled:
        save_figure("heatmap.png", heatmap_figure(summary, subtitle))
    if scaled:
        save_figure("results_table.png", results_table_figure(summary, subtitle))
    for metric in (*SCORES, "latent.silhouette") if labelled else (STRUCTURE_SCORE,):
        if f"{metric} mean" in summary and summary[f"{metric} mean"].notna().any():
            save_figure(f"beta_{metric}.png", beta_figure(summary, metric, subtitle))
    save_figure(f"cost_{rank}.png", cost_figure(frame, rank, subtitle))
    parts = loss_part_columns(frame)
    if parts:
        trained = frame[frame[parts].notna().any(axis=1)]
        part_summary = summarise(trained, parts)
        save_text("loss_parts.csv", part_summary.to_csv(index=False))
        save_text("loss_parts.md", _loss_parts_markdown(part_summary, parts, subtitle))
        for part in parts:
            save_figure(f"beta_{part}.png", beta_figure(part_summary, part, subtitle))
    if panels:
        save_figure("tsne_best.png", tsne_grid_figure(panels, subtitle))
    return Report(files, summary, paired, collapsed)


def _no_labels_markdown(summary: pd.DataFrame) -> str:
    """What a report on data without labels scores, and its entries ranked on the structure kept."""
    lines = [
        "No labels: label scores (k-means, Leiden, silhouette, ASW, cLISI, isolated label) are skipped, not",
        f"zero; entries are ranked on {STRUCTURE_SCORE}, the mean of trustworthiness and kNN preservation.",
        "",
        f"| rank | entry | beta | seeds | {STRUCTURE_SCORE} | structure.trustworthiness | "
        "structure.knn_preservation | latent.active_units |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = summary.sort_values(f"{STRUCTURE_SCORE} mean", ascending=False, na_position="last")
    for rank, (_, row) in enumerate(order.iterrows(), start=1):
        beta = "" if pd.isna(row["beta"]) else f"{row['beta']:.3g}"
        cells = [
            f"{row[f'{m} mean']:.3f}"
            for m in (
                STRUCTURE_SCORE,
                "structure.trustworthiness",
                "structure.knn_preservation",
                ACTIVE_UNITS,
            )
        ]
        lines.append(f"| {rank} | {row['entry']} | {beta} | {row['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n"


def _paired_markdown(paired: pd.DataFrame) -> str:
    lines = [
        "# Each model against pca, paired on the seed",
        "",
        "Difference = model - pca. 'beyond noise' means the 95% t-interval of the mean paired difference",
        "excludes zero. With n pairs the exact Wilcoxon p cannot fall below 2/2^n (0.0625 for n = 5).",
        f"Holm: the paired t-test's p-value adjusted with Holm's method over all {len(paired)} comparisons",
        "of this table (entries x betas x metrics); its verdict keeps the family-wise error rate at 5%.",
        "",
        "| entry | beta | metric | pairs | mean difference | 95% interval | Wilcoxon p | verdict | Holm p | "
        "verdict after Holm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in paired.iterrows():
        beta = "" if pd.isna(r["beta"]) else f"{r['beta']:.3g}"
        lines.append(
            f"| {r['entry']} | {beta} | {r['metric']} | {r['n_pairs']} | {r['mean_difference']:+.3f} | "
            f"[{r['ci95_low']:+.3f}, {r['ci95_high']:+.3f}] | {r['wilcoxon_p']:.3g} | {r['verdict']} | "
            f"{r['holm_p']:.3g} | {r['holm_verdict']} |"
        )
    return "\n".join(lines) + "\n"


def _loss_parts_markdown(summary: pd.DataFrame, parts: Sequence[str], subtitle: str) -> str:
    """The final epoch's training loss, part by part, of every trained entry and beta."""
    lines = [
        "# The parts of the training loss at the last epoch",
        "",
        f"{subtitle}. Each part is a mean over the cells of the last epoch (the parts of a run sum to its",
        f"loss); {RAW_KL} is the KL divergence itself, {BETA_KL} / beta. Cells: mean ± sd [95% t-interval]",
        "over seeds.",
        "",
        summary_markdown(summary, parts),
    ]
    return "\n".join(lines)


def _scaled_markdown(summary: pd.DataFrame, subtitle: str) -> str:
    """The aggregates per entry (mean ± sd [95% t-interval] over seeds) and the controls' raw means."""
    aggregates = [aggregate_name(g) for g in (*GROUPS, TOTAL)]
    lines = [
        "# Scores scaled between the controls",
        "",
        f"{subtitle}. Each metric is scaled as Open Problems does, (x - worst control) / (best control -",
        f"worst control), with the controls {' and '.join(CONTROLS)} (their means over seeds); training cost",
        "between the cheapest (1) and dearest (0) entry on log seconds. An aggregate is the mean of its",
        "group's scaled scores in each run; total = mean of bio-conservation and structure. Groups: "
        + "; ".join(f"{g}: {', '.join(m)}" for g, m in GROUPS.items())
        + ".",
        "",
        summary_markdown(summary, aggregates),
    ]
    return "\n".join(lines)


def tsne_panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The logged 2-d t-SNE of each model's run at its best beta (by the structure score without labels)."""
    panels = []
    labelled = has_labels(frame)
    rank, short = (RANK_METRIC, "ARI") if labelled else (STRUCTURE_SCORE, "structure")
    frame = frame if labelled else with_structure_score(frame)
    for _, run in best_runs(frame, rank).iterrows():
        text = tracking.load_artifact_text(run["run_id"], "latent/tsne2d.csv")
        if text is None:
            continue
        beta = "" if pd.isna(run["beta"]) else f", beta={run['beta']:.3g}"
        title = f"{run['entry']}{beta}, seed {run['seed']} ({short} {run[rank]:.2f})"
        panels.append((title, pd.read_csv(io.StringIO(text))))
    return panels


def suite_run_ids(parent_run_id: str) -> list[str]:
    """The runs a suite invocation covers: those it trained and those it found already finished."""
    text = tracking.load_artifact_text(parent_run_id, "suite/grid.json")
    if text is None:
        raise VaebenchError(f"Run {parent_run_id} is not a finished suite run (it has no suite/grid.json).")
    return [p["run_id"] for p in json.loads(text)["points"] if p["run_id"] and p["status"] != "failed"]


def report_suite(
    parent_run_id: str,
    out_dir: Path,
    experiment: str | None = None,
    on_collapse: Callable[[str], None] | None = None,
) -> list[Path]:
    """Report on one suite invocation's runs, write it to ``out_dir`` and log it to the suite's parent run;
    ``on_collapse`` is told each run whose posterior collapsed, in one sentence."""
    frame = tidy_runs(tracking.get_runs(suite_run_ids(parent_run_id)))
    frame = pd.concat([frame, _tuned_runs_beside(frame, experiment)], ignore_index=True)
    report = write_report(frame, out_dir, tsne_panels(frame))
    parent = tracking.run_handle(parent_run_id)
    for path in report.files:
        parent.log_file(path, "report")
    for line in report.collapsed if on_collapse is not None else ():
        on_collapse(line)
    return report.files


def _tuned_runs_beside(frame: pd.DataFrame, experiment: str | None) -> pd.DataFrame:
    """Evaluation runs of tuned models on the same dataset and labels, to stand beside the defaults, with
    the baseline runs of their fresh seeds (so that the paired comparison has its pairs).

    A seed's run of an entry that the suite already has (the suite's own ``pca``, say) is not counted twice.
    """
    if not experiment:
        return pd.DataFrame()
    tuned = tracking.experiment_runs(
        experiment, "tags.`vaebench.role` = 'tune-eval' AND tags.tuned != 'superseded'"
    )
    if tuned.empty:
        return pd.DataFrame()
    tuned = tidy_runs(tuned)
    same = tuned["dataset"].isin(set(frame["dataset"])) & tuned["label_key"].isin(set(frame["label_key"]))
    tuned = tuned[same]
    known = set(zip(frame["entry"], frame["beta"].fillna(-1.0), frame["seed"], strict=True))
    fresh = [
        key not in known
        for key in zip(tuned["entry"], tuned["beta"].fillna(-1.0), tuned["seed"], strict=True)
    ]
    return tuned[fresh].drop_duplicates(subset=["entry", "beta", "seed"])


def report_experiment(
    experiment: str,
    out_dir: Path,
    suite_run: str | None = None,
    on_collapse: Callable[[str], None] | None = None,
) -> list[Path]:
    """Report on a suite run (``suite_run``), or on the latest suite run of ``experiment``.

    MLflow must already be configured (:func:`vaebench.tracking.configure`).
    """
    parent = suite_run or tracking.latest_run(
        experiment, f"attributes.status = '{tracking.FINISHED}' AND tags.`vaebench.role` = 'suite'"
    )
    if parent is None:
        raise VaebenchError(
            f"Experiment {experiment!r} has no finished suite run; run one with vaebench run --all."
        )
    return report_suite(parent, out_dir, experiment, on_collapse)
