"""UMAP as an optional second map (``--maps tsne,umap``): a figure and a table of the mapped cells, never a
score or a part of the hash; umap-learn imported only by runs that ask for it, and its absence said in one
sentence before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import FAST, experiment_runs, invoke
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError

INSTALL = "pip install 'vaebench[umap]'"


def test_a_run_asking_for_umap_logs_its_figure_and_one_row_per_mapped_cell(tracking_uri: str, tmp_path: Path):
    result = invoke(
        "run", "--model", "pca", "--dataset", "synthetic", "--maps", "tsne,umap", *FAST, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = experiment_runs(tracking_uri)
    client = MlflowClient(tracking_uri)
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert {"figures/tsne2d.png", "figures/umap.png"} <= figures
    umap = pd.read_csv(client.download_artifacts(run.info.run_id, "latent/umap.csv", str(tmp_path)))
    tsne = pd.read_csv(client.download_artifacts(run.info.run_id, "latent/tsne2d.csv", str(tmp_path)))
    assert len(umap) == int(run.data.params["eval.map_cells"]) == 100  # the t-SNE map's sampled cells
    assert list(umap["cell_id"]) == list(tsne["cell_id"])
    assert list(umap.columns) == ["cell_id", "label", "x", "y"] and np.isfinite(umap[["x", "y"]]).all().all()
    assert run.data.params["maps"] == "tsne,umap"
    assert "eval.seconds.umap" in run.data.metrics
    assert not any("umap" in name for name in run.data.metrics if not name.startswith("eval.seconds"))


def test_a_map_is_not_part_of_the_hash_nor_of_a_default_runs_params() -> None:
    plain, both = RunConfig.of(model="beta_vae"), RunConfig.of(model="beta_vae", maps=("tsne", "umap"))
    assert both.config_hash("data") == plain.config_hash("data")
    assert "maps" not in plain.params() and both.params()["maps"] == "tsne,umap"
    assert RunConfig.from_params(both.params()) == both
    assert RunConfig.of(maps=("umap",)).maps == RunConfig.of(maps=("umap", "tsne")).maps == ("tsne", "umap")
    with pytest.raises(VaebenchError, match="Unknown map 'pca'; known maps are: tsne, umap"):
        RunConfig.of(maps=("tsne", "pca"))


def test_without_umap_learn_asking_for_umap_is_refused_in_one_sentence_before_anything_runs(
    tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # what find_spec reports of a package that cannot import
    with pytest.raises(VaebenchError, match="needs the Python package umap-learn"):
        RunConfig.of(maps=("tsne", "umap"))
    result = invoke(
        "run", "--model", "pca", "--dataset", "synthetic", "--maps", "tsne,umap", *FAST, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: --maps umap needs the Python package umap-learn, which is not installed; install it with: "
        f"{INSTALL}"
    ]
    assert experiment_runs(tracking_uri) == []
    assert RunConfig.of().maps == ("tsne",)  # runs that do not ask for it do not need it


NO_UMAP_RUN = """
import sys
from vaebench.cli import app
try:
    app(args=sys.argv[1:], prog_name="vaebench")
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted(name for name in ("umap", "pynndescent") if name in sys.modules))
"""


def test_a_run_that_does_not_ask_for_umap_never_imports_it(tracking_uri: str, tmp_path: Path) -> None:
    args = ["run", "--model", "pca", "--dataset", "synthetic", *FAST]
    done = subprocess.run(
        [sys.executable, "-c", NO_UMAP_RUN, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_reports_best_maps_show_umap_beside_tsne_where_runs_logged_one() -> None:
    from vaebench.results.report import best_maps_figure, with_umap

    cells = pd.DataFrame({"cell_id": ["a", "b", "c", "d"], "label": ["T", "T", "B", "B"]})
    tsne = {"r1": cells.assign(x=[0, 1, 2, 3], y=[0, 1, 0, 1]), "r2": cells.assign(x=[3, 2, 1, 0], y=1)}
    umap = {"r1": cells.iloc[::-1].assign(x=[9, 8, 7, 6], y=0)}  # another order: joined on the cell
    maps = with_umap(tsne.get, umap.get)
    joined = maps("r1")
    assert list(joined["umap_x"]) == [6, 7, 8, 9] and list(joined["x"]) == [0, 1, 2, 3]
    assert "umap_x" not in maps("r2")
    figure = best_maps_figure([("ae", joined), ("pca", maps("r2"))], "test")
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:2] == ["ae\nt-SNE", "ae\nUMAP"] and titles[2] == "pca\nt-SNE"
    assert any("no UMAP logged" in text.get_text() for text in figure.axes[3].texts)
    assert len(best_maps_figure([("pca", maps("r2"))], "test").axes) == 1  # no UMAP anywhere: as before
