"""A joint two-dimensional embedding of two sets of cells (real and generated), for the plots."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse


def joint_embedding(
    real: sparse.csr_matrix, generated: sparse.csr_matrix, *, basis: str, n_hvg: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two-dimensional joint embedding of library-size normalised ``real`` and ``generated`` cells.

    The top ``n_hvg`` highly variable genes of ``real`` (the genes :func:`scsynth.metrics.realism`
    evaluates on) feed a PCA of the log1p values of both sets, followed for ``basis="umap"`` by scanpy's
    neighbours graph and UMAP on the principal components.

    Parameters
    ----------
    real, generated
        Normalised cells x genes, the same genes in the same order.
    basis
        ``"pca"`` (the first two components) or ``"umap"``.
    n_hvg
        Number of highly variable genes (at least 2 are used).
    seed
        Seed of the PCA and UMAP.

    Returns
    -------
    The coordinates (real cells first, then generated) and the fraction of the variance each principal
    component explains.

    Examples
    --------
    >>> from scipy import sparse
    >>> x = sparse.random(40, 30, density=0.5, format="csr", random_state=0) * 100
    >>> coords, var_ratio = joint_embedding(x[:20], x[20:], basis="pca", n_hvg=10, seed=0)
    >>> coords.shape
    (40, 2)
    """
    import anndata as ad
    import scanpy as sc
    import sklearn
    from sklearn.decomposition import PCA

    from ..metrics._preprocess import select_hvg  # the genes metrics.realism evaluates on

    keep = select_hvg(real, max(n_hvg, 2))  # PCA needs at least two genes
    log_real, log_gen = real[:, keep].log1p(), generated[:, keep].log1p()
    joint = sparse.vstack([log_real, log_gen]).toarray()
    n_comps = max(2, min(50, joint.shape[0] - 1, joint.shape[1]))
    # the covariance solver is fast and exact for the few thousand cells x <= ~2000 genes drawn here
    has_cov = tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 5)
    solver = "covariance_eigh" if has_cov and joint.shape[1] <= 2000 else "auto"
    pca = PCA(n_components=n_comps, svd_solver=solver, random_state=seed)
    pcs = pca.fit_transform(joint)
    var_ratio = np.asarray(pca.explained_variance_ratio_, dtype=float)
    if basis == "pca":
        return pcs[:, :2], var_ratio
    tmp = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(pcs.shape[0])]))
    tmp.obsm["X_pca"] = pcs.astype(np.float32)
    kw = {"transformer": "sklearn"} if pcs.shape[0] <= 20000 else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(tmp, use_rep="X_pca", n_neighbors=min(15, pcs.shape[0] - 1), random_state=seed, **kw)
        sc.tl.umap(tmp, random_state=seed)
    return np.asarray(tmp.obsm["X_umap"]), var_ratio
