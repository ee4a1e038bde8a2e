"""Bundled, offline datasets."""

from __future__ import annotations

import numpy as np
import scanpy as sc
from anndata import AnnData
from scipy import sparse


def pbmc68k_normalized() -> AnnData:
    """700 PBMCs x 765 genes from scanpy's ``pbmc68k_reduced``, as non-negative normalised expression.

    ``pbmc68k_reduced`` ships only log-normalised values (in ``.raw``); this returns ``expm1`` of
    them, i.e. expression normalised per cell, with the cell types in ``obs["bulk_labels"]``. Use it
    with ``setup_anndata(..., is_count_data=False)``. Ships inside scanpy; no download.

    Returns
    -------
    AnnData with sparse ``.X`` (float32) and ``obs["bulk_labels"]``.

    Examples
    --------
    >>> import scsynth
    >>> adata = scsynth.data.pbmc68k_normalized()
    >>> adata.shape
    (700, 765)
    """
    pbmc = sc.datasets.pbmc68k_reduced()
    raw = pbmc.raw.to_adata()
    x = raw.X.toarray() if sparse.issparse(raw.X) else np.asarray(raw.X)
    x = np.expm1(x).astype(np.float32)
    x[x < 1e-6] = 0.0
    adata = AnnData(sparse.csr_matrix(x), obs=pbmc.obs[["bulk_labels", "n_genes", "n_counts"]].copy(), var=raw.var[[]])
    adata.obs["bulk_labels"] = adata.obs["bulk_labels"].astype("category")
    adata.uns["source"] = "scanpy.datasets.pbmc68k_reduced (.raw, expm1 of log-normalised values)"
    return adata


def hsmm_myoblast() -> AnnData:
    """Human skeletal myoblast differentiation time course (Trapnell et al. 2014), 271 cells x 2000 genes.

    Primary myoblasts switched to differentiation medium, profiled at 0, 24, 48 and 72 h (Smart-seq,
    FPKM: normalised values, not counts). ``obs["time"]`` numbers the four time points 1..4 and
    ``obs["label"]`` holds Monocle's states (``"State1"``: proliferating myoblasts; ``"State2"``:
    differentiating myoblasts / myotubes; ``"State3"``: interstitial mesenchymal cells). The genes are
    the 2000 most variable of the 13,007 protein-coding genes of Bioconductor's HSMMSingleCell 1.18.0
    (Artistic-2.0). Bundled; no download.

    Returns
    -------
    AnnData with sparse FPKM in ``.X`` and ``obs`` columns ``Hours``, ``Media``, ``Pseudotime``,
    ``State``, ``time``, ``label``.

    Examples
    --------
    >>> import scsynth
    >>> adata = scsynth.data.hsmm_myoblast()
    >>> adata.shape
    (271, 2000)
    """
    return _read_resource("hsmm_myoblast_2000hvg.h5ad")


def geuvadis_lcl() -> AnnData:
    """Bulk RNA-seq of 85 lymphoblastoid cell lines (GEUVADIS) with their donors' sex, raw counts.

    Bioconductor DEGreport's ``humanGender`` data: 85 samples (41 female, 44 male) x 10,003 genes
    (symbols, Ensembl IDs in ``var["gene_id"]``), integer counts. A bulk task with a known answer:
    sex-chromosome genes separate the groups. Bundled (MIT license); no download.

    Returns
    -------
    AnnData with sparse counts in ``.X`` and ``obs["sex"]`` (``"Female"``/``"Male"``).

    Examples
    --------
    >>> import scsynth
    >>> bulk = scsynth.data.geuvadis_lcl()
    >>> bulk.shape
    (85, 10003)
    """
    return _read_resource("geuvadis_lcl_counts.h5ad")


def _read_resource(name: str) -> AnnData:
    """An AnnData bundled in ``scsynth/data/resources``."""
    from importlib.resources import files

    import anndata

    with files("scsynth.data").joinpath(f"resources/{name}").open("rb") as handle:
        return anndata.read_h5ad(handle)
