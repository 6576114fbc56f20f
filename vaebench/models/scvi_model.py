"""scvi-tools' ``SCVI``, the field's reference VAE, as a registry entry trained by scvi-tools itself.

Lopez, Regier, Cole, Jordan & Yosef (2018), "Deep generative modeling for single-cell transcriptomics",
Nat. Methods 15; Gayoso et al. (2022), "A Python library for probabilistic analysis of single-cell omics
data", Nat. Biotechnol. 40 (scvi-tools). The adapter changes nothing of what ``SCVI`` computes: the counts
become an ``AnnData`` registered with ``SCVI.setup_anndata``, the seed is scvi-tools' own
(``scvi.settings.seed``), and ``SCVI(adata, n_latent=...).train(...)`` runs scvi-tools' Lightning loop
with scvi-tools' defaults (one hidden layer of 128 with batch norm, dropout 0.1, ZINB likelihood, Adam with
eps 0.01 and weight decay 1e-6), so the same seed and settings give the latent scvi-tools gives on its own
(``tests/test_scvi.py`` checks it to the bit). What the run sets, and why:

* every cell is trained (``train_size=1.0``) and nothing stops early, like every vaebench network;
* the KL weight is beta from the first step (``max_kl_weight=beta``, no warm-up): beta means the same for
  ``scvi`` as for ``nb_vae`` and ``beta_vae``. scvi-tools' default would ramp the weight from 0 over 400
  epochs, i.e. train a 20-epoch model at a KL weight of at most 0.05;
* ``--hidden 128`` or ``--hidden 256,256`` set ``n_hidden`` and ``n_layers`` (scvi-tools' layers share one
  width).

scvi-tools is an optional extra (``pip install 'vaebench[scvi]'``): it is imported when a run fits the
model, never when vaebench starts.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch

from vaebench.errors import VaebenchError
from vaebench.models.requires import SCVI_REQUIRES, check_installed
from vaebench.training.hardware import cpu_name

if TYPE_CHECKING:
    from vaebench.config.parts import ModelOptions
    from vaebench.training.loop import EpochCallback, TrainResult

_NOISY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "scvi")


def import_scvi() -> Any:
    """The ``scvi`` package, or one sentence saying how to install it."""
    check_installed("scvi", SCVI_REQUIRES)
    import scvi

    return scvi


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's and scvi-tools' banners, tips and per-fit warnings, silenced for one block."""
    levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def lightning_device(device: torch.device) -> tuple[str, int | list[int]]:
    """``accelerator`` and ``devices`` of a Lightning trainer for one torch device."""
    if device.type == "cuda":
        return "gpu", [device.index or 0]
    return "cpu", 1


def layer_shape(hidden: tuple[int, ...] | None) -> dict[str, int]:
    """``--hidden`` as SCVI's ``n_hidden`` and ``n_layers`` (None: scvi-tools' defaults)."""
    if hidden is None:
        return {}
    if len(set(hidden)) != 1:
        raise VaebenchError(
            f"scvi's hidden layers share one width (n_hidden), got --hidden {','.join(map(str, hidden))}; "
            "give e.g. 128 or 128,128."
        )
    return {"n_hidden": hidden[0], "n_layers": len(hidden)}


def as_anndata(counts: np.ndarray | sp.spmatrix) -> Any:
    """Raw counts as the AnnData SCVI trains on (sparse counts stay sparse)."""
    import anndata

    matrix = (
        sp.csr_matrix(counts, dtype=np.float32) if sp.issparse(counts) else np.asarray(counts, np.float32)
    )
    return anndata.AnnData(matrix)


