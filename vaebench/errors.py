"""The one exception type a user can cause.

Everything that is the user's to fix (a wrong path, NaN in a matrix, an unknown name, an impossible
setting) raises :class:`VaebenchError` with one clear sentence. The CLI prints that sentence to stderr and
exits non-zero without a traceback; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class VaebenchError(Exception):
    """An error the user can fix; its message is one sentence meant for them."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> VaebenchError:
    """The error for a name that is not in a registry, listing the names that are."""
    return VaebenchError(f"Unknown {kind} {name!r}; known {kind}s are: {', '.join(sorted(known))}.")
