"""Helpers shared by the plotting functions of :mod:`scsynth.pl`: axes, saving, data access, colours."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from ..data._matrix import check_values, get_matrix

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of the two origins, used by every real-vs-generated panel.
ORIGIN_COLORS: dict[str, str] = {"real": "#1f77b4", "generated": "#e8620c"}


def panel_axes(
    ax: Any,
    n_panels: int,
    *,
    where: str,
    panels: str,
    make: Callable[[], tuple[Figure, list[Axes]]],
) -> tuple[Figure, list[Axes], bool]:
    """The figure and the ``n_panels`` axes to draw into: the user's ``ax``, or new ones from ``make()``.

    Parameters
    ----------
    ax
        ``None`` (make a figure), one :class:`~matplotlib.axes.Axes`, or a sequence (or array, e.g. from
        :func:`matplotlib.pyplot.subplots`) of exactly ``n_panels`` axes.
    n_panels
        Number of panels the plot draws.
    where
        The plotting function, for error messages (e.g. ``"pl.history"``).
    panels
        What the panels are, in order, for error messages (e.g. ``"one per logged quantity"``).
    make
        Makes the plot's own figure and its ``n_panels`` axes when ``ax`` is ``None``.

    Returns
    -------
    The figure (the root figure of the user's axes, never a new one when ``ax`` is given), the axes, and
    whether they are the user's (then the plot leaves figure-level layout alone).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(1, 2)
    >>> same, panels, own = panel_axes(axes, 2, where="pl.f", panels="a, b", make=lambda: (None, []))
    >>> same is fig and own
    True
    """
    if ax is None:
        fig, axes = make()
        return fig, list(axes), False
    axes = check_axes(ax, n_panels, where=where, panels=panels)
    return root_figure(axes[0]), axes, True


def check_axes(ax: Any, n_panels: int, *, where: str, panels: str) -> list[Axes]:
    """``ax`` (one Axes, or a sequence or array of them) as a list of exactly ``n_panels`` axes.

    Plots that compute for a while call it before they start, so that a wrong ``ax`` fails fast;
    :func:`panel_axes` calls it too. The arguments are those of :func:`panel_axes`.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(1, 2)
    >>> len(check_axes(axes, 2, where="pl.f", panels="a, b"))
    2
    """
    from matplotlib.axes import Axes

    axes = [ax] if isinstance(ax, Axes) else list(np.asarray(ax, dtype=object).ravel())
    bad = [type(a).__name__ for a in axes if not isinstance(a, Axes)]
    if bad:
        raise TypeError(f"{where}: `ax` must be a matplotlib Axes or a sequence of Axes, got {bad[0]} in it.")
    if len(axes) != n_panels:
        raise ValueError(
            f"{where} draws {n_panels} panel{'s' if n_panels != 1 else ''} here ({panels}), so `ax` needs "
            f"{n_panels} Axes, got {len(axes)}; e.g. `fig, ax = plt.subplots(1, {n_panels})`, or `ax=None`."
        )
    return axes


def root_figure(ax: Axes) -> Figure:
    """The :class:`~matplotlib.figure.Figure` holding ``ax``, also when ``ax`` lies in a subfigure."""
    return ax.figure.figure  # a SubFigure's .figure is its root Figure, a Figure's is itself


def finish_figure(fig: Figure, *, show: bool | None = None, save: str | os.PathLike | None = None) -> Figure:
    """Save ``fig`` to ``save`` (``bbox_inches="tight"``), show it when ``show`` is true, and return it.

    Parameters
    ----------
    fig
        The finished figure.
    show
        Call :func:`matplotlib.pyplot.show`; ``None`` (the default of every plot) does not.
    save
        Path to write the figure to; its extension picks the format (``.png``, ``.pdf``, ``.svg`` ...).

    Returns
    -------
    The same figure.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure()
    >>> finish_figure(fig) is fig
    True
    """
    if save is not None:
        if not isinstance(save, str | os.PathLike):
            raise TypeError(f"`save` must be a file path (str or os.PathLike), got {type(save).__name__}.")
        fig.savefig(save, bbox_inches="tight")
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def expression(adata: AnnData, layer: str | None, name: str) -> np.ndarray | sparse.spmatrix:
    """The expression matrix of ``adata`` (``.X`` or ``.layers[layer]``), without copying it."""
    return get_matrix(adata, layer, name=name)


def take_matrix(
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


def subsample(n: int, max_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_cells`` of ``n`` cells, drawn without replacement."""
    if n <= max_cells:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_cells, replace=False))


def marker_size(n: int) -> float:
    """Scatter marker size for ``n`` points: small for many cells, at most 14."""
    return float(np.clip(30000 / max(n, 1), 1.0, 14.0))


def palette(n: int) -> list[str]:
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
