"""Shared preparation of real and generated cells: gene matching, normalisation and HVG selection."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from ..data._matrix import Matrix, check_values, get_matrix, normalize_total


def _expression(adata: ad.AnnData, *, layer: str | None, name: str) -> Matrix:
    """``.X`` or ``.layers[layer]`` of a non-empty ``adata``, as stored; ``name`` is used in error messages."""
    x = get_matrix(adata, layer, name=name)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"`{name}` is empty ({adata.n_obs} cells x {adata.n_vars} genes).")
    return x


def match_genes(real: ad.AnnData, generated: ad.AnnData, *, layer: str | None) -> tuple[Matrix, Matrix]:
    """Read and check both matrices, subsetting ``generated`` to the genes of ``real`` in real order.

    Parameters
    ----------
    real
        Real cells.
    generated
        Generated cells; must contain every gene of ``real`` (extra genes are ignored).
    layer
        Layer read from both objects; ``None`` reads ``.X``.

    Returns
    -------
    The real and the gene-matched generated matrix.

    Examples
    --------
    >>> r = ad.AnnData(np.ones((2, 2)), var=pd.DataFrame(index=["a", "b"]))
    >>> g = ad.AnnData(np.ones((3, 3)), var=pd.DataFrame(index=["c", "b", "a"]))
    >>> [m.shape for m in match_genes(r, g, layer=None)]
    [(2, 2), (3, 2)]
    """
    if layer is not None and isinstance(real, ad.AnnData) and isinstance(generated, ad.AnnData):
        if layer in real.layers and layer not in generated.layers:
            raise KeyError(
                f"Layer {layer!r} is in `real.layers` but missing from `generated.layers` "
                f"(available: {list(generated.layers)}); store the generated expression under {layer!r}."
            )
    x_real = _expression(real, layer=layer, name="real")
    x_gen = _expression(generated, layer=layer, name="generated")
    genes, gen_genes = pd.Index(real.var_names), pd.Index(generated.var_names)
    if not genes.is_unique:
        dup = genes[genes.duplicated()].unique()[:5].tolist()
        raise ValueError(f"`real` has duplicated gene names {dup}; call real.var_names_make_unique().")
    missing = genes[~genes.isin(gen_genes)]
    if len(missing):
        raise ValueError(
            f"`generated` lacks {len(missing)} of the {len(genes)} genes of `real`, e.g. "
            f"{missing[:5].tolist()}; subset `real` to the shared genes first, "
            "e.g. real[:, real.var_names.intersection(generated.var_names)]."
        )
    if not gen_genes.equals(genes):
        if gen_genes[gen_genes.duplicated()].isin(genes).any():
            raise ValueError("`generated` has duplicated gene names; call generated.var_names_make_unique().")
        x_gen = x_gen[:, gen_genes.get_indexer(genes)]
    where = ".X" if layer is None else f".layers[{layer!r}]"
    check_values(x_real, f"real{where}")
    check_values(x_gen, f"generated{where} (genes of real)")  # extra generated genes are ignored
    return x_real, x_gen


def select_hvg(x_norm: Matrix, n_hvg: int) -> np.ndarray:
    """Indices (sorted) of the top ``n_hvg`` Seurat-flavour highly variable genes of ``x_norm``.

    Parameters
    ----------
    x_norm
        Library-size normalised (non-log) real cells.
    n_hvg
        Number of genes to keep; all genes when there are not more than that.

    Returns
    -------
    Sorted integer gene indices.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> select_hvg(rng.poisson(1.0, (50, 30)).astype(float), 10).shape
    (10,)
    """
    n_genes = x_norm.shape[1]
    if n_genes <= n_hvg:
        return np.arange(n_genes)
    logged = x_norm.log1p() if sparse.issparse(x_norm) else np.log1p(x_norm)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # constant genes give NaN dispersions, which scanpy ranks last anyway
        warnings.simplefilter("ignore", RuntimeWarning)
        hvg = sc.pp.highly_variable_genes(
            ad.AnnData(logged), flavor="seurat", n_top_genes=n_hvg, inplace=False
        )
    # scanpy keeps every gene tied with the cut-off; rank ourselves to get exactly n_hvg genes
    disp = np.nan_to_num(hvg["dispersions_norm"].to_numpy(dtype=np.float64), nan=-np.inf)
    return np.sort(np.argsort(-disp, kind="stable")[:n_hvg])


def prepare(
    real: ad.AnnData,
    generated: ad.AnnData,
    *,
    n_hvg: int,
    library_size: float,
    layer: str | None,
) -> tuple[Matrix, Matrix, pd.Index]:
    """Match genes, normalise library sizes and restrict both sets to the real HVGs.

    Parameters
    ----------
    real
        Real cells.
    generated
        Generated cells.
    n_hvg
        Number of highly variable genes, chosen on ``real`` only.
    library_size
        Target total per cell.
    layer
        Layer read from both objects; ``None`` reads ``.X``.

    Returns
    -------
    Normalised real and generated matrices (HVG columns only) and the HVG names.

    Examples
    --------
    >>> import anndata as ad
    >>> a = ad.AnnData(np.random.default_rng(0).poisson(1.0, (40, 20)).astype(float))
    >>> r, g, genes = prepare(a, a, n_hvg=5, library_size=1e4, layer=None)
    >>> r.shape, len(genes)
    ((40, 5), 5)
    """
    x_real, x_gen = match_genes(real, generated, layer=layer)
    x_real = normalize_total(x_real, library_size)
    x_gen = normalize_total(x_gen, library_size)
    keep = select_hvg(x_real, n_hvg)
    return x_real[:, keep], x_gen[:, keep], pd.Index(real.var_names)[keep]


def dense_rows(x: Matrix, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of ``x`` as a dense float64 array (only sampled cells are ever densified)."""
    sub = x[rows]
    return np.asarray(sub.toarray() if sparse.issparse(sub) else sub, dtype=np.float64)


#: Scales :func:`~scsynth.metrics.realism` compares cells on
SCALES = ("normalized", "log1p")


def to_scale(x: np.ndarray, scale: str) -> np.ndarray:
    """Normalised expression ``x`` (dense) on ``scale``, one of :data:`SCALES`.

    Examples
    --------
    >>> to_scale(np.array([[0.0, np.e - 1]]), "log1p")
    array([[0., 1.]])
    """
    return np.log1p(x) if scale == "log1p" else x
