"""Models: the study's three networks, a PCA baseline and the controls, behind one registry that a
user's own model joins by its import path or an entry point (:mod:`vaebench.models.user`)."""

from vaebench.config.parts import ModelOptions
from vaebench.models.base import LatentModel, LatentModelProtocol, LossTerms
from vaebench.models.pca import PCAModel
from vaebench.models.registry import MODELS, ModelSpec
from vaebench.models.user import all_models, get_model

__all__ = [
    "MODELS",
    "LatentModel",
    "LatentModelProtocol",
    "LossTerms",
    "ModelOptions",
    "ModelSpec",
    "PCAModel",
    "all_models",
    "get_model",
]
