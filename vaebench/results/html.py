"""One page a person reads: a suite's ``report.html`` and a tuning study's, each a single self-contained file.

The figures are inlined as base64 PNG data URIs and the style sheet and the few lines of script that sort
a table on a click of its header are inline too, so the page opens offline, from a mail or from MLflow's
artifact view alike; nothing is fetched from the network. The page reads top to bottom: what was run on
what (and how many seeds stand behind each number), the verdict (from the paired comparisons with Holm's
correction that :mod:`vaebench.results.tables` computes, saying plainly when a difference is within the
noise), then the tables and figures that support it. Pure: text in, text out (:func:`report_page`,
:func:`study_page`); :func:`vaebench.results.write_report` writes the suite's beside its other files.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vaebench.results.figures import SHORT_NAMES, row_label
from vaebench.results.scaling import CONTROLS, COST, GROUPS, TOTAL, aggregate_name
from vaebench.results.stats import holm_adjusted, paired_difference
from vaebench.results.tables import BASELINE

if TYPE_CHECKING:
    from vaebench.sets.tune.results import Comparison, PointEvaluation, TuneResult

# ---------------------------------------------------------------------------------------------- blocks

_STYLE = """
:root { --ink: #1d2430; --muted: #5b6472; --line: #d8dde5; --band: #f4f6f9; --good: #e3f4e8;
  --bad: #fbe4e2; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
header, main, nav, footer { max-width: 1180px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 20px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 28px 0 8px; padding-top: 8px; border-top: 2px solid var(--line); }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.lede, .note, .caption, figcaption { color: var(--muted); }
nav ul { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav a { color: var(--accent); text-decoration: none; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 8px 0 14px; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.9em; font-variant-numeric: tabular-nums; }
.caption { margin: 12px 0 0; font-size: 0.9em; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
td { background: #fff; }
tbody td:first-child, thead th:first-child { position: sticky; left: 0; z-index: 1; }
thead th:first-child { z-index: 2; }
thead th { background: var(--band); position: sticky; top: 0; white-space: nowrap; }
th button { font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0;
  cursor: pointer; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
tr.good td { background: var(--good); }
tr.bad td { background: var(--bad); }
tr.control td { color: var(--muted); font-style: italic; }
.ci { display: block; font-size: 0.82em; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figure.maps img { max-width: min(100%, 900px); }
code { font-size: 0.88em; word-break: break-all; }
ul.verdict li { margin: 4px 0; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 8px 16px; }
footer { color: var(--muted); font-size: 0.85em; padding: 24px 16px; }
@media (max-width: 600px) {
  body { font-size: 14px; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: 6px; }
  .gallery { grid-template-columns: 1fr; }
  figure.wide img { max-width: none; width: 860px; }
}
"""

_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent.trim(); }
    if (v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    var button = th.querySelector("button");
    button.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === y) { return 0; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        var order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def esc(value: object) -> str:
    """``value`` as HTML text (quotes escaped too, so that it can stand in an attribute)."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Cell:
    """A table cell: its HTML (already escaped), the key its column sorts on, and its class."""

    html: str
    sort: float | str | None = None
    css: str = ""


def text(value: object) -> Cell:
    return Cell(esc(value), str(value))


def number(value: float, digits: int = 3, sign: bool = False) -> Cell:
    """A right-aligned number; NaN shows as a dash and sorts last."""
    if value is None or pd.isna(value):
        return Cell("&ndash;", None, "num")
    return Cell(f"{value:{'+' if sign else ''}.{digits}f}", float(value), "num")


def beta_cell(beta: float) -> Cell:
    """A beta as the grid names it (``0.5``, ``2``); empty for a model without one."""
    return Cell("", None) if beta is None or pd.isna(beta) else Cell(f"{beta:.3g}", float(beta), "num")


def p_cell(p: float) -> Cell:
    """A p-value to two significant digits, small ones in scientific notation."""
    if p is None or pd.isna(p):
        return Cell("&ndash;", None, "num")
    return Cell(f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}", float(p), "num")


def mean_cell(mean: float, sd: float, low: float, high: float, digits: int = 3) -> Cell:
    """``mean ± sd`` over seeds with the 95% t-interval beneath it, sorting on the mean."""
    if pd.isna(mean):
        return Cell("&ndash;", None, "num")
    body = f"{mean:.{digits}f}"
    if not pd.isna(sd):
        body += f" &plusmn; {sd:.{digits}f}"
    if not pd.isna(low):
        body += f'<span class="ci">[{low:.{digits}f}, {high:.{digits}f}]</span>'
    return Cell(body, float(mean), "num")


def table(
    caption: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    row_classes: Sequence[str] = (),
    titles: Sequence[str] = (),
) -> str:
    """An HTML table whose columns sort on a click of their header, in a box that scrolls sideways on a
    narrow screen; ``titles`` are the headers' tooltips (a score's full name, say)."""
    head = "".join(
        f'<th scope="col"{f" title={chr(34)}{esc(t)}{chr(34)}" if t else ""}>'
        f'<button type="button">{esc(h)}</button></th>'
        for h, t in zip(headers, [*titles, *[""] * len(headers)], strict=False)
    )
    body = []
    for i, row in enumerate(rows):
        css = row_classes[i] if i < len(row_classes) else ""
        cells = "".join(
            f"<td{f' class={chr(34)}{c.css}{chr(34)}' if c.css else ''}"
            f"{'' if c.sort is None else f' data-sort={chr(34)}{esc(c.sort)}{chr(34)}'}>{c.html}</td>"
            for c in row
        )
        body.append(f"<tr{f' class={chr(34)}{css}{chr(34)}' if css else ''}>{cells}</tr>")
    return (
        f'<p class="caption" aria-hidden="true">{esc(caption)}</p>'
        f'<div class="scroll" role="region" aria-label="{esc(caption)}" tabindex="0">'
        f'<table class="sortable"><caption class="sr-only">{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def image(png: bytes, alt: str, caption: str = "", wide: bool = False, css: str = "") -> str:
    """A PNG inlined as a data URI, with its alt text and caption; a ``wide`` one keeps a legible width on
    a phone and scrolls sideways there, instead of shrinking to unreadable print."""
    data = base64.b64encode(png).decode("ascii")
    note = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    img = f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
    if wide:
        return (
            f'<figure class="wide {css}"><div class="scroll" role="region" '
            f'aria-label="{esc(caption or alt)}" tabindex="0">{img}</div>{note}</figure>'
        )
    return f'<figure class="{css}">{img}{note}</figure>' if css else f"<figure>{img}{note}</figure>"


def facts_list(facts: Iterable[tuple[str, str]]) -> str:
    """Label-value pairs as a definition list (values already HTML)."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def bullets(items: Iterable[str], css: str = "") -> str:
    """Items (already HTML) as a list."""
    return (
        f"<ul{f' class={chr(34)}{css}{chr(34)}' if css else ''}>"
        + "".join(f"<li>{i}</li>" for i in items)
        + "</ul>"
    )


@dataclass
class Section:
    """One part of a page: its anchor, its heading and its HTML."""

    anchor: str
    title: str
    body: str


def page(title: str, lede: str, sections: Sequence[Section]) -> str:
    """The whole document: head with the inline style, a contents list, the sections, the inline script."""
    contents = "".join(f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in sections)
    parts = "".join(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><p class="lede">{lede}</p></header>'
        f'<nav aria-label="Contents"><ul>{contents}</ul></nav><main>{parts}</main>'
        "<footer>Written by vaebench. Self-contained: figures inlined, nothing fetched from the network; "
        "click a column's header to sort a table.</footer>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


_LABELS = {
    **SHORT_NAMES,
    "tsne_kmeans.hom": "t-SNE k-means homogeneity",
    "tsne_kmeans.com": "t-SNE k-means completeness",
    "latent_kmeans.hom": "k-means homogeneity",
    "latent_kmeans.com": "k-means completeness",
    "latent.silhouette": "silhouette",
    "latent.active_units": "active units",
    "latent.active_fraction": "active fraction",
    "latent.kl": "KL",
    "train.seconds": "train s",
    "structure.mean": "structure (mean)",
}


def metric_label(metric: str) -> str:
    """A score's short name for a header: ``t-SNE k-means ARI``, ``total (scaled)``."""
    if metric.startswith("aggregate."):
        return f"{metric.removeprefix('aggregate.')} (scaled)"
    return _LABELS.get(metric, metric)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ------------------------------------------------------------------------------------------ suite page


@dataclass
class SuitePage:
    """What a suite's page shows: the runs and the tables :mod:`vaebench.results.report` computed."""

    frame: pd.DataFrame
    """One row per run, with the scaled scores."""
    summary: pd.DataFrame
    paired: pd.DataFrame
    shown: tuple[str, ...]
    rank: str
    subtitle: str
    labelled: bool
    scaled: bool
    collapsed: list[str] = field(default_factory=list)
    loss_parts: pd.DataFrame | None = None
    """The summary over seeds of the final-epoch loss parts, or None where no run logged them."""
    parts: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    """PNG bytes by file name (``results_table.png``, ``tsne_best.png``, ...)."""
    facts: Mapping[str, object] = field(default_factory=dict)
    """What the runs' params say of the data and settings (``dataset.n_cells``, ``epochs``, ...)."""


def report_page(report: SuitePage) -> str:
    """The suite's ``report.html``."""
    sections = [
        Section("data", "Data and configuration", _data_section(report)),
        Section("verdict", "Verdict", _verdict_section(report)),
        Section("results", "Results", _results_section(report)),
    ]
    if report.scaled:
        sections.append(Section("scaled", "Scores scaled between the controls", _scaled_section(report)))
    if not report.paired.empty:
        sections.append(Section("paired", f"Paired comparisons with {BASELINE}", _paired_section(report)))
    sections.append(Section("cost", "Cost", _cost_section(report)))
    if report.loss_parts is not None:
        sections.append(Section("loss", "Loss parts", _loss_section(report)))
    sections.append(Section("collapse", "Posterior collapse", _collapse_section(report)))
    if "tsne_best.png" in report.figures:
        sections.append(Section("maps", "Best maps", _maps_section(report)))
    sections.append(Section("runs", "MLflow runs", _runs_section(report)))
    lede = f"{esc(report.subtitle)}. Every number is a mean over seeds &plusmn; its standard deviation, with "
    lede += "its 95% t-interval beneath it."
    return page("vaebench report", lede, sections)


def _values(frame: pd.DataFrame, column: str) -> list[str]:
    values = frame[column].dropna().unique() if column in frame else []
    return [f"{v:.3g}" if isinstance(v, float) else str(v) for v in sorted(values)]


_SETTING_NAMES = {
    "latent_dim": "Latent dimensions",
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "perplexity": "t-SNE perplexity",
    "n_init": "k-means restarts",
    "tsne_cells": "Cells in the 2-d t-SNE",
    "preprocess": "Preprocessing",
    "suite run": "Suite run (MLflow)",
}


def _fact(key: str, value: object) -> str:
    return f"<code>{esc(value)}</code>" if key.endswith("run") else esc(value)


def _entries(frame: pd.DataFrame) -> str:
    """The entries, the baseline and the controls named apart."""
    entries = sorted(frame["entry"].astype(str).unique())
    models = [e for e in entries if e != BASELINE and e not in CONTROLS]
    said = [esc(", ".join(models) or "none")]
    if BASELINE in entries:
        said.append(f"baseline {esc(BASELINE)}")
    controls = [c for c in CONTROLS if c in entries]
    if controls:
        said.append(f"controls {esc(', '.join(controls))}")
    return "; ".join(said)


def _data_section(report: SuitePage) -> str:
    frame, facts = report.frame, report.facts
    cells, genes = facts.get("dataset.n_cells"), facts.get("dataset.n_genes")
    labels = ", ".join(v for v in _values(frame, "label_key") if v) or "none"
    if facts.get("dataset.n_classes"):
        labels += f" ({facts['dataset.n_classes']} classes)"
    n_seeds = report.summary["n_seeds"]
    behind = f"{n_seeds.min()}" if n_seeds.min() == n_seeds.max() else f"{n_seeds.min()} to {n_seeds.max()}"
    rows = [
        ("Dataset", esc(", ".join(v for v in _values(frame, "dataset") if v) or "unnamed")),
        ("Cells x genes", esc(f"{cells} x {genes}" if cells and genes else "not recorded")),
        ("Labels", esc(labels)),
        ("Entries", _entries(frame)),
        ("Betas", esc(", ".join(_values(frame, "beta")) or "none (no model with a beta)")),
        ("Seeds", esc(", ".join(_values(frame, "seed")))),
        ("Runs", esc(len(frame))),
        (
            "Seeds behind each number",
            f"<strong>{esc(behind)}</strong> (the <em>seeds</em> column of each table)",
        ),
    ]
    rows += [
        (_SETTING_NAMES.get(k, k), _fact(k, v)) for k, v in facts.items() if not k.startswith("dataset.")
    ]
    note = ""
    if not report.labelled:
        note = (
            f'<p class="note">No labels: label scores are skipped, not zero; entries are ranked on '
            f"{esc(report.rank)}, the mean of trustworthiness and kNN preservation.</p>"
        )
    return facts_list(rows) + note


def _verdict_scores(report: SuitePage) -> list[str]:
    """The scores the verdict names a leader on: the group aggregates where the controls scale them, else
    the ranking score and the structure scores."""
    if report.scaled:
        groups = [g for g in (*GROUPS, TOTAL) if g != COST]
        names = [aggregate_name(g) for g in groups]
    else:
        names = [report.rank, *GROUPS["structure"]]
    return [
        m
        for m in dict.fromkeys(names)
        if f"{m} mean" in report.summary and report.summary[f"{m} mean"].notna().any()
    ]


def _runs_of(frame: pd.DataFrame, entry: str, beta: float) -> pd.DataFrame:
    at = frame["entry"] == entry
    return frame[at & (frame["beta"].isna() if pd.isna(beta) else frame["beta"] == beta)]


def _leader_lines(report: SuitePage) -> list[str]:
    """Per verdict score, the leading entry (controls aside) and whether its lead over the runner-up,
    paired on the seed, is beyond the noise after Holm's correction over these few comparisons."""
    contenders = report.summary[~report.summary["entry"].isin(CONTROLS)]
    found = []
    for metric in _verdict_scores(report):
        order = contenders.sort_values(f"{metric} mean", ascending=False, na_position="last")
        order = order[order[f"{metric} mean"].notna()]
        if order.empty:
            continue
        lead = order.iloc[0]
        gap = None
        if len(order) > 1:
            second = order.iloc[1]
            mine = _runs_of(report.frame, lead["entry"], lead["beta"]).set_index("seed")[metric]
            theirs = _runs_of(report.frame, second["entry"], second["beta"]).groupby("seed")[metric].mean()
            pairs = mine.to_frame("a").join(theirs.to_frame("b"), how="inner").dropna()
            gap = (second, paired_difference((pairs["a"] - pairs["b"]).to_numpy(float), "runner-up"))
        found.append((metric, lead, gap))
    adjusted = holm_adjusted(np.array([g[1].t_p if g else math.nan for _, _, g in found]))
    return [_leader_line(m, lead, gap, p) for (m, lead, gap), p in zip(found, adjusted, strict=True)]


def _leader_line(metric: str, lead: pd.Series, gap: tuple | None, holm_p: float) -> str:
    name = f"<strong>{esc(row_label(lead['entry'], lead['beta']))}</strong>"
    line = (
        f"<strong>{esc(metric_label(metric))}</strong>: {name} leads with {lead[f'{metric} mean']:.3f} "
        f"over {plural(int(lead['n_seeds']), 'seed')}"
    )
    if gap is None:
        return line + " (no other entry to compare)."
    second, diff = gap
    other = esc(row_label(second["entry"], second["beta"]))
    if diff.n_pairs < 2:
        return line + f"; ahead of {other}, but with under two paired seeds nothing tells this from noise."
    interval = f"{diff.mean_difference:+.3f} [{diff.ci95_low:+.3f}, {diff.ci95_high:+.3f}]"
    if not pd.isna(holm_p) and holm_p < 0.05:
        return (
            line
            + f"; ahead of {other} by {interval}, <strong>beyond the noise</strong> (Holm p {holm_p:.3g})."
        )
    p = "" if pd.isna(holm_p) else f", Holm p {holm_p:.2g}"
    return (
        line + f"; ahead of {other} by {interval}: <strong>within the noise</strong>{p}, a tie on this score."
    )


def _baseline_lines(paired: pd.DataFrame) -> list[str]:
    """Per entry, the scores on which it beats or trails the baseline after Holm, and how many are noise."""
    lines = []
    for (entry, beta), rows in paired.groupby(["entry", "beta"], dropna=False, sort=True):
        verdicts = rows.groupby("holm_verdict")["metric"].apply(list).to_dict()
        said = []
        for verdict in (f"better than {BASELINE}", f"worse than {BASELINE}"):
            if verdict in verdicts:
                said.append(f"{verdict} on {esc(', '.join(metric_label(m) for m in verdicts[verdict]))}")
        noise = len(verdicts.get("within noise", []))
        few = len(verdicts.get("too few seeds", []))
        if noise:
            said.append(f"within the noise on {noise} of {len(rows)} scores")
        if few:
            said.append(f"too few paired seeds on {few}")
        lines.append(f"<strong>{esc(row_label(entry, beta))}</strong>: " + "; ".join(said) + ".")
    return lines


def _verdict_section(report: SuitePage) -> str:
    body = "<h3>Which entries lead</h3>"
    leaders = _leader_lines(report)
    body += bullets(leaders, "verdict") if leaders else "<p>No score to rank the entries on.</p>"
    body += (
        '<p class="note">The controls (random, pca50) are left out of the lead. A lead is beyond the noise '
        "when the paired t-test of the leader against the runner-up, on their common seeds, stays below 5% "
        "after Holm's correction over the scores above.</p>"
    )
    body += f"<h3>Against the {BASELINE} baseline, paired on the seed, after Holm</h3>"
    if report.paired.empty:
        return body + f"<p>No {BASELINE} runs among these: no paired comparison.</p>"
    body += bullets(_baseline_lines(report.paired), "verdict")
    return body + (
        f'<p class="note">Holm\'s correction runs over all {len(report.paired)} comparisons (entries x betas x '
        "scores) at once, keeping the chance of any false 'better' or 'worse' at 5%; 'within the noise' "
        "means the data do not tell the entry from the baseline, not that they are equal.</p>"
    )


def _summary_table(caption: str, summary: pd.DataFrame, metrics: Sequence[str]) -> str:
    rows, classes = [], []
    for _, row in summary.iterrows():
        cells = [text(row["entry"]), beta_cell(row["beta"])]
        cells.append(number(row["n_seeds"], 0))
        for m in metrics:
            digits = 1 if m.endswith("seconds") else 3
            values = [row.get(f"{m} {k}", np.nan) for k in ("mean", "sd", "ci95_low", "ci95_high")]
            cells.append(mean_cell(*values, digits=digits))
        rows.append(cells)
        classes.append("control" if row["entry"] in CONTROLS else "")
    headers = ["entry", "beta", "seeds", *(metric_label(m) for m in metrics)]
    return table(caption, headers, rows, classes, titles=["", "", "", *metrics])


def _figure(
    report: SuitePage, name: str, alt: str, caption: str = "", wide: bool = False, css: str = ""
) -> str:
    return image(report.figures[name], alt, caption, wide, css) if name in report.figures else ""


def _results_section(report: SuitePage) -> str:
    order = report.summary
    if report.scaled:
        order = order.sort_values(f"{aggregate_name(TOTAL)} mean", ascending=False, na_position="last")
    caption = f"Scores of every entry and beta ({report.subtitle}); click a header to sort."
    body = _summary_table(caption, order, report.shown)
    body += _figure(
        report,
        "results_table.png",
        "Results table: rows are entries sorted by the total scaled score; cells are scaled scores "
        "grouped into bio-conservation, structure and cost; bars on the right are group aggregates.",
        "The results table: scaled scores (0: worst control, 1: best) and each group's aggregate.",
        wide=True,
    )
    body += _figure(
        report,
        "heatmap.png",
        "Heatmap of the mean k-means scores (NMI, ARI, homogeneity, completeness) on the 2-d t-SNE, one "
        "row per entry.",
    )
    betas = [n for n in report.figures if n.startswith("beta_") and not _is_loss_part(n)]
    if betas:
        body += "<h3>Scores against beta</h3><div class='gallery'>"
        body += "".join(
            _figure(report, n, f"{n[5:-4]} against beta per entry, error bars of one sd over seeds.")
            for n in betas
        )
        body += "</div>"
    return body


def _is_loss_part(name: str) -> bool:
    return name.startswith(("beta_train.loss.", "beta_train.kl"))


def _scaled_section(report: SuitePage) -> str:
    aggregates = [aggregate_name(g) for g in (*GROUPS, TOTAL)]
    intro = (
        f"<p>Each score scaled between the controls {' and '.join(CONTROLS)}, as Open Problems does: 0 is "
        "the worst control's mean, 1 the best's; above 1 beats the best control. Cost is scaled between "
        "the dearest (0) and the cheapest (1) entry on log CPU seconds. An aggregate is the mean of its "
        "group's scaled scores; total is the mean of bio-conservation and structure.</p>"
    )
    order = report.summary.sort_values(f"{aggregate_name(TOTAL)} mean", ascending=False, na_position="last")
    return intro + _summary_table("Group aggregates of the scaled scores", order, aggregates)


def _paired_section(report: SuitePage) -> str:
    paired = report.paired
    rows, classes = [], []
    for _, r in paired.iterrows():
        beta = beta_cell(r["beta"])
        interval = (
            f"[{r['ci95_low']:+.3f}, {r['ci95_high']:+.3f}]" if not pd.isna(r["ci95_low"]) else "&ndash;"
        )
        rows.append([
            text(r["entry"]), beta, text(metric_label(r["metric"])), number(r["n_pairs"], 0),
            number(r["mean_difference"], 3, sign=True), Cell(interval, r["ci95_low"], "num"),
            p_cell(r["wilcoxon_p"]), p_cell(r["holm_p"]), text(r["holm_verdict"]),
        ])  # fmt: skip
        verdict = str(r["holm_verdict"])
        classes.append(
            "good" if verdict.startswith("better") else "bad" if verdict.startswith("worse") else ""
        )
    headers = ["entry", "beta", "score", "pairs", "mean difference", "95% interval", "Wilcoxon p", "Holm p",
               "verdict after Holm"]  # fmt: skip
    intro = (
        f"<p>Difference = entry &minus; {BASELINE}, seed by seed. Holm p is the paired t-test's p-value "
        f"adjusted with Holm's method over all {len(paired)} rows; green rows are beyond the noise in the "
        f"entry's favour, red against it. With n pairs the exact Wilcoxon p cannot fall below 2/2<sup>n</sup>."
        "</p>"
    )
    return intro + table(f"Each entry against {BASELINE}, paired on the seed", headers, rows, classes)


def _cost_section(report: SuitePage) -> str:
    frame = report.frame.copy()
    per_epoch = frame.get("train.seconds_per_epoch", pd.Series(np.nan, index=frame.index))
    frame["epochs"] = (frame["train.seconds"] / per_epoch).round()
    frame["cpu per epoch"] = frame["train.cpu_seconds"] / frame["epochs"]
    frame["seconds per epoch"] = per_epoch
    columns = ["train.seconds", "train.cpu_seconds", "epochs", "seconds per epoch", "cpu per epoch"]
    rows = []
    for (entry, beta), runs in frame.groupby(["entry", "beta"], dropna=False, sort=True):
        means = [runs[c].mean() for c in columns]
        rows.append(
            [
                text(entry),
                beta_cell(beta),
                number(runs["seed"].nunique(), 0),
            ]
            + [
                number(v, 0 if c == "epochs" else 3 if "epoch" in c else 2)
                for v, c in zip(means, columns, strict=True)
            ]
        )
    headers = ["entry", "beta", "seeds", "train s", "CPU s", "epochs", "s per epoch", "CPU s per epoch"]
    body = table("Training cost, means over seeds (controls and pca train nothing)", headers, rows)
    cost = [n for n in report.figures if n.startswith("cost_")]
    for name in cost:
        body += _figure(report, name, f"{report.rank} against training CPU seconds, one point per run.")
    return body


def _loss_section(report: SuitePage) -> str:
    assert report.loss_parts is not None
    intro = (
        "<p>The parts of the training loss at the last epoch (means over the cells; the parts of a run sum "
        "to its loss); train.kl is the KL divergence itself, beta_kl / beta.</p>"
    )
    body = intro + _summary_table("Final-epoch loss parts", report.loss_parts, report.parts)
    parts = [n for n in report.figures if _is_loss_part(n)]
    if parts:
        body += (
            "<div class='gallery'>"
            + "".join(_figure(report, n, f"Final-epoch {n[5:-4]} against beta per entry.") for n in parts)
            + "</div>"
        )
    return body


def _collapse_section(report: SuitePage) -> str:
    if not report.collapsed:
        return "<p>No variational run has fewer than half of its latent dimensions active.</p>"
    return (
        "<p>These runs' posterior collapsed (fewer than half of their latent dimensions active, Burda et al. "
        "2016): their scores rest on a few dimensions.</p>" + bullets(esc(line) for line in report.collapsed)
    )


def _maps_section(report: SuitePage) -> str:
    return _figure(
        report,
        "tsne_best.png",
        "2-d t-SNE of each entry's run at its best beta (the seed with the median score), with its UMAP "
        "beside it where the run drew one (--maps tsne,umap), cells coloured by label.",
        f"Each entry at its best beta by {report.rank}: the run whose score is that beta's median.",
        wide=True,
        css="maps",
    )


def _runs_section(report: SuitePage) -> str:
    rows = []
    for (entry, beta), runs in report.frame.groupby(["entry", "beta"], dropna=False, sort=True):
        runs = runs.sort_values("seed")
        ids = "<br>".join(
            f"seed {esc(s)}: <code>{esc(r)}</code>" for s, r in zip(runs["seed"], runs["run_id"], strict=True)
        )
        rows.append([text(entry), beta_cell(beta), Cell(ids, None)])
    intro = (
        "<p>Each run's MLflow id: open it in the MLflow UI's search (<code>attributes.run_id = '...'</code>) "
        "or with <code>mlflow runs describe --run-id ID</code>.</p>"
    )
    return intro + table("MLflow run ids per entry and beta", ["entry", "beta", "runs"], rows)


# ------------------------------------------------------------------------------------------ study page


def study_page(result: TuneResult, figures: Mapping[str, bytes]) -> str:
    """A tuning study's ``report.html``: the study, the verdict of the fresh-seed evaluation against the
    baseline, the best trials, the evaluation and its paired comparison, and ``figures`` (PNG bytes by
    artifact path, ``figures/optimization_history.png`` say) inlined."""
    holm = holm_adjusted(np.array([c.t_p for c in result.comparisons], dtype=float))
    sections = [
        Section("study", "Study", _study_facts(result)),
        Section("verdict", "Verdict", _study_verdict(result, holm)),
        Section("best", "Best trials", _best_trials(result)),
    ]
    points = [*result.evaluations, *([result.baseline] if result.baseline else [])]
    if points:
        sections.append(Section("evaluation", "Fresh-seed evaluation", _evaluation_table(points, result)))
    if result.comparisons:
        sections.append(Section("paired", "Paired comparisons", _comparison_table(result.comparisons, holm)))
    if figures:
        shown = "".join(image(png, _figure_alt(path), path) for path, png in figures.items())
        sections.append(Section("figures", "Figures", shown))
    if result.notes:
        sections.append(Section("notes", "Notes", bullets(esc(n) for n in result.notes)))
    lede = f"Optuna study <strong>{esc(result.study_name)}</strong>, objective(s) {esc(', '.join(result.objectives))}."
    return page(f"vaebench tuning: {result.study_name}", lede, sections)


def _figure_alt(path: str) -> str:
    name = path.rsplit("/", 1)[-1].removesuffix(".png")
    return {
        "optimization_history": "Optimization history: each trial's objective value and the best so far.",
        "param_importances": "Hyperparameter importances for the objective.",
        "pareto_front": "Pareto front of the trials over the objectives.",
        "evaluation": "Fresh-seed evaluation: each tuned configuration and the baseline, score per seed.",
    }.get(name, name.replace("_", " "))


def _study_facts(result: TuneResult) -> str:
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(result.states.items())) or "none"
    return facts_list([
        ("Study", esc(result.study_name)),
        ("Objectives", esc(", ".join(result.objectives))),
        ("Trials", esc(f"{result.trials_run} run now, {result.trials_total} asked for; {states}")),
        ("Experiment", esc(result.experiment)),
        ("Parent run", f"<code>{esc(result.parent_run_id)}</code>"),
        ("Optuna storage", f"<code>{esc(result.storage)}</code>"),
    ])  # fmt: skip


def _study_verdict(result: TuneResult, holm: np.ndarray) -> str:
    if not result.comparisons:
        return (
            "<p>No fresh-seed comparison with the baseline: the best trial's score is the tuning score, "
            "optimistic by construction.</p>"
        )
    lines = []
    for c, p in zip(result.comparisons, holm, strict=True):
        interval = f"{c.mean_difference:+.3f} [{c.ci95_low:+.3f}, {c.ci95_high:+.3f}] over {plural(c.n_pairs, 'seed')}"
        if pd.isna(p):
            said = "too few paired seeds to tell from noise"
        elif p < 0.05:
            said = f"<strong>{'better' if c.mean_difference > 0 else 'worse'} than {esc(c.baseline)}</strong>, beyond the noise"
        else:
            said = f"<strong>within the noise</strong> of {esc(c.baseline)}"
        lines.append(
            f"<strong>{esc(c.entry)}</strong> on {esc(c.metric)}: {interval}; {said} (Holm p {p:.3g})."
        )
    return bullets(lines, "verdict") + (
        '<p class="note">Paired on the fresh seeds, which no trial saw; Holm\'s correction over all '
        f"{len(result.comparisons)} comparisons.</p>"
    )


def _best_trials(result: TuneResult) -> str:
    if not result.best:
        return "<p>No trial completed.</p>"
    names = sorted({k for t in result.best for k in t.params})
    rows = []
    for t in result.best:
        values = list(t.values or []) + [math.nan] * len(result.objectives)
        rows.append(
            [number(t.number, 0)]
            + [number(v) for v in values[: len(result.objectives)]]
            + [text(_fmt(t.params.get(k, ""))) for k in names]
            + [Cell(f"<code>{esc(t.run_id or '')}</code>", t.run_id or "")]
        )
    headers = ["trial", *result.objectives, *names, "MLflow run"]
    return table("The best trial (or the Pareto front) on the tuning labels", headers, rows)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _evaluation_table(points: Sequence[PointEvaluation], result: TuneResult) -> str:
    metrics = list(dict.fromkeys([*result.objectives, *sorted({m for p in points for m in p.per_seed})]))
    metrics = [m for m in metrics if any(m in p.per_seed for p in points)]
    rows = []
    for p in points:
        cells = [text(p.entry), number(len(p.seeds), 0)]
        cells += [
            mean_cell(p.mean(m), p.sd(m), math.nan, math.nan, 1 if m.endswith("seconds") else 3)
            for m in metrics
        ]
        cells.append(Cell("<br>".join(f"<code>{esc(r)}</code>" for r in p.run_ids), None))
        rows.append(cells)
    headers = ["entry", "seeds", *(metric_label(m) for m in metrics), "MLflow runs"]
    label = points[0].label_key if points else ""
    caption = f"Re-trained on fresh seeds, scored on labels {label}: mean ± sd over seeds"
    return table(caption, headers, rows, titles=["", "", *metrics])


def _comparison_table(comparisons: Sequence[Comparison], holm: np.ndarray) -> str:
    rows, classes = [], []
    for c, p in zip(comparisons, holm, strict=True):
        verdict = (
            "too few seeds"
            if pd.isna(p)
            else (
                f"{'better' if c.mean_difference > 0 else 'worse'} than {c.baseline}"
                if p < 0.05
                else "within noise"
            )
        )
        rows.append([
            text(c.entry), text(c.baseline), text(c.metric), number(c.n_pairs, 0),
            number(c.mean_difference, 3, sign=True), Cell(f"[{c.ci95_low:+.3f}, {c.ci95_high:+.3f}]", c.ci95_low, "num"),
            p_cell(c.wilcoxon_p), p_cell(p), text(verdict),
        ])  # fmt: skip
        classes.append(
            "good" if verdict.startswith("better") else "bad" if verdict.startswith("worse") else ""
        )
    headers = ["entry", "against", "score", "pairs", "mean difference", "95% interval", "Wilcoxon p", "Holm p",
               "verdict after Holm"]  # fmt: skip
    return table(
        "Each tuned configuration against the baseline, paired on the fresh seeds", headers, rows, classes
    )
