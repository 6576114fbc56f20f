"""The configuration of one run."""

from vaebench.config.run_config import (
    EXECUTION_FIELDS,
    STUDY_BETA,
    TRAINING_FIELDS,
    UNTRAINED_SETTINGS,
    RunConfig,
    parse_hidden,
)

__all__ = [
    "EXECUTION_FIELDS",
    "STUDY_BETA",
    "TRAINING_FIELDS",
    "UNTRAINED_SETTINGS",
    "RunConfig",
    "parse_hidden",
]
