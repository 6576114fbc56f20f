"""Layer widths of the study's networks, and the two variants in which they were published.

The seed study's text (section 2.4) and its published code differ:

* text: every model has the encoder ``d -> 128 -> 32`` followed by one ``32 -> 16 -> 6`` branch per latent
  head, and the decoder ``6 -> 16 -> 32 -> 128 -> d``; the first layer has no activation, and the deep
  autoencoder puts a ReLU on its latent code.
* code (``deepAutoencoder.py``, ``betaVAE.py``, ``betaVSC.py``): the autoencoder matches the text except
  that its latent code is linear; the beta-VAE and beta-VSC use ``d -> 800 -> 400`` with linear heads
  ``400 -> 6`` and the decoder ``6 -> 80 -> 400 -> 800 -> d``; the beta-VSC has a ReLU after its first layer.

The study's published scores were produced by the code variant. The text is the default here; the
variant is a named option (``--variant code``).

A third variant, ``scvi``, has the layers of scVI (Lopez et al. 2018, Nat. Methods 15; scvi-tools'
``FCLayers``): one hidden layer of 128 in the encoder and in the decoder, each followed by batch
normalisation (momentum 0.01, eps 0.001) and a ReLU, linear heads to the latent, trained with
scvi-tools' Adam settings (eps 0.01, weight decay 1e-6; :func:`optimizer_for`). It leaves out scVI's
encoder dropout (0.1), which in the ablation cost ``nb_vae`` Leiden ARI at 20 epochs on the data its
defaults were chosen on. ``nb_vae`` uses this variant by default (what closes its gap to
scvi-tools' SCVI: ``benchmarks/nb_parity.py``, docs/count-models.md); the study's networks offer it as
``--variant scvi``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from vaebench.errors import VaebenchError

VARIANTS = ("text", "code", "scvi")


@dataclass(frozen=True)
class Architecture:
    """Widths and activations of an encoder-decoder pair around a latent of ``latent_dim``."""

    trunk: tuple[int, ...]
    head: int | None
    decoder: tuple[int, ...]
    first_activation: bool
    latent_relu: bool = False
    batch_norm: bool = False
    """Batch normalisation after each hidden layer's linear map (Ioffe & Szegedy 2015), as scVI has it."""
    dropout: float = 0.0
    """Dropout after each encoder hidden layer (Srivastava et al. 2014); scVI's is 0.1."""

    def with_trunk(self, trunk: tuple[int, ...]) -> Architecture:
        """The same architecture with other trunk widths; the decoder mirrors them."""
        head = (self.head,) if self.head else ()
        return replace(self, trunk=tuple(trunk), decoder=tuple(reversed(tuple(trunk) + head)))


_TEXT = Architecture(trunk=(128, 32), head=16, decoder=(16, 32, 128), first_activation=False)
_CODE_VARIATIONAL = Architecture(trunk=(800, 400), head=None, decoder=(80, 400, 800), first_activation=False)

SCVI_NETWORK = Architecture(trunk=(128,), head=None, decoder=(128,), first_activation=True, batch_norm=True)

_PRESETS: dict[tuple[str, str], Architecture] = {
    ("text", "ae"): replace(_TEXT, latent_relu=True),
    ("text", "beta_vae"): _TEXT,
    ("text", "beta_vsc"): _TEXT,
    ("code", "ae"): _TEXT,
    ("code", "beta_vae"): _CODE_VARIATIONAL,
    ("code", "beta_vsc"): replace(_CODE_VARIATIONAL, first_activation=True),
}


def optimizer_for(variant: str | None) -> dict[str, float]:
    """Adam's settings that go with a variant: scvi-tools' ``TrainingPlan`` defaults (eps 0.01, weight
    decay 1e-6) for ``scvi``; torch's defaults (nothing to pass) for the study's variants."""
    return {"adam_eps": 0.01, "weight_decay": 1e-6} if variant == "scvi" else {}


def architecture_for(model: str, variant: str = "text", trunk: tuple[int, ...] | None = None) -> Architecture:
    """The architecture of ``model`` in the study's ``variant``, optionally with other trunk widths."""
    if variant not in VARIANTS:
        raise VaebenchError(f"Unknown variant {variant!r}; known variants are: {', '.join(VARIANTS)}.")
    arch = SCVI_NETWORK if variant == "scvi" else _PRESETS.get((variant, model), _TEXT)
    if trunk:
        if any(width < 1 for width in trunk):
            raise VaebenchError(f"Hidden widths must be positive integers, got {list(trunk)}.")
        arch = arch.with_trunk(tuple(trunk))
    return arch


def _normalised(width: int, arch: Architecture) -> list[nn.Module]:
    """scVI's batch norm (``FCLayers``: momentum 0.01, eps 0.001) where the architecture has it."""
    return [nn.BatchNorm1d(width, momentum=0.01, eps=0.001)] if arch.batch_norm else []


def encoder_trunk(n_in: int, arch: Architecture) -> tuple[nn.Sequential, int]:
    """The shared encoder layers and the width they end in."""
    layers: list[nn.Module] = []
    width = n_in
    for i, out in enumerate(arch.trunk):
        layers += [nn.Linear(width, out), *_normalised(out, arch)]
        if i > 0 or arch.first_activation:
            layers.append(nn.ReLU())
        if arch.dropout > 0:
            layers.append(nn.Dropout(arch.dropout))
        width = out
    return nn.Sequential(*layers), width


def encoder_head(n_in: int, latent_dim: int, arch: Architecture) -> nn.Sequential:
    """One latent head: an optional private ReLU layer, then a linear map to the latent size."""
    if arch.head is None:
        return nn.Sequential(nn.Linear(n_in, latent_dim))
    return nn.Sequential(nn.Linear(n_in, arch.head), nn.ReLU(), nn.Linear(arch.head, latent_dim))


def decoder(latent_dim: int, n_out: int, arch: Architecture) -> nn.Sequential:
    """ReLU layers of ``arch.decoder`` widths, then a linear output of ``n_out`` genes."""
    layers: list[nn.Module] = []
    width = latent_dim
    for out in arch.decoder:
        layers += [nn.Linear(width, out), *_normalised(out, arch), nn.ReLU()]
        width = out
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)
