"""The one training loop for every torch model.

Dense data live as one float32 tensor on the training device and mini-batches are gathered from a shuffled
index: no per-cell ``Dataset`` or ``DataLoader`` (see ``benchmarks/train_speed.py``). Sparse data (counts
from an ``.h5ad`` or a 10x folder) stay a CSR matrix on the host and only the mini-batch in hand is made
dense (:class:`SparseRows`), so memory follows the non-zeros, not cells x genes. A matrix too large to hold
stays in its file (a :class:`~vaebench.data.stored.StoredCsr`) and is streamed
(:class:`~vaebench.training.streaming.StreamedRows`): each epoch reads it a buffer of blocks of cells at a
time, so memory stays flat in the cells. :func:`epoch_batches` gives the loop an epoch's mini-batches
either way; :func:`encode` and :func:`posterior_moments` read all three by slices of consecutive rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from vaebench.errors import VaebenchError
from vaebench.models.base import LatentModel, check_loss_terms
from vaebench.training.hardware import cpu_name, keep_freed_memory
from vaebench.training.streaming import StreamedRows, dense_on

if TYPE_CHECKING:
    from vaebench.data.stored import StoredCsr

EpochCallback = Callable[[int, float], None]
"""Called after each epoch with (epoch number from 1, mean training loss); may raise to stop training."""


class TrainingDiverged(VaebenchError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What one training run measured: the loss curve, the curve of each named part of the loss (epoch means,
    summing to the loss), and the timing, with the machine beside it (``encode_seconds``: encoding every
    cell once trained, where the run's code measured it)."""

    losses: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    encode_seconds: float = 0.0
    threads: int = 1
    device: str = "cpu"
    cpu: str = ""

    @property
    def epochs(self) -> int:
        return len(self.losses)

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(self.epochs, 1)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and NumPy so the same seed repeats the same run."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


class SparseRows:
    """A CSR matrix that hands out dense rows: what the loop and :func:`encode` use for sparse data.

    It answers the two calls they make of a tensor (``index_select(0, rows)`` and a slice of rows) with a
    dense float32 tensor on ``device``, so only one mini-batch at a time is ever dense.
    """

    def __init__(self, matrix: sp.csr_matrix, device: torch.device) -> None:
        self.matrix = matrix
        self.device = device
        self.shape = matrix.shape

    def index_select(self, dim: int, rows: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("SparseRows selects rows only.")
        return dense_on(self.matrix[rows.cpu().numpy()], self.device)

    def __getitem__(self, rows: slice) -> torch.Tensor:
        return dense_on(self.matrix[rows], self.device)


def as_tensor(
    X: np.ndarray | sp.csr_matrix | StoredCsr, device: torch.device
) -> torch.Tensor | SparseRows | StreamedRows:
    """The whole matrix as one contiguous float32 tensor on ``device``; a sparse one stays sparse on the
    host and is made dense a mini-batch at a time (:class:`SparseRows`); one kept in its file (a
    :class:`~vaebench.data.stored.StoredCsr`) stays there and is read a buffer of blocks at a time
    (:class:`~vaebench.training.streaming.StreamedRows`)."""
    from vaebench.data.stored import StoredCsr

    if isinstance(X, StoredCsr):
        return StreamedRows(X, device)
    if sp.issparse(X):
        return SparseRows(sp.csr_matrix(X, dtype=np.float32), device)
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)


def epoch_batches(
    X: torch.Tensor | SparseRows | StreamedRows,
    batch_size: int,
    shuffle: torch.Generator,
    seed: int,
    epoch: int,
) -> Iterator[torch.Tensor]:
    """One epoch's shuffled mini-batches of the rows of ``X``.

    In memory (a tensor or :class:`SparseRows`): one ``torch.randperm`` of all cells drawn from ``shuffle``
    (one generator for the whole run, seeded once), cut into batches in order. On disk
    (:class:`~vaebench.training.streaming.StreamedRows`): its block-sampled batches, seeded by
    ``(seed, epoch)``; ``shuffle`` is not used.
    """
    if isinstance(X, StreamedRows):
        yield from X.batches(batch_size, seed, epoch)
        return
    order = torch.randperm(X.shape[0], generator=shuffle).to(X.device)
    for start in range(0, X.shape[0], batch_size):
        yield X.index_select(0, order[start : start + batch_size])


