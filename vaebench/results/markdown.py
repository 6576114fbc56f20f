"""The report's tables as Markdown: every cell ``mean ± sd [95% t-interval]`` over seeds, the noise stated."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from vaebench.evaluate.collapse import ACTIVE_UNITS
from vaebench.results.records import BETA_KL, RAW_KL
from vaebench.results.scaling import CONTROLS, GROUPS, TOTAL, aggregate_name
from vaebench.results.tables import STRUCTURE_SCORE, SUMMARY_METRICS


def _beta(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.3g}"


def summary_markdown(summary: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> str:
    """The summary (:func:`vaebench.results.tables.summarise`) as a table of ``mean ± sd [95% interval]``."""
    lines = ["| entry | beta | seeds | " + " | ".join(metrics) + " |", "|" + "---|" * (3 + len(metrics))]
    for _, row in summary.iterrows():
        cells = []
        for metric in metrics:
            mean, sd = row[f"{metric} mean"], row[f"{metric} sd"]
            low, high = row[f"{metric} ci95_low"], row[f"{metric} ci95_high"]
            digits = 1 if metric.endswith("seconds") else 3
            cell = f"{mean:.{digits}f}"
            if not pd.isna(sd):
                cell += f" ± {sd:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
            cells.append(cell)
        lines.append(
            f"| {row['entry']} | {_beta(row['beta'])} | {row['n_seeds']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def summary_page(
    summary: pd.DataFrame, metrics: Sequence[str], subtitle: str, labelled: bool, collapsed: Sequence[str]
) -> str:
    """``summary.md``: the header, the ranking on structure without labels, the table, the collapsed runs."""
    header = f"# vaebench report\n\n{subtitle}. Cells: mean ± sd [95% t-interval] over seeds.\n\n"
    if not labelled:
        header += no_labels_markdown(summary)
    collapse = "".join(f"- {line}\n" for line in collapsed)
    collapse = f"\n## Posterior collapse\n\n{collapse}" if collapsed else ""
    return header + summary_markdown(summary, metrics) + collapse


def no_labels_markdown(summary: pd.DataFrame) -> str:
    """What a report on data without labels scores, and its entries ranked on the structure kept."""
    shown = (STRUCTURE_SCORE, "structure.trustworthiness", "structure.knn_preservation", ACTIVE_UNITS)
    lines = [
        "No labels: label scores (k-means, Leiden, silhouette, ASW, cLISI, isolated label) are skipped, not",
        f"zero; entries are ranked on {STRUCTURE_SCORE}, the mean of trustworthiness and kNN preservation.",
        "",
        f"| rank | entry | beta | seeds | {' | '.join(shown)} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = summary.sort_values(f"{STRUCTURE_SCORE} mean", ascending=False, na_position="last")
    for rank, (_, row) in enumerate(order.iterrows(), start=1):
        cells = [f"{row[f'{m} mean']:.3f}" for m in shown]
        lines.append(
            f"| {rank} | {row['entry']} | {_beta(row['beta'])} | {row['n_seeds']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n\n"


def paired_markdown(paired: pd.DataFrame) -> str:
    """The paired comparisons with the baseline (:func:`vaebench.results.tables.paired_against_baseline`),
    with what 'beyond noise' and Holm's adjustment mean (:mod:`vaebench.results.stats`)."""
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
        lines.append(
            f"| {r['entry']} | {_beta(r['beta'])} | {r['metric']} | {r['n_pairs']} | {r['mean_difference']:+.3f} | "
            f"[{r['ci95_low']:+.3f}, {r['ci95_high']:+.3f}] | {r['wilcoxon_p']:.3g} | {r['verdict']} | "
            f"{r['holm_p']:.3g} | {r['holm_verdict']} |"
        )
    return "\n".join(lines) + "\n"


def loss_parts_markdown(summary: pd.DataFrame, parts: Sequence[str], subtitle: str) -> str:
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


def scaled_markdown(summary: pd.DataFrame, subtitle: str) -> str:
    """The aggregates per entry (mean ± sd [95% t-interval] over seeds) and how they are scaled
    (:mod:`vaebench.results.scaling`, after Open Problems, Luecken et al. 2025)."""
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
