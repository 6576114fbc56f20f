"""Records of finished runs: made from the executor's results in memory or read from MLflow by the one
reader, and the one-row-per-run frame every report is computed from."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.data.dataset import NO_LABELS
from vaebench.errors import VaebenchError
from vaebench.executor.runs import FINISHED, SKIPPED, RunResult, RunSpec
from vaebench.results import RunRecord, beside, records_frame
from vaebench.results.records import IDENTITY, RAW_KL, latent_dims_of
from vaebench.tracking import reader

VAE_METRICS = {
    "tsne_kmeans.ari": 0.5,
    "latent.active_units": 1.0,
    "latent.active_fraction": 0.25,
    "latent.kl": 0.2,
    **{f"latent.kl.z{d}": 0.05 for d in range(4)},
    "train.loss.reconstruction": 10.0,
    "train.loss.beta_kl": 0.4,
}


def result(
    model: str, seed: int, status: str = FINISHED, metrics: dict | None = None, **tags: str
) -> RunResult:
    config = RunConfig.of(model=model, seed=seed, beta=2.0, dataset="pbmc68k")
    return RunResult(RunSpec(config, tags), status, run_id=f"{model}-{seed}", metrics=metrics or {})


def test_a_record_of_an_executor_result_says_who_the_run_is_and_what_it_was_scored_on() -> None:
    vae = RunRecord.of_result(result("beta_vae", 0, metrics=VAE_METRICS), "pbmc68k", "bulk_labels")
    assert (vae.model, vae.entry, vae.beta, vae.seed, vae.run_id) == (
        "beta_vae",
        "beta_vae",
        2.0,
        0,
        "beta_vae-0",
    )
    assert vae.latent_dims == 4  # one KL per dimension
    tuned = RunRecord.of_result(result("pca", 1001, entry="pca (tuned)"), "pbmc68k", None)
    assert tuned.beta is None and tuned.entry == "pca (tuned)" and tuned.label_key == NO_LABELS


def test_latent_dims_come_from_the_metrics_when_no_tag_gives_them() -> None:
    assert latent_dims_of({"latent.active_units": 3.0, "latent.active_fraction": 0.5}) == 6
    assert latent_dims_of({"latent.active_units": 0.0, "latent.active_fraction": 0.0}) is None
    assert latent_dims_of({}) is None


def test_the_frame_has_the_identity_the_metrics_asked_for_the_loss_parts_and_the_raw_kl() -> None:
    records = [
        RunRecord("a", "beta_vae", 0, beta=2.0, metrics=VAE_METRICS),
        RunRecord("b", "pca", 0, metrics={"tsne_kmeans.ari": 0.6}),
    ]
    frame = records_frame(records, ["tsne_kmeans.ari", "leiden.ari"])
    assert list(frame.columns[: len(IDENTITY)]) == list(IDENTITY)
    assert frame["leiden.ari"].isna().all() and str(frame["seed"].dtype) == "Int64"
    assert frame.loc[0, RAW_KL] == pytest.approx(0.2) and math.isnan(frame.loc[1, RAW_KL])
    assert np.isnan(frame.loc[1, "beta"]) and frame.loc[1, "entry"] == "pca"
    with pytest.raises(VaebenchError, match="no finished runs"):
        records_frame([], ["tsne_kmeans.ari"])


def test_only_runs_on_the_same_data_and_labels_and_not_already_there_stand_beside() -> None:
    suite = [RunRecord("s0", "pca", 0, dataset="d", label_key="l")]
    tuned = [
        RunRecord("t0", "ae", 1000, entry="ae (tuned)", dataset="d", label_key="l"),
        RunRecord("t1", "ae", 1000, entry="ae (tuned)", dataset="d", label_key="l"),  # the same seed again
        RunRecord("t2", "pca", 0, dataset="d", label_key="l"),  # the suite has it
        RunRecord("t3", "ae", 1001, entry="ae (tuned)", dataset="other", label_key="l"),
    ]
    assert [r.run_id for r in beside(suite, tuned)] == ["t0"]


def test_the_reader_gives_back_the_record_of_a_logged_run(tracking_uri: str) -> None:
    tracking.configure(tracking_uri, "records")
    tags = {"model": "beta_vae", "beta": 2.0, "seed": 3, "entry": "beta_vae (tuned)", "latent_dims": 4}
    with tracking.start_run("a run", tags=tags) as run:
        run.log_params({"seed": 3, "dataset.name": "pbmc68k", "dataset.label_key": "bulk_labels"})
        run.log_metrics(VAE_METRICS)
    (record,) = reader.records([run.run_id])
    assert (record.model, record.entry, record.beta, record.seed) == ("beta_vae", "beta_vae (tuned)", 2.0, 3)
    assert (record.dataset, record.label_key, record.latent_dims, record.status) == (
        "pbmc68k",
        "bulk_labels",
        4,
        "FINISHED",
    )
    assert dict(record.metrics) == pytest.approx(VAE_METRICS)
    with pytest.raises(VaebenchError, match="not a finished suite run"):
        reader.suite_records(run.run_id)
    with pytest.raises(VaebenchError, match="has no finished suite run"):
        reader.latest_suite_run("records")
    assert reader.tuned_records(None) == [] and reader.tsne_map(run.run_id) is None


def test_a_suites_records_read_only_the_points_the_executor_returned_no_metrics_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from vaebench.sets import report

    asked: list[list[str]] = []

    def records(run_ids: list[str]) -> list[RunRecord]:
        asked.append(list(run_ids))
        return [RunRecord(run_id, "pca", 0, metrics={"tsne_kmeans.ari": 0.4}) for run_id in run_ids]

    monkeypatch.setattr(reader, "records", records)
    results = [
        result("pca", 0, SKIPPED),
        result("beta_vae", 0, metrics=VAE_METRICS),
        result("ae", 0, "failed"),
    ]
    data = SimpleNamespace(name="pbmc68k", label_key="bulk_labels")
    made = report.records_of_results(results, data)
    assert asked == [["pca-0"]]
    assert [r.run_id for r in made] == ["pca-0", "beta_vae-0"]
    assert made[1].metrics["train.loss.beta_kl"] == 0.4 and made[1].dataset == "pbmc68k"
