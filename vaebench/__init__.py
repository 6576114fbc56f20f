"""vaebench: MLflow-tracked benchmarking of autoencoders on single-cell RNA-seq data."""

__version__ = "0.1.0"
