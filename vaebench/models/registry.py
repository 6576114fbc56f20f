"""The model registry: the names users type, mapped to how each model is built and tuned.

This module holds the built-in models; :func:`vaebench.models.get_model` also resolves a user's own model
(``package.module:Class`` or an entry point, :mod:`vaebench.models.user`) into an entry of the same kind.

Each entry declares its Optuna search space here, next to the model, as plain tuples
``(kind, low, high)`` or ``("categorical", choices)``; :mod:`vaebench.sets.tune` turns them into
distributions, so the models themselves know nothing of Optuna.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from vaebench.config.parts import ModelOptions
from vaebench.models.ae import Autoencoder
from vaebench.models.architecture import architecture_for
from vaebench.models.controls import RandomEmbedding, pca_true_features
from vaebench.models.flow_vae import PlanarFlowVAE
from vaebench.models.nb_vae import NegativeBinomialVAE
from vaebench.models.pca import PCAModel
from vaebench.models.requires import SCVI_REQUIRES, check_installed
from vaebench.models.vae import BetaVAE
from vaebench.models.vsc import BetaVSC
from vaebench.registry import Registry

SearchSpace = dict[str, tuple[Any, ...]]
FitBaseline = Callable[[int, int, int, int], Any]
"""(n_cells, n_genes, latent_dim, seed) -> an unfitted model with ``fit(X)``, ``encode(X)``, ``estimator``."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``build`` makes a torch network that vaebench's loop trains; a model trained by
    its own library (scvi-tools' SCVI) gives ``trainer`` instead, an object with ``fit(inputs, epochs=,
    batch_size=, lr=, seed=, device=, on_epoch=) -> TrainResult``, ``encode(inputs)`` and ``save(folder)``;
    models that are not trained (the PCA baseline, the controls) give ``baseline``. ``control`` marks the floor/ceiling reports scale between.
    ``needs_counts``: the network trains on the dataset's raw counts instead of its prepared matrix.
    ``options``: the model-specific settings it reads (such as ``flows``); other models ignore them."""

    name: str
    description: str
    reference: str
    has_beta: bool
    build: Callable[[int, ModelOptions], nn.Module] | None
    search_space: SearchSpace = field(default_factory=dict)
    baseline: FitBaseline | None = None
    control: bool = False
    needs_counts: bool = False
    options: tuple[str, ...] = ()
    trainer: Callable[[ModelOptions], Any] | None = None
    default_beta: float = 2.0
    """beta where the user gives none: the study's 2 for its networks."""
    default_variant: str = "text"
    """The architecture where the user gives no ``--variant``: the study's text for its networks."""
    requires: tuple[str, str] | None = None
    """(package, the command that installs it) for a model behind an optional extra."""

    def check_installed(self) -> None:
        """One sentence naming the install command when the package this model needs is missing."""
        check_installed(self.name, self.requires)

    @property
    def is_torch(self) -> bool:
        """A torch network trained by vaebench's own loop (:mod:`vaebench.training.loop`)."""
        return self.build is not None

    @property
    def is_trained(self) -> bool:
        """Trained over epochs (by vaebench's loop or its own library's), so the training settings apply."""
        return self.build is not None or self.trainer is not None


NETWORK_SPACE: SearchSpace = {
    "lr": ("log_float", 1e-4, 1e-2),
    "latent_dim": ("int", 2, 32),
    "hidden": ("categorical", ("128,32", "256,64", "512,128", "800,400")),
    "batch_size": ("categorical", (64, 128, 256)),
    "epochs": ("int", 50, 300),
}
_BETA_SPACE: SearchSpace = {"beta": ("log_float", 0.1, 10.0)}
MODEL_SPECIFIC_OPTIONS = ("flows",)
"""Settings only some models read (``ModelSpec.options``); the others keep them at the default."""

__all__ = ["MODELS", "MODEL_SPECIFIC_OPTIONS", "NETWORK_SPACE", "ModelOptions", "ModelSpec", "SearchSpace"]

MODELS: Registry[ModelSpec] = Registry("model")


def _scvi(options: ModelOptions) -> Any:
    from vaebench.models.scvi_model import SCVIModel  # scvi-tools itself is imported when it trains

    return SCVIModel(options)


register = MODELS.register


