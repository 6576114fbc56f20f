"""Suites: grids of models x betas x seeds, run as nested MLflow runs that resume where they stopped.

A suite is a TOML file (``benchmarks/suites/*.toml``): dataset and labels, models, betas (for models that
have a beta), seeds and any run setting. Each grid point is exactly the single run of
:func:`vaebench.runner.run_and_log`, nested under one parent run per invocation. A grid point is done
when the experiment holds a FINISHED run with its ``config_hash``; re-running a suite runs only what is
missing, FAILED or killed.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from vaebench import tracking
from vaebench.config.run_config import RunConfig, coerce
from vaebench.data import Dataset
from vaebench.data.source import resolved_path
from vaebench.errors import VaebenchError
from vaebench.executor.ledger import Claims, Ledger, claim_points
from vaebench.executor.runs import (
    RunJob,
    RunResult,
    RunSpec,
    execute,
    reuse_finished,
    threads_per_job,
)
from vaebench.models import get_model

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SUITE_DIRS = (Path("benchmarks/suites"), PACKAGE_ROOT / "benchmarks" / "suites")
DEFAULT_SUITE = "default"
# A suite's axes: the run settings it sets per grid point, and the options that give them.
SUITE_AXES = {"model": "--models", "beta": "--betas", "seed": "--seeds"}
# A suite's own data source: top-level keys of its file, not [options].
DATA_SOURCE_FIELDS = ("dataset", "data_path", "labels_path", "label_key")


@dataclass(frozen=True)
class Suite:
    """A benchmark grid and the settings shared by its runs."""

    name: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    betas: tuple[float, ...] = ()
    """Betas of the models that have one; empty: each model's own default."""
    dataset: str | None = None
    data_path: str | None = None
    labels_path: str | None = None
    label_key: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @cached_property
    def points(self) -> tuple[RunConfig, ...]:
        """One normalised configuration per (model, beta, seed), built once per suite; models without a
        beta get one column."""
        base = {
            name: coerce(name, value)
            for name, value in {
                **self.options,
                "dataset": self.dataset if self.data_path is None else None,
                "data_path": self.data_path,
                "labels_path": self.labels_path,
                "label_key": self.label_key,
            }.items()
        }
        first_seed = self.seeds[0]
        configs = []
        for model in self.models:
            spec = get_model(model)
            for beta in (self.betas or (None,)) if spec.has_beta else (None,):
                for seed in self.seeds:
                    # The 3-d t-SNE is a figure, not a score: one per model and beta (the first seed's),
                    # and none for the controls, whose pictures show nothing the scores don't.
                    tsne_3d = base.get("tsne_3d", True) and seed == first_seed and not spec.control
                    point = {**base, "model": model, "beta": beta, "seed": int(seed), "tsne_3d": tsne_3d}
                    configs.append(RunConfig.of(**point))
        return tuple(configs)

    def grid(self) -> list[RunConfig]:
        """The suite's points (:attr:`points`) as a list."""
        return list(self.points)

    def narrowed(
        self,
        models: Sequence[str] | None = None,
        betas: Sequence[float] | None = None,
        seeds: Sequence[int] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Suite:
        """The same suite with some axes replaced (the CLI's --models, --betas, --seeds) and run settings
        given for all its runs (any other option of ``vaebench run``, as RunConfig fields).

        Another dataset or file replaces the suite's whole data source: its labels file and label column
        belong to its own data, so they go too unless given again."""
        for name in models or ():
            get_model(name)
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(RunConfig.flat_names()))
        if unknown:
            raise VaebenchError(f"Unknown setting(s) {', '.join(unknown)} for a suite.")
        for name, axis in SUITE_AXES.items():
            if name in settings:
                raise VaebenchError(
                    f"--{name} sets a single run's {name}; a suite takes {axis}, set per grid point "
                    "(with --all or --suite)."
                )
        source = {name: settings.pop(name) for name in DATA_SOURCE_FIELDS if name in settings}
        for name in ("data_path", "labels_path"):  # the suite's definition records the files it read
            if source.get(name) is not None:
                source[name] = resolved_path(source[name])
        if "dataset" in source or "data_path" in source:
            source = {**dict.fromkeys(DATA_SOURCE_FIELDS), **source}
        return replace(
            self,
            models=tuple(models) if models else self.models,
            betas=tuple(float(b) for b in betas) if betas else self.betas,
            seeds=tuple(int(s) for s in seeds) if seeds else self.seeds,
            options={**self.options, **settings},
            **source,
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
    known = {"name", "description", *DATA_SOURCE_FIELDS, "models", "betas", "seeds", "options"}
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
        betas=tuple(float(b) for b in raw.get("betas", [])),
        seeds=tuple(int(s) for s in raw["seeds"]),
        options=dict(raw.get("options", {})),
        source=str(path),
    )
    suite.grid()  # validate every point now, before anything runs
    return suite


PointResult = RunResult
"""What became of one grid point (``finished``, ``skipped``, ``failed``, or ``held`` by another invocation)."""
HELD = "held"


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


def expected_cost(spec: RunSpec) -> tuple[bool, bool]:
    """What orders a suite's points, longest first: a 3-d t-SNE costs most, then training a network.

    With the longest runs started first, the workers finish together instead of one of them running a
    long point alone at the end.
    """
    return spec.config.tsne_3d, get_model(spec.config.model).is_trained


def dataset_of(config: RunConfig) -> Dataset:
    """The grid point's data, loaded (and prepared) once per process for the whole suite (the executor's
    workers call it)."""
    return config.data.load_once()


