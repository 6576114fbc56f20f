"""Data without labels: runs, suites and reports score what needs no labels and say that label scores are
skipped; label scores are absent, never zero."""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from tests.helpers import FAST, artifact_paths, experiment_runs, invoke
from vaebench.data import load_dataset
from vaebench.data.synthetic import make_synthetic_counts
from vaebench.errors import VaebenchError
from vaebench.evaluate import ProtocolSettings, evaluate_embedding
from vaebench.evaluate.subsample import sample_cells

LABEL_SCORE_PREFIXES = ("tsne_kmeans.", "latent_kmeans.", "leiden.")
LABEL_SCORES = {"latent.silhouette", "latent.asw_label", "latent.clisi", "latent.isolated_label"}
NO_LABELS_LINE = (
    "No labels: label scores (NMI, ARI, homogeneity, completeness, silhouette, Leiden, label ASW, cLISI, "
    "isolated label) are skipped; scoring trustworthiness, kNN preservation and active units."
)


def write_raw_counts(path: Path, obs: pd.DataFrame | None = None) -> Path:
    """Raw counts of 300 cells x 200 genes as an .h5ad whose obs has no label column (a QC number only)."""
    counts = make_synthetic_counts(n_cells=300, n_genes=200)
    index = pd.Index(counts.cell_ids)
    obs = obs if obs is not None else pd.DataFrame({"n_counts": np.asarray(counts.X.sum(axis=1)).ravel()})
    obs.index = index
    anndata.AnnData(X=counts.X, obs=obs, var=pd.DataFrame(index=counts.gene_names)).write_h5ad(path)
    return path


def label_scores(metrics: dict[str, float]) -> set[str]:
    return {k for k in metrics if k.startswith(LABEL_SCORE_PREFIXES) or k in LABEL_SCORES}


def test_a_file_without_a_label_column_loads_without_labels(tmp_path: Path) -> None:
    dataset = load_dataset(path=write_raw_counts(tmp_path / "raw.h5ad"), preprocess="none")
    assert dataset.label_key is None and dataset.labels is None
    assert (
        dataset.content_hash() == load_dataset(path=tmp_path / "raw.h5ad", preprocess="none").content_hash()
    )


def test_label_key_none_drops_the_labels_of_annotated_data(tmp_path: Path) -> None:
    path = write_raw_counts(
        tmp_path / "two.h5ad", pd.DataFrame({"type": ["a", "b"] * 150, "batch": ["x"] * 300})
    )
    with pytest.raises(VaebenchError, match="--label-key none scores it without labels"):
        load_dataset(path=path, preprocess="none")
    dropped = load_dataset(path=path, label_key="none", preprocess="none")
    labelled = load_dataset(path=path, label_key="type", preprocess="none")
    assert dropped.labels is None and labelled.labels is not None
    assert dropped.content_hash() != labelled.content_hash()
    assert load_dataset("synthetic", label_key="none").labels is None


def test_the_protocol_without_labels_scores_structure_only_and_maps_a_plain_sample() -> None:
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(150, 20))
    settings = ProtocolSettings(perplexity=10, n_init=2, tsne_3d=False, tsne_cells=100)
    evaluation = evaluate_embedding(inputs[:, :4], None, settings, inputs=inputs)
    assert set(evaluation.metrics) == {"structure.trustworthiness", "structure.knn_preservation"}
    assert evaluation.kmeans_labels is None and evaluation.tsne2d.shape == (100, 2)
    cells = sample_cells(None, 150, 100, seed=0)
    assert len(set(cells)) == 100 and np.array_equal(cells, sample_cells(None, 150, 100, seed=0))
    assert sample_cells(None, 150, 150, seed=0) is None


def test_a_run_on_unlabelled_raw_counts_logs_label_free_scores_and_no_label_score(
    tracking_uri: str, tmp_path: Path
) -> None:
    write_raw_counts(tmp_path / "raw.h5ad")
    result = invoke("run", "--model", "beta_vae", "--data", "raw.h5ad", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("No labels:") == 1
    assert NO_LABELS_LINE in result.stdout
    (run,) = experiment_runs(tracking_uri)
    metrics = run.data.metrics
    assert {"structure.trustworthiness", "structure.knn_preservation", "latent.active_units"} <= set(metrics)
    assert label_scores(metrics) == set()
    assert run.data.params["dataset.label_key"] == "none" and "dataset.n_classes" not in run.data.params
    artifacts = artifact_paths(tracking_uri, run.info.run_id)
    assert "figures/tsne2d.png" in artifacts and "figures/kmeans_comparison.png" not in artifacts


def test_a_suite_on_unlabelled_raw_counts_and_its_report_rank_on_structure_and_say_collapse(
    tracking_uri: str, tmp_path: Path
) -> None:
    write_raw_counts(tmp_path / "raw.h5ad")
    (tmp_path / "raw.toml").write_text(
        'name = "raw"\ndata_path = "raw.h5ad"\nmodels = ["pca", "beta_vae", "random", "pca50"]\n'
        "betas = [64.0]\nseeds = [0]\n\n[options]\nepochs = 2\nn_init = 2\nperplexity = 20.0\n"
        "tsne_3d = false\ntsne_cells = 100\nlatent_dim = 4\n"
    )
    result = invoke("run", "--suite", "raw.toml", "--report-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("No labels:") == 1
    # beta 64 leaves no dimension active: said on the console and in the report.
    collapsed = "Posterior collapse: beta_vae (beta 64, seed 0) has 0 of 4 latent dimensions active"
    assert collapsed in result.stdout
    kids = [r for r in experiment_runs(tracking_uri) if r.data.tags.get("vaebench.role") != "suite"]
    assert len(kids) == 4 and all(label_scores(k.data.metrics) == set() for k in kids)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "no labels" in summary and "ranked on structure.mean" in summary
    assert "tsne_kmeans" not in summary and "leiden" not in summary
    assert f"- {collapsed}" in summary
    ranking = [line for line in summary.splitlines() if line.startswith("| 1 |")]
    assert len(ranking) == 1
    table = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert table["structure.mean mean"].notna().all()
    assert not any(c.startswith(LABEL_SCORE_PREFIXES) for c in table.columns)
    # The controls are there, so the scaled table's total stands on structure alone.
    assert table["aggregate.total mean"].notna().all()
    assert (tmp_path / "out" / "results_table.png").exists() and not (
        tmp_path / "out" / "heatmap.png"
    ).exists()
