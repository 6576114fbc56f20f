"""The configuration of one run: the parts composed, normalised once, flat params and a stable hash.

A :class:`RunConfig` is a model name, a seed and the five parts of :mod:`vaebench.config.parts`. It is
built only through :func:`normalise` (``RunConfig.of(**flat)``, ``RunConfig.from_params(mapping)``,
``config.with_settings(**flat)``), which turns what a user gave, by the flat names MLflow shows and
possibly partial, into the frozen, checked configuration everything downstream takes as it is:

* names and defaults made explicit: no data path means the dataset ``pbmc68k``; no label key means the
  registered dataset's own; ``beta`` and ``variant`` left unset mean the model's (:attr:`ModelSpec.default_beta`,
  ``default_variant``);
* paths resolved (by :class:`~vaebench.data.source.DataSource`), so a file is the same file from any folder;
* settings the model does not read dropped to their defaults (beta of a model without one, ``flows`` of
  a model other than ``flow_vae``, the training settings of a model that is not trained), so that they
  neither show in its params nor move its hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from vaebench.config.parts import (
    PARTS,
    DataSource,
    ExecutionSettings,
    ModelOptions,
    ProtocolSettings,
    TrainingSettings,
)
from vaebench.data.registry import DATASETS, DEFAULT_DATASET, get_dataset_spec, no_counts_error
from vaebench.errors import VaebenchError
from vaebench.evaluate.metrics import get_metric
from vaebench.models.registry import MODEL_SPECIFIC_OPTIONS
from vaebench.models.user import get_model

# Fields that say how a run is executed, or what it draws, not what it scores: left out of the config hash.
# (A file's path is left out too: the content hash of the data stands for it, so the same file read from
# another folder, or copied elsewhere, is the same run.)
EXECUTION_FIELDS = frozenset({"threads", "device", "progress", "tsne_3d", "maps", "data_path", "labels_path"})
DEFAULT_MAPS = ("tsne",)
"""The maps every run draws; a run that draws only these logs no ``maps`` param, as before there was one."""
# Fields that only a trained network reads: a model that is fitted (pca) or drawn (the controls) neither
# logs them nor hashes them, so its run does not claim to have trained for 200 epochs.
TRAINING_FIELDS = ("epochs", "lr", "batch_size", "variant", "hidden", "vsc_alpha", "vsc_c", "flows")
STUDY_BETA = 2.0
"""The study's beta: the default of its networks, and the value a model without beta is recorded with."""

PART_ATTRIBUTE = {
    "data": "data",
    "model": "options",
    "training": "training",
    "protocol": "protocol",
    "execution": "execution",
}
"""The attribute of :class:`RunConfig` holding each part, by the part's name in ``--set part.field=value``
(the model part is ``options``: ``config.model`` is the model's name)."""

# The flat names in the order MLflow has always shown them: name -> (part, field); part None: RunConfig's.
_ORDER = [
    "model",
    "dataset",
    "data_path",
    "labels_path",
    "label_key",
    "preprocess",
    "n_top_genes",
    "scale",
    "cells",
    "genes",
    "stream",
    "beta",
    "seed",
    "epochs",
    "latent_dim",
    "lr",
    "batch_size",
    "variant",
    "hidden",
    "vsc_alpha",
    "vsc_c",
    "flows",
    "perplexity",
    "n_init",
    "tsne_3d",
    "tsne_cells",
    "metrics",
    "maps",
    "threads",
    "device",
]


def _flat_map() -> dict[str, tuple[str | None, str]]:
    where: dict[str, tuple[str | None, str]] = {"model": (None, "model"), "seed": (None, "seed")}
    for part, cls in PARTS.items():
        for f in fields(cls):
            where[f.metadata.get("flat") or f.name] = (part, f.name)
    assert sorted(where) == sorted(_ORDER), "a part's field has no place among the flat names"
    return {name: where[name] for name in _ORDER}


