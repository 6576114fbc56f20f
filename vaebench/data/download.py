"""Download once, cache, and check: the only code in vaebench that reaches the network.

A file is fetched with plain ``urllib`` to a temporary name and renamed into the cache only when complete.
Its SHA-256 is checked against a pinned digest where one is known; where none is (the servers of the
public files vaebench uses were unreachable when this was written), the digest of the first download is
recorded beside the file (``<file>.sha256``) and every later use checks the cached file against it
(trust on first use), so a corrupted or replaced cache is found rather than silently used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from vaebench.errors import VaebenchError

TIMEOUT_SECONDS = 60


def cache_dir() -> Path:
    """``$VAEBENCH_DATA_DIR``, else ``~/.cache/vaebench``."""
    return Path(os.environ.get("VAEBENCH_DATA_DIR") or Path.home() / ".cache" / "vaebench")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify(path: Path, pinned: str | None = None) -> None:
    """Check a cached file against its pinned or recorded digest; a mismatch removes it and says so."""
    expected = pinned or (_sidecar(path).read_text().strip() if _sidecar(path).exists() else None)
    if expected is None:
        _sidecar(path).write_text(sha256_of(path) + "\n")  # placed by hand: record it from now on
        return
    actual = sha256_of(path)
    if actual != expected:
        path.unlink()
        _sidecar(path).unlink(missing_ok=True)
        raise VaebenchError(
            f"The cached file {path} did not match its checksum (sha256 {actual[:12]}... instead of "
            f"{expected[:12]}...) and was removed; run again to download it anew."
        )


def fetch(url: str, destination: Path, pinned_sha256: str | None = None) -> Path:
    """``destination``, downloading it from ``url`` first if it is not cached; its checksum is verified."""
    if destination.exists():
        verify(destination, pinned_sha256)
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, partial.open("wb") as handle:
            shutil.copyfileobj(response, handle, 1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise VaebenchError(
            f"Could not download {url} ({reason}); without network, download it elsewhere and place it at "
            f"{destination}."
        ) from None
    digest = sha256_of(partial)
    if pinned_sha256 and digest != pinned_sha256:
        partial.unlink()
        raise VaebenchError(f"The download of {url} did not match its pinned checksum and was discarded.")
    partial.replace(destination)
    _sidecar(destination).write_text(digest + "\n")
    return destination
