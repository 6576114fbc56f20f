"""A run's latent codes as CSV below PARQUET_FROM_CELLS cells and as Parquet from there on, read back under
either name; and the peak memory so far at the end of each stage (``memory.peak_mb.*``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import artifact_paths
from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.runner import (
    PARQUET_FROM_CELLS,
    fit_and_score,
    latent_codes_artifact,
    log_evaluation,
    run_and_log,
)
from vaebench.tracking import reader, write_parquet

CSV, PARQUET = "latent/latent_codes.csv", "latent/latent_codes.parquet"
STAGES = ("data", "train", "evaluate", "log")
# PCA on the synthetic data's 300 cells with the protocol on small settings: seconds, not minutes.
QUICK = {
    "model": "pca",
    "dataset": "synthetic",
    "perplexity": 20,
    "n_init": 3,
    "tsne_3d": False,
    "tsne_cells": 100,
    "threads": 1,
}


def codes_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["z0", "z1", "z2"])
    table.insert(0, "label", pd.Categorical([f"type {i % 4}" for i in range(n)]))
    table.insert(0, "cell_id", [f"cell-{i}" for i in range(n)])
    return table


def test_the_latent_codes_are_parquet_from_the_threshold_on() -> None:
    assert latent_codes_artifact(PARQUET_FROM_CELLS - 1) == CSV
    assert latent_codes_artifact(PARQUET_FROM_CELLS) == PARQUET
    assert latent_codes_artifact(300) == CSV
    assert latent_codes_artifact(300, parquet_from=300) == PARQUET


def test_a_parquet_table_is_written_a_row_group_at_a_time_and_reads_back_whole(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = codes_frame(10)
    write_parquet(table, tmp_path / "codes.parquet", rows_per_group=4)
    assert pq.ParquetFile(tmp_path / "codes.parquet").metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "codes.parquet"), table)


def test_a_table_logged_as_parquet_reads_back_typed_and_redacted(tracking_uri: str) -> None:
    table = codes_frame(50)
    table.loc[3, "cell_id"] = "postgresql://user:hunter2@db/cells"
    tracking.configure(tracking_uri, "codes")
    with tracking.start_run("codes") as run:
        run.log_table(table, PARQUET)
    back = reader.latent_codes(run.run_id)
    assert artifact_paths(tracking_uri, run.run_id) == {PARQUET}
    assert back["cell_id"][3] == "postgresql://user:***@db/cells"
    assert table["cell_id"][3] == "postgresql://user:hunter2@db/cells"  # the caller's table is left alone
    pd.testing.assert_frame_equal(back.drop(index=3), table.drop(index=3))
    assert (back.dtypes[["z0", "z1", "z2"]] == np.float32).all()


def test_an_evaluation_above_the_threshold_logs_every_cell_as_parquet(tracking_uri: str) -> None:
    outcome = fit_and_score(RunConfig.of(**QUICK))
    data = outcome.dataset
    tracking.configure(tracking_uri, "codes")
    with tracking.start_run("pca") as run:
        log_evaluation(
            run, "pca", outcome.evaluation, data.cell_ids, data.labels, outcome.latent, parquet_from=100
        )
    logged = artifact_paths(tracking_uri, run.run_id)
    assert PARQUET in logged and CSV not in logged
    assert {"latent/tsne2d.csv"} <= logged  # the sampled map stays CSV
    codes = reader.latent_codes(run.run_id)
    assert len(codes) == data.n_cells == 300
    assert list(codes["cell_id"]) == list(data.cell_ids)
    assert list(codes["label"]) == list(data.labels)
    np.testing.assert_array_equal(codes[[f"z{i}" for i in range(outcome.latent.shape[1])]], outcome.latent)


def test_a_run_below_the_threshold_logs_the_csv_and_its_peak_memory_after_each_stage(
    tracking_uri: str,
) -> None:
    tracking.configure(tracking_uri, "codes")
    outcome, run_id = run_and_log(RunConfig.of(**QUICK))
    logged = artifact_paths(tracking_uri, run_id)
    assert CSV in logged and PARQUET not in logged
    codes = reader.latent_codes(run_id)
    assert len(codes) == 300
    np.testing.assert_allclose(codes[[f"z{i}" for i in range(outcome.latent.shape[1])]], outcome.latent)
    metrics = tracking.run_metrics(run_id)
    peaks = [metrics[f"memory.peak_mb.{stage}"] for stage in STAGES]
    assert all(mb > 0 for mb in peaks)
    assert peaks == sorted(peaks)  # peaks so far: never falling from one stage to the next
    assert outcome.metrics["memory.peak_mb.evaluate"] == pytest.approx(metrics["memory.peak_mb.evaluate"])
