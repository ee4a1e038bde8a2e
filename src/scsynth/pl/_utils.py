"""Helpers shared by the plotting functions of :mod:`scsynth.pl`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.figure import Figure

#: Colours of the two origins, used by every real-vs-generated panel.
ORIGIN_COLORS: dict[str, str] = {"real": "#1f77b4", "generated": "#e8620c"}


def _finish(fig: Figure, show: bool) -> Figure:
    """Show ``fig`` when ``show`` is true and return it.

    Parameters
    ----------
    fig
        The finished figure.
    show
        Whether to call :func:`matplotlib.pyplot.show`.

    Returns
    -------
    The same figure.
    """
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def _expression(adata: AnnData, layer: str | None, name: str) -> np.ndarray | sparse.spmatrix:
    """The expression matrix of ``adata`` (``.X`` or ``.layers[layer]``), without copying it.

    Parameters
    ----------
    adata
        Annotated data matrix.
    layer
        Layer to read, ``None`` for ``.X``.
    name
        How the data set is called in error messages (``"real"`` or ``"generated"``).

    Returns
    -------
    The matrix, dense or sparse.
    """
    if layer is None:
        if adata.X is None:
            raise ValueError(f"`{name}.X` is empty; pass `layer=` naming the layer that holds expression.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"Layer {layer!r} is not in `{name}.layers` (available: {sorted(adata.layers.keys())}); "
            "pass `layer=None` to use `.X`."
        )
    return adata.layers[layer]


def _take(
    matrix: np.ndarray | sparse.spmatrix, rows: np.ndarray, cols: np.ndarray, name: str
) -> sparse.csr_matrix:
    """A float64 CSR copy of ``matrix[rows][:, cols]``, checked to be finite and non-negative.

    Parameters
    ----------
    matrix
        Dense or sparse expression matrix.
    rows, cols
        Integer indices of the cells and genes to keep.
    name
        How the data set is called in error messages.

    Returns
    -------
    A new CSR matrix; ``matrix`` is left untouched.
    """
    if sparse.issparse(matrix):
        sub = sparse.csr_matrix(matrix[rows])[:, cols]
    else:
        sub = sparse.csr_matrix(np.asarray(matrix[rows])[:, cols])
    sub = sparse.csr_matrix(sub, dtype=np.float64, copy=True)
    if sub.nnz and not np.all(np.isfinite(sub.data)):
        raise ValueError(f"`{name}` expression contains NaN or infinite values; clean it before plotting.")
    if sub.nnz and sub.data.min() < 0:
        raise ValueError(
            f"`{name}` expression has negative values (min {sub.data.min():.3g}); pass counts or "
            "non-negative normalised expression (not log- or z-scaled) via `.X` or `layer=`."
        )
    sub.eliminate_zeros()
    return sub


def _normalize_total(x: sparse.csr_matrix, library_size: float) -> sparse.csr_matrix:
    """Scale every cell (row) of ``x`` to sum to ``library_size``; all-zero cells stay zero.

    Parameters
    ----------
    x
        Non-negative CSR matrix (cells × genes).
    library_size
        Target total per cell.

    Returns
    -------
    A new CSR matrix.
    """
    totals = np.asarray(x.sum(axis=1)).ravel()
    scale = np.divide(library_size, totals, out=np.zeros_like(totals), where=totals > 0)
    return sparse.csr_matrix(sparse.diags(scale) @ x)


def _subsample(n: int, max_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_cells`` of ``n`` cells, drawn without replacement."""
    if n <= max_cells:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_cells, replace=False))


def _palette(n: int) -> list[str]:
    """``n`` distinct colours (scanpy's default categorical palettes)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex
    from scanpy.plotting import palettes

    if n <= 10:  # saturated colours only, none close to the light-grey background
        return [to_hex(colormaps["tab10"](i)) for i in range(n)]
    for pal in (palettes.default_20, palettes.default_28, palettes.default_102):
        if n <= len(pal):
            return list(pal[:n])
    return [palettes.default_102[i % len(palettes.default_102)] for i in range(n)]

