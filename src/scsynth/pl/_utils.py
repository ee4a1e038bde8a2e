"""Helpers shared by the plotting functions of :mod:`scsynth.pl`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from ..data._matrix import check_values, get_matrix, normalize_total

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
    """The expression matrix of ``adata`` (``.X`` or ``.layers[layer]``), without copying it."""
    return get_matrix(adata, layer, name=name)


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
    check_values(sub, f"`{name}` expression")
    sub.eliminate_zeros()
    return sub


def _normalize_total(x: sparse.csr_matrix, library_size: float) -> sparse.csr_matrix:
    """Scale every cell (row) of ``x`` to sum to ``library_size``; all-zero cells stay zero."""
    return normalize_total(x, library_size)


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

