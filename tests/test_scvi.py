"""scvi-tools' SCVI as ``--model scvi``: the same latent as scvi-tools on its own, logged like every run,
in suites and studies, and one sentence where the extra is missing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.helpers import FAST, artifact_paths, experiment_runs, invoke
from vaebench.data.synthetic import make_synthetic_counts
from vaebench.errors import VaebenchError
from vaebench.models import ModelOptions, get_model

pytest.importorskip("scvi", reason="the scvi extra (pip install 'vaebench[scvi]') is not installed")

COUNTS = ["--dataset", "synthetic_counts", "--cells", "400", "--genes", "120"]


def test_the_adapter_gives_the_latent_scvi_tools_gives_on_its_own() -> None:
    """Same counts, seed and settings: the registry's scvi and a plain scvi-tools script agree to the bit."""
    import anndata
    import scvi

    from vaebench.models.scvi_model import quiet_lightning

    counts = make_synthetic_counts(300, 80, n_types=3, seed=4, mean_library_size=500).X
    model = get_model("scvi").trainer(ModelOptions(latent_dim=4, beta=0.5))
    training = model.fit(counts, epochs=2, batch_size=64, lr=2e-3, seed=7, device=torch.device("cpu"))
    ours = model.encode(counts)

    with quiet_lightning():
        adata = anndata.AnnData(counts.copy())
        scvi.settings.seed = 7
        scvi.model.SCVI.setup_anndata(adata)
        reference = scvi.model.SCVI(adata, n_latent=4)
        reference.train(
            max_epochs=2,
            batch_size=64,
            train_size=1.0,
            early_stopping=False,
            accelerator="cpu",
            devices=1,
            plan_kwargs={"lr": 2e-3, "n_epochs_kl_warmup": None, "max_kl_weight": 0.5},
        )
    np.testing.assert_array_equal(ours, reference.get_latent_representation())
    # The loss parts are scvi-tools' own curves: reconstruction + 0.5 KL is the loss it minimised.
    assert training.epochs == 2 and set(training.parts) == {"reconstruction", "beta_kl"}
    history = reference.history
    np.testing.assert_allclose(
        training.parts["reconstruction"], history["reconstruction_loss_train"].to_numpy(float).ravel()
    )
    np.testing.assert_allclose(
        training.parts["beta_kl"], 0.5 * history["kl_local_train"].to_numpy(float).ravel()
    )
    np.testing.assert_allclose(training.losses, history["train_loss"].to_numpy(float).ravel(), rtol=1e-4)
    mean, var = model.posterior_moments(counts)
    np.testing.assert_array_equal(mean, ours)
    assert var.shape == ours.shape and (var > 0).all()