class SCVIModel:
    """SCVI behind the fit/encode interface the runner uses for every model; ``fit`` takes raw counts."""

    def __init__(self, options: ModelOptions) -> None:
        self.latent_dim = options.latent_dim
        self.beta = options.beta
        self.layers = layer_shape(options.hidden)
        self.module_object: Any = None
        """The trained ``scvi.model.SCVI``."""

    def fit(
        self,
        counts: np.ndarray | sp.spmatrix,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
        device: torch.device,
        on_epoch: EpochCallback | None = None,
    ) -> TrainResult:
        """Train SCVI on ``counts`` (cells x genes) with scvi-tools' loop; the loss and its parts per epoch
        come from its history (``reconstruction_loss_train``, ``kl_local_train``): ``beta_kl`` is beta times
        the KL, and the parts sum to the loss SCVI minimises."""
        from vaebench.training.loop import TrainingDiverged, TrainResult

        scvi = import_scvi()
        accelerator, devices = lightning_device(device)
        adata = as_anndata(counts)
        callbacks = [_epoch_callback(on_epoch)] if on_epoch is not None else []
        with quiet_lightning():
            scvi.settings.seed = seed
            scvi.model.SCVI.setup_anndata(adata)
            self.module_object = scvi.model.SCVI(adata, n_latent=self.latent_dim, **self.layers)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            self.module_object.train(
                max_epochs=epochs,
                batch_size=batch_size,
                train_size=1.0,
                early_stopping=False,
                accelerator=accelerator,
                devices=devices,
                plan_kwargs={"lr": lr, "n_epochs_kl_warmup": None, "max_kl_weight": self.beta},
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=callbacks,
            )
            seconds, cpu_seconds = time.perf_counter() - wall0, time.process_time() - cpu0
        result = TrainResult(
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            threads=torch.get_num_threads(),
            device=str(device),
            cpu=cpu_name(),
        )
        reconstruction, kl_local, kl_global = (
            history_curve(self.module_object.history, key)
            for key in ("reconstruction_loss_train", "kl_local_train", "kl_global_train")
        )
        result.parts = {"reconstruction": reconstruction, "beta_kl": [self.beta * kl for kl in kl_local]}
        if any(kl_global):
            result.parts["kl_global"] = kl_global
        result.losses = [sum(values) for values in zip(*result.parts.values(), strict=True)]
        if not all(np.isfinite(result.losses)):
            epoch = next(i for i, loss in enumerate(result.losses, 1) if not np.isfinite(loss))
            raise TrainingDiverged(
                f"Training diverged: scvi's loss became non-finite at epoch {epoch} of {epochs}; "
                "try a smaller learning rate or beta."
            )
        return result

    def _trained(self) -> Any:
        if self.module_object is None:
            raise RuntimeError("SCVIModel.fit must run before the model encodes.")
        return self.module_object

    def posterior_moments(self, counts: np.ndarray | sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
        """Means and variances of q(z | x) of every cell (cells x latent each)."""
        with self._encoding() as model:
            mean, var = model.get_latent_representation(as_anndata(counts), return_dist=True)
        return mean.astype(np.float32), var.astype(np.float32)

    def encode(self, counts: np.ndarray | sp.spmatrix) -> np.ndarray:
        """The posterior mean of every cell: ``get_latent_representation()``, what users of SCVI score."""
        with self._encoding() as model:
            latent = model.get_latent_representation(as_anndata(counts))
        return latent.astype(np.float32)

    @contextlib.contextmanager
    def _encoding(self) -> Iterator[Any]:
        """The model in eval mode, also between two epochs of its training (a tuning study scores the
        latent while it trains): its train mode and trained flag are put back afterwards."""
        model = self._trained()
        was_training, was_trained = model.module.training, model.is_trained_
        model.module.eval()
        model.is_trained_ = True
        try:
            with quiet_lightning():
                yield model
        finally:
            model.module.train(was_training)
            model.is_trained_ = was_trained

    def save(self, folder: Path) -> None:
        """scvi-tools' own format (``model.pt``), loadable with ``scvi.model.SCVI.load(folder, adata)``."""
        self._trained().save(str(folder), overwrite=True)


def history_curve(history: dict[str, Any], key: str) -> list[float]:
    """One of SCVI's per-epoch training curves (a one-column DataFrame in its history) as floats."""
    return [float(v) for v in np.asarray(history[key]).ravel()]


def _epoch_callback(on_epoch: Callable[[int, float], None]) -> Any:
    """A Lightning callback that calls ``on_epoch(epoch, loss)`` after each training epoch."""
    from lightning.pytorch.callbacks import Callback

    class EpochHook(Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            loss = trainer.callback_metrics.get("train_loss")
            on_epoch(trainer.current_epoch + 1, float(loss) if loss is not None else float("nan"))

    return EpochHook()
