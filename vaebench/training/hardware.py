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


@cache
def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed large blocks instead of returning them to the kernel.

    Every mini-batch allocates tensors of batch x genes floats (14 MB at PBMC3k's width); by default glibc
    serves each from a fresh ``mmap`` and unmaps it on free, so every batch pays page faults and zeroing for
    memory it just released. Raising the mmap and trim thresholds (as ``MALLOC_MMAP_THRESHOLD_`` would)
    removes that cost. Returns whether it applied (glibc only; elsewhere it is a no-op).
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    one_gib = 1 << 30
    return bool(libc.mallopt(m_mmap_threshold, one_gib)) and bool(libc.mallopt(m_trim_threshold, one_gib))
