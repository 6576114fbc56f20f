"""``report.html``: one self-contained page per suite and per tuning study, figures inlined, nothing fetched."""

from __future__ import annotations

# isort: off
# The CLI first: importing vaebench.tracking before it trips the executor.stopping <-> cli import cycle,
# which a whole test session hides (an earlier file imports the CLI) but this file run alone does not.
import vaebench.cli  # noqa: F401
# isort: on

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tests.helpers import artifact_paths, experiment_runs, invoke
from tests.test_suite import parents, suite_file
from vaebench.results.html import study_page
from vaebench.results.report import write_report
from vaebench.results.stats import paired_difference
from vaebench.sets.tune.results import Comparison, PointEvaluation, TrialSummary, TuneResult

INLINED = '<img src="data:image/png;base64,'
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(HTMLParser):
    """Tags opened and closed in order, and every resource a tag points at."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.headers: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "img":
            self.images.append(found)
        if tag == "th":
            self.headers.append(found)
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.open[-1] if self.open else 'nothing'}>")
            return
        self.open.pop()


def check_page(text: str, min_images: int = 3) -> _Checker:
    """A page that parses with balanced tags, inlines its figures (with alt text), has tables with column
    headers, and points at nothing outside itself."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.open, (checker.errors[:5], checker.open)
    assert text.count(INLINED) >= min_images
    assert all(image.get("alt") for image in checker.images)
    assert "<table" in text and any(h.get("scope") == "col" for h in checker.headers)
    external = [link for link in checker.links if re.match(r"(https?:)?//", link)]
    assert not external, external[:3]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert '<meta name="viewport"' in text
    return checker


