"""Where a run's data come from and how they are prepared: one value, one rule, one ``load()``.

A :class:`DataSource` names a registered dataset or a user's path (resolved to an absolute path, so the
same file is the same source from any folder), the labels, and the preprocessing. Its ``load()`` is the
only way vaebench turns that into a :class:`Dataset`:

1. read the source (a sparse file stays sparse);
2. choose the preprocessing: the one asked for; else the dataset's own (``study`` for pbmc3k); else, when
   the matrix holds raw counts (non-negative integers), ``standard``, said in one sentence on stderr, since
   a network trained on raw counts is dominated by library size and a few highly expressed genes (a user
   who wants raw counts says ``--preprocess none``); else the values as they are;
3. prepare it once: the prepared matrix, with the raw counts of its cells and genes (``layers["counts"]``,
   for count models), is cached on disk (``$VAEBENCH_DATA_DIR/prepared/``) under the input's content hash
   and the preprocessing settings, and in the process, so the runs of a suite (and its worker processes)
   prepare it once. A sparse ``.h5ad`` is read and prepared a block of cells at a time, from its file to
   the cache file (:mod:`vaebench.data.prepare_stored`), never whole in memory;
4. hold it: in memory, or, when the matrices a run trains on would take more than ``STREAM_ABOVE_BYTES``
   in memory (or ``stream="always"``), left in the cache file, from which training streams mini-batches
   (:mod:`vaebench.training.streaming`) and evaluation reads blocks and samples, so that a run's memory
   does not grow with the cells.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from vaebench.config.fields import PANEL_DATA, setting
from vaebench.data.dataset import Dataset
from vaebench.data.download import cache_dir, sha256_of
from vaebench.data.matrix import in_memory as matrix_in_memory
from vaebench.data.matrix import is_raw_counts, is_sparse
from vaebench.data.preprocess import DEFAULT_N_TOP_GENES, check_mode, preprocess
from vaebench.data.stored import StoredCsr
from vaebench.errors import VaebenchError

log = logging.getLogger("vaebench")


def resolved_path(path: str | Path) -> str:
    """A user's path as the absolute path it names (``~`` expanded): the same file, wherever vaebench runs."""
    return str(Path(path).expanduser().resolve())


CACHE_FORMAT = 2  # bump when the preprocessing code changes what it produces (2: the counts kept beside X)
STREAMING = ("auto", "always", "never")
STREAM_ABOVE_BYTES = 512 * 2**20
"""``stream="auto"`` streams a sparse matrix from its file when it and its counts would take more than this
in memory (float32 values and int32 indices): 512 MiB, about 250,000 cells of 2,000 prepared genes at
8 % non-zeros. Below it the data are held in memory and trained on exactly as before streaming existed."""


