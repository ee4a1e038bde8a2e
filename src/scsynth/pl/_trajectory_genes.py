"""The gene panels of a trajectory plot: mean log-normalised expression over time per trajectory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from ..data._matrix import check_values
from ._trajectory_draw import SINGLE_COLOR
from ._trajectory_fates import ALL_CELLS
from ._utils import expression

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes

    from ._trajectory_fates import Fates


def _log_expression(
    adata: AnnData, genes: list[str], layer: str | None, library_size: float, name: str
) -> np.ndarray:
    """``log1p`` of the expression of ``genes`` scaled to ``library_size`` per cell (all genes' total)."""
    matrix = expression(adata, layer, name)
    cols = adata.var_names.get_indexer(genes)
    sub = matrix[:, cols]
    sub = (
        sparse.csr_matrix(sub, dtype=np.float64, copy=True)
        if sparse.issparse(sub)
        else np.array(sub, dtype=np.float64)
    )
    check_values(sub, f"`{name}` expression")
    totals = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(library_size, totals, out=np.zeros_like(totals), where=totals > 0)
    dense = sub.toarray() if sparse.issparse(sub) else sub
    return np.log1p(dense * scale[:, None])


def _trends(expr: np.ndarray, traj: np.ndarray, times: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """Per trajectory: time steps, mean and standard error of each gene (arrays of shape steps x genes)."""
    ok = pd.notna(traj) & np.isfinite(times)
    df = pd.DataFrame(expr[ok])
    df["traj"], df["time"] = traj[ok], times[ok]
    out = {}
    for name, group in df.groupby("traj", sort=False):
        by = group.drop(columns="traj").groupby("time", sort=True)
        mean, sem = by.mean(), by.sem().fillna(0.0)
        out[str(name)] = (mean.index.to_numpy(dtype=np.float64), mean.to_numpy(), sem.to_numpy())
    return out


def plot_genes(
    axes: Sequence[Axes],
    adata: AnnData,
    reference: AnnData | None,
    genes: list[str],
    traj: np.ndarray,
    times: np.ndarray,
    colors: dict[str, str],
    *,
    fates: Fates | None,
    names: tuple[str, str],
    time_key: str,
    layer: str | None,
    library_size: float,
    ncols: int = 1,
) -> None:
    """One panel per gene in ``axes`` (as many as ``genes``): its mean trend per trajectory, ± s.e.

    The reference's trends (per trajectory by ``fates``, or pooled) are drawn dashed; the y label is on
    the first panel of each row of ``ncols`` panels.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    trends = _trends(_log_expression(adata, genes, layer, library_size, "adata"), traj, times)
    ref_trends: dict[str, tuple[np.ndarray, ...]] = {}
    ref_genes: list[str] = []
    if reference is not None and fates is not None and reference.var_names.is_unique:
        ref_genes = [g for g in genes if g in reference.var_names]
        if ref_genes:
            # a cell shared by several trajectories (a progenitor) enters each of their trends
            pos, member = fates.expand(np.arange(reference.n_obs))
            expr = _log_expression(reference, ref_genes, layer, library_size, "reference")
            ref_trends = _trends(expr[pos], member, fates.times[pos])
    integer_time = bool(np.all(np.asarray(times[np.isfinite(times)]) % 1 == 0))
    for i, (ax, gene) in enumerate(zip(axes, genes, strict=True)):
        ax.set_label(f"gene:{gene}")
        for name, (t, mean, sem) in trends.items():
            color = colors[name]
            (line,) = ax.plot(t, mean[:, i], "-o", color=color, lw=1.6, ms=3.5, zorder=3)
            line.set_gid(f"gene:{gene}:{name}")
            ax.fill_between(
                t,
                mean[:, i] - sem[:, i],
                mean[:, i] + sem[:, i],
                color=color,
                alpha=0.2,
                linewidth=0,
                zorder=2,
            )
        if gene in ref_genes:
            j = ref_genes.index(gene)
            for name, (t, mean, sem) in ref_trends.items():
                color = SINGLE_COLOR if name == ALL_CELLS else colors.get(name, SINGLE_COLOR)
                (line,) = ax.plot(t, mean[:, j], "--", color=color, lw=1.3, alpha=0.9, zorder=4)
                line.set_gid(f"reference:{gene}:{name}")
                lo, hi = mean[:, j] - sem[:, j], mean[:, j] + sem[:, j]
                band = ax.fill_between(t, lo, hi, color=color, alpha=0.1, linewidth=0, zorder=1)
                band.set_gid(f"reference-band:{gene}:{name}")
        ax.set_title(gene, fontsize="medium")
        ax.set_xlabel(time_key)
        if i % ncols == 0:
            ax.set_ylabel("mean log1p(norm.)")
        if integer_time:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize="small")
    if ref_trends:
        own, ref = names
        handles = [
            Line2D([], [], color="0.3", ls="-", marker="o", ms=3.5, label=f"{own} (solid), mean ± s.e."),
            Line2D([], [], color="0.3", ls="--", label=f"{ref} (dashed), mean ± s.e.\n{fates.how}"),
        ]
        axes[0].legend(handles=handles, fontsize="x-small", loc="best", framealpha=0.8)
