"""Models: the study's three networks and a PCA baseline, behind one registry."""

from vaebench.models.base import LatentModel
from vaebench.models.pca import PCAModel
from vaebench.models.registry import MODELS, ModelOptions, ModelSpec, get_model

__all__ = ["MODELS", "LatentModel", "ModelOptions", "ModelSpec", "PCAModel", "get_model"]