@dataclass(frozen=True)
class DataSource:
    """A registered dataset (``dataset``) or a user's file or folder (``path``), and how to prepare it:
    the data part of a run's configuration (:mod:`vaebench.config.parts`); ``path`` shows as ``data_path``."""

    dataset: str | None = setting(
        None, "Registered dataset (default pbmc68k).", flags=("--dataset", "-d"), panel=PANEL_DATA
    )
    path: str | None = setting(
        None,
        "Your own data: .h5ad, 10x folder or CSV.",
        flags=("--data",),
        flat="data_path",
        panel=PANEL_DATA,
    )
    labels_path: str | None = setting(
        None, "Labels CSV for a 10x folder or a genes x cells CSV.", flags=("--labels",), panel=PANEL_DATA
    )
    label_key: str | None = setting(
        None,
        "Annotation column used as ground truth (default: the dataset's); none scores without labels.",
        flags=("--label-key",),
        panel=PANEL_DATA,
    )
    preprocess: str | None = setting(
        None,
        "none, study (the seed's Seurat steps) or standard (normalise, log1p, top genes). Default: the "
        "dataset's own; raw counts get standard, with a note.",
        panel=PANEL_DATA,
    )
    n_top_genes: int = setting(
        DEFAULT_N_TOP_GENES,
        "Highly variable genes kept by --preprocess standard.",
        flags=("--n-top-genes",),
        panel=PANEL_DATA,
    )
    scale: bool = setting(
        False,
        "With --preprocess standard: scale each gene to unit variance (makes the matrix dense).",
        flags=("--scale/--no-scale",),
        panel=PANEL_DATA,
    )
    cells: int | None = setting(
        None, "Cells of a generated dataset (synthetic, synthetic_counts).", panel=PANEL_DATA
    )
    genes: int | None = setting(
        None, "Genes of a generated dataset (synthetic, synthetic_counts).", panel=PANEL_DATA
    )
    stream: str = setting(
        "auto",
        "auto, always or never: train on mini-batches read from the prepared file instead of holding the "
        "matrix in memory (auto: a sparse matrix over 512 MiB).",
        panel=PANEL_DATA,
    )

    def __post_init__(self) -> None:
        for name in ("path", "labels_path"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, resolved_path(value))
        if self.path is not None and self.dataset is not None:
            raise VaebenchError("Give either a dataset name or a path, not both.")
        if self.path is None and self.labels_path is not None:
            raise VaebenchError(
                "--labels goes with --data (a 10x folder or a CSV matrix), not with a named dataset."
            )
        check_mode(self.preprocess)
        if self.stream not in STREAMING:
            raise VaebenchError(f"Unknown --stream {self.stream!r}; choose one of: {', '.join(STREAMING)}.")
        if self.n_top_genes < 1:
            raise VaebenchError(f"--n-top-genes must be at least 1, got {self.n_top_genes}.")
        for name in ("cells", "genes"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise VaebenchError(f"--{name} must be at least 2, got {value}.")

    @property
    def name(self) -> str:
        from vaebench.data.registry import DEFAULT_DATASET

        return Path(self.path).name if self.path else (self.dataset or DEFAULT_DATASET)

    def load(self) -> Dataset:
        """The prepared dataset (read, preprocessed and cached on disk as the module docstring says)."""
        loaded = _read_and_prepare(self)
        dataset = hold(loaded.dataset, self.stream)
        dataset.provenance.update(loaded.info)
        dataset.provenance["streamed"] = dataset.is_stored
        return dataset

    def load_once(self) -> Dataset:
        """:meth:`load`, kept in this process for the next call (the runs of a suite in one worker)."""
        return _load_once(self, str(cache_dir()))

    def with_label_key(self, label_key: str | None) -> DataSource:
        return replace(self, label_key=label_key)


def load_dataset(
    name: str | None = None,
    *,
    path: str | Path | None = None,
    label_key: str | None = None,
    labels_path: str | Path | None = None,
    preprocess: str | None = None,
) -> Dataset:
    """A registered dataset by ``name`` (default ``pbmc68k``) or the user's data at ``path``
    (a shortcut for :meth:`DataSource.load`)."""
    return DataSource(
        dataset=name,
        path=str(path) if path is not None else None,
        labels_path=str(labels_path) if labels_path is not None else None,
        label_key=label_key,
        preprocess=preprocess,
    ).load()


@dataclass
class _Loaded:
    dataset: Dataset
    info: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=2)
def _load_once(source: DataSource, folder: str) -> Dataset:
    return source.load()


