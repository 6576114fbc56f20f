"""A small synthetic dataset with known clusters, for tests and quick checks.

Cells come from ``n_clusters`` Gaussian clusters in a 4-d space, mapped linearly to ``n_genes`` genes with
noise: a structure an autoencoder of latent size >= 4 can recover, so scores say whether the pipeline works.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaebench.data.dataset import Dataset


def make_synthetic(n_cells: int = 300, n_genes: int = 60, n_clusters: int = 4, seed: int = 0) -> Dataset:
    """``n_cells`` x ``n_genes`` float32 data labelled ``cluster`` (cluster_0, cluster_1, ...)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(n_clusters, 4))
    membership = rng.integers(0, n_clusters, size=n_cells)
    hidden = centers[membership] + rng.normal(0.0, 0.7, size=(n_cells, 4))
    loadings = rng.normal(0.0, 1.0, size=(4, n_genes)) / 2.0
    X = hidden @ loadings + rng.normal(0.0, 0.5, size=(n_cells, n_genes))
    obs = pd.DataFrame({"cluster": [f"cluster_{k}" for k in membership]})
    return Dataset(
        name="synthetic",
        X=X.astype(np.float32),
        obs=obs,
        label_key="cluster",
        cell_ids=np.array([f"cell_{i}" for i in range(n_cells)]),
        gene_names=np.array([f"gene_{j}" for j in range(n_genes)]),
        description=f"{n_clusters} Gaussian clusters, {n_cells} cells x {n_genes} genes",
    )


def make_synthetic_counts(
    n_cells: int = 10_000,
    n_genes: int = 2_000,
    n_types: int = 12,
    seed: int = 0,
    markers_per_type: int | None = None,
    mean_library_size: float = 3_000.0,
    chunk_cells: int = 2_000,
) -> Dataset:
    """Raw UMI-like counts of ``n_types`` cell types, as a CSR matrix, labelled ``cell_type``
    (the blocks of :class:`SyntheticCounts`, stacked)."""
    import scipy.sparse as sp

    source = SyntheticCounts(n_cells, n_genes, n_types, seed, markers_per_type, mean_library_size)
    counts = sp.vstack(list(source.blocks(chunk_cells)), format="csr")
    return Dataset(
        name="synthetic_counts",
        X=counts,
        obs=source.obs(),
        label_key="cell_type",
        cell_ids=source.cell_ids(),
        gene_names=source.gene_names(),
        description=(
            f"negative-binomial counts of {n_types} cell types with marker genes, {n_cells} cells x {n_genes} "
            f"genes, seed {seed}"
        ),
        preprocessing="none",
    )


