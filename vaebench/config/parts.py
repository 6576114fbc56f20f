"""The parts a run's configuration is made of, each owning its defaults and its checks.

* :class:`~vaebench.data.source.DataSource`: where the data come from and how they are prepared;
* :class:`ModelOptions`: what a network is built from (what every model, a user's too, reads);
* :class:`TrainingSettings`: how a trained model is trained;
* :class:`ProtocolSettings`: the evaluation protocol's knobs (the seed and the threads it runs with are
  given when it runs: they belong to the run, not to the protocol);
* :class:`ExecutionSettings`: where and with how many threads a run executes (out of the config hash).

Each is a frozen dataclass whose ``__post_init__`` refuses an impossible value in one sentence, so a part
that exists is a valid part. Defaults are the seed study's. Every field is declared with
:func:`vaebench.config.fields.setting`, from which the command line's options and the flat names MLflow
shows are built. :class:`vaebench.config.RunConfig` composes the parts; this module imports no registry,
so that models, data and evaluation can import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaebench.config.fields import (
    PANEL_EVALUATION,
    PANEL_EXECUTION,
    PANEL_MODEL,
    PANEL_TRAINING,
    setting,
)
from vaebench.data.source import DataSource
from vaebench.errors import VaebenchError

DEFAULT_TSNE_CELLS = 10_000
"""Above this many cells the t-SNE map and its k-means use a stratified seeded sample of this size."""


def _refuse(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise VaebenchError(message)


@dataclass(frozen=True)
class ModelOptions:
    """Everything a network (or a model trained by its own library) is built from.

    A model is built as ``Model(n_genes, options)``; a user's model reads the fields it needs. Within a
    :class:`~vaebench.config.RunConfig`, ``beta`` and ``variant`` are the model's own defaults where the
    user gave none, and the settings a model does not read are kept at these defaults.
    """

    latent_dim: int = setting(6, "Size of the latent code.", flags=("--latent-dim",), panel=PANEL_MODEL)
    beta: float = setting(
        2.0,
        "Weight of the KL term (default: the model's; 2 for the study's networks).",
        panel=PANEL_MODEL,
        cli_default=None,
    )
    variant: str = setting(
        "text",
        "Network: the study's 'text' or its published 'code' widths, or scVI's 'scvi' (default: the "
        "model's; text for the study's networks).",
        panel=PANEL_MODEL,
        cli_default=None,
    )
    hidden: tuple[int, ...] | None = setting(
        None, "Encoder trunk widths, e.g. 128,32 (decoder mirrors).", panel=PANEL_MODEL
    )
    vsc_alpha: float = setting(0.5, "Prior spike probability of beta_vsc, in (0, 1).", panel=PANEL_MODEL)
    vsc_c: float = setting(50.0, "Selection steepness c of beta_vsc.", panel=PANEL_MODEL)
    flows: int = setting(4, "Planar flows refining the posterior (flow_vae).", panel=PANEL_MODEL)

    def __post_init__(self) -> None:
        from vaebench.models.architecture import VARIANTS

        _refuse(
            [
                (self.latent_dim >= 1, f"--latent-dim must be at least 1, got {self.latent_dim}."),
                (self.beta >= 0, f"--beta must be zero or positive, got {self.beta}."),
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
                (
                    self.hidden is None or (bool(self.hidden) and min(self.hidden) >= 1),
                    f"--hidden must be positive layer widths such as 128,32, got {self.hidden}.",
                ),
            ]
        )


@dataclass(frozen=True)
class TrainingSettings:
    """How a trained model is trained: Adam over shuffled mini-batches for a number of epochs."""

    epochs: int = setting(200, "Training epochs.", panel=PANEL_TRAINING)
    lr: float = setting(1e-3, "Adam learning rate.", panel=PANEL_TRAINING)
    batch_size: int = setting(256, "Cells per mini-batch.", flags=("--batch-size",), panel=PANEL_TRAINING)

    def __post_init__(self) -> None:
        _refuse(
            [
                (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}."),
                (self.lr > 0, f"--lr must be positive, got {self.lr}."),
                (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}."),
            ]
        )


@dataclass(frozen=True)
class ProtocolSettings:
    """The evaluation protocol's knobs; the defaults are the study's (perplexity 40, 100 k-means restarts).

    ``metrics`` None means every registered default metric
    (:data:`vaebench.evaluate.protocol.DEFAULT_METRICS`), recorded as ``None``; the names are checked
    against the metric registry when the configuration is normalised and when the protocol runs.
    """

    perplexity: float = setting(40.0, "t-SNE perplexity.", panel=PANEL_EVALUATION)
    n_init: int = setting(100, "k-means restarts.", flags=("--n-init",), panel=PANEL_EVALUATION)
    tsne_3d: bool = setting(
        True,
        "Also compute and plot the 3-d t-SNE.",
        flags=("--tsne-3d/--no-tsne-3d",),
        panel=PANEL_EVALUATION,
    )
    tsne_cells: int = setting(
        DEFAULT_TSNE_CELLS,
        "Above this many cells, the t-SNE map and its k-means use a stratified seeded sample of this size.",
        flags=("--tsne-cells",),
        panel=PANEL_EVALUATION,
    )
    metrics: tuple[str, ...] | None = setting(
        None, "Comma-separated metrics (default: all; see `vaebench list`).", panel=PANEL_EVALUATION
    )
    maps: tuple[str, ...] = setting(
        ("tsne",),
        "Comma-separated 2-d maps to draw: tsne (always: it is scored), umap (a figure, not a score; "
        "pip install 'vaebench[umap]').",
        panel=PANEL_EVALUATION,
        cli_default="tsne",
    )

    def __post_init__(self) -> None:
        from vaebench.evaluate.embed import check_maps

        _refuse(
            [
                (self.perplexity > 0, f"--perplexity must be positive, got {self.perplexity}."),
                (self.n_init >= 1, f"--n-init must be at least 1, got {self.n_init}."),
                (self.tsne_cells >= 10, f"--tsne-cells must be at least 10, got {self.tsne_cells}."),
            ]
        )
        check_maps(self.maps)


@dataclass(frozen=True)
class ExecutionSettings:
    """Where and how a run executes; nothing here changes its result, so none of it enters the hash."""

    threads: int | None = setting(None, "CPU threads for torch (default: all cores).", panel=PANEL_EXECUTION)
    device: str = setting("auto", "auto, cpu or cuda[:N].", panel=PANEL_EXECUTION)

    def __post_init__(self) -> None:
        _refuse(
            [
                (
                    self.threads is None or self.threads >= 1,
                    f"--threads must be at least 1, got {self.threads}.",
                )
            ]
        )


PARTS: dict[str, type] = {
    "data": DataSource,
    "model": ModelOptions,
    "training": TrainingSettings,
    "protocol": ProtocolSettings,
    "execution": ExecutionSettings,
}
"""The parts by the name ``--set part.field=value`` gives them."""


def setting_names() -> list[str]:
    """Every flat setting name (``model``, ``seed`` and each part's fields as MLflow shows them)."""
    from dataclasses import fields

    return ["model", "seed"] + [
        f.metadata.get("flat") or f.name for cls in PARTS.values() for f in fields(cls)
    ]
