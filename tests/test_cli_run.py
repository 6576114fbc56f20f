"""`vaebench run`, `evaluate` and `list`, end to end against a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow.pytorch
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import FAST, artifact_paths, experiment_runs, invoke, run_cli
from vaebench.tracking import reader

STUDY_METRICS = {
    "tsne_kmeans.nmi",
    "tsne_kmeans.ari",
    "tsne_kmeans.hom",
    "tsne_kmeans.com",
    "latent_kmeans.nmi",
    "latent_kmeans.ari",
    "latent_kmeans.hom",
    "latent_kmeans.com",
    "latent.silhouette",
    "train.seconds",
    "train.cpu_seconds",
}
BEYOND_STUDY_METRICS = {
    "leiden.nmi",
    "leiden.ari",
    "latent.asw_label",
    "latent.clisi",
    "latent.isolated_label",
    "structure.trustworthiness",
    "structure.knn_preservation",
}


def test_list_names_models_metrics_and_datasets(tmp_path: Path) -> None:
    result = run_cli("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in (
        "ae",
        "beta_vae",
        "beta_vsc",
        "pca",
        "random",
        "pca50",
        "nmi",
        "leiden",
        "knn_preservation",
        "ari",
        "silhouette",
        "pbmc68k",
        "pbmc3k",
        "synthetic",
    ):
        assert name in result.stdout


# beta_vae takes the path beta_vsc takes (a network with a beta); suites and tuning run it end to end.
@pytest.mark.parametrize("model", ["ae", "beta_vsc", "pca", "random"])
def test_run_logs_params_scores_timing_figures_and_the_model(
    model: str, tracking_uri: str, tmp_path: Path
) -> None:
    result = invoke("run", "--model", model, "--dataset", "synthetic", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tsne_kmeans.ari" in result.stdout and "MLflow run" in result.stdout
    (run,) = experiment_runs(tracking_uri)
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) >= STUDY_METRICS | BEYOND_STUDY_METRICS
    assert {f"eval.seconds.{name}" for name in ("leiden", "clisi", "trustworthiness")} <= set(
        run.data.metrics
    )
    experiment = MlflowClient(tracking_uri).get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.params["model"] == model
    assert run.data.params["dataset.name"] == "synthetic"
    assert run.data.params["dataset.hash"]
    trained = model not in ("pca", "random")
    # a model that is not trained does not claim epochs (nor a learning rate)
    assert run.data.params.get("epochs") == ("3" if trained else None)
    assert {"cpu", "threads", "torch_version", "config_hash"} <= set(run.data.tags)
    artifacts = artifact_paths(tracking_uri, run.info.run_id)
    assert {
        "figures/tsne2d.png",
        "figures/kmeans_comparison.png",
        "figures/scores.png",
        "latent/latent_codes.csv",
        "config/config.json",
    } <= artifacts
    assert "latent/latent_codes.parquet" not in artifacts  # small data keep the CSV
    peaks = [run.data.metrics[f"memory.peak_mb.{stage}"] for stage in ("data", "train", "evaluate", "log")]
    assert peaks == sorted(peaks)  # peak memory so far at the end of each stage
    if model == "random":  # a control learns nothing: there is no model to serve
        assert not any(path.startswith("model/") for path in artifacts)
        assert run.data.metrics["structure.trustworthiness"] < 0.6
        return
    flavor = mlflow.sklearn if model == "pca" else mlflow.pytorch
    assert flavor.load_model(f"runs:/{run.info.run_id}/model") is not None
    if model != "pca":
        client = MlflowClient(tracking_uri)
        history = client.get_metric_history(run.info.run_id, "train.loss")
        assert [m.step for m in history] == [1, 2, 3]
        # each part of the loss is logged; the run keeps the last epoch's, and they add up to its loss
        parts = {name: v for name, v in run.data.metrics.items() if name.startswith("train.loss.")}
        expected = {"train.loss.reconstruction"} | ({"train.loss.beta_kl"} if model != "ae" else set())
        assert set(parts) == expected
        assert sum(parts.values()) == pytest.approx(history[-1].value, rel=1e-5)
        assert "train.seconds_per_epoch" in run.data.metrics


def test_the_logged_model_serves_latent_codes_and_the_3d_tsne_is_logged(
    tracking_uri: str, tmp_path: Path
) -> None:
    import torch

    result = invoke(
        "run", "--model", "beta_vae", "--dataset", "synthetic", "--epochs", "2", "--n-init", "2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = experiment_runs(tracking_uri)
    assert "figures/tsne3d.png" in artifact_paths(tracking_uri, run.info.run_id)
    model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    codes = reader.latent_codes(run.info.run_id)  # latent_codes.csv here; .parquet from 100,000 cells on
    from vaebench.data import load_dataset

    X = torch.from_numpy(load_dataset("synthetic").X)
    np.testing.assert_allclose(
        model(X).detach().numpy(), codes[[f"z{i}" for i in range(6)]].to_numpy(), atol=1e-5
    )


def test_the_same_seed_gives_the_same_scores(tracking_uri: str, tmp_path: Path) -> None:
    for _ in range(2):
        assert (
            invoke(
                "run", "--model", "beta_vsc", "--dataset", "synthetic", "--seed", "7", *FAST, cwd=tmp_path
            ).returncode
            == 0
        )
    first, second = experiment_runs(tracking_uri)
    scores = [
        {
            k: v
            for k, v in r.data.metrics.items()
            if not k.startswith(("train.", "eval.", "memory.")) and "seconds" not in k
        }
        for r in (first, second)
    ]
    assert scores[0] == scores[1]
    assert first.data.tags["config_hash"] == second.data.tags["config_hash"]


def test_evaluate_scores_an_embedding_from_a_csv(tracking_uri: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(["T", "B", "NK"], 60)
    centers = {"T": (0, 0, 0), "B": (8, 0, 0), "NK": (0, 8, 0)}
    coords = np.array([centers[label] for label in labels]) + rng.normal(0, 0.5, (180, 3))
    table = pd.DataFrame(coords, columns=["d0", "d1", "d2"], index=[f"cell{i}" for i in range(180)])
    table["cell_type"] = labels
    table.to_csv(tmp_path / "emb.csv")
    result = invoke(
        "evaluate",
        "emb.csv",
        "--label-column",
        "cell_type",
        "--name",
        "my_method",
        "--n-init",
        "5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run,) = experiment_runs(tracking_uri)
    assert run.data.tags["model"] == "my_method"
    assert run.data.metrics["latent_kmeans.ari"] > 0.95
    assert run.data.metrics["tsne_kmeans.ari"] > 0.9
    assert "figures/kmeans_comparison.png" in artifact_paths(tracking_uri, run.info.run_id)


def test_evaluate_scores_a_2d_h5ad_embedding_without_tsne(tracking_uri: str, tmp_path: Path) -> None:
    import anndata

    rng = np.random.default_rng(1)
    labels = np.repeat(["a", "b"], 50)
    coords = np.where(labels[:, None] == "a", 0.0, 10.0) + rng.normal(0, 1, (100, 2))
    adata = anndata.AnnData(
        X=np.zeros((100, 3), dtype=np.float32),
        obs=pd.DataFrame({"kind": labels}, index=[f"c{i}" for i in range(100)]),
    )
    adata.obsm["X_mine"] = coords
    adata.write_h5ad(tmp_path / "emb.h5ad")
    result = invoke(
        "evaluate", "emb.h5ad", "--obsm", "X_mine", "--label-column", "kind", "--n-init", "5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = experiment_runs(tracking_uri)
    codes = pd.read_csv(
        MlflowClient(tracking_uri).download_artifacts(run.info.run_id, "latent/tsne2d.csv", str(tmp_path))
    )
    np.testing.assert_allclose(codes[["x", "y"]].to_numpy(), coords, rtol=1e-6)
    assert run.data.metrics["tsne_kmeans.ari"] == pytest.approx(1.0)
