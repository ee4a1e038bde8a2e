"""Side-by-side views of real and generated cells: a joint embedding and QC distributions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from ..data._matrix import normalize_total
from ..data._validate import check_anndata
from ._embedding import joint_embedding
from ._utils import (
    ORIGIN_COLORS,
    check_axes,
    expression,
    finish_figure,
    marker_size,
    palette,
    panel_axes,
    subsample,
    take_matrix,
)

GREY = "#dddddd"  # the other set behind the label panels

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def real_vs_generated(
    real: AnnData,
    generated: AnnData,
    *,
    labels_key: str | None = None,
    layer: str | None = None,
    basis: Literal["pca", "umap"] = "pca",
    library_size: float = 20000,
    n_hvg: int = 1000,
    max_cells: int = 2000,
    seed: int = 0,
    figsize: tuple[float, float] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Compare generated cells with real ones in a joint embedding and in QC distributions.

    Genes are matched by name (the real genes that ``generated`` also has). At most ``max_cells`` cells
    per side are drawn. Both sides are library-size normalised to ``library_size`` and log1p
    transformed; the top ``n_hvg`` highly variable genes of the *real* cells (scanpy, flavour
    ``"seurat"``) feed a PCA fitted on the union of both, optionally followed by UMAP.

    The top row shows the embedding coloured by origin and, with ``labels_key``, real and generated
    cells coloured by label with one shared colour map (the other side in light grey behind). The
    bottom row compares library size and detected genes per cell (on the values as given, over the
    shared genes), the mean–variance relation per gene (normalised values) and the zero fraction per
    gene against its mean.

    Parameters
    ----------
    real
        Real cells: counts or non-negative normalised expression, dense or sparse.
    generated
        Generated cells, in the same form as ``real``.
    labels_key
        Column of ``.obs`` present in both data sets (e.g. cell type) used to colour a second pair of
        embedding panels.
    layer
        Layer holding the expression in both data sets; ``None`` uses ``.X``.
    basis
        Embedding of the top row: ``"pca"`` (first two components) or ``"umap"`` (on the PCA).
    library_size
        Total each cell is scaled to before log1p.
    n_hvg
        Number of highly variable genes (chosen on the real cells) used for the PCA; all shared genes
        when there are fewer.
    max_cells
        Maximum number of cells drawn from each data set.
    seed
        Seed of the subsampling, PCA and UMAP.
    figsize
        Figure size in inches; chosen from the number of panels when ``None``. Ignored with ``ax``.
    ax
        Draw into these axes instead of a new figure, in this order: the embedding by origin, with
        ``labels_key`` the real and the generated cells by label, then the four QC panels (library
        size, detected genes, mean–variance, zero fraction): 5 axes, or 7 with ``labels_key``. Any other
        number raises a :class:`ValueError`.
    show
        Call :func:`matplotlib.pyplot.show` at the end (``None``: do not).
    save
        Write the figure to this path (``bbox_inches="tight"``; the extension picks the format).

    Returns
    -------
    The figure (the figure of ``ax`` when given; inputs are left unchanged).

    Examples
    --------
    >>> import scsynth
    >>> fig = scsynth.pl.real_vs_generated(adata, adata_gen, labels_key="cell_type", basis="umap")
    >>> fig.savefig("real_vs_generated.png", dpi=150)

    Into your own grid of axes (QC panels only on the bottom row here):

    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(2, 4, figsize=(16, 8))
    >>> for unused in axes[0, 1:]:
    ...     unused.remove()
    >>> scsynth.pl.real_vs_generated(adata, adata_gen, ax=[axes[0, 0], *axes[1]], save="rvg.png")
    """
    check_anndata(real, "real")
    check_anndata(generated, "generated")
    if basis not in ("pca", "umap"):
        raise ValueError(f"`basis` must be 'pca' or 'umap', got {basis!r}.")
    if max_cells < 2 or n_hvg < 2 or library_size <= 0:
        raise ValueError("`max_cells` and `n_hvg` must be at least 2 and `library_size` positive.")
    if labels_key is not None:
        for name, adata in (("real", real), ("generated", generated)):
            if labels_key not in adata.obs.columns:
                raise KeyError(
                    f"`labels_key` {labels_key!r} is not a column of `{name}.obs` "
                    f"(columns: {list(adata.obs.columns)[:10]}); pass a key present in both or None."
                )
    for name, adata in (("real", real), ("generated", generated)):
        if adata.n_obs < 2:
            raise ValueError(f"`{name}` has {adata.n_obs} cell(s); at least 2 are needed to compare.")
        if not adata.var_names.is_unique:
            raise ValueError(f"`{name}.var_names` are not unique; call `{name}.var_names_make_unique()`.")
    shared = real.var_names[real.var_names.isin(generated.var_names)]
    if len(shared) < 2:
        missing = list(real.var_names[~real.var_names.isin(generated.var_names)][:3])
        raise ValueError(
            f"`real` and `generated` share {len(shared)} gene name(s); at least 2 are needed (e.g. real "
            f"genes {missing} are missing from `generated.var_names`). Generate with the real gene names."
        )
    n_top = 1 if labels_key is None else 3
    panels = "embedding by origin" + (", real by label, generated by label" if labels_key is not None else "")
    panels = f"{panels}, then 4 QC panels"
    if ax is not None:  # fail before the embedding is computed
        ax = check_axes(ax, n_top + 4, where="pl.real_vs_generated", panels=panels)
    rng = np.random.default_rng(seed)
    rows = {n: subsample(a.n_obs, max_cells, rng) for n, a in (("real", real), ("generated", generated))}
    raw = {
        n: take_matrix(expression(a, layer, n), rows[n], a.var_names.get_indexer(shared), n)
        for n, a in (("real", real), ("generated", generated))
    }
    norm = {n: normalize_total(x, library_size) for n, x in raw.items()}
    emb, pc_var = joint_embedding(norm["real"], norm["generated"], basis=basis, n_hvg=n_hvg, seed=seed)
    n_real = raw["real"].shape[0]
    coords = {"real": emb[:n_real], "generated": emb[n_real:]}

    labels, cats = None, []
    if labels_key is not None:
        labels = {
            n: a.obs[labels_key].iloc[rows[n]].astype(object).where(lambda s: s.notna(), "NA").astype(str)
            for n, a in (("real", real), ("generated", generated))
        }
        col = real.obs[labels_key]
        order = [str(c) for c in col.cat.categories] if isinstance(col.dtype, pd.CategoricalDtype) else []
        present = set(labels["real"]) | set(labels["generated"])
        cats = [c for c in order if c in present] + sorted(present.difference(order))

    def make() -> tuple[Figure, list[Axes]]:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize or ((16.0, 8.5) if labels is not None else (15.0, 8.0)),
                         layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1.0])
        top_axes = top.subplots(1, n_top, sharex=True, sharey=True, squeeze=False)[0]
        if n_top == 1:  # keep the single embedding square-ish and centred
            top_axes[0].set_box_aspect(0.8)
        return fig, [*top_axes, *bottom.subplots(1, 4)]

    fig, axes, _ = panel_axes(ax, n_top + 4, where="pl.real_vs_generated", panels=panels, make=make)
    top_axes, qc_axes = axes[:n_top], axes[n_top:]
    if basis == "pca":  # the share of the variance (of log1p expression, both sets) each PC shows
        xlabel, ylabel = (f"PC{i + 1} ({100 * v:.1f}% of variance)" for i, v in enumerate(pc_var[:2]))
    else:
        xlabel, ylabel = "UMAP 1", "UMAP 2"
    _plot_origin(top_axes[0], coords)
    if labels is not None:
        _plot_labels(top_axes[1:], coords, labels, cats, labels_key)
    for panel in top_axes:
        panel.set(xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[])
    n_shared = len(shared) if len(shared) < max(real.n_vars, generated.n_vars) else None
    _plot_qc(qc_axes, raw, norm, library_size, n_shared=n_shared)
    return finish_figure(fig, show=show, save=save)