register(
    ModelSpec(
        name="ae",
        description="deep autoencoder, squared-error reconstruction (study section 2.1)",
        reference="Hinton & Salakhutdinov 2006, Science 313",
        has_beta=False,
        build=lambda n_genes, o: Autoencoder(
            n_genes, o.latent_dim, architecture_for("ae", o.variant, o.hidden)
        ),
        search_space=dict(NETWORK_SPACE),
    )
)
register(
    ModelSpec(
        name="beta_vae",
        description="Gaussian VAE with beta-weighted KL (study section 2.2)",
        reference="Kingma & Welling 2014, ICLR; Higgins et al. 2017, ICLR",
        has_beta=True,
        build=lambda n_genes, o: BetaVAE(
            n_genes, o.latent_dim, architecture_for("beta_vae", o.variant, o.hidden), o.beta
        ),
        search_space={**NETWORK_SPACE, **_BETA_SPACE},
    )
)
register(
    ModelSpec(
        name="beta_vsc",
        description="variational sparse coding, spike-and-slab latent, beta-weighted KL (study section 2.3)",
        reference="Tonolini, Sand Jensen & Murray-Smith 2020, UAI (Variational Sparse Coding)",
        has_beta=True,
        build=lambda n_genes, o: BetaVSC(
            n_genes,
            o.latent_dim,
            architecture_for("beta_vsc", o.variant, o.hidden),
            o.beta,
            o.vsc_alpha,
            o.vsc_c,
        ),
        search_space={**NETWORK_SPACE, **_BETA_SPACE},
    )
)
register(
    ModelSpec(
        name="nb_vae",
        description="VAE on raw counts: log1p encoder, negative-binomial decoder with observed library size "
        "and gene-wise dispersion, beta-weighted KL; scVI's layers with batch norm and beta 1 by default "
        "(needs counts)",
        reference="Lopez et al. 2018, Nat. Methods 15 (scVI); Higgins et al. 2017, ICLR",
        has_beta=True,
        build=lambda n_genes, o: NegativeBinomialVAE(
            n_genes, o.latent_dim, architecture_for("nb_vae", o.variant, o.hidden), o.beta
        ),
        search_space={**NETWORK_SPACE, **_BETA_SPACE},
        needs_counts=True,
        default_beta=1.0,
        default_variant="scvi",
    )
)
register(
    ModelSpec(
        name="flow_vae",
        description="beta-VAE whose Gaussian posterior is refined by --flows K planar flows (Monte Carlo KL); "
        "the study's future work",
        reference="Rezende & Mohamed 2015, ICML (planar flows); Higgins et al. 2017, ICLR",
        has_beta=True,
        build=lambda n_genes, o: PlanarFlowVAE(
            n_genes, o.latent_dim, architecture_for("flow_vae", o.variant, o.hidden), o.beta, o.flows
        ),
        search_space={**NETWORK_SPACE, **_BETA_SPACE, "flows": ("int", 1, 16)},
        options=("flows",),
    )
)
register(
    ModelSpec(
        name="scvi",
        description="scvi-tools' SCVI, the field's reference VAE, trained by scvi-tools on the raw counts "
        "(ZINB, batch norm, dropout; beta is its KL weight; needs counts and pip install 'vaebench[scvi]')",
        reference="Lopez et al. 2018, Nat. Methods 15 (scVI); Gayoso et al. 2022, Nat. Biotechnol. 40",
        has_beta=True,
        build=None,
        trainer=_scvi,
        requires=SCVI_REQUIRES,
        default_beta=1.0,
        search_space={
            "lr": ("log_float", 1e-4, 1e-2),
            "hidden": ("categorical", ("128", "256", "128,128", "256,256")),
            "batch_size": ("categorical", (128, 256, 512)),
            "epochs": ("int", 20, 200),
            "beta": ("log_float", 0.1, 2.0),
        },
        needs_counts=True,
    )
)
register(
    ModelSpec(
        name="pca",
        description="principal component analysis to the same latent size (the linear baseline)",
        reference="Pearson 1901; Halko, Martinsson & Tropp 2011 (randomized SVD)",
        has_beta=False,
        build=None,
        search_space={"latent_dim": ("int", 2, 32)},
        baseline=lambda n_cells, n_genes, latent_dim, seed: PCAModel(latent_dim, seed),
    )
)
register(
    ModelSpec(
        name="random",
        description="control: a Gaussian code of the latent's size, independent of the data (the floor)",
        reference="Luecken et al. 2025, Nat. Biotechnol. (Open Problems' negative controls)",
        has_beta=False,
        build=None,
        baseline=lambda n_cells, n_genes, latent_dim, seed: RandomEmbedding(latent_dim, seed),
        control=True,
    )
)
register(
    ModelSpec(
        name="pca50",
        description="control: the input's top 50 principal components, whatever --latent-dim (the ceiling)",
        reference="Luecken et al. 2025, Nat. Biotechnol. (Open Problems' positive controls); Pearson 1901",
        has_beta=False,
        build=None,
        baseline=lambda n_cells, n_genes, latent_dim, seed: pca_true_features(n_cells, n_genes, seed),
        control=True,
    )
)
