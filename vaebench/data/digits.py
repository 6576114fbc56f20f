"""scikit-learn's handwritten digits as a second real, labelled data set that ships offline.

Alpaydin & Kaynak (1998), "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository:
1,797 8x8 images of digits 0-9 written by 43 people, as ``sklearn.datasets.load_digits`` ships them. Not
transcriptomics: no installed package ships a second real single-cell data set offline (scanpy's other
bundled sets, ``krumsiek11`` and ``toggleswitch``, are simulated with 11 and 2 genes), so this is the
second real labelled matrix that the metrics and controls are checked on. Each pixel ("gene") is scaled to
zero mean and unit variance, as pbmc68k's genes are; the pixels that never vary are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaebench.data.dataset import Dataset


def load_digits_dataset() -> Dataset:
    """1,797 images x 61 varying pixels, labelled ``digit``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = bunch.data.astype(np.float64)
    varying = X.std(axis=0) > 0
    X = X[:, varying]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return Dataset(
        name="digits",
        X=X.astype(np.float32),
        obs=pd.DataFrame({"digit": bunch.target.astype(str)}),
        label_key="digit",
        cell_ids=np.array([f"image_{i}" for i in range(X.shape[0])]),
        gene_names=np.array([f"pixel_{j}" for j in np.flatnonzero(varying)]),
        description="scikit-learn's handwritten digits: 1,797 images x 61 varying pixels, scaled",
        preprocessing="each pixel scaled to zero mean and unit variance",
    )
