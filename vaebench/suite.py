"""Suites: grids of models x betas x seeds, run as nested MLflow runs that resume where they stopped.

A suite is a TOML file (``benchmarks/suites/*.toml``): dataset and labels, models, betas (for models that
have a beta), seeds and any run setting. Each grid point is exactly the single run of
:func:`vaebench.runner.run_and_log`, nested under one parent run per invocation. A grid point is done
when the experiment holds a FINISHED run with its ``config_hash``; re-running a suite runs only what is
missing, FAILED or killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tomllib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vaebench import tracking
from vaebench.config import RunConfig
from vaebench.data import Dataset
from vaebench.errors import VaebenchError
from vaebench.models import get_model

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SUITE_DIRS = (Path("benchmarks/suites"), PACKAGE_ROOT / "benchmarks" / "suites")
DEFAULT_SUITE = "default"


@dataclass(frozen=True)
class Suite:
    """A benchmark grid and the settings shared by its runs."""

    name: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    betas: tuple[float, ...] = (RunConfig.beta,)
    dataset: str | None = None
    data_path: str | None = None
    labels_path: str | None = None
    label_key: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def grid(self) -> list[RunConfig]:
        """One validated configuration per (model, beta, seed); models without a beta get one column."""
        base = RunConfig.from_params(
            {
                **self.options,
                "dataset": self.dataset if self.data_path is None else None,
                "data_path": self.data_path,
                "labels_path": self.labels_path,
                "label_key": self.label_key,
            }
        )
        configs = []
        for model in self.models:
            betas = self.betas if get_model(model).has_beta else (RunConfig.beta,)
            for beta in betas:
                for seed in self.seeds:
                    # The 3-d t-SNE is a figure, not a score: one per model and beta (the first seed's).
                    tsne_3d = base.tsne_3d and seed == self.seeds[0]
                    point = replace(base, model=model, beta=float(beta), seed=int(seed), tsne_3d=tsne_3d)
                    configs.append(point.validate())
        return configs

    def narrowed(
        self,
        models: Sequence[str] | None = None,
        betas: Sequence[float] | None = None,
        seeds: Sequence[int] | None = None,
        epochs: int | None = None,
    ) -> Suite:
        """The same suite with some axes replaced (the CLI's --models, --betas, --seeds, --epochs)."""
        for name in models or ():
            get_model(name)
        options = dict(self.options)
        if epochs is not None:
            options["epochs"] = epochs
        return replace(
            self,
            models=tuple(models) if models else self.models,
            betas=tuple(float(b) for b in betas) if betas else self.betas,
            seeds=tuple(int(s) for s in seeds) if seeds else self.seeds,
            options=options,
        )

    def definition(self) -> dict[str, Any]:
        return asdict(self)


def available_suites() -> dict[str, Path]:
    """Suite names found in ``benchmarks/suites`` (the working folder's first, then the project's)."""
    found: dict[str, Path] = {}
    for folder in SUITE_DIRS:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def load_suite(name_or_path: str) -> Suite:
    """A suite by name (``default``, ``seed``, ...) or by the path of its TOML file."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.exists()):
        suites = available_suites()
        if name_or_path not in suites:
            raise VaebenchError(
                f"Unknown suite {name_or_path!r}; known suites are: {', '.join(sorted(suites)) or '(none)'}."
            )
        path = suites[name_or_path]
    if not path.is_file():
        raise VaebenchError(f"No such suite file: {path}.")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise VaebenchError(f"Suite file {path} is not valid TOML ({error}).") from None
    known = {
        "name",
        "description",
        "dataset",
        "data_path",
        "labels_path",
        "label_key",
        "models",
        "betas",
        "seeds",
        "options",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise VaebenchError(
            f"Suite file {path} has unknown key(s) {', '.join(unknown)}; known keys are: {', '.join(sorted(known))}."
        )
    for required in ("models", "seeds"):
        if not raw.get(required):
            raise VaebenchError(f"Suite file {path} must list at least one entry under {required!r}.")
    suite = Suite(
        name=str(raw.get("name", path.stem)),
        description=str(raw.get("description", "")),
        dataset=raw.get("dataset"),
        data_path=raw.get("data_path"),
        labels_path=raw.get("labels_path"),
        label_key=raw.get("label_key"),
        models=tuple(raw["models"]),
        betas=tuple(float(b) for b in raw.get("betas", [RunConfig.beta])),
        seeds=tuple(int(s) for s in raw["seeds"]),
        options=dict(raw.get("options", {})),
        source=str(path),
    )
    suite.grid()  # validate every point now, before anything runs
    return suite


@dataclass
class PointResult:
    """What became of one grid point."""

    config: RunConfig
    status: str  # "finished", "skipped" or "failed"
    run_id: str | None = None
    reason: str = ""


@dataclass
class SuiteResult:
    parent_run_id: str
    points: list[PointResult]

    def with_status(self, status: str) -> list[PointResult]:
        return [p for p in self.points if p.status == status]

    @property
    def failed(self) -> list[PointResult]:
        return self.with_status("failed")


ProgressHook = Callable[[int, int, str], None]
"""Called as (done, total, description of what just finished)."""


def point_label(config: RunConfig) -> str:
    beta = f" beta={config.beta:g}" if get_model(config.model).has_beta else ""
    return f"{config.model}{beta} seed={config.seed}"


def threads_per_job(jobs: int) -> int:
    """The CPU cores divided between the parallel children (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // jobs)


def dataset_of(config: RunConfig) -> Dataset:
    """The grid point's data, loaded (and prepared) once per process for the whole suite."""
    return config.data_source().load_once()


def _worker_init(tracking_uri: str, experiment: str) -> None:
    tracking.configure(tracking_uri, experiment)


def run_point(config: RunConfig, parent_run_id: str, tags: dict[str, Any]) -> PointResult:
    """Run one grid point as a nested child; failures are recorded, not raised."""
    from vaebench.runner import run_and_log

    try:
        dataset = dataset_of(config)
        _, run_id = run_and_log(config, tags=tags, parent_run_id=parent_run_id, dataset=dataset)
    except VaebenchError as error:
        return PointResult(config, "failed", reason=str(error))
    except Exception as error:  # a bug in one child must not stop the suite; its run is marked FAILED
        return PointResult(config, "failed", reason=f"{type(error).__name__}: {error}")
    return PointResult(config, "finished", run_id=run_id)


def run_suite(
    suite: Suite,
    *,
    experiment: str,
    tracking_uri: str | None = None,
    jobs: int = 1,
    force: bool = False,
    on_progress: ProgressHook | None = None,
    after_runs: Callable[[str, tracking.RunHandle], None] | None = None,
) -> SuiteResult:
    """Run every grid point of ``suite`` not already FINISHED in ``experiment`` under one parent run."""
    if jobs < 1:
        raise VaebenchError(f"--jobs must be at least 1, got {jobs}.")
    uri = tracking.configure(tracking_uri, experiment)
    grid = suite.grid()
    dataset = dataset_of(grid[0])
    for config in grid:
        config.check_against(dataset.n_cells, dataset.n_genes)
    data_hash = dataset.content_hash()
    hashes = {config.config_hash(data_hash): config for config in grid}
    finished = {} if force else tracking.finished_runs_by_tag(experiment, "config_hash", list(hashes))
    tracking.mark_stale_runs_killed(experiment, suite.name, list(hashes))
    threads = threads_per_job(jobs)
    todo = [replace(c, threads=c.threads or threads) for h, c in hashes.items() if h not in finished]
    skipped = [PointResult(hashes[h], "skipped", run_id=run_id) for h, run_id in finished.items()]

    parent_tags = {"suite": suite.name, "vaebench.role": "suite", "jobs": jobs, "grid_points": len(grid)}
    with tracking.start_run(run_name=f"suite {suite.name}", tags=parent_tags) as parent:
        parent.log_dict(suite.definition(), "suite/definition.json")
        parent.log_params(
            {
                "suite.name": suite.name,
                "suite.dataset_hash": data_hash,
                "suite.grid_points": len(grid),
                "suite.jobs": jobs,
                "suite.threads_per_job": threads,
            }
        )
        child_tags = {"suite": suite.name, "suite_parent": parent.run_id}
        results = list(skipped)
        total = len(todo)
        for done, result in enumerate(
            _execute(todo, parent.run_id, child_tags, uri, experiment, jobs), start=1
        ):
            results.append(result)
            if on_progress is not None:
                on_progress(done, total, f"{point_label(result.config)}: {result.status}")
        grid_record = [
            {
                "model": r.config.model,
                "beta": r.config.beta,
                "seed": r.config.seed,
                "status": r.status,
                "run_id": r.run_id,
                "reason": r.reason,
            }
            for r in results
        ]
        parent.log_dict({"points": grid_record}, "suite/grid.json")
        n_failed = sum(r.status == "failed" for r in results)
        parent.log_metrics(
            {
                "suite.finished": sum(r.status == "finished" for r in results),
                "suite.skipped": len(skipped),
                "suite.failed": n_failed,
            }
        )
        parent.set_tags({"suite_run_ids": ",".join(r.run_id for r in results if r.run_id)[:5000]})
        if after_runs is not None:
            after_runs(parent.run_id, parent)
        return SuiteResult(parent.run_id, results)


def _execute(
    todo: list[RunConfig], parent_run_id: str, tags: dict[str, Any], uri: str, experiment: str, jobs: int
) -> Iterable[PointResult]:
    """Run the grid points in this process (jobs=1) or in ``jobs`` worker processes, yielding as they end."""
    if jobs == 1 or len(todo) <= 1:
        for config in todo:
            yield run_point(config, parent_run_id, tags)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_worker_init, initargs=(uri, experiment)
    ) as pool:
        pending: set[Future[PointResult]] = {pool.submit(run_point, c, parent_run_id, tags) for c in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False, cancel_futures=True)
            raise
