"""What the trainer and the evaluation expect of a torch model, and the loss it returns."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from vaebench.errors import VaebenchError

if TYPE_CHECKING:
    from vaebench.config.parts import ModelOptions

PART_NAME = re.compile(r"[A-Za-z0-9_\-]+")
"""A loss part's name becomes the metric ``train.loss.<part>``: letters, digits, ``_`` and ``-`` only."""


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared reconstruction error summed over genes and averaged over the cells of the batch.

    The study's code sums the error over genes and cells (``MSELoss(reduction='sum')``); dividing that sum
    by the batch size keeps its balance against a per-cell KL term while making the loss independent of the
    batch size. The fused ``mse_loss`` kernel is used because on a 256 x 13,714 batch separate subtract,
    square and sum kernels (and their backward) cost more than the network's matrix products.
    """
    return F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]


class LossTerms(NamedTuple):
    """A training objective and the named, additive terms it is made of.

    ``total`` is the scalar the optimiser minimises (a mean over the batch's cells); ``parts`` maps a name
    (``"reconstruction"``, ``"beta_kl"``, ...) to a scalar batch mean, and the parts sum to ``total``, so
    that a beta sweep can be read term by term (``beta_kl`` is beta times the KL; divide by beta for the KL).
    The idea is scvi-tools' ``LossOutput`` (Gayoso et al. 2022, Nat. Biotechnol.), kept to two fields.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


def check_loss_terms(terms: object, model_name: str) -> None:
    """Raise the one-sentence user error when ``terms`` is not what :meth:`LatentModel.loss` must return:
    a :class:`LossTerms` whose ``total`` is a scalar tensor and whose named scalar ``parts`` sum to it."""
    prefix = f"The loss of model {model_name!r}"
    if not isinstance(terms, LossTerms):
        raise VaebenchError(
            f"{prefix} must be a vaebench.models.LossTerms(total, parts), got {type(terms).__name__}."
        )
    total, parts = terms
    if not isinstance(total, torch.Tensor) or total.ndim != 0:
        shape = tuple(total.shape) if isinstance(total, torch.Tensor) else type(total).__name__
        raise VaebenchError(f"{prefix} must be a scalar tensor (a mean over the batch), got shape {shape}.")
    if not isinstance(parts, dict) or not parts:
        raise VaebenchError(
            f"{prefix} must name its parts in a non-empty dict, e.g. {{'reconstruction': ...}}."
        )
    for name, value in parts.items():
        if not isinstance(name, str) or not PART_NAME.fullmatch(name):
            raise VaebenchError(
                f"{prefix} has a part named {name!r}; part names may hold only letters, digits, _ and -."
            )
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            raise VaebenchError(f"{prefix} has a part {name!r} that is not a scalar tensor.")
    total_value = float(total.detach())
    parts_sum = float(sum(value.detach().double() for value in parts.values()))
    if math.isfinite(total_value) and not math.isclose(
        parts_sum, total_value, rel_tol=1e-4, abs_tol=1e-4 * max(1.0, abs(total_value))
    ):
        raise VaebenchError(
            f"{prefix} has parts ({', '.join(parts)}) that sum to {parts_sum:.6g}, not to its total "
            f"{total_value:.6g}; the parts must be the additive terms of the total."
        )


class LatentModel(nn.Module):
    """A torch encoder-decoder: ``loss`` trains it, ``encode`` gives the deterministic code that is scored."""

    latent_dim: int

    def loss(self, x: torch.Tensor) -> LossTerms:
        """The mean over the batch of the per-cell training objective, with its named additive parts."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code used for scoring (the posterior mean for variational models)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cells in, latent codes out: what a saved model serves."""
        return self.encode(x)


class LatentModelProtocol(Protocol):
    """What a model of your own must be for ``run``, suites, reports and ``tune`` to take it.

    A ``torch.nn.Module`` (subclassing :class:`LatentModel` gives ``forward`` = ``encode``) that is:

    * built as ``Model(n_genes, options)``: the input's gene count and a :class:`~vaebench.models.ModelOptions`
      filled from the run's settings (``latent_dim``, ``beta``, ``hidden``, ...);
    * trained through ``loss(batch) -> LossTerms``: a float32 tensor of cells x genes in, the scalar batch
      mean to minimise and its named additive parts out (each part is logged as ``train.loss.<part>``);
    * scored through ``encode(batch) -> Tensor`` of cells x latent (deterministic: the posterior mean).

    Optional class attributes (read by :func:`vaebench.models.user.spec_for_class`; a protocol cannot
    declare optional members): ``has_beta = True`` when the model reads ``options.beta`` (suites then sweep
    beta over it, reports plot against it); ``search_space``, the settings ``tune`` searches, in the
    registry's format ``{"lr": ("log_float", 1e-4, 1e-2), "hidden": ("categorical", ("128,32",)), ...}``
    (without one, ``tune`` searches lr, latent_dim, batch_size and epochs, and beta if it has one);
    ``reference``, the paper shown by ``vaebench list``; ``needs_counts = True`` when ``loss`` and ``encode``
    expect the raw counts rather than the prepared matrix (the model is then refused on data without counts).
    The docstring's first paragraph is its description.
    """

    def __init__(self, n_genes: int, options: ModelOptions) -> None: ...

    def loss(self, x: torch.Tensor) -> LossTerms: ...

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...
