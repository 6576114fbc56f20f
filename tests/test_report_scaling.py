"""Scores scaled between the controls, Holm's correction and the results-table figure of a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaebench.evaluate.figures import data_range
from vaebench.results.report import write_report
from vaebench.results.scaling import add_scaled_scores, aggregate_name, scaled_name
from vaebench.results.stats import holm_adjusted
from vaebench.results.tables import PAIRED_METRICS, SUMMARY_METRICS, paired_against_baseline

# Mean score of each entry; every metric of a run gets its entry's score plus a per-seed wobble.
LEVELS = {"random": 0.2, "pca50": 0.8, "pca": 0.6, "beta_vae": 0.5, "ae": 0.65}
CPU_SECONDS = {"random": 0.0, "pca50": 0.05, "pca": 0.02, "beta_vae": 30.0, "ae": 20.0}


def runs(seeds: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for entry, level in LEVELS.items():
        for seed in range(seeds):
            row = {"run_id": f"{entry}-{seed}", "model": entry, "entry": entry, "seed": seed}
            row["beta"] = 2.0 if entry == "beta_vae" else np.nan
            row["dataset"], row["label_key"] = "pbmc68k", "bulk_labels"
            for metric in SUMMARY_METRICS:
                row[metric] = level + rng.normal(0, 0.01)
            row["train.cpu_seconds"] = row["train.seconds"] = CPU_SECONDS[entry]
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


def test_scores_are_scaled_between_the_controls_means() -> None:
    scaled = add_scaled_scores(runs()).groupby("entry").mean(numeric_only=True)
    column = scaled_name("leiden.nmi")
    assert scaled.loc["random", column] == pytest.approx(0.0, abs=1e-9)
    assert scaled.loc["pca50", column] == pytest.approx(1.0, abs=1e-9)
    assert scaled.loc["beta_vae", column] == pytest.approx(0.5, abs=0.05)
    assert scaled.loc["ae", column] == pytest.approx(0.75, abs=0.05)
    # Group aggregates are the mean of their scaled scores; total averages bio-conservation and structure.
    assert scaled.loc["ae", aggregate_name("bio-conservation")] == pytest.approx(0.75, abs=0.05)
    assert scaled.loc["ae", aggregate_name("total")] == pytest.approx(0.75, abs=0.05)


def test_cost_is_scaled_from_the_dearest_to_the_cheapest_entry() -> None:
    cost = add_scaled_scores(runs()).groupby("entry")[scaled_name("train.cpu_seconds")].mean()
    assert cost["random"] == pytest.approx(1.0)
    assert cost["beta_vae"] == pytest.approx(0.0)
    assert cost["random"] > cost["pca"] > cost["pca50"] > cost["ae"] > cost["beta_vae"]


def test_without_controls_nothing_is_scaled(tmp_path: Path) -> None:
    frame = runs()
    without = frame[~frame["entry"].isin(["random", "pca50"])]
    alone = add_scaled_scores(without)
    assert alone[scaled_name("leiden.nmi")].isna().all()
    assert alone[aggregate_name("total")].isna().all()
    write_report(without, tmp_path)
    assert (tmp_path / "summary.md").exists()
    assert not (tmp_path / "results_table.png").exists() and not (tmp_path / "scaled.md").exists()


def test_holm_adjustment_matches_the_step_down_by_hand() -> None:
    # Sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(that, 1 x 0.04); NaN stays out of the family.
    adjusted = holm_adjusted(np.array([0.04, 0.01, np.nan, 0.03]))
    np.testing.assert_allclose(adjusted[[1, 3, 0]], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])


def test_paired_table_leaves_controls_out_and_states_holm() -> None:
    paired = paired_against_baseline(add_scaled_scores(runs()), PAIRED_METRICS)
    assert set(paired["entry"]) == {"ae", "beta_vae"}
    assert (paired["holm_p"] >= paired["t_p"]).all()
    worse = paired[(paired["entry"] == "beta_vae") & (paired["metric"] == "leiden.ari")].iloc[0]
    assert worse["holm_verdict"] == "worse than pca"


def test_the_report_writes_a_non_empty_results_table_figure(tmp_path: Path) -> None:
    report = write_report(runs(), tmp_path)
    figure = tmp_path / "results_table.png"
    assert figure in report.files
    assert figure.stat().st_size > 10_000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scaled = (tmp_path / "scaled.md").read_text()
    assert "aggregate.total" in scaled and "random and pca50" in scaled
    assert "Holm" in (tmp_path / "paired_vs_pca.md").read_text()


def test_heatmap_colours_follow_the_data_range() -> None:
    assert data_range(np.array([[0.61, 0.64], [np.nan, 0.58]])) == (0.58, 0.64)
    assert data_range(np.array([0.5, 0.5])) == (0.0, 1.0)
    assert data_range(np.array([np.nan])) == (0.0, 1.0)