def run_suite(
    suite: Suite,
    *,
    experiment: str,
    tracking_uri: str | None = None,
    jobs: int = 1,
    force: bool = False,
    on_progress: ProgressHook | None = None,
    after_runs: Callable[[tracking.RunHandle, list[RunResult]], None] | None = None,
    cluster: str | None = None,
    claims_db: str | None = None,
) -> SuiteResult:
    """Run every grid point of ``suite`` not already FINISHED in ``experiment`` under one parent run, in
    ``jobs`` local processes or as tasks of the Dask scheduler at ``cluster``.

    The points to run are claimed first in the claims database (:mod:`vaebench.executor.claims`): points
    another live invocation holds are left to it (status ``held``), so two invocations at once never run
    a point twice and neither fails.
    """
    if jobs < 1:
        raise VaebenchError(f"--jobs must be at least 1, got {jobs}.")
    grid = suite.grid()
    dataset = dataset_of(grid[0])  # data that cannot be read end the suite before MLflow is touched
    for config in grid:
        config.check_against(dataset.n_cells, dataset.n_genes)
    uri = tracking.configure(tracking_uri, experiment)
    ledger = Ledger(experiment)
    claims = ledger.claims(claims_db, uri)
    with contextlib.ExitStack() as stack:
        client = None
        if cluster is not None:
            from vaebench.executor.cluster import connect

            client = stack.enter_context(connect(cluster))
        stack.enter_context(claims.renewing())
        plan = _plan(suite, grid, dataset.content_hash(), ledger, claims, force)
        return _run_suite(suite, plan, experiment, uri, jobs, on_progress, after_runs, client, claims)


@dataclass
class _Plan:
    """A suite's points sorted out before it runs: those this invocation runs (it holds their claims),
    those already FINISHED, and those another live invocation holds."""

    grid: list[RunConfig]
    data_hash: str
    scope: str
    todo: list[RunSpec]
    skipped: list[RunResult]
    held: list[RunResult]


def _plan(
    suite: Suite, grid: list[RunConfig], data_hash: str, ledger: Ledger, claims: Claims, force: bool
) -> _Plan:
    """Claim the points not FINISHED yet, and end KILLED what a killed invocation left RUNNING of them."""
    experiment = ledger.experiment
    hashes = {config.config_hash(data_hash): config for config in grid}
    specs = [RunSpec(config, key=config_hash) for config_hash, config in hashes.items()]
    todo, skipped = (specs, []) if force else reuse_finished(specs, data_hash, experiment)
    scope = f"{experiment}/{suite.name}"
    mine, theirs = claim_points(claims, scope, [spec.key for spec in todo])
    held = [RunResult(s, HELD, reason="held by another invocation") for s in todo if s.key in theirs]
    todo = [spec for spec in todo if spec.key in mine]
    if not force:  # a point another invocation finished before this one held its claim is done
        todo, finished_meanwhile = reuse_finished(todo, data_hash, experiment)
        skipped += finished_meanwhile
    ledger.close_stale_suite_runs(suite.name, mine)
    return _Plan(grid, data_hash, scope, todo, skipped, held)


def _run_suite(
    suite: Suite,
    plan: _Plan,
    experiment: str,
    uri: str,
    jobs: int,
    on_progress: ProgressHook | None,
    after_runs: Callable[[tracking.RunHandle, list[RunResult]], None] | None,
    client: Any,
    claims: Claims,
) -> SuiteResult:
    # On a cluster each worker divides its own machine's cores (vaebench.executor.cluster).
    threads = threads_per_job(jobs) if client is None else None
    parent_tags = {
        "suite": suite.name,
        "vaebench.role": "suite",
        "jobs": jobs,
        "grid_points": len(plan.grid),
        "run_owner": claims.owner,
    }
    if client is not None:
        parent_tags["cluster"] = client.scheduler.address
    with tracking.start_run(run_name=f"suite {suite.name}", tags=parent_tags) as parent:
        parent.log_dict(suite.definition(), "suite/definition.json")
        parent.log_params(
            {
                "suite.name": suite.name,
                "suite.dataset_hash": plan.data_hash,
                "suite.grid_points": len(plan.grid),
                "suite.jobs": jobs,
                "suite.threads_per_job": threads,
            }
        )
        child_tags = {"suite": suite.name, "suite_parent": parent.run_id}
        todo = [
            RunSpec(s.config.with_settings(threads=s.config.threads or threads), child_tags, s.key)
            for s in plan.todo
        ]
        todo.sort(key=expected_cost, reverse=True)
        job = RunJob(parent.run_id, data=dataset_of)
        results = [*plan.skipped, *plan.held]
        runs = execute(todo, job, jobs=jobs, tracking_uri=uri, experiment=experiment, cluster=client)
        with contextlib.closing(runs):
            for done, result in enumerate(runs, start=1):
                claims.release(plan.scope, result.spec.key)
                results.append(result)
                if on_progress is not None:
                    on_progress(done, len(todo), f"{point_label(result.config)}: {result.status}")
        _log_points(parent, plan, results)
        # An invocation that left every point to another one has nothing of its own to report on.
        if after_runs is not None and any(r.status in ("finished", "skipped") for r in results):
            after_runs(parent, results)  # the records of the report (vaebench.sets.report)
        return SuiteResult(parent.run_id, results)


def _log_points(parent: tracking.RunHandle, plan: _Plan, results: list[RunResult]) -> None:
    """What became of every point, on the suite's parent run."""
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
    parent.log_metrics(
        {
            "suite.finished": sum(r.status == "finished" for r in results),
            "suite.skipped": len(plan.skipped),
            "suite.held_elsewhere": len(plan.held),
            "suite.failed": sum(r.status == "failed" for r in results),
        }
    )
    parent.set_tags({"suite_run_ids": ",".join(r.run_id for r in results if r.run_id)[:5000]})
