"""Suites: nested runs, resume after a kill, failures that do not stop the rest, parallel children, reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import artifact_paths, experiment_runs, invoke, run_cli
from vaebench.config.parts import TrainingSettings
from vaebench.errors import VaebenchError
from vaebench.sets.suite import load_suite

TINY = """
name = "tiny"
dataset = "synthetic"
models = {models}
betas = {betas}
seeds = {seeds}

[options]
epochs = {epochs}
n_init = 2
perplexity = 20.0
tsne_3d = false
tsne_cells = 100
"""


def suite_file(
    tmp_path: Path, models=("ae", "pca"), betas=(1.0,), seeds=(0, 1), epochs=2, name="tiny.toml"
) -> Path:
    path = tmp_path / name
    path.write_text(
        TINY.format(
            models=json.dumps(list(models)),
            betas=json.dumps(list(betas)),
            seeds=json.dumps(list(seeds)),
            epochs=epochs,
        )
    )
    return path


def children(runs: list) -> list:
    return [r for r in runs if r.data.tags.get("vaebench.role") != "suite" and "suite" in r.data.tags]


def parents(runs: list) -> list:
    return [r for r in runs if r.data.tags.get("vaebench.role") == "suite"]


def test_the_bundled_suites_load_and_the_default_has_eighty_points() -> None:
    default = load_suite("default")
    # 4 networks x 4 betas x 5 seeds (the ae has no beta: 1) + pca and the two controls x 5 seeds.
    assert len(default.grid()) == 80
    assert {c.model for c in default.grid()} >= {"random", "pca50"}
    assert default.dataset == "pbmc68k"
    seed = load_suite("seed")
    assert {c.variant for c in seed.grid()} == {"code"}
    assert {c.beta for c in seed.grid()} == {2.0}
    with pytest.raises(VaebenchError, match="known suites are"):
        load_suite("nightly")


def test_narrowing_a_suite_replaces_its_axes_and_its_settings() -> None:
    default = load_suite("default")
    suite = default.narrowed(models=["beta_vae", "pca"], betas=[1.0], seeds=[3], settings={"epochs": 5})
    grid = suite.grid()
    assert [(c.model, c.beta, c.seed, c.epochs) for c in grid] == [
        ("beta_vae", 1.0, 3, 5),
        # pca is not trained: its training settings stay at their defaults, out of its params and hash
        ("pca", 2.0, 3, TrainingSettings.epochs),
    ]
    # Another label column of the same data keeps the data; other data drop the suite's label column,
    # which names a column of pbmc68k.
    louvain = default.narrowed(settings={"label_key": "louvain"}).grid()
    assert {(c.dataset, c.label_key) for c in louvain} == {("pbmc68k", "louvain")}
    pbmc3k = default.narrowed(settings={"dataset": "pbmc3k", "n_init": 10}).grid()
    # ... and take the other dataset's own label column, written out (issue 18: names made explicit)
    assert {(c.dataset, c.label_key, c.n_init, c.perplexity) for c in pbmc3k} == {
        ("pbmc3k", "cell_type", 10, 40.0)
    }
    with pytest.raises(VaebenchError, match="per grid point"):
        default.narrowed(settings={"beta": 4.0})


def test_a_suite_runs_on_the_users_data_with_the_options_given(tracking_uri: str, tmp_path: Path) -> None:
    import anndata

    rng = np.random.default_rng(0)
    types = np.repeat(["B", "NK", "T"], 40)
    centres = rng.normal(scale=3, size=(3, 30))
    X = centres[np.searchsorted(["B", "NK", "T"], types)] + rng.normal(size=(120, 30))
    anndata.AnnData(
        X=X.astype(np.float32), obs=pd.DataFrame({"cell_type": types}, index=[f"c{i}" for i in range(120)])
    ).write_h5ad(tmp_path / "mine.h5ad")
    path = suite_file(tmp_path, models=("ae", "pca"), seeds=(0, 1))
    result = invoke(
        "run", "--suite", str(path), "--models", "pca", "--data", "mine.h5ad", "--label-key", "cell_type",
        "--latent-dim", "4", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "on mine.h5ad" in result.stdout
    kids = children(experiment_runs(tracking_uri))
    assert len(kids) == 2
    for kid in kids:
        params = kid.data.params
        assert params["data_path"] == str(tmp_path / "mine.h5ad") and params["dataset"] == "None"
        assert (params["label_key"], params["latent_dim"], params["n_init"]) == ("cell_type", "4", "2")
        assert kid.data.tags["model"] == "pca"
    (parent,) = parents(experiment_runs(tracking_uri))
    local = MlflowClient(tracking_uri).download_artifacts(
        parent.info.run_id, "suite/definition.json", str(tmp_path)
    )
    definition = json.loads(Path(local).read_text())
    assert definition["data_path"] == str(tmp_path / "mine.h5ad")
    assert definition["options"]["latent_dim"] == 4


def test_a_suite_makes_one_parent_and_tagged_children_and_a_rerun_skips_them(
    tracking_uri: str, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae", "beta_vae", "pca"), betas=(0.5, 2.0), seeds=(0, 1))
    first = invoke("run", "--suite", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = experiment_runs(tracking_uri)
    kids, (parent,) = children(runs), parents(runs)
    assert len(kids) == 2 + 4 + 2
    assert all(k.data.tags["mlflow.parentRunId"] == parent.info.run_id for k in kids)
    assert all({"suite", "model", "seed", "config_hash"} <= set(k.data.tags) for k in kids)
    assert {k.data.tags["beta"] for k in kids if k.data.tags["model"] == "beta_vae"} == {"0.5", "2.0"}
    assert len({k.data.tags["config_hash"] for k in kids}) == 8
    assert {
        "suite/definition.json",
        "suite/grid.json",
        "report/summary.md",
        "report/heatmap.png",
    } <= artifact_paths(tracking_uri, parent.info.run_id)

    report = invoke("report", "--out", "out", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    out = tmp_path / "out"
    for name in (
        "summary.md",
        "summary.csv",
        "paired_vs_pca.md",
        "heatmap.png",
        "beta_tsne_kmeans.ari.png",
        "cost_tsne_kmeans.ari.png",
        "tsne_best.png",
    ):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 1 + 2 + 1  # ae, beta_vae at two betas, pca
    assert set(table["n_seeds"]) == {2}
    assert "2 seeds" in (out / "summary.md").read_text()
    paired = pd.read_csv(out / "paired_vs_pca.csv")
    assert set(paired["n_pairs"]) == {2}

    again = invoke("run", "--suite", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 trained, 8 already finished" in again.stdout
    assert len(children(experiment_runs(tracking_uri))) == 8

    forced = invoke("run", "--suite", str(path), "--models", "pca", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(children(experiment_runs(tracking_uri))) == 10


def test_a_failing_child_is_marked_failed_the_rest_go_on_and_the_exit_is_non_zero(
    tracking_uri: str, tmp_path: Path
) -> None:
    # beta = 1e38 overflows the float32 loss at the first epoch: a real divergence.
    path = suite_file(tmp_path, models=("beta_vae", "pca"), betas=(1e38,), seeds=(0,))
    result = invoke("run", "--suite", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "FAILED beta_vae" in result.stderr and "diverged" in result.stderr
    kids = children(experiment_runs(tracking_uri))
    status = {k.data.tags["model"]: k.info.status for k in kids}
    assert status == {"beta_vae": "FAILED", "pca": "FINISHED"}
    failed = next(k for k in kids if k.info.status == "FAILED")
    assert "epoch 1" in failed.data.tags["failure_reason"]


def test_a_suite_killed_mid_way_resumes_to_exactly_one_finished_run_per_point(
    tracking_uri: str, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("ae", "pca"), seeds=(0, 1), epochs=20)
    process = subprocess.Popen(
        [sys.executable, "-m", "vaebench", "run", "--suite", str(path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            finished = [k for k in children(experiment_runs(tracking_uri)) if k.info.status == "FINISHED"]
            if finished:
                break
            time.sleep(0.3)
        assert finished, "no child finished in time"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    before = {k.info.run_id for k in children(experiment_runs(tracking_uri)) if k.info.status == "FINISHED"}
    assert 1 <= len(before) < 4

    resumed = invoke("run", "--suite", str(path), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    kids = children(experiment_runs(tracking_uri))
    finished = [k for k in kids if k.info.status == "FINISHED"]
    points = [(k.data.tags["model"], k.data.tags["seed"]) for k in finished]
    assert sorted(points) == sorted({(m, s) for m in ("ae", "pca") for s in ("0", "1")})
    assert before <= {k.info.run_id for k in finished}
    assert all(k.info.status in ("FINISHED", "KILLED") for k in kids)  # nothing is left RUNNING


def test_parallel_children_score_as_a_lone_run_with_the_same_threads(
    tracking_uri: str, tmp_path: Path
) -> None:
    path = suite_file(tmp_path, models=("beta_vsc",), betas=(1.0,), seeds=(0, 1), epochs=3)
    result = run_cli("run", "--suite", str(path), "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    kids = {k.data.tags["seed"]: k for k in children(experiment_runs(tracking_uri))}
    threads = kids["1"].data.tags["threads"]
    alone = invoke(
        "run",
        "--model",
        "beta_vsc",
        "--dataset",
        "synthetic",
        "--beta",
        "1",
        "--seed",
        "1",
        "--epochs",
        "3",
        "--n-init",
        "2",
        "--perplexity",
        "20",
        "--no-tsne-3d",
        "--tsne-cells",
        "100",
        "--threads",
        threads,
        "--experiment",
        "alone",
        cwd=tmp_path,
    )
    assert alone.returncode == 0, alone.stderr
    (lone,) = experiment_runs(tracking_uri, "alone")
    assert lone.data.tags["config_hash"] == kids["1"].data.tags["config_hash"]
    for name in ("tsne_kmeans.ari", "latent_kmeans.nmi", "latent.silhouette", "train.final_loss"):
        assert lone.data.metrics[name] == kids["1"].data.metrics[name]


def test_mlflow_run_reproduces_a_suite(tracking_uri: str, tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[1]
    path = suite_file(tmp_path, models=("pca",), seeds=(0, 1))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(project),
            "-e",
            "main",
            "-P",
            f"suite={path}",
            "-P",
            "jobs=1",
            "-P",
            f"report_dir={tmp_path / 'rep'}",
            "--env-manager",
            "local",
            "--experiment-name",
            "projects",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = experiment_runs(tracking_uri, "projects")
    (parent,) = parents(runs)
    assert parent.info.status == "FINISHED"
    assert len(children(runs)) == 2
    assert all(k.data.tags["mlflow.parentRunId"] == parent.info.run_id for k in children(runs))
    assert (
        MlflowClient(tracking_uri).get_run(parent.info.run_id).data.tags.get("mlflow.project.entryPoint")
        == "main"
    )
