"""The search space as Optuna sees it: a model's registered tuples become Optuna distributions, a trial
suggests a value for each parameter, and a trial's values become a :class:`~vaebench.config.RunConfig`.

A model registers ``{name: (kind, low, high)}`` or ``{name: ("categorical", choices)}``
(:mod:`vaebench.models.registry`); ``hidden`` is searched as text such as ``"128,32"``.
"""

from __future__ import annotations

from typing import Any

import optuna

from vaebench.config import RunConfig, parse_hidden


def distribution(spec: tuple[Any, ...]) -> optuna.distributions.BaseDistribution:
    """A registry tuple as an Optuna distribution: ``("log_float", lo, hi)``, ``("int", lo, hi)``,
    ``("float", lo, hi)`` or ``("categorical", choices)``."""
    kind = spec[0]
    if kind == "log_float":
        return optuna.distributions.FloatDistribution(float(spec[1]), float(spec[2]), log=True)
    if kind == "float":
        return optuna.distributions.FloatDistribution(float(spec[1]), float(spec[2]))
    if kind == "int":
        return optuna.distributions.IntDistribution(int(spec[1]), int(spec[2]))
    if kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(spec[1]))
    raise ValueError(f"Unknown search-space kind {kind!r} in {spec!r}.")


def suggest(trial: optuna.Trial, space: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    """Ask the trial for a value of every parameter of ``space``."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        dist = distribution(spec)
        if isinstance(dist, optuna.distributions.FloatDistribution):
            params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high)
        else:
            params[name] = trial.suggest_categorical(name, dist.choices)
    return params


def config_for(base: RunConfig, params: dict[str, Any], **overrides: Any) -> RunConfig:
    """``base`` with a trial's parameters (``hidden`` parsed from text such as ``"128,32"``)."""
    values = {k: parse_hidden(v) if k == "hidden" else v for k, v in params.items()}
    return base.with_settings(**values, **overrides)
