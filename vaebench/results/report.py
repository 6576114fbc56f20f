"""The report: records of finished runs in, tables (Markdown, CSV) and figures (PNG) in a folder out.

Like scib-metrics' ``Benchmarker``, the report keeps its results (:class:`Report`: the summary over seeds,
the paired comparisons, the collapsed runs) beside the files drawn from them. Every number is a mean over
seeds with its standard deviation and a 95% t-interval and says how many seeds stand behind it; each model
is compared with the ``pca`` baseline paired on the seed (the t-interval of the mean paired difference,
the Wilcoxon signed-rank test, Holm's adjustment: :mod:`vaebench.results.stats`); scores are scaled
between the controls as Open Problems does (:mod:`vaebench.results.scaling`). Pure: where the records and
the t-SNE maps come from (the executor, MLflow) is the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from vaebench.evaluate.figures import save_png
from vaebench.results import figures, html, markdown
from vaebench.results.records import RunRecord, records_frame
from vaebench.results.scaling import TOTAL, add_scaled_scores, aggregate_name, scaled_columns
from vaebench.results.tables import (
    PAIRED_METRICS,
    SCORES,
    STRUCTURE_SCORE,
    SUMMARY_METRICS,
    best_runs,
    collapse_lines,
    has_labels,
    label_metric_names,
    loss_part_columns,
    paired_against_baseline,
    ranking,
    subtitle,
    summarise,
)

SECONDS_PER_EPOCH = "train.seconds_per_epoch"
SETTINGS = ("latent_dim", "epochs", "batch_size", "lr", "perplexity", "n_init", "tsne_cells", "preprocess")
"""The run settings the report's page names, with every value the runs used."""
DATA_FACTS = ("dataset.n_cells", "dataset.n_genes", "dataset.n_classes")


MapOf = Callable[[str], "pd.DataFrame | None"]
"""A run's 2-d t-SNE (columns ``x``, ``y`` and ``label`` where there are labels) by its run id, or None."""


@dataclass
class Report:
    """What a report found, and the files it wrote from it."""

    files: list[Path]
    summary: pd.DataFrame
    """Mean, sd and 95% t-interval over seeds of every metric, per (entry, beta)."""
    paired: pd.DataFrame
    """Each entry against the baseline, paired on the seed."""
    collapsed: list[str] = field(default_factory=list)
    """One sentence per run whose posterior collapsed (:func:`vaebench.results.tables.collapse_lines`)."""


@dataclass
class _Folder:
    """The report's folder, and the files written to it in order."""

    path: Path
    files: list[Path] = field(default_factory=list)

    def text(self, name: str, text: str) -> None:
        (self.path / name).write_text(text)
        self.files.append(self.path / name)

    def figure(self, name: str, figure: Figure) -> None:
        save_png(figure, self.path / name, dpi=110)
        plt.close(figure)
        self.files.append(self.path / name)


@dataclass
class _View:
    """The runs as the report sees them: scaled, summarised and compared, with what they are ranked on."""

    frame: pd.DataFrame
    labelled: bool
    shown: tuple[str, ...]
    rank: str
    subtitle: str
    summary: pd.DataFrame
    paired: pd.DataFrame

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _View:
        labelled = has_labels(frame)
        frame, rank = ranking(frame)
        shown: tuple[str, ...] = SUMMARY_METRICS
        if not labelled:  # ranked on what needs no labels; label scores are absent, not zero
            shown = (STRUCTURE_SCORE, *(m for m in SUMMARY_METRICS if m not in label_metric_names()))
        scaled = add_scaled_scores(frame)
        summary = summarise(scaled, (*shown, *scaled_columns()))
        paired = paired_against_baseline(scaled, PAIRED_METRICS)
        return cls(scaled, labelled, shown, rank, subtitle(frame), summary, paired)

    @property
    def scaled(self) -> bool:
        """Whether the controls are in the report, so that scores could be scaled between them."""
        return bool(self.summary[f"{aggregate_name(TOTAL)} mean"].notna().any())


def as_frame(runs: Sequence[RunRecord] | pd.DataFrame) -> pd.DataFrame:
    """Records as the one-row-per-run frame (:func:`vaebench.results.records.records_frame`); a frame as is."""
    if isinstance(runs, pd.DataFrame):
        return runs
    return records_frame(runs, (*SUMMARY_METRICS, SECONDS_PER_EPOCH))


def run_facts(runs: Sequence[RunRecord] | pd.DataFrame) -> dict[str, str]:
    """What the records' params say of the data (cells, genes, classes) and of the settings they ran with
    (each setting's values, the controls' absent ones aside); nothing for a frame."""
    if isinstance(runs, pd.DataFrame):
        return {}
    facts: dict[str, str] = {}
    for key in (*DATA_FACTS, *SETTINGS):
        values = sorted(
            {str(r.params[key]) for r in runs if r.params.get(key) not in (None, "", "None")}, key=_numeric
        )
        if values:
            facts[key] = ", ".join(values)
    return facts


def _numeric(value: str) -> tuple[float, str]:
    """Sorts ``"2"`` before ``"10"``, and words after numbers."""
    try:
        return (float(value), value)
    except ValueError:
        return (math.inf, value)


