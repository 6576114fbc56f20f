"""How a setting of a configuration part is declared: its flat name, its option and its help.

Each part (:mod:`vaebench.config.parts`, :class:`vaebench.data.source.DataSource`) declares its fields with
:func:`setting`, so the command line (:mod:`vaebench.cli.options`) and the flat names MLflow shows are built
from one declaration. This module imports nothing of vaebench's, so any part can use it.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

PANEL_DATA = "Data"
PANEL_MODEL = "Model"
PANEL_TRAINING = "Training"
PANEL_EVALUATION = "Evaluation"
PANEL_EXECUTION = "Execution"


def setting(
    default: Any,
    help: str,
    *,
    flags: tuple[str, ...] = (),
    flat: str | None = None,
    panel: str | None = None,
    cli_default: Any = ...,
) -> Any:
    """A dataclass field with its command-line declaration in ``metadata``.

    ``flat`` is the name MLflow shows when it is not the field's own (the data part's ``path`` is
    ``data_path``); ``flags`` are the option's spellings (default ``--field-name``); ``cli_default`` is what
    the option shows as its default when that differs from the field's (None: the model's own default).
    """
    metadata = {"help": help, "flags": flags, "flat": flat, "panel": panel, "cli_default": cli_default}
    return field(default=default, metadata=metadata)
