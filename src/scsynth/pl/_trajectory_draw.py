"""Drawing the embedding panel of a trajectory plot: cells, centroid paths, the reference's paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._trajectory_fates import ALL_CELLS
from ._utils import marker_size, palette

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes

    from ._trajectory_fates import Fates

#: Colour of the cells of ``reference`` in the embedding.
REFERENCE_COLOR = "#d9d9d9"
#: Colour of the single path (no trajectory column) and of the overall reference trend.
SINGLE_COLOR = "#222222"
#: Sequential colour map of the time steps.
TIME_CMAP = "viridis"
#: Prefix of the ``gid`` of the reference's per-trajectory centroid paths in the embedding.
REFERENCE_PATH = "reference-path"


def path_colors(names: list[str], *, single: bool) -> dict[str, str]:
    """One colour per trajectory name; the single path of all cells (``single``) in :data:`SINGLE_COLOR`."""
    if single:
        return {
            ALL_CELLS: SINGLE_COLOR,
            **dict(zip(names[1:], palette(max(len(names) - 1, 0)), strict=True)),
        }
    return dict(zip(names, palette(len(names)), strict=True))


def time_label(t: float) -> str:
    """A time step as shown on the plots: ``2`` for 2.0, ``2.5`` otherwise."""
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def plot_cells(
    ax: Axes,
    adata: AnnData,
    coords: np.ndarray,
    times: np.ndarray,
    ref_coords: np.ndarray | None,
    rows: np.ndarray,
    time_key: str,
    color_key: str | None,
) -> list:
    """Scatter the reference and ``adata`` cells; the legend handles of categorical ``color_key`` values."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

    n_total = len(coords) + (0 if ref_coords is None else len(ref_coords))
    s = marker_size(n_total)
    if ref_coords is not None:
        ax.scatter(
            ref_coords[:, 0],
            ref_coords[:, 1],
            s=s,
            c=REFERENCE_COLOR,
            linewidths=0,
            zorder=1,
            rasterized=True,
            label=f"reference ({len(ref_coords):,})",
        )
    if color_key is None:
        values, label = times, time_key
    else:
        col = adata.obs[color_key].iloc[rows]
        label = color_key
        if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(col.dtype):
            return _plot_categories(ax, coords, col, s)
        values = col.to_numpy(dtype=np.float64)
    ok = np.isfinite(values)
    if (~ok).any():
        ax.scatter(coords[~ok, 0], coords[~ok, 1], s=s, c="#9e9e9e", linewidths=0, zorder=2, rasterized=True)
    if not ok.any():
        return []
    steps = np.unique(values[ok])
    if len(steps) <= 20:  # discrete time steps: one colour each, ticks at the steps
        base = colormaps[TIME_CMAP]
        cmap = ListedColormap([base(v) for v in np.linspace(0.0, 1.0, len(steps))])
        mids = (steps[1:] + steps[:-1]) / 2
        lo = steps[0] - (mids[0] - steps[0] if len(steps) > 1 else 0.5)
        hi = steps[-1] + (steps[-1] - mids[-1] if len(steps) > 1 else 0.5)
        norm = BoundaryNorm(np.concatenate([[lo], mids, [hi]]), cmap.N)
    else:
        cmap, norm = colormaps[TIME_CMAP], Normalize(steps[0], steps[-1])
    sc = ax.scatter(
        coords[ok, 0],
        coords[ok, 1],
        s=s,
        c=values[ok],
        cmap=cmap,
        norm=norm,
        linewidths=0,
        alpha=0.75,
        zorder=2,
        rasterized=True,
    )
    cbar = ax.figure.colorbar(sc, ax=ax, shrink=0.6, pad=0.01, aspect=30)
    if len(steps) <= 20:
        cbar.set_ticks(steps)
        cbar.set_ticklabels([time_label(t) for t in steps])
    cbar.set_label(label)
    return []


