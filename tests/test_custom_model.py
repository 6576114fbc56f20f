"""A model of your own: by import path or entry point, through run, a suite, a report and a study.

The example package (``examples/custom_model``) is installed into the test environment once, as a user
would install theirs (``pip install --no-deps``); the commands then find ``tiny_vae`` by its entry point
and ``custom_model.models:TinyVAE`` by its path, in this process and in a suite's worker processes.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests.helpers import FAST, experiment_runs, invoke, run_cli
from vaebench.cli import app
from vaebench.errors import VaebenchError
from vaebench.models import LatentModel, LossTerms, ModelOptions, get_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_model"
# t-SNE on a sample of 100 of pbmc68k's 700 cells: the map is most of a run's time on a loaded machine.
PBMC = ["--dataset", "pbmc68k", *FAST]


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The example package, installed into this Python environment as a user installs theirs (once: it
    stays installed). The environment's own setuptools builds it where there is one (no download)."""
    if any(point.name == "tiny_vae" for point in entry_points(group="vaebench.models")):
        return
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    # Not editable: an editable install is found through a .pth file, which only a new interpreter reads;
    # installed into site-packages, it is importable by this process too (the in-process commands). Built
    # from a copy: a build in place leaves build/ and .egg-info folders in the checkout.
    source = tmp_path_factory.mktemp("example") / "custom_model"
    shutil.copytree(EXAMPLE, source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation, str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    importlib.invalidate_caches()


class NoEncode(torch.nn.Module):
    """Trains but cannot be scored."""

    def __init__(self, n_genes: int, options: ModelOptions) -> None:
        super().__init__()

    def loss(self, x: torch.Tensor) -> LossTerms: ...


class NotAModule:
    """Has the methods, but torch cannot train it."""

    def __init__(self, n_genes: int, options: ModelOptions) -> None: ...

    def loss(self, x: torch.Tensor) -> LossTerms: ...

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


class BuiltOtherwise(LatentModel):
    """Takes its sizes as keywords vaebench does not give."""

    def __init__(self, *, width: int) -> None:
        super().__init__()

    def loss(self, x: torch.Tensor) -> LossTerms: ...

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


class BadSpace(LatentModel):
    """Declares a search space in another format."""

    search_space: ClassVar[dict] = {"lr": [1e-4, 1e-2]}

    def __init__(self, n_genes: int, options: ModelOptions) -> None:
        super().__init__()

    def loss(self, x: torch.Tensor) -> LossTerms: ...

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.test_custom_model:NoEncode", r"\(NoEncode\) has no encode method"),
        ("tests.test_custom_model:NotAModule", r"must be a torch.nn.Module"),
        ("tests.test_custom_model:BuiltOtherwise", r"must be built as BuiltOtherwise\(n_genes, options\)"),
        (
            "tests.test_custom_model:BadSpace",
            r"declares 'lr': \[0.0001, 0.01\]; an entry is \(kind, low, high\)",
        ),
        ("tests.test_custom_model:Missing", r"module 'tests.test_custom_model' has no attribute 'Missing'"),
        ("tests.test_custom_model:FAST", r"is a list, not a class"),
        (
            "tests.no_such_module:Model",
            r"module 'tests.no_such_module' cannot be imported \(ModuleNotFoundError",
        ),
        ("tests.test_custom_model:", r"must have the form package.module:Class"),
        ("no_such_model", r"Unknown model 'no_such_model'; .* package.module:Class or by an entry point"),
    ],
)
def test_a_model_that_cannot_be_used_is_named_with_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(VaebenchError, match=message):
        get_model(path)


