"""Reading, checking and normalising expression matrices: one implementation for models, metrics and plots."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

Matrix = np.ndarray | sparse.spmatrix | sparse.sparray


def get_matrix(adata: AnnData, layer: str | None = None, *, name: str = "adata") -> Matrix:
    """``adata.X`` or ``adata.layers[layer]`` as stored (no copy), with clear errors.

    Parameters
    ----------
    adata
        Annotated data matrix.
    layer
        Layer to read; ``.X`` when ``None``.
    name
        How ``adata`` is called in error messages.

    Examples
    --------
    >>> import anndata, numpy as np
    >>> get_matrix(anndata.AnnData(np.ones((2, 3)))).shape
    (2, 3)
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"`{name}` must be an AnnData, got {type(adata).__name__}.")
    if layer is None:
        if adata.X is None:
            raise ValueError(f"`{name}.X` is empty; pass `layer=` naming the layer that holds the expression values.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"Layer {layer!r} is not in `{name}.layers` (available: {sorted(adata.layers.keys()) or 'none'}); "
            "pass `layer=None` to use `.X`."
        )
    return adata.layers[layer]


def check_values(x: Matrix, where: str) -> None:
    """Raise unless ``x`` holds finite, non-negative real numbers (dense or sparse).

    Examples
    --------
    >>> import numpy as np
    >>> check_values(np.array([[0.0, 2.0]]), "X")
    """
    values = x.data if sparse.issparse(x) else np.asarray(x)
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise TypeError(f"{where} has dtype {values.dtype}; expected real-valued expression.")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{where} contains {int((~finite).sum())} NaN or infinite values; remove or impute them first.")
    if values.size and (values < 0).any():
        raise ValueError(
            f"{where} contains negative values (min {values.min():.3g}); pass counts or non-negative normalised "
            "expression, not scaled or centred data."
        )


def normalize_total(x: Matrix, library_size: float) -> Matrix:
    """Scale every cell (row) to sum to ``library_size``; cells summing to 0 stay 0.

    Parameters
    ----------
    x
        Cells x genes, non-negative, dense or sparse.
    library_size
        Target total per cell.

    Returns
    -------
    A new float64 matrix of the same kind (CSR when sparse).

    Examples
    --------
    >>> import numpy as np
    >>> normalize_total(np.array([[1.0, 3.0], [0.0, 0.0]]), 100)
    array([[25., 75.],
           [ 0.,  0.]])
    """
    totals = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(library_size, totals, out=np.zeros_like(totals), where=totals > 0)
    if sparse.issparse(x):
        out = sparse.csr_matrix(x, dtype=np.float64, copy=True)
        out.data *= np.repeat(scale, np.diff(out.indptr))
        return out
    return np.asarray(x, dtype=np.float64) * scale[:, None]