FLAT_FIELDS = _flat_map()
"""Every flat name (what MLflow shows) -> (the part it belongs to, or None for RunConfig's own, field)."""
UNTRAINED_SETTINGS: dict[str, Any] = {
    name: next(f.default for f in fields(PARTS[part]) if f.name == field_name)
    for name, (part, field_name) in FLAT_FIELDS.items()
    if name in TRAINING_FIELDS and part is not None
}
"""The training settings a model that is not trained (pca, the controls) is recorded with: the defaults."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training-and-scoring run: a model, a seed and the five parts.

    Defaults follow the seed study: latent 6, Adam with learning rate 1e-3, batch 256, 200 epochs, beta 2,
    t-SNE perplexity 40, k-means with 100 restarts; the layer widths follow the study's text
    (``variant="text"``). Build one with :meth:`of` (flat names), :meth:`from_params` (text, as MLflow or
    ``--set`` give it) or :meth:`with_settings`; they normalise, and nothing downstream checks again.
    The flat names read through (``config.epochs`` is ``config.training.epochs``).
    """

    model: str
    seed: int
    data: DataSource
    options: ModelOptions
    training: TrainingSettings
    protocol: ProtocolSettings
    execution: ExecutionSettings

    def __getattr__(self, name: str) -> Any:
        """A flat name read through its part (``config.latent_dim`` is ``config.options.latent_dim``)."""
        where = FLAT_FIELDS.get(name)
        part = self.__dict__.get(PART_ATTRIBUTE[where[0]]) if where and where[0] else None
        if part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(part, where[1])

    @classmethod
    def of(cls, **flat: Any) -> RunConfig:
        """The normalised configuration of these settings (flat names, typed values; the rest defaults)."""
        return normalise(flat)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunConfig:
        """:meth:`of` for values that may be text: :meth:`params` output, ``--set name=value``, a suite's
        options."""
        return normalise({key: coerce(key, raw) for key, raw in _known(params).items()})

    def with_settings(self, **flat: Any) -> RunConfig:
        """This configuration with some flat settings changed, normalised again. Another dataset or data
        file is another data source: the label key (and with a dataset, the file and its labels) go back to
        their defaults unless given too."""
        values = self.flat()
        if "dataset" in flat or "data_path" in flat:
            values["label_key"] = None
            if flat.get("dataset") is not None and "data_path" not in flat:
                values.update(data_path=None, labels_path=None)
            if flat.get("data_path") is not None and "dataset" not in flat:
                values["dataset"] = None
        return normalise({**values, **_known(flat)})

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name, in the order MLflow shows them."""
        return {
            name: getattr(self, field_name) if part is None else getattr(self.part(part), field_name)
            for name, (part, field_name) in FLAT_FIELDS.items()
        }

    def part(self, name: str) -> Any:
        """The part called ``name`` in ``--set name.field=value`` (data, model, training, ...)."""
        return getattr(self, PART_ATTRIBUTE[name])

    def check_against(self, n_cells: int, n_genes: int) -> None:
        """Settings that depend on the data: the latent must be smaller than the gene count."""
        latent_dim = self.options.latent_dim
        if latent_dim >= n_genes:
            raise VaebenchError(
                f"--latent-dim {latent_dim} is not below the dataset's {n_genes} genes; pick a smaller latent."
            )
        if latent_dim >= n_cells:
            raise VaebenchError(f"--latent-dim {latent_dim} is not below the dataset's {n_cells} cells.")

    def params(self) -> dict[str, Any]:
        """Flat parameters for logging: every field the model reads (a model that is not trained has no
        epochs, learning rate, ...), tuples as comma-separated text, None as ``None``. The default maps
        are not written, so that a run's params are what they were before maps could be chosen; nor is the
        default ``stream`` (``auto``)."""
        unread = () if get_model(self.model).is_trained else TRAINING_FIELDS
        if self.protocol.maps == DEFAULT_MAPS:
            unread = (*unread, "maps")
        if self.data.stream == "auto":  # as before streaming existed; the run logs dataset.streamed
            unread = (*unread, "stream")
        return {
            key: ",".join(map(str, value)) if isinstance(value, tuple) else value
            for key, value in self.flat().items()
            if key not in unread
        }

    def config_hash(self, data_hash: str = "") -> str:
        """A stable short hash of everything that changes the result: the result-changing fields and, when
        given, the content hash of the data (execution settings such as threads are left out)."""
        result_fields = {k: v for k, v in self.params().items() if k not in EXECUTION_FIELDS}
        result_fields["data_hash"] = data_hash
        payload = json.dumps(result_fields, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @staticmethod
    def flat_names() -> list[str]:
        """The flat names settings are given and logged by."""
        return list(FLAT_FIELDS)


def _known(flat: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(flat) - set(FLAT_FIELDS))
    if unknown:
        raise VaebenchError(
            f"Unknown setting(s) {', '.join(unknown)}; known settings are: {', '.join(FLAT_FIELDS)}."
        )
    return dict(flat)


def _default(name: str) -> Any:
    part, field_name = FLAT_FIELDS[name]
    if part is None:
        return {"model": "ae", "seed": 0}[name]
    f = next(f for f in fields(PARTS[part]) if f.name == field_name)
    return None if f.default is MISSING else f.default


def normalise(given: Mapping[str, Any]) -> RunConfig:
    """The one route from what a user gave (flat names, partial, typed) to a frozen, checked
    :class:`RunConfig` (the module docstring lists what it makes explicit)."""
    values = {name: _default(name) for name in FLAT_FIELDS}
    values.update(beta=None, variant=None, dataset=None)  # unset: the model's and the default dataset
    values.update(_known(given))
    spec = get_model(values["model"])
    spec.check_installed()
    if values["seed"] < 0:
        raise VaebenchError(f"--seed must be zero or positive, got {values['seed']}.")
    if values["beta"] is None:
        values["beta"] = spec.default_beta if spec.has_beta else STUDY_BETA
    if values["variant"] is None:
        values["variant"] = spec.default_variant
    _build(values)  # every setting checked as given, before the unread ones are dropped
    for name in values["metrics"] or ():
        get_metric(name)
    values["maps"] = canonical_maps(values["maps"])
    if values["data_path"] is not None:
        values["dataset"] = None  # a file replaces the named dataset
    elif values["dataset"] is None:
        values["dataset"] = DEFAULT_DATASET
    if values["dataset"] is not None and values["label_key"] is None and values["dataset"] in DATASETS:
        values["label_key"] = get_dataset_spec(values["dataset"]).default_label_key
    dataset = values["dataset"]
    if spec.needs_counts and dataset is not None and not get_dataset_spec(dataset).has_counts:
        raise no_counts_error(spec.name, values["dataset"])
    if not spec.has_beta:
        values["beta"] = STUDY_BETA  # beta has no meaning for this model; keep the hash independent of it
    for name in MODEL_SPECIFIC_OPTIONS:
        if name not in spec.options:  # settings this model does not read: likewise out of the hash
            values[name] = _default(name)
    if not spec.is_trained:  # nor the training settings of a model that is not trained
        values.update(UNTRAINED_SETTINGS)
    return _build(values)


def _build(values: dict[str, Any]) -> RunConfig:
    """The parts of these flat values (each checks its own), composed."""
    by_part: dict[str, dict[str, Any]] = {part: {} for part in PARTS}
    for name, (part, field_name) in FLAT_FIELDS.items():
        if part is not None:
            by_part[part][field_name] = values[name]
    data = by_part["data"]
    if data["path"] is not None and data["dataset"] is not None:
        data = {**data, "dataset": None}  # checked as the file it will be
    return RunConfig(
        model=values["model"],
        seed=int(values["seed"]),
        **{
            PART_ATTRIBUTE[part]: cls(**(data if part == "data" else by_part[part]))
            for part, cls in PARTS.items()
        },
    )


def canonical_maps(maps: tuple[str, ...]) -> tuple[str, ...]:
    """The maps in one order, each once, t-SNE always among them (the study's scores are read off it):
    ``umap`` and ``umap,tsne`` are ``("tsne", "umap")``."""
    return tuple(dict.fromkeys(("tsne", *maps)))


def parse_hidden(text: str | None) -> tuple[int, ...] | None:
    """``"128,32"`` -> ``(128, 32)``; empty or None -> None."""
    if text is None or str(text).strip() in ("", "None"):
        return None
    try:
        return tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise VaebenchError(
            f"--hidden must be comma-separated integers such as 128,32, got {text!r}."
        ) from None


_INTS = {"threads", "seed", "epochs", "latent_dim", "batch_size", "n_init", "cells", "genes", "n_top_genes"}
_INTS |= {"flows", "tsne_cells"}
_FLOATS = {"beta", "lr", "vsc_alpha", "vsc_c", "perplexity"}
_BOOLS = {"scale", "tsne_3d"}


def coerce(key: str, raw: Any) -> Any:
    """A setting given as text (``--set``, MLflow's params, a suite's TOML) as the type its part holds."""
    if key == "hidden":
        return parse_hidden(raw) if not isinstance(raw, tuple) else raw
    if key == "metrics":
        if raw is None or raw == "None" or isinstance(raw, tuple):
            return raw
        return tuple(str(raw).split(",")) if isinstance(raw, str) else tuple(raw)
    if key == "maps":
        return parse_maps(raw)
    if raw is None or raw == "None":
        return None
    if not isinstance(raw, str):
        return raw
    kind: type = int if key in _INTS else float if key in _FLOATS else bool if key in _BOOLS else str
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes")
        return kind(raw)
    except ValueError:
        raise VaebenchError(f"Setting {key} must be a {kind.__name__}, got {raw!r}.") from None


def parse_maps(raw: Any) -> tuple[str, ...]:
    """``"tsne,umap"`` (or a list, as a suite's TOML gives it) -> ``("tsne", "umap")``; None: the default."""
    if raw is None or raw == "None":
        return DEFAULT_MAPS
    names = str(raw).split(",") if isinstance(raw, str) else [str(name) for name in raw]
    return tuple(name.strip() for name in names if name.strip())


def split_assignment(item: str, *, value_required: bool = False) -> tuple[str, str]:
    """``--set`` text ``part.field=value`` or ``name=value`` -> (the flat name, the value as text); a
    missing ``=`` or name (and, when ``value_required``, an empty value) is refused in one sentence."""
    name, sep, value = item.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or (value_required and not value):
        raise VaebenchError(
            "--set takes name=value (or part.field=value), such as --set latent_dim=8 or "
            f"--set training.epochs=50, got {item!r}."
        )
    return split_setting(name), value


def split_setting(name: str) -> str:
    """``part.field`` (``training.epochs``, ``data.path``) or a flat name -> the flat name; an unknown part
    or field is answered with the known ones."""
    part, dot, field_name = name.partition(".")
    if not dot:
        return name
    if part not in PARTS:
        raise VaebenchError(f"Unknown part {part!r} in {name!r}; parts are: {', '.join(PARTS)}.")
    for flat, (owner, own_name) in FLAT_FIELDS.items():
        if owner == part and own_name == field_name:
            return flat
    known = ", ".join(f"{part}.{f.name}" for f in fields(PARTS[part]))
    raise VaebenchError(f"Unknown setting {name!r}; {part} settings are: {known}.")


__all__ = [
    "DEFAULT_MAPS",
    "EXECUTION_FIELDS",
    "STUDY_BETA",
    "TRAINING_FIELDS",
    "UNTRAINED_SETTINGS",
    "RunConfig",
    "coerce",
    "normalise",
    "parse_hidden",
    "split_assignment",
    "split_setting",
]
