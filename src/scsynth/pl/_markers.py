"""RNAGAN's markers: the top genes and pathways of a group, by attribution, with their fold changes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._utils import finish_figure, panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_COLUMNS = {"feature", "kind", "attribution", "log2fc", "fdr"}
_NOTE = "red: up in the group, blue: down; hatched: FDR >= {fdr:g}"


def markers(
    adata_or_table: Any,
    *,
    key: str = "rnagan_markers",
    n_top: int = 15,
    fdr: float = 0.05,
    figsize: tuple[float, float] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Bar charts of the top genes and pathways by attribution (from :meth:`~scsynth.model.RNAGAN.markers`).

    One panel per kind (genes, pathways): the ``n_top`` features with the largest attribution, bars
    coloured by the sign of their log2 fold change (red up, blue down in the group) and hatched when
    their FDR is at least ``fdr``. The group named in the titles comes from the table's
    ``attrs["params"]``, or, for an AnnData read back from h5ad (which drops ``attrs``), from
    ``uns[key + "_params"]`` as :func:`scsynth.tl.markers` writes it.

    Parameters
    ----------
    adata_or_table
        An AnnData with the table in ``uns[key]``, or the table itself.
    key
        ``uns`` key of the table.
    n_top
        Features per panel.
    fdr
        Significance threshold for the hatching.
    figsize
        Figure size. Ignored with ``ax``.
    ax
        Draw into these axes instead of a new figure: one per kind present in the table, genes first
        (two for RNAGAN's genes and pathways). A wrong number raises a :class:`ValueError` that says how
        many are needed.
    show
        Call :func:`matplotlib.pyplot.show` (``None``: do not).
    save
        Write the figure to this path (``bbox_inches="tight"``; the extension picks the format).

    Returns
    -------
    The Figure (the figure of ``ax`` when given).

    Examples
    --------
    >>> scsynth.tl.markers(bulk, model, groupby="sex", group="Female")  # doctest: +SKIP
    >>> fig = scsynth.pl.markers(bulk)  # doctest: +SKIP

    Into your own axes, after a round trip through h5ad:

    >>> import anndata as ad, matplotlib.pyplot as plt  # doctest: +SKIP
    >>> bulk.write_h5ad("bulk.h5ad")  # doctest: +SKIP
    >>> fig, axes = plt.subplots(1, 2, figsize=(10, 5))  # doctest: +SKIP
    >>> scsynth.pl.markers(ad.read_h5ad("bulk.h5ad"), ax=axes, save="markers.pdf")  # doctest: +SKIP
    """
    if not isinstance(adata_or_table, pd.DataFrame | AnnData):
        raise TypeError(f"`adata_or_table` must be an AnnData or the markers DataFrame, got "
                        f"{type(adata_or_table).__name__}.")
    is_table = isinstance(adata_or_table, pd.DataFrame)
    table = adata_or_table if is_table else adata_or_table.uns.get(key)
    if not isinstance(table, pd.DataFrame) or not _COLUMNS <= set(table.columns):
        raise KeyError(f"No markers table in uns[{key!r}]; run scsynth.tl.markers(adata, model, ...) first, "
                       "or pass the table returned by model.markers().")
    kinds = [k for k in ("gene", "pathway") if (table["kind"] == k).any()]
    group = markers_params(adata_or_table, key=key).get("group")

    def make() -> tuple[Figure, list[Axes]]:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(1, len(kinds), figsize=figsize or (5.2 * len(kinds), 0.32 * n_top + 1.4),
                                 squeeze=False)
        return fig, list(grid[0])

    fig, axes, own = panel_axes(ax, len(kinds), where="pl.markers", panels=f"one per kind: {kinds}",
                                make=make)
    note = _NOTE.format(fdr=fdr)
    for panel, kind in zip(axes, kinds, strict=True):
        top = table[table["kind"] == kind].nlargest(n_top, "attribution").iloc[::-1]
        colors = np.where(top["log2fc"] >= 0, "#c0392b", "#2e6da4")
        bars = panel.barh(np.arange(len(top)), top["attribution"], color=colors)
        for bar, q in zip(bars, top["fdr"], strict=True):
            if q >= fdr:
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        panel.set_yticks(np.arange(len(top)), top["feature"].astype(str), fontsize=8)
        # in the user's figure the colour key goes under each panel, not along the figure's edge
        panel.set_xlabel("attribution (integrated gradients)" + ("" if not own else f"\n{note}"))
        panel.set_title(f"top {kind}s" + (f" of {group}" if group else ""))
    if not own:
        fig.text(0.5, 0.005, note, ha="center", fontsize=8)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    return finish_figure(fig, show=show, save=save)


def markers_params(adata_or_table: AnnData | pd.DataFrame, *, key: str = "rnagan_markers") -> dict[str, Any]:
    """The parameters of a markers table: its ``attrs["params"]``, else ``uns[key + "_params"]``.

    Arrays read back from h5ad become lists and NumPy scalars Python ones, so the result compares equal
    to the parameters :meth:`~scsynth.model.RNAGAN.markers` was called with.

    Parameters
    ----------
    adata_or_table
        An AnnData with the table in ``uns[key]``, or the table itself (then only its ``attrs``).
    key
        ``uns`` key of the table.

    Returns
    -------
    A new dict; empty when neither place holds parameters.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"feature": ["g1"]})
    >>> table.attrs["params"] = {"group": "Female", "n_draws": 10}
    >>> markers_params(table)
    {'group': 'Female', 'n_draws': 10}
    """
    if isinstance(adata_or_table, pd.DataFrame):
        table, uns = adata_or_table, {}
    else:
        table, uns = adata_or_table.uns.get(key), adata_or_table.uns
    params = getattr(table, "attrs", {}).get("params")
    if not isinstance(params, Mapping) or not params:
        params = uns.get(f"{key}_params", {})
    if not isinstance(params, Mapping):
        return {}
    return {str(k): _plain(v) for k, v in params.items()}


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars (as h5ad gives them back) as Python lists and scalars."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
