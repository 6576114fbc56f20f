"""The configuration of one run: its parts (:mod:`vaebench.config.parts`) and the one normalised whole
(:mod:`vaebench.config.run_config`).

The names below are imported when first asked for: the parts are read by models, data and evaluation,
which the whole itself imports, so importing this package must not import the whole.
"""

from __future__ import annotations

from typing import Any

_FROM = {
    "EXECUTION_FIELDS": "run_config",
    "STUDY_BETA": "run_config",
    "TRAINING_FIELDS": "run_config",
    "UNTRAINED_SETTINGS": "run_config",
    "RunConfig": "run_config",
    "parse_hidden": "run_config",
    "DataSource": "parts",
    "ModelOptions": "parts",
    "TrainingSettings": "parts",
    "ProtocolSettings": "parts",
    "ExecutionSettings": "parts",
}

__all__ = sorted(_FROM)


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'vaebench.config' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"vaebench.config.{_FROM[name]}"), name)
