"""The configuration of one run: defaults from the study, validation, flat parameters and a stable hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from vaebench.data.preprocess import DEFAULT_N_TOP_GENES
from vaebench.data.source import DataSource, resolved_path
from vaebench.errors import VaebenchError
from vaebench.evaluate.subsample import DEFAULT_TSNE_CELLS
from vaebench.models import get_model
from vaebench.models.architecture import VARIANTS
from vaebench.models.registry import MODEL_SPECIFIC_OPTIONS

# Fields that say how a run is executed, or what it draws, not what it scores: left out of the config hash.
# (A file's path is left out too: the content hash of the data stands for it, so the same file read from
# another folder, or copied elsewhere, is the same run.)
EXECUTION_FIELDS = frozenset({"threads", "device", "progress", "tsne_3d", "data_path", "labels_path"})
# Fields that only a trained network reads: a model that is fitted (pca) or drawn (the controls) neither
# logs them nor hashes them, so its run does not claim to have trained for 200 epochs.
TRAINING_FIELDS = ("epochs", "lr", "batch_size", "variant", "hidden", "vsc_alpha", "vsc_c", "flows")
STUDY_BETA = 2.0
"""The study's beta: the default of its networks, and the value a model without beta is recorded with."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training-and-scoring run.

    Defaults follow the seed study: latent 6, Adam with learning rate 1e-3, batch 256, 200 epochs, beta 2,
    t-SNE perplexity 40, k-means with 100 restarts; the layer widths follow the study's text
    (``variant="text"``; ``"code"`` gives the widths of its published code). ``beta`` and ``variant`` left
    unset (None) take the model's own defaults (:attr:`ModelSpec.default_beta`, ``default_variant``: the
    study's 2 and ``text`` for its networks) when the configuration is validated.
    """

    model: str = "ae"
    dataset: str | None = "pbmc68k"
    data_path: str | None = None
    labels_path: str | None = None
    label_key: str | None = None
    preprocess: str | None = None
    n_top_genes: int = DEFAULT_N_TOP_GENES
    scale: bool = False
    cells: int | None = None
    genes: int | None = None
    beta: float | None = None
    seed: int = 0
    epochs: int = 200
    latent_dim: int = 6
    lr: float = 1e-3
    batch_size: int = 256
    variant: str | None = None
    hidden: tuple[int, ...] | None = None
    vsc_alpha: float = 0.5
    vsc_c: float = 50.0
    flows: int = 4
    perplexity: float = 40.0
    n_init: int = 100
    tsne_3d: bool = True
    tsne_cells: int = DEFAULT_TSNE_CELLS
    metrics: tuple[str, ...] | None = None
    threads: int | None = None
    device: str = "auto"

    def validate(self) -> RunConfig:
        """Check every setting that can be checked before data are loaded; return self."""
        spec = get_model(self.model)
        spec.check_installed()
        if self.beta is None or self.variant is None:
            return self.with_model_defaults().validate()
        checks: list[tuple[bool, str]] = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}."),
            (self.lr > 0, f"--lr must be positive, got {self.lr}."),
            (self.beta >= 0, f"--beta must be zero or positive, got {self.beta}."),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}."),
            (self.latent_dim >= 1, f"--latent-dim must be at least 1, got {self.latent_dim}."),
            (self.perplexity > 0, f"--perplexity must be positive, got {self.perplexity}."),
            (self.n_init >= 1, f"--n-init must be at least 1, got {self.n_init}."),
            (self.threads is None or self.threads >= 1, f"--threads must be at least 1, got {self.threads}."),
            (
                0 < self.vsc_alpha < 1,
                f"The VSC prior spike probability must lie in (0, 1), got {self.vsc_alpha}.",
            ),
            (self.vsc_c > 0, f"The VSC selection steepness c must be positive, got {self.vsc_c}."),
            (self.flows >= 1, f"--flows must be at least 1, got {self.flows}."),
            (
                self.variant in VARIANTS,
                f"Unknown variant {self.variant!r}; known variants are: {', '.join(VARIANTS)}.",
            ),
            (self.seed >= 0, f"--seed must be zero or positive, got {self.seed}."),
            (self.tsne_cells >= 10, f"--tsne-cells must be at least 10, got {self.tsne_cells}."),
        ]
        for ok, message in checks:
            if not ok:
                raise VaebenchError(message)
        if self.metrics is not None:
            from vaebench.evaluate import get_metric

            for name in self.metrics:
                get_metric(name)
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise VaebenchError(f"--hidden must be positive layer widths such as 128,32, got {self.hidden}.")
        if self.data_path is not None and self.dataset is not None:
            # A file replaces the named dataset.
            return replace(self, dataset=None).validate()
        resolved = {
            name: resolved_path(value)
            for name in ("data_path", "labels_path")
            if (value := getattr(self, name)) is not None and value != resolved_path(value)
        }
        if resolved:
            return replace(self, **resolved).validate()
        self.data_source()  # checks the data settings (preprocessing, sizes, labels with a path)
        if spec.needs_counts and self.dataset is not None:
            from vaebench.data.registry import get_dataset_spec, no_counts_error

            if not get_dataset_spec(self.dataset).has_counts:
                raise no_counts_error(self.model, self.dataset)
        if not spec.has_beta and self.beta != STUDY_BETA:
            # beta has no meaning for this model; keep the hash independent of it.
            return replace(self, beta=STUDY_BETA).validate()
        unused = {
            name: getattr(RunConfig, name)
            for name in MODEL_SPECIFIC_OPTIONS
            if name not in spec.options and getattr(self, name) != getattr(RunConfig, name)
        }
        if unused:  # settings this model does not read: likewise out of the hash
            return replace(self, **unused).validate()
        if not spec.is_trained and self.training_settings() != UNTRAINED_SETTINGS:
            # nor have the training settings for a model that is not trained
            return replace(self, **UNTRAINED_SETTINGS).validate()
        return self

    def with_model_defaults(self) -> RunConfig:
        """The model's own defaults (:attr:`ModelSpec.default_beta`, ``default_variant``) for ``beta`` and
        ``variant`` left unset, written out so that params and the hash say what runs."""
        if self.beta is not None and self.variant is not None:
            return self
        spec = get_model(self.model)
        beta = spec.default_beta if spec.has_beta else STUDY_BETA
        return replace(
            self,
            beta=beta if self.beta is None else self.beta,
            variant=spec.default_variant if self.variant is None else self.variant,
        )

    def training_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TRAINING_FIELDS}

    def data_source(self) -> DataSource:
        """Where this run's data come from and how they are prepared."""
        return DataSource(
            dataset=self.dataset,
            path=self.data_path,
            labels_path=self.labels_path,
            label_key=self.label_key,
            preprocess=self.preprocess,
            n_top_genes=self.n_top_genes,
            scale=self.scale,
            cells=self.cells,
            genes=self.genes,
        )

    def check_against(self, n_cells: int, n_genes: int) -> None:
        """Settings that depend on the data: the latent must be smaller than the gene count."""
        if self.latent_dim >= n_genes:
            raise VaebenchError(
                f"--latent-dim {self.latent_dim} is not below the dataset's {n_genes} genes; pick a smaller latent."
            )
        if self.latent_dim >= n_cells:
            raise VaebenchError(f"--latent-dim {self.latent_dim} is not below the dataset's {n_cells} cells.")

    def params(self) -> dict[str, Any]:
        """Flat parameters for logging: every field the model reads (a model that is not trained has no
        epochs, learning rate, ...), tuples as comma-separated text, None as ``None``."""
        unread = () if get_model(self.model).is_trained else TRAINING_FIELDS
        flat = {}
        for key, value in asdict(self.with_model_defaults()).items():
            if key in unread:
                continue
            flat[key] = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return flat

    def config_hash(self, data_hash: str = "") -> str:
        """A stable short hash of everything that changes the result: the result-changing fields and, when
        given, the content hash of the data (execution settings such as threads are left out)."""
        result_fields = {k: v for k, v in self.params().items() if k not in EXECUTION_FIELDS}
        result_fields["data_hash"] = data_hash
        payload = json.dumps(result_fields, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RunConfig:
        """Rebuild a configuration from :meth:`params` output (or overrides typed as ``name=value``)."""
        unknown = sorted(set(params) - set(cls.field_names()))
        if unknown:
            raise VaebenchError(
                f"Unknown setting(s) {', '.join(unknown)}; known settings are: {', '.join(cls.field_names())}."
            )
        defaults = cls()
        values: dict[str, Any] = {}
        for key, raw in params.items():
            values[key] = _coerce(key, raw, getattr(defaults, key))
        return replace(defaults, **values)


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


def _coerce(key: str, raw: Any, default: Any) -> Any:
    if key == "hidden":
        return parse_hidden(raw) if not isinstance(raw, tuple) else raw
    if key == "metrics":
        if raw is None or raw == "None" or isinstance(raw, tuple):
            return raw
        return tuple(str(raw).split(",")) if isinstance(raw, str) else tuple(raw)
    if raw is None or raw == "None":
        return None
    if isinstance(raw, str):
        kind = type(default) if default is not None else None
        if key in ("threads", "seed", "epochs", "latent_dim", "batch_size", "n_init", "cells", "genes"):
            kind = int
        elif key == "beta":
            kind = float
        try:
            if kind is bool:
                return raw.strip().lower() in ("1", "true", "yes")
            return kind(raw) if kind is not None else raw
        except ValueError:
            raise VaebenchError(f"Setting {key} must be a {kind.__name__}, got {raw!r}.") from None
    return raw


UNTRAINED_SETTINGS = {**RunConfig().training_settings(), "variant": "text"}
"""The training settings a model that is not trained (pca, the controls) is recorded with: the defaults."""
