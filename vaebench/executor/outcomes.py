"""What a task came to, whichever backend ran it: the leaf every other module of the executor imports.

A :class:`TaskOutcome` carries the task's value, or one sentence saying why it has none (its worker kept
dying, or it raised). :data:`RETRIES` is how many times a task whose worker died is run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRIES = 3
"""How many times a task whose worker died is run again (Dask's own ``allowed-failures`` default)."""


@dataclass
class TaskOutcome:
    """What became of the task with key ``index``: ``value`` if it returned, else ``error`` (a sentence)."""

    index: Any
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def error_sentence(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
