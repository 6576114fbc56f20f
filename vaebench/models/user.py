"""Models from outside vaebench: an import path typed as ``package.module:Class``, or an entry point.

A user's model becomes a registry entry the moment a name resolves to it, so ``run``, suites, reports and
``tune`` treat it as they treat the built-in networks. Two ways in, both without changing vaebench:

* ``--model mypkg.models:MyVAE`` (or ``models = ["mypkg.models:MyVAE"]`` in a suite file): the class is
  imported by its path (the current directory is searched too, as ``python -m`` would);
* an entry point in the group ``vaebench.models`` of the user's installed package, e.g.
  ``[project.entry-points."vaebench.models"] my_vae = "mypkg.models:MyVAE"``, makes ``--model my_vae``
  work and lists the model in ``vaebench list``.

The class must follow :class:`vaebench.models.base.LatentModelProtocol`. Resolution happens by name again
in every process that needs the model (suite and study workers are spawned), so it needs nothing but the
name to travel: the spawned processes inherit the parent's ``sys.path``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from torch import nn

from vaebench.config.parts import ModelOptions, setting_names
from vaebench.errors import VaebenchError, unknown_name
from vaebench.models.registry import MODELS, NETWORK_SPACE, ModelSpec, SearchSpace
from vaebench.registry import Registry

ENTRY_POINT_GROUP = "vaebench.models"
SEARCH_SPACE_KINDS = {"log_float": 3, "float": 3, "int": 3, "categorical": 2}
"""Each kind of a search-space tuple and the tuple's length (kind included), as :mod:`vaebench.sets.tune.space`
reads them."""
TRAINING_SPACE: SearchSpace = {k: v for k, v in NETWORK_SPACE.items() if k != "hidden"}
"""What ``tune`` searches for a class that declares no ``search_space``: the settings every network
trained by vaebench has (learning rate, latent size, batch size, epochs); ``--set`` fixes any of them."""


def get_model(name: str) -> ModelSpec:
    """The model called ``name``: a built-in one, an installed entry point, or ``package.module:Class``.

    An unknown name is answered with the known ones; a path that cannot be imported, or a class that does
    not follow the protocol, with what is wrong.
    """
    if name in MODELS:
        return MODELS[name]
    if ":" in name:
        spec = spec_for_class(name, import_class(name))
    else:
        points = {point.name: point for point in _entry_points()}
        if name not in points:
            raise VaebenchError(
                f"{unknown_name('model', name, [*MODELS, *points])} A model of your own is given as "
                "package.module:Class or by an entry point in the group vaebench.models."
            )
        spec = spec_for_class(name, load_entry_point(points[name]))
    return MODELS.register(spec)


def all_models() -> Registry[ModelSpec]:
    """The built-in models and every installed entry point's (what ``vaebench list`` shows)."""
    for point in _entry_points():
        get_model(point.name)
    return MODELS


def _entry_points() -> list[EntryPoint]:
    """The installed entry points of the group, built-in names excepted (those cannot be replaced)."""
    return [point for point in entry_points(group=ENTRY_POINT_GROUP) if point.name not in MODELS]


def load_entry_point(point: EntryPoint) -> Any:
    """What the entry point names, or the user error saying which entry point cannot be loaded."""
    try:
        return point.load()
    except Exception as error:  # any failure of the user's import is theirs to fix
        raise VaebenchError(
            f"The model entry point {point.name!r} ({point.value}) cannot be loaded: "
            f"{type(error).__name__}: {error}."
        ) from None


def import_class(path: str) -> Any:
    """The object ``package.module:Class`` names, imported as ``python -m`` would (current directory
    included), or the user error saying why it cannot be."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise VaebenchError(f"Model path {path!r} must have the form package.module:Class.")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any failure of the user's import is theirs to fix
        raise VaebenchError(
            f"Model path {path!r}: module {module_name!r} cannot be imported ({type(error).__name__}: {error})."
        ) from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise VaebenchError(
                f"Model path {path!r}: module {module_name!r} has no attribute {attribute!r}."
            )
        target = getattr(target, part)
    return target


def spec_for_class(name: str, cls: Any) -> ModelSpec:
    """A registry entry for a class that follows :class:`~vaebench.models.base.LatentModelProtocol`, or
    the user error naming what it lacks."""
    where = f"Model {name!r}"
    if not inspect.isclass(cls):
        raise VaebenchError(f"{where} is a {type(cls).__name__}, not a class.")
    if not issubclass(cls, nn.Module):
        raise VaebenchError(
            f"{where} ({cls.__qualname__}) must be a torch.nn.Module (subclass vaebench.models.LatentModel)."
        )
    missing = [method for method in ("loss", "encode") if not callable(getattr(cls, method, None))]
    if missing:
        raise VaebenchError(f"{where} ({cls.__qualname__}) has no {' and no '.join(missing)} method.")
    try:
        inspect.signature(cls).bind(1, ModelOptions())
    except TypeError:
        raise VaebenchError(
            f"{where} ({cls.__qualname__}) must be built as {cls.__name__}(n_genes, options), options being "
            "a vaebench.models.ModelOptions."
        ) from None
    has_beta = getattr(cls, "has_beta", False)
    if not isinstance(has_beta, bool):
        raise VaebenchError(
            f"{where} ({cls.__qualname__}) has has_beta = {has_beta!r}; it must be True or False."
        )
    declared = getattr(cls, "search_space", None)
    space = check_search_space(where, declared) if declared is not None else dict(TRAINING_SPACE)
    if declared is None and has_beta:
        space["beta"] = ("log_float", 0.1, 10.0)
    doc = inspect.getdoc(cls) or ""
    return ModelSpec(
        name=name,
        description=doc.split("\n\n")[0].replace("\n", " ") or f"{cls.__module__}.{cls.__qualname__}",
        reference=getattr(cls, "reference", "") or f"{cls.__module__}.{cls.__qualname__}",
        has_beta=has_beta,
        build=lambda n_genes, options: cls(n_genes, options),
        search_space=space,
        needs_counts=bool(getattr(cls, "needs_counts", False)),
    )


def check_search_space(where: str, space: Any) -> SearchSpace:
    """A declared search space in the registry's tuple format, or the user error naming the bad entry."""
    if not isinstance(space, dict):
        raise VaebenchError(f"{where} declares a search_space that is not a dict of setting -> tuple.")
    settings = setting_names()
    for setting, entry in space.items():
        if setting not in settings:
            raise VaebenchError(
                f"{where} searches {setting!r}, which is not a run setting; settings are: {', '.join(settings)}."
            )
        kind = entry[0] if isinstance(entry, tuple) and entry else None
        if kind not in SEARCH_SPACE_KINDS or len(entry) != SEARCH_SPACE_KINDS[kind]:
            raise VaebenchError(
                f"{where} declares {setting!r}: {entry!r}; an entry is (kind, low, high) with kind log_float, "
                "float or int, or ('categorical', choices)."
            )
    return dict(space)