def test_a_bad_path_and_a_non_scalar_loss_end_the_command_with_one_sentence(
    tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_models.py").write_text(
        "import torch\n"
        "from vaebench.models import LatentModel, LossTerms\n\n"
        "class PerCell(LatentModel):\n"
        "    def __init__(self, n_genes, options):\n"
        "        super().__init__()\n"
        "        self.w = torch.nn.Linear(n_genes, options.latent_dim)\n"
        "    def encode(self, x):\n"
        "        return self.w(x)\n"
        "    def loss(self, x):\n"
        "        per_cell = self.w(x).pow(2).sum(dim=1)\n"
        "        return LossTerms(per_cell, {'penalty': per_cell})\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))  # the working folder joins it, as `python -m` has it
    result = CliRunner().invoke(app, ["run", "--model", "my_models:PerCell", *PBMC])
    assert result.exit_code == 2, result.output
    # (MLflow's own INFO lines about creating the store come before it)
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: The loss of model 'PerCell' must be a scalar tensor")
    )
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["run", "--model", "my_modles:PerCell", *PBMC])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(
        "Error: Model path 'my_modles:PerCell': module 'my_modles' cannot"
    )


def test_the_example_is_listed_and_runs_logging_its_loss_parts(
    example_installed: None, tracking_uri: str, tmp_path: Path
) -> None:
    listed = invoke("list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "tiny_vae" in listed.stdout and "Kingma & Welling 2014" in listed.stdout
    result = invoke("run", "--model", "tiny_vae", "--beta", "4", *PBMC, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = experiment_runs(tracking_uri)
    assert run.data.tags["model"] == "tiny_vae" and run.data.tags["beta"] == "4.0"
    assert {"tsne_kmeans.ari", "train.seconds_per_epoch"} <= set(run.data.metrics)
    client = MlflowClient(tracking_uri)
    curves = {
        name: [
            m.value for m in sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        ]
        for name in ("train.loss", "train.loss.reconstruction", "train.loss.beta_kl")
    }
    assert all(len(curve) == 3 for curve in curves.values())
    for epoch in range(3):
        parts = curves["train.loss.reconstruction"][epoch] + curves["train.loss.beta_kl"][epoch]
        assert parts == pytest.approx(curves["train.loss"][epoch], rel=1e-5)


def test_the_example_by_its_path_in_a_parallel_suite_and_its_loss_parts_in_the_report(
    example_installed: None, tracking_uri: str, tmp_path: Path
) -> None:
    suite = tmp_path / "mine.toml"
    suite.write_text(
        'name = "mine"\ndataset = "pbmc68k"\nmodels = ["custom_model.models:TinyVAE"]\nbetas = [0.5, 4.0]\n'
        "seeds = [0]\n\n[options]\nepochs = 3\nn_init = 3\nperplexity = 20.0\ntsne_3d = false\ntsne_cells = 100\n"
    )
    result = run_cli("run", "--suite", str(suite), "--jobs", "2", "--report-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    finished = [r for r in experiment_runs(tracking_uri) if r.data.tags.get("vaebench.role") != "suite"]
    assert sorted(float(r.data.tags["beta"]) for r in finished) == [0.5, 4.0]
    assert {r.data.tags["model"] for r in finished} == {"custom_model.models:TinyVAE"}
    parts = (tmp_path / "out" / "loss_parts.md").read_text()
    rows = [line for line in parts.splitlines() if line.startswith("| custom_model.models:TinyVAE |")]
    assert [row.split("|")[2].strip() for row in rows] == ["0.5", "4"]
    assert "train.loss.reconstruction" in parts and "train.kl" in parts
    assert (tmp_path / "out" / "beta_train.kl.png").stat().st_size > 0


def test_the_example_is_tuned_in_its_declared_space(
    example_installed: None, tracking_uri: str, tmp_path: Path
) -> None:
    result = invoke(
        "tune", "--model", "tiny_vae", "--dataset", "pbmc68k", "--trials", "2", "--evaluate-seeds", "0",
        "--pruning-interval", "0", "--storage", f"sqlite:///{tmp_path / 'optuna.db'}",
        "--set", "epochs=2", "--set", "n_init=2", "--set", "perplexity=20", "--set", "tsne_cells=100",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = [r for r in experiment_runs(tracking_uri) if r.data.tags.get("vaebench.role") == "tune-trial"]
    assert len(trials) == 2
    for trial in trials:
        assert trial.data.tags["model"] == "tiny_vae"
        assert 2 <= int(trial.data.params["latent_dim"]) <= 16  # the class's space, not the built-ins'
        assert 0.1 <= float(trial.data.params["beta"]) <= 10.0
        assert "train.loss.beta_kl" in trial.data.metrics
