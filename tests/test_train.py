"""The training loop: it learns, it repeats itself for a seed, it stops on divergence."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.models import ModelOptions, get_model
from vaebench.models.base import LatentModel, LossTerms
from vaebench.training import hardware
from vaebench.training.hardware import keep_freed_memory, release_freed_memory
from vaebench.training.loop import TrainingDiverged, TrainResult, as_tensor, encode, seed_everything, train


def clustered(n_cells: int = 120, n_genes: int = 30, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(3, n_genes))
    X = centers[rng.integers(0, 3, n_cells)] + rng.normal(0, 0.5, size=(n_cells, n_genes))
    return as_tensor(X.astype(np.float32), torch.device("cpu"))


def trained(name: str, seed: int, epochs: int = 15) -> tuple[list[float], np.ndarray]:
    result, latent = trained_result(name, seed, epochs)
    return result.losses, latent


def trained_result(name: str, seed: int, epochs: int = 15) -> tuple[TrainResult, np.ndarray]:
    X = clustered()
    seed_everything(seed)
    model = get_model(name).build(X.shape[1], ModelOptions(latent_dim=3, beta=1.0))
    result = train(model, X, epochs=epochs, batch_size=32, lr=3e-3, seed=seed)
    return result, encode(model, X)


@pytest.mark.parametrize("name", ["ae", "beta_vae", "beta_vsc"])
def test_the_loss_goes_down(name: str) -> None:
    losses, _ = trained(name, seed=0)
    assert len(losses) == 15
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


@pytest.mark.parametrize("name", ["ae", "beta_vsc"])
def test_the_same_seed_repeats_the_run_and_another_seed_does_not(name: str) -> None:
    result_a, latent_a = trained_result(name, seed=3, epochs=4)
    result_b, latent_b = trained_result(name, seed=3, epochs=4)
    result_c, _ = trained_result(name, seed=4, epochs=4)
    assert result_a.losses == result_b.losses
    assert result_a.parts == result_b.parts
    np.testing.assert_array_equal(latent_a, latent_b)
    assert result_a.losses != result_c.losses


def test_every_part_of_the_loss_has_a_curve_and_the_curves_sum_to_the_loss() -> None:
    result, _ = trained_result("beta_vae", seed=0, epochs=3)
    assert set(result.parts) == {"reconstruction", "beta_kl"}
    for epoch, loss in enumerate(result.losses):
        parts = [curve[epoch] for curve in result.parts.values()]
        assert all(part > 0 for part in parts)
        assert sum(parts) == pytest.approx(loss, rel=1e-5)


def test_timing_and_machine_are_recorded() -> None:
    X = clustered()
    model = get_model("ae").build(X.shape[1], ModelOptions(latent_dim=3))
    result = train(model, X, epochs=3, batch_size=64, lr=1e-3, seed=0)
    assert result.seconds > 0 and result.cpu_seconds > 0
    assert result.seconds_per_epoch == pytest.approx(result.seconds / 3)
    assert result.threads == torch.get_num_threads()
    assert result.cpu


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later): ``hblkhd`` is the bytes held in mmapped blocks."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


def _served_by_mmap(size: int) -> bool:
    """Whether glibc serves a block of ``size`` bytes from its own ``mmap`` (given back to the kernel on
    free) rather than from the heap."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    try:
        return libc.mallinfo2().hblkhd >= before + size
    finally:
        libc.free(block)


@pytest.mark.skipif(
    hardware._glibc() is None or not hasattr(hardware._glibc(), "mallinfo2"), reason="glibc 2.33+ only"
)
def test_the_training_loops_malloc_setting_ends_with_a_release_and_applies_again() -> None:
    size = 2 * hardware.ADAPTED_MMAP_THRESHOLD  # above the threshold glibc's adaptive rule settles at
    try:
        assert keep_freed_memory()
        assert not _served_by_mmap(size)  # kept in the heap for the next batch
        assert release_freed_memory()
        assert _served_by_mmap(size)  # as glibc would: a freed block this large goes back to the kernel
        assert keep_freed_memory()  # a later run's training loop in the same process gets it again
        assert not _served_by_mmap(size)
    finally:
        release_freed_memory()


def test_the_malloc_settings_are_a_no_op_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_glibc", lambda: None)
    assert keep_freed_memory() is False
    assert release_freed_memory() is False


class _DivergesAtEpochThree(LatentModel):
    """A real (tiny) model whose objective overflows once its weight has been stepped past a threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 1
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.steps = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * self.w

    def loss(self, x: torch.Tensor) -> LossTerms:
        self.steps += 1
        scale = torch.tensor(float("inf")) if self.steps > 2 * 4 else torch.tensor(1.0)
        total = ((x * self.w).pow(2).mean() + 1.0) * scale
        return LossTerms(total, {"penalty": total})


def test_a_diverging_loss_stops_training_naming_the_epoch() -> None:
    X = clustered(n_cells=128)
    with pytest.raises(TrainingDiverged, match="at epoch 3 of 10"):
        train(_DivergesAtEpochThree(), X, epochs=10, batch_size=32, lr=1e-3, seed=0)


class _BadLoss(LatentModel):
    """A tiny real model whose loss breaks the contract in the way it is built with."""

    def __init__(self, mistake: str) -> None:
        super().__init__()
        self.latent_dim = 1
        self.w = torch.nn.Parameter(torch.ones(1))
        self.mistake = mistake

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * self.w

    def loss(self, x: torch.Tensor) -> LossTerms | torch.Tensor:
        per_cell = (x * self.w).pow(2).sum(dim=1)
        if self.mistake == "per-cell":
            return LossTerms(per_cell, {"reconstruction": per_cell})
        if self.mistake == "bare tensor":
            return per_cell.mean()
        return LossTerms(per_cell.mean(), {"reconstruction": per_cell.mean(), "kl": per_cell.mean()})


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("per-cell", r"loss of model '_BadLoss' must be a scalar tensor .*got shape \(32,\)"),
        ("bare tensor", r"must be a vaebench.models.LossTerms\(total, parts\), got Tensor"),
        ("parts do not add up", r"parts \(reconstruction, kl\) that sum to .*not to its total"),
    ],
)
def test_a_loss_that_breaks_the_contract_is_named_in_one_sentence(mistake: str, message: str) -> None:
    with pytest.raises(VaebenchError, match=message):
        train(_BadLoss(mistake), clustered(n_cells=64), epochs=2, batch_size=32, lr=1e-3, seed=0)


def test_the_epoch_callback_sees_every_epoch_and_its_time_is_not_counted() -> None:
    X = clustered()
    model = get_model("ae").build(X.shape[1], ModelOptions(latent_dim=3))
    seen: list[int] = []

    def slow_callback(epoch: int, loss: float) -> None:
        seen.append(epoch)
        import time

        time.sleep(0.2)

    import time

    start = time.perf_counter()
    result = train(model, X, epochs=3, batch_size=64, lr=1e-3, seed=0, on_epoch=slow_callback)
    elapsed = time.perf_counter() - start
    assert seen == [1, 2, 3]
    # The 0.6 s the callback slept are taken out of the training time, however loaded the machine is.
    assert 0 < result.seconds <= elapsed - 0.6
