"""The golden check: the study's own 2-d t-SNE codes, scored with this protocol, give its published table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaebench.evaluate import kmeans_scores

PUBLISHED = {  # ../shared/reference/seed-pbmc3k/README.md: NMI, ARI, HOM, COM
    "ae": (0.7209, 0.5798, 0.7704, 0.6745),
    "beta_vae": (0.6092, 0.4404, 0.6543, 0.5673),
    "beta_vsc": (0.6456, 0.4653, 0.6921, 0.6021),
}


def reference_dir() -> Path:
    configured = os.environ.get("VAEBENCH_SHARED_DIR")
    shared = Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared"
    folder = shared / "reference" / "seed-pbmc3k"
    if not folder.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"The study's reference codes are missing from {folder}; CI must have ../shared.")
        pytest.skip(f"the study's reference codes are not at {folder} (set VAEBENCH_SHARED_DIR)")
    return folder


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_scoring_the_studys_own_codes_reproduces_its_table(model: str) -> None:
    codes = pd.read_csv(reference_dir() / f"tsne2d_{model}.csv")
    assert len(codes) == 2638
    scores, partition = kmeans_scores(
        codes[["x", "y"]].to_numpy(), codes["label"].to_numpy(), n_init=100, seed=0
    )
    assert len(np.unique(partition.labels)) == 9
    measured = (scores["nmi"], scores["ari"], scores["hom"], scores["com"])
    np.testing.assert_allclose(measured, PUBLISHED[model], atol=0.01)