def train(
    model: LatentModel,
    X: torch.Tensor | SparseRows | StreamedRows,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_epoch: EpochCallback | None = None,
    adam_eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> TrainResult:
    """Train ``model`` on the rows of ``X`` with Adam for ``epochs`` passes of shuffled mini-batches.

    ``adam_eps`` and ``weight_decay`` are Adam's (Kingma & Ba 2015); the defaults are torch's, scvi-tools
    trains with 0.01 and 1e-6.
    The shuffling uses its own generator seeded by ``seed`` (:func:`epoch_batches`); wall and CPU (process)
    seconds cover the epochs only, less the time spent in ``on_epoch`` (a tuning study's intermediate
    scoring).
    The loss and its parts are summed on the device and read once per epoch; the first batch's
    :class:`~vaebench.models.base.LossTerms` are checked (a scalar total, parts summing to it).
    A loss that becomes NaN or infinite raises :class:`TrainingDiverged` naming the epoch.
    """
    device = X.device
    keep_freed_memory()
    model.to(device).train()
    # The fused kernel updates each parameter in one pass instead of one pass per Adam operation.
    optimizer = torch.optim.Adam(
        model.parameters(), lr=lr, eps=adam_eps, weight_decay=weight_decay, fused=True
    )
    shuffle = torch.Generator().manual_seed(seed)
    n_cells = X.shape[0]
    result = TrainResult(threads=torch.get_num_threads(), device=str(device), cpu=cpu_name())

    wall0, cpu0 = time.perf_counter(), time.process_time()
    callback_wall = callback_cpu = 0.0
    part_names: list[str] = []
    for epoch in range(1, epochs + 1):
        sums: torch.Tensor | None = None  # the loss, then each part, summed over the epoch's cells
        for batch in epoch_batches(X, batch_size, shuffle, seed, epoch):
            optimizer.zero_grad(set_to_none=True)
            terms = model.loss(batch)
            if sums is None and epoch == 1:
                check_loss_terms(terms, type(model).__name__)
                part_names = list(terms.parts)
            terms.total.backward()
            optimizer.step()
            values = torch.stack([terms.total.detach(), *(terms.parts[name].detach() for name in part_names)])
            sums = values * batch.shape[0] if sums is None else sums.add_(values * batch.shape[0])
        epoch_loss, *epoch_parts = (value / n_cells for value in sums.tolist())
        if not math.isfinite(epoch_loss):
            raise TrainingDiverged(
                f"Training diverged: the loss became {epoch_loss} at epoch {epoch} of {epochs}; "
                "try a smaller learning rate or beta."
            )
        result.losses.append(epoch_loss)
        for name, value in zip(part_names, epoch_parts, strict=True):
            result.parts.setdefault(name, []).append(value)
        if on_epoch is not None:
            hook_wall, hook_cpu = time.perf_counter(), time.process_time()
            on_epoch(epoch, epoch_loss)
            callback_wall += time.perf_counter() - hook_wall
            callback_cpu += time.process_time() - hook_cpu
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.seconds = time.perf_counter() - wall0 - callback_wall
    result.cpu_seconds = time.process_time() - cpu0 - callback_cpu
    return result


@torch.no_grad()
def encode(
    model: LatentModel, X: torch.Tensor | SparseRows | StreamedRows, batch_size: int = 4096
) -> np.ndarray:
    """The model's deterministic latent code of every row of ``X``, as a NumPy array."""
    model.eval()
    codes = [model.encode(X[start : start + batch_size]) for start in range(0, X.shape[0], batch_size)]
    return torch.cat(codes).cpu().numpy().astype(np.float32)


@torch.no_grad()
def posterior_moments(
    model: LatentModel, X: torch.Tensor | SparseRows | StreamedRows, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray] | None:
    """The Gaussian posterior's means and variances (cells x latent, NumPy) of every row of ``X``, encoded a
    block at a time as :func:`encode`; None for a model without ``posterior`` (an autoencoder).

    The moments are those of the first two outputs of ``model.posterior(x)``, read as (mean, log-variance):
    the Gaussian posterior of ``beta_vae`` and ``nb_vae`` (which reads counts); for ``beta_vsc`` the slab's
    Gaussian, whose spike (gamma, the third output) is left out, so a dimension the spike switches off
    still counts by its slab; for ``flow_vae`` the base Gaussian ``q_0`` before the planar flows (the
    flowed posterior has no closed-form moments). A ``posterior`` that does not give two cells x latent
    arrays first (a user's model may mean something else by it) counts as none.
    """
    posterior = getattr(model, "posterior", None)
    if not callable(posterior):
        return None
    model.eval()
    means, variances = [], []
    for start in range(0, X.shape[0], batch_size):
        block = X[start : start + batch_size]
        outputs = posterior(block)
        if not isinstance(outputs, tuple | list) or len(outputs) < 2:
            return None
        mu, logvar = outputs[0], outputs[1]
        if (
            not (isinstance(mu, torch.Tensor) and isinstance(logvar, torch.Tensor))
            or mu.shape != logvar.shape
        ):
            return None
        if mu.ndim != 2 or mu.shape[0] != block.shape[0]:
            return None
        means.append(mu.cpu())
        variances.append(logvar.exp().cpu())
    return torch.cat(means).numpy(), torch.cat(variances).numpy()
