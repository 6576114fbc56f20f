"""scIB's label scores, the structure scores and the controls on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import silhouette_samples

from vaebench.evaluate import ProtocolSettings, evaluate_embedding, scib
from vaebench.evaluate.metrics import silhouette
from vaebench.evaluate.neighbours import knn_preservation, trustworthiness
from vaebench.evaluate.scib import asw_label, clisi, isolated_label, leiden_nmi_ari
from vaebench.evaluate.subsample import dense_rows, sampled_rows, uniform_sample
from vaebench.models import get_model
from vaebench.models.controls import RandomEmbedding, pca_true_features

LABEL_SCORES = {
    "leiden.nmi": lambda z, y: leiden_nmi_ari(z, y)["nmi"],
    "leiden.ari": lambda z, y: leiden_nmi_ari(z, y)["ari"],
    "asw_label": asw_label,
    "clisi": clisi,
    "isolated_label": isolated_label,
}
# A random embedding's expected score: 0 for NMI/ARI, 0.5 for the rescaled silhouettes, and for cLISI the
# scaled inverse Simpson index of the label shares themselves, (L - 1 / sum p^2) / (L - 1): about 0.18 for
# the shares 60:60:60:15 of `separated`.
SHARES = np.array([60, 60, 60, 15]) / 195
RANDOM_LEVEL = {
    "leiden.nmi": 0.0,
    "leiden.ari": 0.0,
    "asw_label": 0.5,
    "clisi": (4 - 1 / np.sum(SHARES**2)) / 3,
    "isolated_label": 0.5,
}


def separated(n_per: int = 60, dims: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four tight, far-apart clusters: a perfect embedding of its labels (one class a rare one)."""
    rng = np.random.default_rng(seed)
    sizes = [n_per, n_per, n_per, n_per // 4]
    centers = rng.normal(0, 20, (4, dims))
    labels = np.repeat(["T cell", "B cell", "NK", "pDC"], sizes)
    coords = np.concatenate([centers[i] + rng.normal(0, 0.3, (n, dims)) for i, n in enumerate(sizes)])
    return coords, labels


@pytest.mark.parametrize("name", sorted(LABEL_SCORES))
def test_label_scores_top_for_a_perfect_embedding_and_near_random_level_for_noise(name: str) -> None:
    coords, labels = separated()
    score = LABEL_SCORES[name]
    assert score(coords, labels) > 0.9
    noise = np.random.default_rng(3).normal(size=coords.shape)
    assert score(noise, labels) == pytest.approx(RANDOM_LEVEL[name], abs=0.15)


@pytest.mark.parametrize("name", sorted(LABEL_SCORES))
def test_label_scores_do_not_depend_on_label_names(name: str) -> None:
    coords, labels = separated()
    noisy = coords + np.random.default_rng(1).normal(0, 12, coords.shape)  # overlapping: a mid score
    renamed = np.array([{"T cell": "z", "B cell": "a", "NK": "m", "pDC": "b"}[x] for x in labels])
    score = LABEL_SCORES[name]
    assert score(noisy, renamed) == pytest.approx(score(noisy, labels), abs=1e-9)


def test_leiden_reports_the_resolution_of_its_best_nmi() -> None:
    coords, labels = separated()
    result = leiden_nmi_ari(coords, labels)
    assert 0.2 <= result["resolution"] <= 2.0
    assert result == leiden_nmi_ari(coords, labels)  # seeded


def test_isolated_label_weighs_a_rare_type_as_much_as_a_common_one() -> None:
    coords, labels = separated()
    # Scatter the rare type (pDC) among the others: the per-label mean drops by a quarter of its loss,
    # the cell-weighted silhouette by far less.
    mixed = coords.copy()
    rare = labels == "pDC"
    mixed[rare] = coords[~rare][: rare.sum()] + 0.1
    assert isolated_label(coords, labels) - isolated_label(mixed, labels) > asw_label(
        coords, labels
    ) - asw_label(mixed, labels)


def test_isolated_labels_are_those_in_fewest_batches() -> None:
    coords, labels = separated()
    rare = labels == "pDC"
    coords[rare] = coords[~rare][: rare.sum()] + 0.1  # pDC lost among the others: its silhouette is low
    batches = np.where(rare, 0, np.arange(len(labels)) % 2)  # pDC in one batch, every other type in two
    widths = (silhouette_samples(coords, labels) + 1) / 2
    assert isolated_label(coords, labels, batches=batches) == pytest.approx(widths[rare].mean())
    assert isolated_label(coords, labels) > isolated_label(coords, labels, batches=batches) + 0.2


def test_silhouettes_do_not_depend_on_the_size_of_their_distance_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coords, labels = separated()
    coords = coords + np.random.default_rng(1).normal(0, 12, coords.shape)  # overlapping: a mid score
    scores = {"silhouette": silhouette, "asw_label": asw_label, "isolated_label": isolated_label}
    whole = {name: score(coords, labels) for name, score in scores.items()}  # one block of distances
    monkeypatch.setattr(scib, "DISTANCE_BLOCK_MB", 0.01)  # 5 of the 195 cells' rows a block
    assert {name: score(coords, labels) for name, score in scores.items()} == whole  # to the bit


def input_and_projection(seed: int = 0, dims: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Input cells that lie on a ``dims``-d subspace of 30 genes, and an exact linear map of them to it."""
    rng = np.random.default_rng(seed)
    code = rng.normal(size=(300, dims))
    basis = np.linalg.qr(rng.normal(size=(30, dims)))[0]
    return code @ basis.T, code


@pytest.mark.parametrize("score", [trustworthiness, knn_preservation])
def test_structure_scores_top_when_neighbours_kept_and_low_for_noise(score) -> None:
    inputs, code = input_and_projection()
    assert score(inputs, code) == pytest.approx(1.0)
    assert score(inputs, 3.0 * code[:, ::-1]) == pytest.approx(1.0)  # scale and order of axes do not matter
    noise = np.random.default_rng(5).normal(size=code.shape)
    floor = 0.55 if score is trustworthiness else 0.15
    assert score(inputs, noise) < floor


@pytest.mark.parametrize("score", [trustworthiness, knn_preservation])
def test_structure_scores_read_sparse_input_like_dense_and_subsample_by_seed(score) -> None:
    inputs, code = input_and_projection()
    noisy = code + np.random.default_rng(2).normal(0, 0.5, code.shape)
    assert score(sp.csr_matrix(inputs), noisy) == pytest.approx(score(inputs, noisy))
    capped = score(inputs, noisy, seed=1, max_cells=100)
    assert capped == score(inputs, noisy, seed=1, max_cells=100)
    assert capped != score(inputs, noisy, seed=2, max_cells=100)


def test_subsample_is_seeded_capped_and_densifies_only_its_rows() -> None:
    assert list(uniform_sample(5, 10, seed=0)) == [0, 1, 2, 3, 4]
    rows = uniform_sample(1000, 50, seed=7)
    assert len(rows) == 50 and len(set(rows)) == 50 and list(rows) == sorted(rows)
    np.testing.assert_array_equal(rows, uniform_sample(1000, 50, seed=7))
    matrix = sp.random(1000, 20, density=0.1, format="csr", random_state=0)
    np.testing.assert_array_equal(dense_rows(matrix, rows), matrix.toarray()[rows])


def test_label_scores_on_a_sample_keep_a_rare_cell_type() -> None:
    """Above their cap the label scores see a stratified sample: a type of 0.3 % of the cells is still
    scored (a uniform sample of 100 of 3,000 cells would often miss all 9 of its cells)."""
    labels = np.array(["common"] * 2991 + ["rare"] * 9)
    for seed in range(5):
        rows = sampled_rows(labels, 100, seed)
        assert len(rows) == 100 and "rare" in labels[rows]
    assert list(sampled_rows(labels, 3000, seed=0)) == list(range(3000))


def test_protocol_logs_each_new_metric_and_its_seconds_and_structure_needs_the_input() -> None:
    inputs, code = input_and_projection(dims=2)  # a 2-d code is its own map: no t-SNE to wait for
    labels = np.where(code[:, 0] > 0, "up", "down")
    settings = ProtocolSettings(perplexity=20, n_init=2, tsne_3d=False)
    with_input = evaluate_embedding(code, labels, settings, inputs=inputs)
    assert with_input.metrics["structure.trustworthiness"] == pytest.approx(1.0)
    assert with_input.metrics["structure.knn_preservation"] == pytest.approx(1.0)
    for name in ("leiden", "asw_label", "clisi", "isolated_label", "trustworthiness", "knn_preservation"):
        assert with_input.seconds[name] >= 0
    alone = evaluate_embedding(code, labels, settings)
    assert not any(key.startswith("structure.") for key in alone.metrics)
    chosen = evaluate_embedding(
        code,
        labels,
        ProtocolSettings(perplexity=20, n_init=2, tsne_3d=False, metrics=("ari", "clisi")),
        inputs=inputs,
    )
    assert set(chosen.metrics) == {"tsne_kmeans.ari", "latent_kmeans.ari", "latent.clisi"}


def test_random_control_is_blind_to_the_data_and_fixed_by_its_seed() -> None:
    inputs, _ = input_and_projection()
    control = RandomEmbedding(6, seed=3).fit(inputs)
    code = control.encode(inputs)
    assert code.shape == (300, 6)
    np.testing.assert_array_equal(code, RandomEmbedding(6, seed=3).encode(np.zeros((300, 30))))
    assert not np.array_equal(code, RandomEmbedding(6, seed=4).encode(inputs))
    assert control.estimator is None


def test_pca50_control_keeps_50_components_or_all_the_data_allow() -> None:
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(200, 80)).astype(np.float32)
    assert pca_true_features(200, 80, seed=0).fit(wide).encode(wide).shape == (200, 50)
    narrow = wide[:, :20]
    assert pca_true_features(200, 20, seed=0).fit(narrow).encode(narrow).shape == (200, 19)
    for name in ("random", "pca50"):
        spec = get_model(name)
        assert spec.control and not spec.has_beta and not spec.is_torch
    assert not get_model("pca").control
