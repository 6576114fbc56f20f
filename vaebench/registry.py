"""The one mapping type behind the model, metric and dataset registries.

A registry is a plain ``dict`` from the names users type to entries, filled where each entry is defined;
looking up an unknown name raises the user error that lists the known names.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from vaebench.errors import unknown_name


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(dict[str, T], Generic[T]):
    """Entries by name; ``kind`` ("model", "metric", ...) is how errors refer to them."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, entry: T) -> T:
        """Add ``entry`` under its name and return it."""
        self[entry.name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry called ``name``; an unknown name is answered with the known ones."""
        try:
            return self[name]
        except KeyError:
            raise unknown_name(self.kind, name, self) from None
