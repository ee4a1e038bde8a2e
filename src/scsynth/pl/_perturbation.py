"""The per-gene effect of an in-silico TF perturbation: a volcano plot and targets vs non-targets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._uns import perturbation_info
from ._utils import finish_figure, panel_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of the gene groups, shared by both panels.
GROUP_COLORS: dict[str, str] = {"target": "#d62728", "other": "#a0a0a0", "perturbed": "#000000"}

_STAGES: dict[str, str] = {"lfc_pre_lsn": "pre-LSN\n(causal)", "lfc": "post-LSN\n(observed)"}
_AXIS_LABELS: dict[str, str] = {
    "lfc_pre_lsn": "log2 fold change, before library-size normalisation",
    "lfc": "log2 fold change, after library-size normalisation",
}


def _effect_columns(effects: pd.DataFrame) -> list[str]:
    """Effect columns with a matching p-value column: ``lfc<suffix>`` with ``pval<suffix>``."""
    return [c for c in effects.columns if str(c).startswith("lfc") and f"pval{str(c)[3:]}" in effects.columns]


def perturbation(
    adata: AnnData,
    *,
    effect: str = "lfc_pre_lsn",
    n_top: int = 20,
    fdr: float = 0.05,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Plot the per-gene effect of an in-silico TF perturbation.

    Left, a volcano plot of every gene: the ``effect`` (a log2 fold change) against
    ``-log10`` of its paired Wilcoxon p-value (the matching ``pval`` column). Direct targets of the
    perturbed TFs in the imposed GRN are coloured, all other genes grey, the perturbed TFs are black
    stars; genes at FDR >= ``fdr`` are drawn faded, and the dashed line is the FDR threshold. The
    ``n_top`` genes with the largest ``|effect|`` (perturbed TFs aside) are labelled.

    Right, ``|log2 fold change|`` of direct targets and of all other genes (perturbed TFs left
    out), before and after the final library-size normalisation (LSN). Before it, genes that are
    not downstream of a perturbed TF are exactly unchanged (the share of genes with an effect of
    exactly 0 is written above each box, e.g. ``"100% zero"``); after it, renormalisation shifts every
    gene a little: the compositional effects a sequencing experiment would see on top of the causal
    ones.

    Parameters
    ----------
    adata
        The AnnData returned by :meth:`GRouNdGAN.perturb <scsynth.model.GRouNdGAN.perturb>` or
        :func:`scsynth.tl.perturb`, with the effect table in ``uns["perturbation"]["effects"]``.
    effect
        Effect on the x axis of the volcano plot: ``"lfc_pre_lsn"`` (the causal effect) or ``"lfc"``
        (after library-size normalisation).
    n_top
        Number of genes labelled in the volcano plot (0 for none).
    fdr
        FDR threshold of the dashed line; genes above it are faded.
    figsize
        Figure size in inches (default ``(11, 4.6)``). Ignored with ``ax``.
    title
        Figure title; default the perturbation's name (e.g. ``"KO(SPI1)"``). With ``ax`` it is the
        volcano panel's title, leaving the rest of your figure alone.
    ax
        Draw into these two axes (volcano, targets vs other genes) instead of a new figure, e.g. the
        axes of ``plt.subplots(1, 2)``; any other number raises a :class:`ValueError`.
    show
        Call :func:`matplotlib.pyplot.show` at the end (``None``: do not).
    save
        Write the figure to this path (``bbox_inches="tight"``; the extension picks the format).

    Returns
    -------
    The figure, with the two axes described above (the figure of ``ax`` when given).

    Raises
    ------
    KeyError
        ``adata`` has no ``uns["perturbation"]["effects"]``, the table lacks the ``direct_target``
        or ``perturbed`` column, or ``effect`` is not one of its effect columns.

    Examples
    --------
    >>> import scsynth
    >>> ko = scsynth.tl.perturb(model, knockout="SPI1", n_obs=2000)  # doctest: +SKIP
    >>> fig = scsynth.pl.perturbation(ko, n_top=15)  # doctest: +SKIP
    >>> fig.savefig("ko_spi1.png")  # doctest: +SKIP

    Into your own axes, saved to a file:

    >>> import matplotlib.pyplot as plt  # doctest: +SKIP
    >>> fig, axes = plt.subplots(1, 2, figsize=(12, 5))  # doctest: +SKIP
    >>> scsynth.pl.perturbation(ko, ax=axes, save="ko_spi1.pdf")  # doctest: +SKIP
    """
    info = perturbation_info(adata)
    effects: pd.DataFrame = info["effects"]
    choices = _effect_columns(effects)
    if effect not in choices:
        raise KeyError(f"Unknown effect {effect!r}; the effect table's effect columns are {choices}.")
    missing = [c for c in ("direct_target", "perturbed") if c not in effects.columns]
    if missing:
        raise KeyError(f"The effect table in uns['perturbation']['effects'] lacks the column(s) {missing}.")
    if isinstance(n_top, bool) or not isinstance(n_top, int | np.integer) or n_top < 0:
        raise ValueError(f"`n_top` must be an integer >= 0, got {n_top!r}.")
    if not 0 < fdr <= 1:
        raise ValueError(f"`fdr` must be in (0, 1], got {fdr!r}.")

    def make() -> tuple[Figure, list[Axes]]:
        import matplotlib.pyplot as plt

        fig, pair = plt.subplots(1, 2, figsize=figsize or (11, 4.6), layout="constrained",
                                 gridspec_kw={"width_ratios": [1.5, 1]})
        return fig, list(pair)

    fig, (ax_volcano, ax_box), own = panel_axes(
        ax, 2, where="pl.perturbation", panels="volcano, targets vs other genes", make=make
    )
    is_target = effects["direct_target"].to_numpy(dtype=bool)
    is_perturbed = effects["perturbed"].to_numpy(dtype=bool)
    _volcano(ax_volcano, effects, effect, is_target, is_perturbed, n_top=int(n_top), fdr=float(fdr))
    stages = [c for c in _STAGES if c in effects.columns] or [effect]
    _targets_vs_others(ax_box, effects, stages, is_target & ~is_perturbed, ~is_target & ~is_perturbed)
    title = title if title is not None else str(info.get("name", "perturbation"))
    if own:
        ax_volcano.set_title(title)
    else:
        fig.suptitle(title)
    return finish_figure(fig, show=show, save=save)


