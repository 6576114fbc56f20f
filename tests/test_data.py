"""Datasets: the bundled ones, users' files in every form we read, and PBMC3k's download and cache."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from vaebench.data import DATASETS, load_dataset, make_synthetic
from vaebench.errors import VaebenchError


def test_pbmc68k_is_the_default_with_sorted_population_labels() -> None:
    dataset = load_dataset()
    assert dataset.name == "pbmc68k"
    assert (dataset.n_cells, dataset.n_genes) == (700, 765)
    assert dataset.label_key == "bulk_labels"
    assert len(set(dataset.labels)) == 10
    assert "CD14+ Monocyte" in set(dataset.labels)
    assert {"bulk_labels", "louvain"} <= set(dataset.label_keys)
    assert "n_counts" not in dataset.label_keys  # numeric QC values are not labels
    louvain = load_dataset("pbmc68k", label_key="louvain")
    assert louvain.label_key == "louvain" and np.array_equal(louvain.X, dataset.X)
    assert louvain.content_hash() != dataset.content_hash()


def test_synthetic_is_deterministic_per_seed() -> None:
    a, b, c = make_synthetic(seed=0), make_synthetic(seed=0), make_synthetic(seed=1)
    assert np.array_equal(a.X, b.X) and a.content_hash() == b.content_hash()
    assert not np.array_equal(a.X, c.X)
    assert a.X.dtype == np.float32 and set(a.labels) == {f"cluster_{k}" for k in range(4)}


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(
        VaebenchError, match="known datasets are: digits, pbmc3k, pbmc68k, pbmc68k_counts, synthetic"
    ):
        load_dataset("pbmc4k")
    assert set(DATASETS) == {"digits", "pbmc3k", "pbmc68k", "pbmc68k_counts", "synthetic", "synthetic_counts"}


def test_digits_ship_offline_scaled_with_ten_labelled_classes() -> None:
    digits = load_dataset("digits")
    assert digits.X.shape == (1797, 61) and digits.label_key == "digit"
    assert sorted(set(digits.labels)) == [str(d) for d in range(10)]
    np.testing.assert_allclose(digits.X.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(digits.X.std(axis=0), 1.0, atol=1e-4)


def small_counts(
    n_cells: int = 12, n_genes: int = 7, seed: int = 0
) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32)
    return X, [f"cell{i}" for i in range(n_cells)], [f"G{j}" for j in range(n_genes)]


def test_h5ad_round_trip_with_a_chosen_label_key(tmp_path: Path) -> None:
    X, cells, genes = small_counts()
    obs = pd.DataFrame({"type": ["a", "b"] * 6, "batch": ["x"] * 12, "depth": np.arange(12.0)}, index=cells)
    anndata.AnnData(X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(
        tmp_path / "d.h5ad"
    )
    dataset = load_dataset(path=tmp_path / "d.h5ad", label_key="type", preprocess="none")
    assert dataset.is_sparse  # read as CSR and kept so: never made dense as a whole
    assert (
        np.array_equal(dataset.X.toarray(), X)
        and list(dataset.cell_ids) == cells
        and list(dataset.gene_names) == genes
    )
    with pytest.raises(VaebenchError, match="--label-key; its annotation columns are: type, batch"):
        load_dataset(path=tmp_path / "d.h5ad")
    with pytest.raises(VaebenchError, match="single class"):
        load_dataset(path=tmp_path / "d.h5ad", label_key="batch")


def test_10x_folder_with_labels_in_another_order(tmp_path: Path) -> None:
    X, cells, genes = small_counts()
    folder = tmp_path / "filtered_gene_bc_matrices"
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(X.T))  # 10x stores genes x cells
    pd.DataFrame({"id": [f"ENSG{j}" for j in range(len(genes))], "symbol": genes}).to_csv(
        folder / "genes.tsv", sep="\t", header=False, index=False
    )
    pd.Series(cells).to_csv(folder / "barcodes.tsv", sep="\t", header=False, index=False)
    labels = pd.DataFrame({"cell": cells[::-1], "type": [f"t{i % 3}" for i in range(12)][::-1]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    dataset = load_dataset(path=folder, labels_path=tmp_path / "labels.csv", preprocess="none")
    assert dataset.is_sparse
    assert np.array_equal(dataset.X.toarray(), X)
    assert list(dataset.gene_names) == genes
    assert list(dataset.labels) == [f"t{i % 3}" for i in range(12)]
    # Without --labels the folder is read as most raw counts come: without labels.
    unlabelled = load_dataset(path=folder, preprocess="none")
    assert unlabelled.labels is None and np.array_equal(unlabelled.X.toarray(), X)


def test_csv_cells_by_genes_with_a_label_column(tmp_path: Path) -> None:
    X, cells, genes = small_counts()
    table = pd.DataFrame(X, index=cells, columns=genes)
    table["cell_type"] = ["a", "b", "c"] * 4
    table.to_csv(tmp_path / "m.csv")
    dataset = load_dataset(path=tmp_path / "m.csv", label_key="cell_type", preprocess="none")
    assert np.array_equal(dataset.X, X) and list(dataset.labels) == ["a", "b", "c"] * 4
    with pytest.raises(VaebenchError, match="Label column 'type' is not in"):
        load_dataset(path=tmp_path / "m.csv", label_key="type")
    with pytest.raises(VaebenchError, match="text columns: cell_type"):
        load_dataset(path=tmp_path / "m.csv")  # a column of names among the numbers: say which is the label
    assert load_dataset(path=tmp_path / "m.csv", label_key="none", preprocess="none").labels is None
    table.drop(columns="cell_type").to_csv(tmp_path / "numbers.csv")
    assert load_dataset(path=tmp_path / "numbers.csv", preprocess="none").labels is None


def test_the_studys_export_genes_by_cells_with_shuffled_labels_is_reoriented_and_reordered(
    tmp_path: Path,
) -> None:
    X, cells, genes = small_counts(n_cells=9, n_genes=15)
    pd.DataFrame(X.T, index=genes, columns=cells).to_csv(tmp_path / "pbmc.csv")  # genes x cells
    order = np.random.default_rng(3).permutation(9)
    pd.DataFrame({"labels": [f"type{i % 2}" for i in order]}, index=[cells[i] for i in order]).to_csv(
        tmp_path / "pbmc_labels_str.csv"
    )
    dataset = load_dataset(
        path=tmp_path / "pbmc.csv", labels_path=tmp_path / "pbmc_labels_str.csv", preprocess="none"
    )
    assert dataset.X.shape == (9, 15)
    assert list(dataset.cell_ids) == cells
    np.testing.assert_array_equal(dataset.X[4], X[4])
    assert dataset.labels[4] == "type0" and dataset.labels[5] == "type1"


def test_labels_that_do_not_match_the_cells_are_refused(tmp_path: Path) -> None:
    X, cells, genes = small_counts()
    pd.DataFrame(X, index=cells, columns=genes).to_csv(tmp_path / "m.csv")
    pd.DataFrame({"t": ["a", "b"] * 5}, index=cells[:10]).to_csv(tmp_path / "short.csv")
    with pytest.raises(VaebenchError, match=r"2 cell\(s\) of .* have no label"):
        load_dataset(path=tmp_path / "m.csv", labels_path=tmp_path / "short.csv")
    pd.DataFrame({"t": ["a", "b"]}, index=["x1", "x2"]).to_csv(tmp_path / "other.csv")
    with pytest.raises(VaebenchError, match="None of the cell ids"):
        load_dataset(path=tmp_path / "m.csv", labels_path=tmp_path / "other.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [("gene,c1,c2\nA,1,x\nB,2,3\n", "not a numeric matrix"), ("", "could not be read")],
)
def test_files_that_are_not_matrices(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(VaebenchError, match=message):
        load_dataset(path=tmp_path / "bad.csv", label_key="c1")


def test_nan_and_missing_paths_are_one_sentence(tmp_path: Path) -> None:
    X, cells, genes = small_counts()
    X[2, 3] = np.inf
    table = pd.DataFrame(X, index=cells, columns=genes)
    table["t"] = ["a", "b"] * 6
    table.to_csv(tmp_path / "inf.csv")
    with pytest.raises(VaebenchError, match="NaN or infinite"):
        load_dataset(path=tmp_path / "inf.csv", label_key="t")
    with pytest.raises(VaebenchError, match="No such file or folder"):
        load_dataset(path=tmp_path / "missing.h5ad")
    (tmp_path / "x.h5ad").write_text("not hdf5")
    with pytest.raises(VaebenchError, match=r"could not be read as an \.h5ad"):
        load_dataset(path=tmp_path / "x.h5ad")


# ---- PBMC3k: the real download code against a server on 127.0.0.1 -------------------------------------


def fake_pbmc3k(folder: Path) -> tuple[int, int]:
    """Raw counts shaped like PBMC3k's (some cells failing QC, rare genes) and a labels file.

    Returns the (cells, genes) the study's preprocessing must keep.
    """
    rng = np.random.default_rng(0)
    n_cells, n_genes = 40, 600
    genes = [f"MT-{j}" for j in range(5)] + [f"GENE{j}" for j in range(n_genes - 5)]
    X = np.zeros((n_cells, n_genes), dtype=np.float32)
    for i in range(n_cells):
        expressed = rng.choice(np.arange(5, n_genes - 20), size=300, replace=False)
        X[i, expressed] = rng.integers(1, 5, size=300)
        X[i, :5] = 1  # mitochondrial counts around 0.7% of the total
    X[:3, 5:] = 0
    X[:3, 5:105] = 1  # 3 cells with too few genes (105 < 200)
    X[3:5, :5] = 200  # 2 cells with too much mitochondrial RNA
    X[:, n_genes - 20 :] = 0
    X[5:7, n_genes - 20 :] = 1  # 20 genes seen in 2 cells only: dropped by min_cells = 3
    cells = [f"AAAC{i:04d}-1" for i in range(n_cells)]
    raw = anndata.AnnData(X=sp.csr_matrix(X), obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes))
    raw.write_h5ad(folder / "pbmc3k_raw.h5ad")
    kept = cells[5:]
    types = pd.Categorical([["CD4 T cells", "B cells", "NK cells"][i % 3] for i in range(len(kept))])
    reference = anndata.AnnData(
        X=np.zeros((len(kept), 1), dtype=np.float32), obs=pd.DataFrame({"louvain": types}, index=kept)
    )
    reference.write_h5ad(folder / "pbmc3k_processed.h5ad")
    return len(kept), n_genes - 20


class _CountingHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server on 127.0.0.1 serving a folder, and the list of paths it was asked for."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, requests
    finally:
        server.shutdown()
        server.server_close()


def test_pbmc3k_downloads_once_caches_and_checks_its_checksum(
    file_server: tuple[str, Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served, requests = file_server
    n_cells, n_genes = fake_pbmc3k(served)
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAEBENCH_DATA_DIR", str(cache))
    monkeypatch.setenv("VAEBENCH_PBMC3K_RAW_URL", f"{url}/pbmc3k_raw.h5ad")
    monkeypatch.setenv("VAEBENCH_PBMC3K_LABELS_URL", f"{url}/pbmc3k_processed.h5ad")

    dataset = load_dataset("pbmc3k")
    assert sorted(requests) == ["/pbmc3k_processed.h5ad", "/pbmc3k_raw.h5ad"]
    assert dataset.X.shape == (n_cells, n_genes)
    assert dataset.label_key == "cell_type" and set(dataset.labels) == {"CD4 T cells", "B cells", "NK cells"}
    assert dataset.X.max() <= 10.0 + 1e-5
    np.testing.assert_allclose(dataset.X.mean(axis=0), 0.0, atol=1e-4)
    assert (cache / "pbmc3k_raw.h5ad.sha256").exists()

    again = load_dataset("pbmc3k")
    assert len(requests) == 2  # served from the cache
    np.testing.assert_array_equal(again.X, dataset.X)

    with (cache / "pbmc3k_raw.h5ad").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(VaebenchError, match="did not match its checksum"):
        load_dataset("pbmc3k")
    assert not (cache / "pbmc3k_raw.h5ad").exists()
    load_dataset("pbmc3k")  # downloads it anew
    assert requests.count("/pbmc3k_raw.h5ad") == 2


def test_pbmc3k_without_network_says_where_to_place_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("VAEBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAEBENCH_PBMC3K_RAW_URL", f"http://127.0.0.1:{port}/pbmc3k_raw.h5ad")
    with pytest.raises(VaebenchError, match=r"place it at .*cache/pbmc3k_raw\.h5ad") as error:
        load_dataset("pbmc3k")
    assert "\n" not in str(error.value)
    assert not list((tmp_path / "cache").glob("*.part"))