def test_a_scvi_run_is_timed_and_logged_like_every_run(tracking_uri: str, tmp_path: Path) -> None:
    result = invoke("run", "--model", "scvi", *COUNTS, *FAST, "--beta", "0.5", "--hidden", "32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())  # rich wraps lines at the width of a terminal
    assert "Training scvi" in said and "for 3 epochs on its raw counts" in said
    (run,) = experiment_runs(tracking_uri)
    assert run.data.params["beta"] == "0.5" and run.data.params["hidden"] == "32"
    assert run.data.params["epochs"] == "3" and run.data.tags["model"] == "scvi"
    metrics = run.data.metrics
    assert metrics["train.seconds_per_epoch"] > 0 and metrics["train.cpu_seconds"] > 0
    assert "leiden.ari" in metrics and "structure.trustworthiness" in metrics
    client = MlflowClient(tracking_uri)
    curves = {
        name: [m.value for m in client.get_metric_history(run.info.run_id, name)]
        for name in ("train.loss", "train.loss.reconstruction", "train.loss.beta_kl")
    }
    assert all(len(values) == 3 for values in curves.values())
    np.testing.assert_allclose(
        curves["train.loss"],
        np.add(curves["train.loss.reconstruction"], curves["train.loss.beta_kl"]),
        rtol=1e-6,
    )
    artifacts = artifact_paths(tracking_uri, run.info.run_id)
    assert "model/model.pt" in artifacts and "figures/tsne2d.png" in artifacts
    # Nothing of Lightning's banners reaches the user's console.
    assert "GPU available" not in result.stdout + result.stderr


def test_scvi_refuses_what_it_cannot_do_in_one_sentence(tracking_uri: str, tmp_path: Path) -> None:
    result = invoke("run", "--model", "scvi", *COUNTS, *FAST, "--hidden", "128,32", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "share one width" in result.stderr
    result = invoke("run", "--model", "scvi", "--dataset", "pbmc68k", *FAST, cwd=tmp_path)
    assert result.returncode != 0 and "models raw counts" in result.stderr


def test_without_the_extra_the_user_is_told_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tracking_uri: str, tmp_path: Path
) -> None:
    from vaebench.models.scvi_model import import_scvi

    monkeypatch.setitem(sys.modules, "scvi", None)  # what Python does where scvi-tools is not installed
    with pytest.raises(VaebenchError, match=r"pip install 'vaebench\[scvi\]'"):
        import_scvi()
    result = invoke("run", "--model", "scvi", *COUNTS, *FAST, cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "install it with: pip install 'vaebench[scvi]'" in result.stderr
    # A suite that names it is refused before anything runs, in the same sentence.
    suite = tmp_path / "ref.toml"
    suite.write_text('name = "ref"\ndataset = "synthetic_counts"\nmodels = ["nb_vae", "scvi"]\nseeds = [0]\n')
    result = invoke("run", "--suite", str(suite), cwd=tmp_path)
    assert result.returncode != 0 and "pip install 'vaebench[scvi]'" in result.stderr
    assert not experiment_runs(tracking_uri)
    # the listing still shows the model, so a user learns it exists
    assert "scvi" in invoke("list", cwd=tmp_path).stdout


def test_scvi_in_a_suite_beside_nb_vae_and_in_a_study(tracking_uri: str, tmp_path: Path) -> None:
    suite = tmp_path / "ref.toml"
    suite.write_text(
        'name = "ref"\ndataset = "synthetic_counts"\nmodels = ["scvi", "nb_vae", "pca"]\nseeds = [0]\n'
        "[options]\ncells = 400\ngenes = 120\nepochs = 2\nn_init = 3\ntsne_3d = false\ntsne_cells = 100\n"
        "perplexity = 20\n"
    )
    result = invoke("run", "--suite", str(suite), "--report-dir", "rep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    children = [r for r in experiment_runs(tracking_uri) if "mlflow.parentRunId" in r.data.tags]
    by_model = {r.data.tags["model"]: r for r in children}
    assert set(by_model) == {"scvi", "nb_vae", "pca"}
    assert all(r.info.status == "FINISHED" for r in children)
    # Each model's own default beta: scvi's KL weight 1, as scvi-tools has it.
    assert by_model["scvi"].data.params["beta"] == "1.0"
    # A study on real counts: tuned on pbmc68k's louvain clusters, reported on its bulk labels.
    fixed = [
        arg for pair in ("epochs=2", "n_init=3", "perplexity=20", "tsne_3d=false") for arg in ("--set", pair)
    ]
    result = invoke(
        "tune", "--model", "scvi", "--dataset", "pbmc68k_counts", "--trials", "2", "--evaluate-seeds", "0",
        "--pruning-interval", "0", "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", *fixed, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = [r for r in experiment_runs(tracking_uri) if r.data.tags.get("trial_state")]
    assert len(trials) == 2 and {r.data.tags["model"] for r in trials} == {"scvi"}


@pytest.fixture(autouse=True)
def _lightning_logs_restored() -> None:
    """The adapter silences Lightning for a fit only; the loggers' levels are back afterwards."""
    before = logging.getLogger("lightning.pytorch").level
    yield
    assert logging.getLogger("lightning.pytorch").level == before
