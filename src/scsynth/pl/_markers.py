"""RNAGAN's markers: the top genes and pathways of a group, by attribution, with their fold changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._utils import _finish

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_COLUMNS = {"feature", "kind", "attribution", "log2fc", "fdr"}


def markers(
    adata_or_table: Any,
    *,
    key: str = "rnagan_markers",
    n_top: int = 15,
    fdr: float = 0.05,
    show: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Bar charts of the top genes and pathways by attribution (from :meth:`~scsynth.model.RNAGAN.markers`).

    One panel per kind (genes, pathways): the ``n_top`` features with the largest attribution, bars
    coloured by the sign of their log2 fold change (red up, blue down in the group) and hatched when
    their FDR is at least ``fdr``.

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
    show
        Call :func:`matplotlib.pyplot.show`.
    figsize
        Figure size.

    Returns
    -------
    The Figure.

    Examples
    --------
    >>> scsynth.tl.markers(bulk, model, groupby="sex", group="Female")  # doctest: +SKIP
    >>> fig = scsynth.pl.markers(bulk)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if not isinstance(adata_or_table, pd.DataFrame | AnnData):
        raise TypeError(f"`adata_or_table` must be an AnnData or the markers DataFrame, got "
                        f"{type(adata_or_table).__name__}.")
    table = adata_or_table if isinstance(adata_or_table, pd.DataFrame) else getattr(adata_or_table, "uns", {}).get(key)
    if not isinstance(table, pd.DataFrame) or not _COLUMNS <= set(table.columns):
        raise KeyError(f"No markers table in uns[{key!r}]; run scsynth.tl.markers(adata, model, ...) first, or pass the "
                       "table returned by model.markers().")
    kinds = [k for k in ("gene", "pathway") if (table["kind"] == k).any()]
    fig, axes = plt.subplots(1, len(kinds), figsize=figsize or (5.2 * len(kinds), 0.32 * n_top + 1.4), squeeze=False)
    group = table.attrs.get("params", {}).get("group")
    for ax, kind in zip(axes[0], kinds, strict=True):
        top = table[table["kind"] == kind].nlargest(n_top, "attribution").iloc[::-1]
        colors = np.where(top["log2fc"] >= 0, "#c0392b", "#2e6da4")
        bars = ax.barh(np.arange(len(top)), top["attribution"], color=colors)
        for bar, q in zip(bars, top["fdr"], strict=True):
            if q >= fdr:
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        ax.set_yticks(np.arange(len(top)), top["feature"].astype(str), fontsize=8)
        ax.set_xlabel("attribution (integrated gradients)")
        ax.set_title(f"top {kind}s" + (f" of {group}" if group else ""))
    fig.text(0.5, 0.005, f"red: up in the group, blue: down; hatched: FDR >= {fdr:g}", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _finish(fig, show)
