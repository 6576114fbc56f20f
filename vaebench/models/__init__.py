"""Models: the study's three networks, a PCA baseline and the controls, behind one registry."""

from vaebench.models.base import LatentModel, LatentModelProtocol, LossTerms
from vaebench.models.pca import PCAModel
from vaebench.models.registry import MODELS, ModelOptions, ModelSpec, get_model

__all__ = [
    "MODELS",
    "LatentModel",
    "LatentModelProtocol",
    "LossTerms",
    "ModelOptions",
    "ModelSpec",
    "PCAModel",
    "get_model",
]