class SyntheticCounts:
    """Raw UMI-like counts of ``n_types`` cell types, generated a block of cells at a time.

    A gene's baseline share of a cell's library is log-normal across genes (sigma 2.5: a few genes dominate
    and most are rarely seen, as in 10x data); each type multiplies its own ``markers_per_type`` marker
    genes (default 2 % of the genes) by a log-normal fold change around 4; library sizes are log-normal
    around ``mean_library_size``; each count is negative binomial with that mean and a gene-wise inverse
    dispersion theta in [2, 20], drawn as a gamma-Poisson mixture (the model of Lopez et al. 2018, "Deep
    generative modeling for single-cell transcriptomics", Nat. Methods 15, and of Svensson 2020, "Droplet
    scRNA-seq is not zero-inflated"). Type proportions are uneven (Dirichlet, alpha 2).

    :meth:`blocks` yields the CSR counts ``chunk_cells`` cells at a time, so memory stays at one dense chunk
    (a million-cell file is written block by block, ``benchmarks/scale.py``). Same arguments, same matrix,
    whatever the consumer; the blocks are drawn from one generator, so draw them once per object.
    """

    def __init__(
        self,
        n_cells: int,
        n_genes: int,
        n_types: int = 12,
        seed: int = 0,
        markers_per_type: int | None = None,
        mean_library_size: float = 3_000.0,
    ) -> None:
        rng = np.random.default_rng(seed)
        markers = markers_per_type or max(1, n_genes // 50)
        base = rng.lognormal(0.0, 2.5, size=n_genes)
        profiles = np.tile(base, (n_types, 1))
        for t in range(n_types):
            chosen = rng.choice(n_genes, size=min(markers, n_genes), replace=False)
            profiles[t, chosen] *= rng.lognormal(np.log(4.0), 0.5, size=chosen.size)
        self.profiles = profiles / profiles.sum(axis=1, keepdims=True)
        self.theta = rng.uniform(2.0, 20.0, size=n_genes).astype(np.float32)
        proportions = rng.dirichlet(np.full(n_types, 2.0))
        self.types = rng.choice(n_types, size=n_cells, p=proportions)
        self.library = rng.lognormal(np.log(mean_library_size), 0.4, size=n_cells)
        self.n_cells, self.n_genes = n_cells, n_genes
        self._rng = rng
        self._profiles32: np.ndarray | None = None

    def blocks(self, chunk_cells: int = 2_000):  # type: ignore[no-untyped-def]
        """The counts as float32 CSR blocks of ``chunk_cells`` cells, in order."""
        import scipy.sparse as sp

        for start in range(0, self.n_cells, chunk_cells):
            stop = min(start + chunk_cells, self.n_cells)
            mean = (self.library[start:stop, None] * self.profiles[self.types[start:stop]]).astype(np.float32)
            gamma = self._rng.standard_gamma(self.theta, size=mean.shape, dtype=np.float32)
            rate = gamma * (mean / self.theta)
            yield sp.csr_matrix(self._rng.poisson(rate).astype(np.float32))

    def block_by_inversion(self, index: int, chunk_cells: int, seed: int = 0):  # type: ignore[no-untyped-def]
        """Block ``index`` (cells ``index * chunk_cells`` onwards) drawn from the same negative binomials by
        inverting each count's CDF with one uniform draw, from its own stream
        (``default_rng([seed, index])``), so blocks can be drawn in any order, by any process.

        Another matrix than :meth:`blocks` (another stream), the same distribution, about four times
        faster: most counts are zero, and ``u <= P(0) = (theta / (theta + mu))^theta`` settles them
        without the gamma and Poisson draws of every entry. Counts above zero walk the CDF,
        ``P(k) = P(k-1) (k - 1 + theta) / k * mu / (theta + mu)``; means above 50 (long walks) take the
        gamma-Poisson draw. For the benchmark's files of up to a million cells (``benchmarks/scale.py``).
        """
        import scipy.sparse as sp

        rng = np.random.default_rng([seed, index])
        start = index * chunk_cells
        stop = min(start + chunk_cells, self.n_cells)
        if self._profiles32 is None:
            self._profiles32 = self.profiles.astype(np.float32)
        library = self.library[start:stop, None].astype(np.float32)
        mean = (library * self._profiles32[self.types[start:stop]]).ravel()
        uniform = rng.random(mean.size, dtype=np.float32)
        # P(X >= 1) <= E[X] (Markov), so u <= 1 - mu is a zero without computing P(0).
        entries = np.flatnonzero(uniform > 1 - mean)
        gene = entries % self.n_genes
        mu, theta = mean[entries].astype(np.float64), self.theta[gene].astype(np.float64)
        u = uniform[entries].astype(np.float64)
        q = mu / (theta + mu)
        p = np.exp(theta * np.log1p(-q))  # P(0)
        value = np.zeros(entries.size, dtype=np.float32)
        large = mu > 50  # a long walk: the gamma-Poisson draw instead
        value[large] = rng.poisson(rng.standard_gamma(theta[large]) * mu[large] / theta[large])
        cdf = p.copy()
        active = np.flatnonzero((u > cdf) & ~large)
        k = 0
        while active.size and k < 10_000:
            k += 1
            p[active] *= (k - 1 + theta[active]) / k * q[active]
            cdf[active] += p[active]
            value[active] = k
            active = active[u[active] > cdf[active]]
        kept = value > 0
        rows, cols = np.divmod(entries[kept], self.n_genes)
        shape = (stop - start, self.n_genes)
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=shape[0]))))
        return sp.csr_matrix((value[kept], cols.astype(np.int32), indptr.astype(np.int32)), shape=shape)

    def obs(self) -> pd.DataFrame:
        return pd.DataFrame({"cell_type": [f"type_{t:02d}" for t in self.types]})

    def cell_ids(self) -> np.ndarray:
        return np.array([f"cell_{i}" for i in range(self.n_cells)])

    def gene_names(self) -> np.ndarray:
        return np.array([f"gene_{j}" for j in range(self.n_genes)])
