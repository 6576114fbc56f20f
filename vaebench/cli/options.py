"""Option groups built from the configuration's parts, shared by ``run``, ``run --all``, ``tune`` and
``evaluate``.

Each field of a part (:mod:`vaebench.config.parts`) declares its option once
(:func:`vaebench.config.fields.setting`); :func:`part_options` turns the fields of the named parts into
typer options and hands the command the settings the user gave, by their flat names, as ``given``.
Every generated option defaults to None, "not given", so a command knows what the user typed without
asking click where each value came from; the help shows the part's default.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from vaebench.config.parts import PARTS
from vaebench.errors import VaebenchError

_PATHS = {"data_path", "labels_path"}
_TEXT = {"hidden", "metrics", "maps"}  # typed as text on the command line and parsed here

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Set a run setting as part.field=value (repeatable), e.g. --set training.epochs=50 "
        "--set model.latent_dim=8; a flat name such as latent_dim=8 works too.",
    ),
]


def _kind(name: str, f: Field) -> type:
    if name in _PATHS:
        return Path
    if name in _TEXT:
        return str
    text = str(f.type)
    for kind in (bool, int, float):
        if text.split(" ")[0] == kind.__name__:
            return kind
    return str


def _parameter(name: str, f: Field) -> inspect.Parameter:
    meta = f.metadata
    flags = meta.get("flags") or (f"--{name.replace('_', '-')}",)
    default = f.default if meta.get("cli_default", ...) is ... else meta["cli_default"]
    shown: bool | str = False if default in (None, MISSING) else str(default)
    if isinstance(default, bool):
        shown = flags[0].split("/")[0 if default else 1].lstrip("-")
    option = typer.Option(*flags, help=meta["help"], rich_help_panel=meta.get("panel"), show_default=shown)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[_kind(name, f) | None, option],
    )


def group_parameters(parts: Iterable[str], skip: Iterable[str] = ()) -> list[inspect.Parameter]:
    """The options of these parts' fields (by flat name), less those in ``skip``."""
    skipped = set(skip)
    params = []
    for part in parts:
        for f in fields(PARTS[part]):
            name = f.metadata.get("flat") or f.name
            if name not in skipped:
                params.append(_parameter(name, f))
    return params


def from_option(name: str, value: Any) -> Any:
    """A value as typed on the command line -> the value the part holds."""
    from vaebench.config.run_config import parse_hidden

    if name in _PATHS:
        return str(value)
    if name == "hidden":
        return parse_hidden(value)
    if name in ("metrics", "maps"):
        names = tuple(part.strip() for part in str(value).split(",") if part.strip())
        if not names:
            raise VaebenchError(f"--{name} is empty.")
        return names
    return value


def part_options(*parts: str, skip: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options of ``parts`` to a command; it receives what the user gave as ``given`` (flat name
    -> value), the options left out."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command, eval_str=True)
        added = group_parameters(parts, skip)
        names = [p.name for p in added]
        clash = set(names) & set(own.parameters)
        assert not clash, f"options {clash} are declared twice"

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            given = {
                name: from_option(name, value)
                for name in names
                if (value := kwargs.pop(name, None)) is not None
            }
            return command(**kwargs, given=given)

        kept = [p for p in own.parameters.values() if p.name != "given"]
        wrapper.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept] + added
        )
        wrapper.__annotations__ = {p.name: p.annotation for p in [*kept, *added]}
        return wrapper

    return decorate


def parse_set(items: Iterable[str] | None) -> dict[str, Any]:
    """``--set part.field=value`` (or a flat ``name=value``) -> flat name -> typed value."""
    from vaebench.config.run_config import coerce, split_assignment

    values: dict[str, Any] = {}
    for item in items or ():
        flat, value = split_assignment(item)
        values[flat] = coerce(flat, value)
    return values


def one_data_source(given: dict[str, Any]) -> None:
    """``--dataset`` and ``--data`` name the same thing: refuse both at once."""
    if given.get("dataset") is not None and given.get("data_path") is not None:
        raise VaebenchError("Give either --dataset or --data, not both.")
