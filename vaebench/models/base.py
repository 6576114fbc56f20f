"""What the trainer and the evaluation expect of a torch model."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared reconstruction error summed over genes and averaged over the cells of the batch.

    The study's code sums the error over genes and cells (``MSELoss(reduction='sum')``); dividing that sum
    by the batch size keeps its balance against a per-cell KL term while making the loss independent of the
    batch size. The fused ``mse_loss`` kernel is used because on a 256 x 13,714 batch separate subtract,
    square and sum kernels (and their backward) cost more than the network's matrix products.
    """
    return F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]


class LossTerms(NamedTuple):
    """A batch's training objective: ``total`` is minimised; ``parts`` (scalar batch means, named as
    ``reconstruction`` and ``beta_kl``) sum to it."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


class LatentModel(nn.Module):
    """A torch encoder-decoder: ``loss`` trains it, ``encode`` gives the deterministic code that is scored."""

    latent_dim: int

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over the batch of the per-cell training objective."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code used for scoring (the posterior mean for variational models)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cells in, latent codes out: what a saved model serves."""
        return self.encode(x)
