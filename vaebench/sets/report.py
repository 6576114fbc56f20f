"""A set of runs' report: records in (the executor's results, or MLflow's runs through
:mod:`vaebench.tracking.reader`), the files of :func:`vaebench.results.write_report` out, logged to the
set's parent run under ``report/``.

Tuned models (``vaebench tune``) evaluated on the same dataset and labels stand beside the suite's
entries, with the baseline's runs on their fresh seeds, so that the paired comparison has its pairs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vaebench import tracking
from vaebench.executor.runs import FINISHED, SKIPPED, RunResult
from vaebench.results import RunRecord, beside, write_report
from vaebench.results.html import study_page
from vaebench.results.report import with_umap
from vaebench.tracking import reader

if TYPE_CHECKING:
    from vaebench.data import Dataset
    from vaebench.sets.tune.results import TuneResult

CollapseHook = Callable[[str], None]
"""Told each run whose posterior collapsed, in one sentence."""


def records_of_results(results: Sequence[RunResult], dataset: Dataset) -> list[RunRecord]:
    """The finished and reused runs among an executor's ``results`` on ``dataset``, as records: from the
    metrics the executor returned, or read through the reader where it returned none (a point reused from
    an earlier FINISHED run)."""
    done = [r for r in results if r.status in (FINISHED, SKIPPED) and r.run_id]
    unread = [r.run_id for r in done if not r.metrics and r.run_id]
    read = {record.run_id: record for record in reader.records(unread)}
    return [
        read[r.run_id] if r.run_id in read else RunRecord.of_result(r, dataset.name, dataset.label_key)
        for r in done
    ]


def report_suite(
    parent: tracking.RunHandle,
    results: Sequence[RunResult],
    dataset: Dataset,
    out_dir: Path,
    experiment: str | None = None,
    on_collapse: CollapseHook | None = None,
) -> list[Path]:
    """Report on a suite invocation from the results its executor returned, with the tuned entries of
    ``experiment`` beside them; write it to ``out_dir``, log it to the suite's ``parent`` run."""
    about = {
        "dataset.n_cells": dataset.n_cells,
        "dataset.n_genes": dataset.n_genes,
        "dataset.n_classes": len(set(dataset.labels)) if dataset.labels is not None else None,
    }
    records = records_of_results(results, dataset)
    return _report(parent, records, out_dir, experiment, on_collapse, about)


def report_experiment(
    experiment: str,
    out_dir: Path,
    suite_run: str | None = None,
    on_collapse: CollapseHook | None = None,
) -> list[Path]:
    """Report on a suite run (``suite_run``), or on the latest suite run of ``experiment``, read from
    MLflow, which must already be configured (:func:`vaebench.tracking.configure`)."""
    parent_run_id = suite_run or reader.latest_suite_run(experiment)
    records = reader.suite_records(parent_run_id)
    return _report(tracking.run_handle(parent_run_id), records, out_dir, experiment, on_collapse, {})


def _report(
    parent: tracking.RunHandle,
    records: list[RunRecord],
    out_dir: Path,
    experiment: str | None,
    on_collapse: CollapseHook | None,
    about: dict[str, object],
) -> list[Path]:
    runs = [*records, *beside(records, reader.tuned_records(experiment))]
    about = {k: v for k, v in about.items() if v is not None} | {"suite run": parent.run_id}
    report = write_report(runs, out_dir, with_umap(reader.tsne_map, reader.umap_map), about)
    for path in report.files:
        parent.log_file(path, "report")
    for line in report.collapsed if on_collapse is not None else ():
        on_collapse(line)
    return report.files


def report_study(parent: tracking.RunHandle, result: TuneResult) -> None:
    """A tuning study's ``report.html`` (:func:`vaebench.results.html.study_page`), its figures read back
    from the study's ``parent`` run, logged there under ``report/``."""
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        figures = {}
        for path in result.figures:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=parent.run_id, artifact_path=path, dst_path=scratch
                )
            except Exception:  # a figure that did not make it to the store is left out of the page
                continue
            figures[path] = Path(local).read_bytes()
        page = Path(scratch) / "report.html"
        page.write_text(study_page(result, figures))
        parent.log_file(page, "report")