def _plot_origin(ax: Axes, coords: dict[str, np.ndarray]) -> None:
    s = marker_size(sum(len(c) for c in coords.values()))
    for name, alpha in (("real", 0.8), ("generated", 0.45)):
        xy = coords[name]
        ax.scatter(xy[:, 0], xy[:, 1], s=s, c=ORIGIN_COLORS[name], alpha=alpha, linewidths=0,
                   label=f"{name} ({len(xy):,})", rasterized=True)
    ax.legend(loc="best", markerscale=max(1.0, 12 / s), frameon=True, framealpha=0.85)
    ax.set_title("Real vs generated")


def _plot_labels(
    axes: Sequence[Axes],
    coords: dict[str, np.ndarray],
    labels: dict[str, pd.Series],
    cats: list[str],
    key: str,
) -> None:
    colors = dict(zip(cats, palette(len(cats)), strict=True))
    s = marker_size(sum(len(c) for c in coords.values()))
    for ax, name in zip(axes, ("real", "generated"), strict=True):
        # the other set in grey behind, so both panels show where the cells of the other side lie
        other = "generated" if name == "real" else "real"
        grey = ax.scatter(coords[other][:, 0], coords[other][:, 1], s=s, c=GREY, linewidths=0,
                          rasterized=True, label=f"{other} cells (grey, for reference)")
        lab = labels[name].to_numpy()
        ax.scatter(coords[name][:, 0], coords[name][:, 1], s=s, c=[colors[v] for v in lab],
                   linewidths=0, alpha=0.85, rasterized=True)
        ax.set_title(f"{name.capitalize()} cells by {key}")
        note = ax.legend(handles=[grey], loc="lower right", fontsize="small", markerscale=max(1.0, 10 / s),
                         frameon=True, framealpha=0.85)
        ax.add_artist(note)  # kept when the label legend below replaces the axes' legend
    handles = [axes[-1].scatter([], [], s=30, color=colors[c], label=c) for c in cats]
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                    ncol=int(np.ceil(len(cats) / 16)), fontsize="small", title=key, borderaxespad=0)


