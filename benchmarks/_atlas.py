"""A synthetic atlas-sized ``.h5ad`` on disk, written in chunks (never held in memory), for the scale benchmarks.

Cells are real immune cells (the bundled 559, raw counts, the ``n_vars`` most often detected genes) drawn with
replacement and binomially thinned to a 10x-atlas-like depth (``depth`` of the counts kept on average, so about
10% of entries are non-zero at 2000 genes), so the file has the sparsity and count statistics of real data.
``obs["cell_type"]`` is the source cell's k-means cluster (8 groups) and ``obs["time"]`` a pseudo-time
(0-4, from the first principal component), so every model has labels to train with.

Usage::

    python benchmarks/_atlas.py /tmp/atlas_1m.h5ad --n-obs 1000000 --n-vars 2000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
from anndata.io import sparse_dataset, write_elem
from scipy import sparse

from _common import immune_counts


def _source_cells(n_vars: int, seed: int) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray, pd.Index]:
    """The real cells to draw from, their cluster and pseudo-time."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    cells = immune_counts(n_vars)
    x = cells.X.tocsr().astype(np.float32)
    logx = np.log1p(x.toarray() / np.asarray(x.sum(1)) * 1e4)
    pcs = PCA(10, random_state=seed).fit_transform(logx)
    cluster = KMeans(8, n_init=4, random_state=seed).fit_predict(pcs)
    order = np.argsort(np.argsort(pcs[:, 0])) / len(pcs)
    time_step = np.minimum((order * 5).astype(int), 4)
    return x, cluster, time_step, cells.var_names


def write_synthetic_atlas(
    path: str | Path,
    n_obs: int,
    n_vars: int = 2000,
    *,
    depth: float = 0.12,
    seed: int = 0,
    chunk: int = 50_000,
) -> Path:
    """Write ``n_obs`` thinned, resampled real cells x ``n_vars`` genes as CSR counts to ``path`` (returned).

    Reuses an existing file of the same shape (delete it to regenerate).
    """
    path = Path(path)
    if path.exists():
        with h5py.File(path, "r") as fh:
            shape = tuple(fh["X"].attrs["shape"])
        if shape == (n_obs, n_vars):
            return path
        path.unlink()
    rng = np.random.default_rng(seed)
    source, cluster, time_step, var_names = _source_cells(n_vars, seed)
    picks = rng.integers(0, source.shape[0], size=n_obs)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([f"type {c}" for c in cluster[picks]]),
         "time": time_step[picks].astype(np.int64)},
        index=pd.Index([f"cell-{i}" for i in range(n_obs)], dtype=str),
    )
    tmp = path.with_suffix(".partial.h5ad")
    anndata.AnnData(obs=obs, var=pd.DataFrame(index=var_names)).write_h5ad(tmp)
    with h5py.File(tmp, "a") as fh:
        for start in range(0, n_obs, chunk):
            rows = source[picks[start:start + chunk]]
            rows.data = rng.binomial(rows.data.astype(np.int64), depth).astype(np.float32)
            rows.eliminate_zeros()
            if start == 0:
                write_elem(fh, "X", rows)
            else:
                sparse_dataset(fh["X"]).append(rows)
    tmp.replace(path)  # atomic: a half-written file never has the final name
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--n-obs", type=int, default=1_000_000)
    parser.add_argument("--n-vars", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    out = write_synthetic_atlas(args.path, args.n_obs, args.n_vars, seed=args.seed)
    backed = anndata.read_h5ad(out, backed="r")
    nnz = backed.file["X"]["data"].shape[0]
    print(f"{out}: {backed.n_obs} x {backed.n_vars}, {nnz / backed.n_obs / backed.n_vars:.1%} non-zero, "
          f"{out.stat().st_size / 2**30:.2f} GiB, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