def _volcano(
    ax: Axes,
    effects: pd.DataFrame,
    effect: str,
    is_target: np.ndarray,
    is_perturbed: np.ndarray,
    *,
    n_top: int,
    fdr: float,
) -> None:
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D

    suffix = effect[3:]
    x = effects[effect].to_numpy(dtype=np.float64)
    pval = np.clip(np.nan_to_num(effects[f"pval{suffix}"].to_numpy(dtype=np.float64), nan=1.0), 1e-300, 1.0)
    y = -np.log10(pval)
    fdr_col = f"fdr{suffix}"
    significant = (effects[fdr_col].to_numpy(dtype=np.float64) < fdr) if fdr_col in effects.columns \
        else np.ones(len(x), dtype=bool)
    others, targets = ~is_target & ~is_perturbed, is_target & ~is_perturbed
    groups = (
        ("other", others, "o", 10, f"other genes ({int(others.sum())})"),
        ("target", targets, "o", 12, f"direct targets ({int(targets.sum())})"),
        ("perturbed", is_perturbed, "*", 140, "perturbed TF" + ("s" if is_perturbed.sum() > 1 else "")),
    )
    handles, labels = [], []
    for key, mask, marker, size, label in groups:
        if not mask.any():
            continue
        colors = np.array([to_rgba(GROUP_COLORS[key], 0.85 if s else 0.25) for s in significant[mask]])
        ax.scatter(x[mask], y[mask], s=size, marker=marker, c=colors, linewidths=0,
                   zorder=3 if key == "perturbed" else 2)
        # legend entries in the full colour, whichever genes come first
        handles.append(Line2D([], [], ls="", marker=marker, ms=np.sqrt(size), mew=0, color=GROUP_COLORS[key]))
        labels.append(label)
    if fdr_col in effects.columns and significant.any():
        threshold = -np.log10(max(pval[significant].max(), 1e-300))
        handles.append(ax.axhline(threshold, color="0.3", ls="--", lw=0.8, zorder=1))
        labels.append(f"FDR = {fdr:g}")
    ax.axvline(0, color="0.6", lw=0.6, zorder=1)
    candidates = np.flatnonzero(~is_perturbed & (x != 0) & np.isfinite(x))
    top = candidates[np.argsort(-np.abs(x[candidates]), kind="stable")[:n_top]]
    for i in top:
        ax.annotate(str(effects.index[i]), (x[i], y[i]), xytext=(2, 2), textcoords="offset points",
                    fontsize=6, color="0.15")
    for i in np.flatnonzero(is_perturbed):
        ax.annotate(str(effects.index[i]), (x[i], y[i]), xytext=(4, 4), textcoords="offset points",
                    fontsize=8, fontweight="bold")
    ax.set_xlabel(_AXIS_LABELS.get(effect, effect))
    ax.set_ylabel("-log10 p (paired Wilcoxon)")
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, loc="best", fontsize="small")


def _targets_vs_others(
    ax: Axes, effects: pd.DataFrame, stages: list[str], targets: np.ndarray, others: np.ndarray
) -> None:
    rng = np.random.default_rng(0)
    ticks, tick_labels = [], []
    handles = {}
    for i, stage in enumerate(stages):
        values = np.abs(effects[stage].to_numpy(dtype=np.float64))
        centre = 3.5 * i + 0.5
        ticks.append(centre)
        tick_labels.append(_STAGES.get(stage, stage))
        for offset, key, mask in ((-0.5, "target", targets), (0.5, "other", others)):
            v = values[mask]
            v = v[np.isfinite(v)]
            if len(v) == 0:
                continue
            pos = centre + offset
            ax.boxplot([v], positions=[pos], widths=0.7, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": "none", "edgecolor": GROUP_COLORS[key]},
                       medianprops={"color": GROUP_COLORS[key], "lw": 1.5},
                       whiskerprops={"color": GROUP_COLORS[key]}, capprops={"color": GROUP_COLORS[key]})
            jitter = rng.uniform(-0.22, 0.22, size=len(v))
            handles[key] = ax.scatter(pos + jitter, v, s=4, color=GROUP_COLORS[key], alpha=0.45, linewidths=0,
                                      zorder=2)
            ax.annotate(f"{np.mean(v == 0):.0%} zero", (pos, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -2), textcoords="offset points", ha="center", va="top", fontsize=7)
    ax.set_xticks(ticks, tick_labels)
    ax.set_xlim(-0.8, 3.5 * (len(stages) - 1) + 1.8)
    ax.set_ylabel("|log2 fold change|")
    ax.set_title("direct targets vs other genes\n(perturbed TFs excluded)", fontsize="medium")
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)
    labels = {"target": "direct targets", "other": "other genes"}
    if handles:
        ax.legend([handles[k] for k in handles], [labels[k] for k in handles], loc="center", fontsize="small",
                  markerscale=3)