def _step_hist(ax: Axes, values: dict[str, np.ndarray], medians: dict[str, float], *, bins: int = 40) -> None:
    allv = np.concatenate(list(values.values()))
    edges = np.histogram_bin_edges(allv, bins=bins) if len(allv) else bins
    for name, v in values.items():
        ax.hist(v, bins=edges, histtype="step", density=True, linewidth=1.6, color=ORIGIN_COLORS[name],
                label=f"{name} (median {medians[name]:,.0f})")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # headroom for the legend
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize="small")


def _plot_qc(
    axes: Sequence[Axes],
    raw: dict[str, sparse.csr_matrix],
    norm: dict[str, sparse.csr_matrix],
    library_size: float,
    *,
    n_shared: int | None = None,
) -> None:
    lib = {n: np.asarray(x.sum(axis=1)).ravel() for n, x in raw.items()}
    _step_hist(axes[0], {n: np.log10(v[v > 0]) for n, v in lib.items()},
               {n: float(np.median(v)) for n, v in lib.items()})
    # the values as given (before any scaling): call them counts only when they are whole numbers
    counts = all(np.array_equal(x.data, np.round(x.data)) for x in raw.values())
    over = f"\n(over the {n_shared:,} genes both sets have)" if n_shared is not None else ""
    axes[0].set(title="Library size per cell",
                xlabel=f"log10 total {'counts per cell' if counts else 'per cell (values as given)'}{over}")
    detected = {n: np.diff(x.indptr).astype(float) for n, x in raw.items()}
    _step_hist(axes[1], detected, {n: float(np.median(v)) for n, v in detected.items()})
    axes[1].set(title="Detected genes per cell", xlabel=f"genes with a non-zero value per cell{over}")
    for name, x in norm.items():
        mean = np.asarray(x.mean(axis=0)).ravel()
        var = np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean**2
        ok = (mean > 0) & (var > 0)
        lm, lv = np.log10(mean[ok]), np.log10(var[ok])
        axes[2].scatter(lm, lv, s=4, alpha=0.5, c=ORIGIN_COLORS[name], linewidths=0, label=name,
                        rasterized=True)
        zero = 1.0 - np.diff(raw[name].tocsc().indptr) / raw[name].shape[0]
        axes[3].scatter(np.log10(mean[mean > 0]), zero[mean > 0], s=4, alpha=0.5, c=ORIGIN_COLORS[name],
                        linewidths=0, label=name, rasterized=True)
    scaled = f"cells scaled to {library_size:,.0f})"  # every cell's values rescaled to sum to library_size
    axes[2].set(title="Mean–variance per gene", xlabel=f"log10 mean per gene ({scaled}",
                ylabel="log10 variance per gene")
    axes[3].set(title="Zero fraction per gene", xlabel=f"log10 mean per gene ({scaled}",
                ylabel="fraction of cells with zero", ylim=(-0.03, 1.03))
    # upper left is empty for mean-variance (variance grows with the mean), lower left for zero fractions
    for ax, loc in zip(axes[2:], ("upper left", "lower left"), strict=True):
        ax.legend(loc=loc, fontsize="small", markerscale=3)
