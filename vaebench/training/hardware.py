"""Facts about the machine a run is timed on, recorded beside every timing."""

from __future__ import annotations

import ctypes
import platform
from functools import cache
from pathlib import Path

import torch

from vaebench.errors import VaebenchError


@cache
def cpu_name() -> str:
    """The processor's marketing name (``model name`` in /proc/cpuinfo), or what the platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MB of 2**20 bytes (``getrusage``'s
    ``ru_maxrss``: KiB on Linux, bytes on macOS); NaN where there is no ``resource`` module (Windows).

    A peak so far only rises: read at the end of each stage, a stage's own peak shows where it rises."""
    try:
        import resource
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if platform.system() == "Darwin" else peak / 1024


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA where it is available and the CPU otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VaebenchError(f"Device {device!r} was asked for but CUDA is not available on this machine.")
    try:
        return torch.device(device)
    except RuntimeError:
        raise VaebenchError(f"Unknown device {device!r}; use auto, cpu or cuda[:N].") from None


def set_threads(threads: int | None) -> int:
    """Set the thread count of torch and of the OpenMP and BLAS pools that scikit-learn's t-SNE and k-means
    use (None keeps the defaults: every core); return torch's count in force.

    Parallel suite children each get ``cores // jobs`` threads: without the OpenMP limit, two children's
    t-SNE would each spin up a thread per core and spend their time waiting on each other. The limit does
    not change results: t-SNE maps and k-means partitions are identical at 1 and 2 threads.
    """
    if threads is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(limits=threads)
    return torch.get_num_threads()


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""``mallopt`` parameters (glibc's ``malloc.h``)."""
TRAINING_THRESHOLD = 1 << 30
"""Both thresholds during a training loop: freed blocks up to 1 GiB stay in the heap."""
ADAPTED_MMAP_THRESHOLD = 32 << 20
"""The highest mmap threshold glibc's own adaptive rule reaches on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``);
the rule sets the trim threshold to twice it."""
_raised = False
"""Whether :func:`keep_freed_memory` raised the thresholds since the last :func:`release_freed_memory`."""


@cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, where this is Linux with it; None elsewhere (``mallopt`` and ``malloc_trim`` are glibc's)."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _set_thresholds(libc: ctypes.CDLL, mmap_threshold: int, trim_threshold: int) -> bool:
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed large blocks instead of returning them to the kernel, for a training loop.

    Every mini-batch allocates tensors of batch x genes floats (14 MB at PBMC3k's width); by default glibc
    serves each from a fresh ``mmap`` and unmaps it on free, so every batch pays page faults and zeroing for
    memory it just released. Raising the mmap and trim thresholds to 1 GiB (as ``MALLOC_MMAP_THRESHOLD_``
    would) removes that cost. It holds until :func:`release_freed_memory`, which a run calls when training is
    over. Returns whether it applied (glibc only; elsewhere it is a no-op).
    """
    global _raised
    libc = _glibc()
    _raised = libc is not None and _set_thresholds(libc, TRAINING_THRESHOLD, TRAINING_THRESHOLD)
    return _raised


def release_freed_memory() -> bool:
    """Hand freed heap memory back to the kernel and end :func:`keep_freed_memory`'s setting.

    Left in force after training, the 1 GiB thresholds keep every block the evaluation frees in the process:
    an ``ae`` run on 20,000 cells (2 epochs) held 0.94 GB after training, 1.14 GB after its t-SNE and
    1.75 GB from the silhouette to the end of the run, each stage's memory kept for the next. Where they were
    raised, this sets the thresholds where glibc's adaptive rule would have taken them (mmap 32 MiB, trim
    64 MiB): glibc cannot re-enable that rule once they are set, and its start value, 128 KiB, would map
    every buffer of t-SNE and k-means afresh (1.1 million page faults and 10 % more CPU time for a 5,000-cell
    map, measured). Then ``malloc_trim(0)`` returns the free pages of the heap, those inside it too. Blocks
    over 32 MiB go back to the kernel when freed, and scores do not depend on any of it. Returns whether the
    thresholds are glibc's (False off glibc, where it is a no-op).
    """
    global _raised
    libc = _glibc()
    if libc is None:
        return False
    if _raised:
        _raised = not _set_thresholds(libc, ADAPTED_MMAP_THRESHOLD, 2 * ADAPTED_MMAP_THRESHOLD)
    libc.malloc_trim(0)
    return not _raised
