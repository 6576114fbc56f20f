"""Datasets: the registry of named datasets, readers for users' files, PBMC3k's download and cache."""

from vaebench.data.dataset import Dataset
from vaebench.data.registry import DATASETS, DEFAULT_DATASET, DatasetSpec, get_dataset_spec
from vaebench.data.source import load_dataset
from vaebench.data.synthetic import make_synthetic

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "Dataset",
    "DatasetSpec",
    "get_dataset_spec",
    "load_dataset",
    "make_synthetic",
]
