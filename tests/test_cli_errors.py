"""Bad input is answered in one sentence on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.helpers import experiment_runs, run_cli
from tests.helpers import invoke as invoke_command
from vaebench.cli import app

runner = CliRunner()


def write_csv(path: Path, X: np.ndarray, labels: list[str]) -> Path:
    table = pd.DataFrame(
        X, columns=[f"g{i}" for i in range(X.shape[1])], index=[f"c{i}" for i in range(X.shape[0])]
    )
    table["cell_type"] = labels
    table.to_csv(path)
    return path


def assert_one_sentence(result, *fragments: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = result.stderr.strip()
    assert message.startswith("Error:"), message
    assert "Traceback" not in result.stderr + result.stdout
    flat = " ".join(message.split())
    for fragment in fragments:
        assert fragment in flat, flat


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 8))
    nan = X.copy()
    nan[3, 2] = np.nan
    (tmp_path / "garbage.csv").write_text("this is not,a matrix\nat,all\n")
    return {
        "good": write_csv(tmp_path / "good.csv", X, ["a", "b"] * 10),
        "nan": write_csv(tmp_path / "nan.csv", nan, ["a", "b"] * 10),
        "one_class": write_csv(tmp_path / "one.csv", X, ["a"] * 20),
        "one_cell": write_csv(tmp_path / "cell.csv", X[:1], ["a"]),
        "garbage": tmp_path / "garbage.csv",
    }


def invoke(*args: str):
    return runner.invoke(app, ["run", *args, "--epochs", "1", "--n-init", "1", "--no-tsne-3d"])


def test_a_path_that_does_not_exist(tracking_uri: str) -> None:
    assert_one_sentence(invoke("--data", "nowhere.h5ad"), "nowhere.h5ad")


def test_a_file_that_is_not_a_matrix(files: dict[str, Path], tracking_uri: str) -> None:
    assert_one_sentence(invoke("--data", str(files["garbage"]), "--label-key", "all"))


def test_nan_in_the_matrix(files: dict[str, Path], tracking_uri: str) -> None:
    assert_one_sentence(invoke("--data", str(files["nan"]), "--label-key", "cell_type"), "NaN")


def test_a_label_column_that_does_not_exist_lists_those_that_do(tracking_uri: str) -> None:
    assert_one_sentence(
        invoke("--dataset", "pbmc68k", "--label-key", "celltype"), "celltype", "bulk_labels", "louvain"
    )


def test_a_single_label_class(files: dict[str, Path], tracking_uri: str) -> None:
    assert_one_sentence(invoke("--data", str(files["one_class"]), "--label-key", "cell_type"), "single class")


def test_fewer_than_two_cells(files: dict[str, Path], tracking_uri: str) -> None:
    assert_one_sentence(invoke("--data", str(files["one_cell"]), "--label-key", "cell_type"), "at least two")


def test_latent_not_below_the_gene_count(files: dict[str, Path], tracking_uri: str) -> None:
    assert_one_sentence(
        invoke("--data", str(files["good"]), "--label-key", "cell_type", "--latent-dim", "8"), "8 genes"
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--beta", "-1", "--model", "beta_vae"), "--beta must be zero or positive"),
        (("--epochs", "0"), "--epochs must be at least 1"),
        (("--lr", "-0.1"), "--lr must be positive"),
        (("--lr", "0"), "--lr must be positive"),
        (("--model", "vae"), "known models are: ae, beta_vae, beta_vsc, flow_vae, nb_vae, pca"),
        (("--dataset", "pbmc4k"), "pbmc68k"),
        (("--metrics", "nmi,accuracy"), "known metrics are"),
        (("--model", "nb_vae", "--dataset", "digits"), "digits does not have"),
        (("--model", "flow_vae", "--flows", "0"), "--flows must be at least 1"),
        # A suite's own axes: a single run's option would be dropped from it, so it is refused.
        (("--all", "--beta", "4"), "a suite takes --betas"),
        (("--all", "--model", "beta_vae"), "a suite takes --models"),
        (("--suite", "default", "--seed", "1"), "a suite takes --seeds"),
        (("--all", "--dataset", "pbmc68k", "--data", "x.h5ad"), "either --dataset or --data"),
        (("--all", "--dataset", "pbmc4k"), "pbmc68k"),
    ],
)
def test_impossible_settings_and_unknown_names(
    args: tuple[str, ...], fragment: str, tracking_uri: str
) -> None:
    result = runner.invoke(app, ["run", *args, "--n-init", "1", "--no-tsne-3d"])
    assert_one_sentence(result, fragment)


def test_evaluate_with_an_unknown_label_column(files: dict[str, Path], tracking_uri: str) -> None:
    result = runner.invoke(app, ["evaluate", str(files["good"]), "--label-column", "celltype"])
    assert_one_sentence(result, "celltype", "cell_type")


def test_a_bad_input_leaves_earlier_runs_untouched(
    files: dict[str, Path], tracking_uri: str, tmp_path: Path
) -> None:
    """As a user sees it: the real command, its exit code, stderr, and the MLflow store after it."""
    ok = invoke_command(  # the earlier run, made in this process
        "evaluate",
        str(files["good"]),
        "--label-column",
        "cell_type",
        "--n-init",
        "2",
        "--no-tsne-3d",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    bad = run_cli("run", "--data", str(files["nan"]), "--label-key", "cell_type", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) <= 2  # one sentence, wrapped at most once by the console
    (run,) = experiment_runs(tracking_uri)
    assert run.info.status == "FINISHED"
