"""The model registry: the names users type, mapped to how each model is built and tuned.

Each entry declares its Optuna search space here, next to the model, as plain tuples
``(kind, low, high)`` or ``("categorical", choices)``; :mod:`vaebench.tune` turns them into
distributions, so the models themselves know nothing of Optuna.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from vaebench.models.ae import Autoencoder
from vaebench.models.architecture import architecture_for
from vaebench.models.vae import BetaVAE
from vaebench.models.vsc import BetaVSC
from vaebench.registry import Registry

SearchSpace = dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class ModelOptions:
    """Everything a network needs to be built; filled from the run configuration."""

    latent_dim: int = 6
    beta: float = 2.0
    variant: str = "text"
    hidden: tuple[int, ...] | None = None
    vsc_alpha: float = 0.5
    vsc_c: float = 50.0


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``build`` is None for non-torch models (fitted by the runner directly)."""

    name: str
    description: str
    reference: str
    has_beta: bool
    build: Callable[[int, ModelOptions], nn.Module] | None
    search_space: SearchSpace = field(default_factory=dict)

    @property
    def is_torch(self) -> bool:
        return self.build is not None


_NETWORK_SPACE: SearchSpace = {
    "lr": ("log_float", 1e-4, 1e-2),
    "latent_dim": ("int", 2, 32),
    "hidden": ("categorical", ("128,32", "256,64", "512,128", "800,400")),
    "batch_size": ("categorical", (64, 128, 256)),
    "epochs": ("int", 50, 300),
}
_BETA_SPACE: SearchSpace = {"beta": ("log_float", 0.1, 10.0)}

MODELS: Registry[ModelSpec] = Registry("model")
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
        search_space=dict(_NETWORK_SPACE),
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
        search_space={**_NETWORK_SPACE, **_BETA_SPACE},
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
        search_space={**_NETWORK_SPACE, **_BETA_SPACE},
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
    )
)


def get_model(name: str) -> ModelSpec:
    """The registered model called ``name``; an unknown name is answered with the known ones."""
    return MODELS.lookup(name)