def _read_and_prepare(source: DataSource) -> _Loaded:
    from vaebench.data.files import read_path
    from vaebench.data.registry import get_dataset_spec

    start = time.perf_counter()
    if source.path is not None:
        if source.cells is not None or source.genes is not None:
            raise VaebenchError("--cells and --genes size a generated dataset, not a file given with --data.")
        key = _file_key(source)
        if source.preprocess in (None, "none"):
            return _as_is_or_standard(
                source, key, lambda: read_path(source.path, source.label_key, source.labels_path)
            )
        cached = _read_cache(source, key, source.preprocess)
        if cached is not None:
            return cached
        raw = read_path(source.path, source.label_key, source.labels_path)
        return _prepare(source, raw, source.preprocess, key, time.perf_counter() - start)

    spec = get_dataset_spec(source.name)
    if (source.cells is not None or source.genes is not None) and not spec.sized:
        sized = ", ".join(_sized_datasets())
        raise VaebenchError(f"--cells and --genes size a generated dataset ({sized}), not {spec.name!r}.")
    native = spec.native_preprocess
    if native != "none" and source.preprocess in (None, native):
        dataset = spec.load(source.label_key)
        return _Loaded(dataset, {"seconds.read": time.perf_counter() - start, "cache": "dataset's own"})
    key = _registered_key(source)
    if native == "none" and source.preprocess in (None, "none"):
        return _as_is_or_standard(source, key, lambda: spec.load(source.label_key, **_size(source)))
    if native != "none" and spec.load_counts is None:
        raise VaebenchError(f"Dataset {spec.name!r} has no raw counts to preprocess differently.")
    mode = source.preprocess or "none"
    cached = None if mode == "none" else _read_cache(source, key, mode)
    if cached is not None:
        return cached
    # A dataset that ships prepared (pbmc3k) starts another preprocessing from its raw counts.
    raw = (
        spec.load_counts(source.label_key)
        if native != "none"
        else spec.load(source.label_key, **_size(source))
    )
    if mode == "none":
        return _Loaded(raw, {"seconds.read": time.perf_counter() - start, "cache": "none"})
    return _prepare(source, raw, mode, key, time.perf_counter() - start)


def _size(source: DataSource) -> dict[str, int]:
    return {k: v for k, v in (("n_cells", source.cells), ("n_genes", source.genes)) if v is not None}


def _sized_datasets() -> list[str]:
    from vaebench.data.registry import DATASETS

    return [spec.name for spec in DATASETS.values() if spec.sized]


def _say_raw_counts(name: str, source: DataSource) -> None:
    log.warning(
        "%s holds raw counts and no --preprocess was given: applying 'standard' (normalise total, log1p, "
        "%d most variable genes); pass --preprocess none to train on the counts as they are.",
        name,
        source.n_top_genes,
    )


def _as_is_or_standard(source: DataSource, key: str, read: Callable[[], Dataset]) -> _Loaded:
    """Step 2 of the rule for a source without an explicit preprocessing (or ``none``): raw counts
    without a word from the user get ``standard``, said in one sentence. A prepared copy in the cache
    means the input was raw counts, so it is used without reading the input again."""
    start = time.perf_counter()
    if source.preprocess is None:
        cached = _read_cache(source, key, "standard")
        if cached is not None:
            _say_raw_counts(source.name, source)
            return cached
    raw = read()
    read_seconds = time.perf_counter() - start
    if source.preprocess is None and is_raw_counts(raw.X):
        _say_raw_counts(raw.name, source)
        return _prepare(source, raw, "standard", key, read_seconds)
    return _Loaded(raw, {"seconds.read": read_seconds, "cache": "none"})


def _settings(source: DataSource, mode: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"mode": mode, "format": CACHE_FORMAT}
    if mode == "standard":
        settings.update(n_top_genes=source.n_top_genes, scale=source.scale)
    return settings


def _cache_path(source: DataSource, key: str, mode: str) -> Path:
    settings = json.dumps(_settings(source, mode), sort_keys=True)
    digest = hashlib.sha256(f"{key}|{settings}".encode()).hexdigest()[:16]
    return cache_dir() / "prepared" / f"{source.name.split('.')[0]}-{mode}-{digest}.h5ad"


def _file_key(source: DataSource) -> str:
    """The input's content hash: SHA-256 of its bytes (every file of a 10x folder) and of the labels file."""
    path = Path(source.path or "")
    if not path.exists():
        raise VaebenchError(f"No such file or folder: {path}.")
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    if source.labels_path is not None and Path(source.labels_path).exists():
        files.append(Path(source.labels_path))
    return ",".join(sha256_of(p)[:16] for p in files) + f"|{source.label_key}"


def _registered_key(source: DataSource) -> str:
    return f"{source.name}|{source.cells}|{source.genes}|{source.label_key}"