def write_report(
    runs: Sequence[RunRecord] | pd.DataFrame,
    out_dir: Path,
    maps: MapOf | None = None,
    about: Mapping[str, object] | None = None,
) -> Report:
    """Write the tables (Markdown, CSV), figures (PNG) and the one page that holds them all
    (``report.html``, :mod:`vaebench.results.html`) of ``runs`` to ``out_dir``; ``maps`` gives the 2-d
    t-SNE of the runs drawn in ``tsne_best.png`` (each entry's median run at its best beta), with their
    UMAP beside them where the tables hold one (:func:`with_umap`); ``about`` adds to what the page says
    of the data (``dataset.n_cells``, ``suite run``, ...)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = _Folder(out_dir)
    view = _View.of(as_frame(runs))
    collapsed = collapse_lines(view.frame)
    _write_tables(folder, view, collapsed)
    _write_figures(folder, view)
    parts, part_summary = _write_loss_parts(folder, view)
    panels = tsne_panels(view.frame, view.rank, maps) if maps is not None else []
    if panels:
        folder.figure("tsne_best.png", best_maps_figure(panels, view.subtitle))
    page = html.SuitePage(
        frame=view.frame,
        summary=view.summary,
        paired=view.paired,
        shown=view.shown,
        rank=view.rank,
        subtitle=view.subtitle,
        labelled=view.labelled,
        scaled=view.scaled,
        collapsed=collapsed,
        loss_parts=part_summary,
        parts=parts,
        figures={p.name: p.read_bytes() for p in folder.files if p.suffix == ".png"},
        facts={**run_facts(runs), **(about or {})},
    )
    folder.text("report.html", html.report_page(page))
    return Report(folder.files, view.summary, view.paired, collapsed)


def _write_tables(folder: _Folder, view: _View, collapsed: list[str]) -> None:
    folder.text("summary.csv", view.summary.to_csv(index=False))
    page = markdown.summary_page(view.summary, view.shown, view.subtitle, view.labelled, collapsed)
    folder.text("summary.md", page)
    if view.scaled:
        folder.text("scaled.md", markdown.scaled_markdown(view.summary, view.subtitle))
    if not view.paired.empty:
        folder.text("paired_vs_pca.csv", view.paired.to_csv(index=False))
        folder.text("paired_vs_pca.md", markdown.paired_markdown(view.paired))
    runs = view.frame.drop(columns=[c for c in ("dataset", "label_key", "latent_dims") if c in view.frame])
    folder.text("runs.csv", runs.to_csv(index=False))


def _write_figures(folder: _Folder, view: _View) -> None:
    summary, title = view.summary, view.subtitle
    if view.labelled:
        folder.figure("heatmap.png", figures.heatmap_figure(summary, title))
    if view.scaled:
        folder.figure("results_table.png", figures.results_table_figure(summary, title))
    for metric in (*SCORES, "latent.silhouette") if view.labelled else (STRUCTURE_SCORE,):
        if f"{metric} mean" in summary and summary[f"{metric} mean"].notna().any():
            folder.figure(f"beta_{metric}.png", figures.beta_figure(summary, metric, title))
    folder.figure(f"cost_{view.rank}.png", figures.cost_figure(view.frame, view.rank, title))


def _write_loss_parts(folder: _Folder, view: _View) -> tuple[list[str], pd.DataFrame | None]:
    """The final-epoch loss parts of the trained runs, as tables and one figure against beta per part;
    the parts and their summary over seeds (None without parts) back."""
    parts = loss_part_columns(view.frame)
    if not parts:
        return parts, None
    trained = view.frame[view.frame[parts].notna().any(axis=1)]
    part_summary = summarise(trained, parts)
    folder.text("loss_parts.csv", part_summary.to_csv(index=False))
    folder.text("loss_parts.md", markdown.loss_parts_markdown(part_summary, parts, view.subtitle))
    for part in parts:
        folder.figure(f"beta_{part}.png", figures.beta_figure(part_summary, part, view.subtitle))
    return parts, part_summary


def tsne_panels(frame: pd.DataFrame, rank: str, maps: MapOf) -> list[tuple[str, pd.DataFrame]]:
    """The 2-d t-SNE of each entry's run at its best beta (by ``rank``), titled with its score; runs
    whose map ``maps`` does not have are left out."""
    short = "structure" if rank == STRUCTURE_SCORE else rank.split(".")[-1].upper()
    panels = []
    for _, run in best_runs(frame, rank).iterrows():
        table = maps(str(run["run_id"]))
        if table is None:
            continue
        beta = "" if pd.isna(run["beta"]) else f", beta={run['beta']:.3g}"
        panels.append((f"{run['entry']}{beta}, seed {run['seed']} ({short} {run[rank]:.2f})", table))
    return panels


def best_maps_figure(panels: list[tuple[str, pd.DataFrame]], subtitle: str) -> Figure:
    """The best runs' t-SNE maps, with their UMAP beside them where any run logged one
    (:func:`with_umap`)."""
    if any("umap_x" in table for _, table in panels):
        return figures.maps_beside_figure(panels, subtitle)
    return figures.tsne_grid_figure(panels, subtitle)


def with_umap(maps: MapOf, umaps: MapOf) -> MapOf:
    """A run's t-SNE map (``maps``) with its UMAP (``umaps``: the same cells, ``cell_id``, ``x``, ``y``)
    joined on the cell as ``umap_x``, ``umap_y`` where the run logged one."""

    def both(run_id: str) -> pd.DataFrame | None:
        tsne = maps(run_id)
        umap = umaps(run_id) if tsne is not None else None
        if umap is None or "cell_id" not in tsne or "cell_id" not in umap:
            return tsne
        coords = umap[["cell_id", "x", "y"]].rename(columns={"x": "umap_x", "y": "umap_y"})
        return tsne.merge(coords, on="cell_id", how="left")

    return both
