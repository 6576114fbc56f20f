"""Posterior collapse measured (active units, KL per dimension) and said, on the console and in reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import FAST, experiment_runs, invoke
from vaebench.evaluate.collapse import active_units, collapse_message, collapse_scores, kl_per_dimension
from vaebench.results.tables import collapse_lines


def test_active_units_count_the_dimensions_whose_mean_varies_over_cells() -> None:
    rng = np.random.default_rng(0)
    means = np.column_stack(
        [rng.normal(0, 1, 500), rng.normal(0, 0.2, 500), rng.normal(3, 0.05, 500), np.full(500, 0.7)]
    )
    # Variances about 1, 0.04, 0.0025 and 0: Burda et al.'s threshold 0.01 keeps the first two.
    assert active_units(means) == 2
    assert active_units(means, threshold=0.001) == 3


def test_kl_per_dimension_is_zero_at_the_prior_and_the_closed_form_elsewhere() -> None:
    mean = np.array([[0.0, 1.0], [0.0, -1.0]])
    var = np.array([[1.0, 0.5], [1.0, 0.5]])
    kl = kl_per_dimension(mean, var)
    assert kl[0] == pytest.approx(0.0)
    assert kl[1] == pytest.approx(0.5 * (1.0 + 0.5 - np.log(0.5) - 1.0))
    scores = collapse_scores(mean, var)
    assert scores["latent.kl"] == pytest.approx(kl.sum())
    assert set(scores) == {
        "latent.active_units",
        "latent.active_fraction",
        "latent.kl",
        "latent.kl.z0",
        "latent.kl.z1",
    }
    assert set(collapse_scores(mean)) == {
        "latent.active_units",
        "latent.active_fraction",
    }  # codes, no posterior


def test_collapse_is_said_below_half_of_the_dimensions() -> None:
    said = collapse_message("beta_vae (beta 64, seed 0)", 1, 6)
    assert said == (
        "Posterior collapse: beta_vae (beta 64, seed 0) has 1 of 6 latent dimensions active "
        "(variance of E[z|x] over cells > 0.01)."
    )
    assert collapse_message("beta_vae (beta 1, seed 0)", 3, 6) is None


def test_a_report_says_which_runs_collapsed_and_not_of_models_without_a_posterior() -> None:
    frame = pd.DataFrame(
        {
            "entry": ["beta_vae", "beta_vae", "ae"],
            "beta": [64.0, 1.0, np.nan],
            "seed": pd.array([0, 0, 0], dtype="Int64"),
            "latent.active_units": [1.0, 5.0, 0.0],
            "latent.kl": [0.01, 2.0, np.nan],
            "latent_dims": [6, 6, 6],
        }
    )
    assert collapse_lines(frame) == [
        "Posterior collapse: beta_vae (beta 64, seed 0) has 1 of 6 latent dimensions active "
        "(variance of E[z|x] over cells > 0.01)."
    ]


def test_a_beta_vae_at_beta_64_logs_its_active_units_and_says_the_posterior_collapsed(
    tracking_uri: str, tmp_path: Path
) -> None:
    result = invoke("run", "--model", "beta_vae", "--beta", "64", "--dataset", "pbmc68k", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = experiment_runs(tracking_uri)
    metrics = run.data.metrics
    assert metrics["latent.active_units"] < 3 and metrics["latent.active_fraction"] < 0.5
    assert {f"latent.kl.z{d}" for d in range(6)} | {"latent.kl"} <= set(metrics)
    line = next(line for line in result.stdout.splitlines() if line.startswith("Posterior collapse"))
    assert (
        "beta_vae (beta 64, seed 0)" in line and "of 6 latent dimensions active (variance of E[z|x]" in line
    )