def test_a_suite_with_both_controls_writes_and_logs_one_self_contained_page(
    tracking_uri: str, tmp_path: Path
) -> None:
    models = ("ae", "beta_vae", "pca", "random", "pca50")
    path = suite_file(tmp_path, models=models, betas=(1.0,), seeds=(0, 1))
    result = invoke("run", "--suite", str(path), "--report-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = tmp_path / "out" / "report.html"
    text = page.read_text()
    check_page(text)
    (parent,) = parents(experiment_runs(tracking_uri))
    assert "report/report.html" in artifact_paths(tracking_uri, parent.info.run_id)
    for section in ("Data and configuration", "Verdict", "Scores scaled between the controls",
                    "Paired comparisons with pca", "Cost", "Loss parts", "Posterior collapse",
                    "Best maps", "MLflow runs"):  # fmt: skip
        assert f">{section}</h2>" in text, section
    assert "300 x" in text  # the synthetic data's 300 cells, from the dataset the suite ran on
    assert "2</strong> (the <em>seeds</em>" in text  # how many seeds stand behind each number
    assert "Holm" in text and 'class="sortable"' in text
    children = [r for r in experiment_runs(tracking_uri) if r.info.run_id != parent.info.run_id]
    assert all(child.info.run_id in text for child in children)
    assert parent.info.run_id in text


def scaled_runs(seeds: int) -> pd.DataFrame:
    from tests.test_report_scaling import runs

    return runs(seeds)


def test_the_verdict_says_when_a_lead_is_within_the_noise(tmp_path: Path) -> None:
    frame = scaled_runs(seeds=3)
    # ae and pca at the same level, up to a per-seed wobble: neither leads beyond the noise.
    score_columns = [c for c in frame.columns if "." in c and not c.startswith("train.")]
    rng = np.random.default_rng(1)
    at_pca = frame["entry"] == "pca"
    frame.loc[frame["entry"] == "ae", score_columns] = frame.loc[
        at_pca, score_columns
    ].to_numpy() + rng.normal(0, 0.02, (3, len(score_columns)))
    write_report(frame, tmp_path, about={"dataset.n_cells": 700, "dataset.n_genes": 765})
    text = (tmp_path / "report.html").read_text()
    check_page(text)
    assert "700 x 765" in text
    assert "<strong>within the noise</strong>" in text and "a tie on this score" in text
    assert "worse than pca on" in text  # beta_vae trails the baseline beyond the noise


def test_without_labels_or_controls_the_page_still_reads(tmp_path: Path) -> None:
    frame = scaled_runs(seeds=2)
    frame = frame[~frame["entry"].isin(["random", "pca50"])].assign(label_key="none")
    label_scores = [c for c in frame.columns if c.startswith(("tsne_kmeans", "latent_kmeans", "leiden"))]
    frame[label_scores] = np.nan
    write_report(frame, tmp_path)
    text = (tmp_path / "report.html").read_text()
    check_page(text, min_images=1)
    assert "No labels: label scores are skipped" in text
    assert ">Scores scaled between the controls</h2>" not in text


PNG = Path(__file__).with_name("test_report_html.py")  # any bytes stand for a figure in a pure page


def tune_result() -> TuneResult:
    seeds = [1000, 1001, 1002]
    tuned = PointEvaluation(
        "ae (tuned)", 4, {"lr": 0.003}, "celltype", seeds, ["r1", "r2", "r3"],
        {"tsne_kmeans.ari": [0.81, 0.84, 0.80], "train.cpu_seconds": [12.0, 11.0, 13.0]},
    )  # fmt: skip
    base = PointEvaluation(
        "pca", None, {}, "celltype", seeds, ["b1", "b2", "b3"],
        {"tsne_kmeans.ari": [0.80, 0.82, 0.81], "train.cpu_seconds": [0.1, 0.1, 0.1]},
    )  # fmt: skip
    diff = np.subtract(tuned.per_seed["tsne_kmeans.ari"], base.per_seed["tsne_kmeans.ari"])
    comparison = Comparison(
        entry="ae (tuned)", baseline="pca", metric="tsne_kmeans.ari", **vars(paired_difference(diff, "pca"))
    )
    return TuneResult(
        study_name="toy-study", storage="sqlite:///optuna.db", parent_run_id="parent123",
        tracking_uri="sqlite:///mlflow.db", experiment="tune-tests", objectives=("tsne_kmeans.ari",),
        trials_total=5, trials_run=5, states={"COMPLETE": 4, "PRUNED": 1},
        best=[TrialSummary(4, "COMPLETE", [0.9], {"lr": 0.003, "hidden": "256,64"}, "trial-run-4")],
        evaluations=[tuned], baseline=base, comparisons=[comparison],
        figures=["figures/optimization_history.png"], notes=["Skipped param_importances.png: one trial."],
    )  # fmt: skip


def test_a_studys_page_holds_its_best_trials_its_evaluation_and_the_paired_verdict() -> None:
    result = tune_result()
    text = study_page(result, {"figures/optimization_history.png": PNG.read_bytes()})
    check_page(text, min_images=1)
    for said in ("trial-run-4", "ae (tuned)", "r1", "b3", "Holm", "within the noise", "Optimization history",
                 "Skipped param_importances.png"):  # fmt: skip
        assert said in text, said


def test_a_study_logs_its_page_on_its_parent_run(tracking_uri: str, tmp_path: Path) -> None:
    """The wiring in the study: its figures read back from its parent run and the page logged there."""
    from vaebench import tracking
    from vaebench.sets.report import report_study

    tracking.configure(tracking_uri, "tune-tests")
    with tracking.start_run(run_name="study") as parent:
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        parent.log_figure(figure, "figures/optimization_history.png")
        plt.close(figure)
        result = tune_result()
        result.parent_run_id = parent.run_id
        report_study(parent, result)
    assert "report/report.html" in artifact_paths(tracking_uri, parent.run_id)
    local = MlflowClient(tracking_uri).download_artifacts(parent.run_id, "report/report.html", str(tmp_path))
    check_page(Path(local).read_text(), min_images=1)