def _read_cache(source: DataSource, key: str, mode: str) -> _Loaded | None:
    from vaebench.data.anndata_io import dataset_from_parts
    from vaebench.data.files import h5ad_parts

    path = _cache_path(source, key, mode)
    if not path.exists():
        return None
    start = time.perf_counter()
    parts = h5ad_parts(path)
    dataset = dataset_from_parts(
        parts.obs,
        parts.var.index,
        parts.X,
        parts.counts,
        str(parts.uns.get("vaebench_name", source.name)),
        source.label_key,
        str(parts.uns.get("vaebench_label_key", "")) or None,
        description=str(parts.uns.get("vaebench_description", "")),
        preprocessing=str(parts.uns.get("vaebench_preprocessing", mode)),
    )
    return _Loaded(
        dataset, {"seconds.read": time.perf_counter() - start, "cache": "hit", "cache_file": str(path)}
    )


def _cache_uns(prepared_name: str, label_key: str | None, description: str, preprocessing: str) -> dict:
    return {
        "vaebench_name": prepared_name,
        "vaebench_label_key": label_key or "",  # "": data without labels
        "vaebench_description": description,
        "vaebench_preprocessing": preprocessing,
    }


def _prepare(source: DataSource, raw: Dataset, mode: str, key: str, read_seconds: float) -> _Loaded:
    from vaebench.data.preprocess import describe, require_raw_counts, to_anndata

    start = time.perf_counter()
    path = _cache_path(source, key, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{time.time_ns()}.part")
    if raw.is_stored and mode == "standard" and not source.scale:
        from vaebench.data.prepare_stored import prepare_standard_stored

        require_raw_counts(raw, mode)
        preprocessing = describe(mode, source.n_top_genes, source.scale)
        uns = _cache_uns(raw.name, raw.label_key, raw.description, preprocessing)
        prepare_standard_stored(raw, source.n_top_genes, partial, uns)
        partial.replace(path)  # atomic: parallel workers preparing the same data leave one whole file
        prepared = _read_cache(source, key, mode)
        assert prepared is not None
        prepared.info.update({"seconds.read": read_seconds, "cache": "miss"})
        prepared.info["seconds.preprocess"] = time.perf_counter() - start
        return prepared
    prepared = preprocess(in_memory(raw), mode, source.n_top_genes, source.scale, consume=True)
    seconds = time.perf_counter() - start
    adata = to_anndata(prepared)
    adata.uns.update(
        _cache_uns(prepared.name, prepared.label_key, prepared.description, prepared.preprocessing)
    )
    adata.write_h5ad(partial)
    partial.replace(path)  # atomic: parallel workers preparing the same data leave one whole file
    info = {
        "seconds.read": read_seconds,
        "seconds.preprocess": seconds,
        "cache": "miss",
        "cache_file": str(path),
    }
    return _Loaded(prepared, info)


def in_memory(dataset: Dataset) -> Dataset:
    """The dataset with its matrix and counts in memory (read whole from their file if they are stored)."""
    if not dataset.is_stored and not isinstance(dataset.raw_counts, StoredCsr):
        return dataset
    return replace(
        dataset,
        X=matrix_in_memory(dataset.X),
        raw_counts=None if dataset.raw_counts is None else matrix_in_memory(dataset.raw_counts),
        _hash=[],
        provenance=dict(dataset.provenance),
    )


def held_bytes(dataset: Dataset) -> int:
    """What the sparse matrices of ``dataset`` take in memory: float32 values and int32 indices."""
    matrices = [m for m in (dataset.X, dataset.raw_counts) if m is not None and is_sparse(m)]
    return sum(8 * int(m.nnz) + 4 * (int(m.shape[0]) + 1) for m in matrices)


def hold(dataset: Dataset, stream: str) -> Dataset:
    """Step 4: ``dataset`` with its matrices left in their file (``always``, or ``auto`` above
    ``STREAM_ABOVE_BYTES``) or read into memory (``never``, or ``auto`` below)."""
    keep_stored = stream == "always" or (stream == "auto" and held_bytes(dataset) > STREAM_ABOVE_BYTES)
    if keep_stored and dataset.is_stored:
        return dataset
    return in_memory(dataset)