def _plot_categories(ax: Axes, coords: np.ndarray, col: pd.Series, s: float) -> list:
    labels = col.astype(object).where(col.notna(), "NA").astype(str).to_numpy()
    order = [str(c) for c in col.cat.categories] if isinstance(col.dtype, pd.CategoricalDtype) else []
    present = set(labels)
    cats = [c for c in order if c in present] + sorted(present.difference(order))
    colors = dict(zip(cats, palette(len(cats)), strict=True))
    ax.scatter(
        coords[:, 0],
        coords[:, 1],
        s=s,
        c=[colors[v] for v in labels],
        linewidths=0,
        alpha=0.6,
        zorder=2,
        rasterized=True,
    )
    return [ax.scatter([], [], s=30, color=colors[c], label=c) for c in cats]


def plot_paths(ax: Axes, centroids: dict[str, pd.DataFrame], colors: dict[str, str]) -> list:
    """Draw each trajectory's centroid path with arrows and time labels; return its legend handles."""
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    halo = [patheffects.withStroke(linewidth=5, foreground="white")]
    text_halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    handles = []
    for name, cent in centroids.items():
        color = colors[name]
        xy, steps = cent[["x", "y"]].to_numpy(), cent.index.to_numpy(dtype=np.float64)
        (line,) = ax.plot(
            xy[:, 0],
            xy[:, 1],
            "-o",
            color=color,
            lw=2.2,
            ms=6.5,
            mec="white",
            mew=1.0,
            zorder=5,
            label=name,
            path_effects=halo,
        )
        line.set_gid(f"path:{name}")
        handles.append(Line2D([], [], color=color, lw=2.2, marker="o", ms=6.5, mec="white", label=name))
        for a, b in zip(xy[:-1], xy[1:], strict=True):  # arrowhead half-way along each step
            if np.allclose(a, b):
                continue
            arrow = ax.annotate(
                "",
                xy=(a + b) / 2,
                xytext=a,
                zorder=6,
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": color,
                    "lw": 2.2,
                    "mutation_scale": 16,
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
            )
            arrow.set_gid(f"arrow:{name}")
        every = max(1, int(np.ceil(len(steps) / 10)))
        for i, (t, (x, y)) in enumerate(zip(steps, xy, strict=True)):
            if i % every == 0 or i == len(steps) - 1:
                text = ax.annotate(
                    time_label(t),
                    (x, y),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=8,
                    color=color,
                    fontweight="bold",
                    zorder=7,
                    path_effects=text_halo,
                )
                text.set_gid(f"time:{name}")
    return handles


def plot_reference_paths(ax: Axes, centroids: dict[str, pd.DataFrame], colors: dict[str, str]) -> None:
    """The reference's per-trajectory centroid paths: dashed, in the colour of the trajectory."""
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=4, foreground="white")]
    for name, cent in centroids.items():
        (line,) = ax.plot(
            cent["x"].to_numpy(),
            cent["y"].to_numpy(),
            "--s",
            color=colors.get(name, SINGLE_COLOR),
            lw=1.8,
            ms=4.5,
            mfc="white",
            zorder=4,
            path_effects=halo,
        )
        line.set_gid(f"{REFERENCE_PATH}:{name}")


def reference_handles(
    n_drawn: int, per_trajectory: bool, names: tuple[str, str], fates: Fates | None
) -> list:
    """Legend entries that tell ``adata``'s solid paths from the reference's dashed ones and grey cells."""
    from matplotlib.lines import Line2D

    own, ref = names
    why = "" if per_trajectory or fates is None else f"; not split by trajectory: {fates.reason}"
    label = f"{ref} cells ({n_drawn:,}{why})"
    cells = Line2D([], [], ls="", marker="o", ms=5, color=REFERENCE_COLOR, label=label)
    if not per_trajectory:
        return [cells]
    return [
        Line2D([], [], color="0.35", lw=2.2, marker="o", ms=5, mec="white", label=f"{own} (solid)"),
        Line2D([], [], color="0.35", lw=1.8, ls="--", marker="s", ms=4, mfc="white", label=f"{ref} (dashed)"),
        cells,
    ]
