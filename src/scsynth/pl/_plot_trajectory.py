"""Developmental trajectories in an embedding: per-time-step centroid paths and gene trends over time."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from ..data._matrix import check_values
from ..data._validate import check_anndata, check_not_empty
from ._real_vs_generated import _embed, _marker_size
from ._utils import _expression, _finish, _normalize_total, _palette, _subsample, _take

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..data import Blueprint

#: Name of the single path drawn when the cells have no trajectory column.
ALL_CELLS = "all cells"
#: Colour of the cells of ``reference`` in the embedding.
REFERENCE_COLOR = "#d9d9d9"
#: Colour of the single path (no trajectory column) and of the overall reference trend.
SINGLE_COLOR = "#222222"
#: Sequential colour map of the time steps.
TIME_CMAP = "viridis"
_DEFAULT_TRAJECTORY_KEY = "trajectory"
#: Prefix of the ``gid`` of the reference's per-trajectory centroid paths in the embedding.
REFERENCE_PATH = "reference-path"


def plot_trajectory(
    adata: AnnData,
    *,
    basis: str = "umap",
    trajectory_key: str | None = _DEFAULT_TRAJECTORY_KEY,
    time_key: str = "time",
    reference: AnnData | None = None,
    genes: Sequence[str] | str | None = None,
    layer: str | None = None,
    color_key: str | None = None,
    blueprint: Blueprint | pd.DataFrame | None = None,
    label_key: str = "label",
    n_hvg: int = 1000,
    library_size: float = 1e4,
    max_cells: int = 3000,
    seed: int = 0,
    show: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Draw developmental trajectories as paths through their per-time-step centroids in an embedding.

    The left panel shows the cells of ``adata`` in a two-dimensional embedding, coloured by time (a
    sequential colour map with a colour bar) or by ``color_key``; the cells of ``reference`` (e.g. the
    real cells when ``adata`` was generated) are drawn behind in light grey. For every trajectory (each
    category of ``obs[trajectory_key]``), a path joins the centroids of its cells at consecutive time
    steps (ascending time): a line with arrows pointing forward in time and a marker labelled with the
    time step at each centroid, one colour per trajectory. Without a trajectory column, one path joins
    the per-time-step centroids of all cells.

    The embedding is ``obsm[f"X_{basis}"]`` (first two dimensions) when ``adata`` has it (and so does
    ``reference``, when given: both must then lie in one space). Otherwise it is computed on copies: at
    most ``max_cells`` cells of each data set are library-size normalised to ``library_size`` and log1p
    transformed (counts, or non-negative normalised values such as FPKM, over the genes both data sets
    share), the top ``n_hvg`` highly variable genes of all these cells (scanpy, flavour ``"seurat"``)
    feed a PCA fitted on the union of ``adata`` and ``reference``, so real and generated cells share one
    space, followed for ``basis="umap"`` by scanpy's neighbours graph and UMAP on the PCA.

    With ``genes``, one small panel per gene (in a grid on the right) shows its mean log-normalised
    expression (``log1p`` of the values scaled to ``library_size`` per cell) over time for every
    trajectory, in the colours of the paths (solid), shaded ± one standard error of the mean.

    **Reference per trajectory.** When ``reference`` has ``time_key``, its cells are compared fate by
    fate wherever they can be assigned to the trajectories of ``adata``, and each trajectory's
    reference is drawn dashed in that trajectory's colour: a dashed centroid path in the embedding
    and a dashed mean trend (± s.e., lighter shading) in every gene panel. The cells are assigned

    1. by ``reference.obs[trajectory_key]`` when the reference has that column (e.g. trajectories
       assigned by :meth:`~scsynth.model.GeneSys.assign_trajectories`), otherwise
    2. by the lineage blueprint (``blueprint``, or ``adata.uns["blueprint"]``, which GeneSys' generated
       cells carry): a reference cell belongs to trajectory ``r`` at time ``t`` when its
       ``obs[label_key]`` is the blueprint's label of ``r`` at ``t``. A (label, time) shared by
       several trajectories, e.g. a common progenitor, counts for each of them.

    Otherwise (no trajectory column and no blueprint, no ``label_key`` column, no cell matching the
    blueprint, or a single path) the reference is drawn as one pooled dashed trend over all its
    cells, and the legend says so and why. Legends tell the solid (``adata``; "generated" when it
    carries scsynth's ``uns["scsynth"]``) from the dashed (reference; "real") lines.

    Parameters
    ----------
    adata
        Cells to draw, e.g. the AnnData generated by GeneSys, with the time step in ``obs[time_key]``
        and the trajectory in ``obs[trajectory_key]``. Counts or non-negative normalised expression,
        dense or sparse. It is not modified.
    basis
        Embedding: a stored ``obsm[f"X_{basis}"]``, or else one computed as described above, which is
        possible for ``"umap"`` and ``"pca"`` (first two principal components).
    trajectory_key
        Column of ``.obs`` naming the trajectory of each cell (e.g. ``"genesys_trajectory"`` for real
        cells assigned by a classifier). ``None``, or the default ``"trajectory"`` when ``adata`` has no
        such column, draws a single path through all cells; any other missing column raises a
        :class:`KeyError`.
    time_key
        Column of ``.obs`` holding the numeric time step of each cell (required). Cells without a time
        are drawn in grey and left out of the paths and trends.
    reference
        Optional second data set (e.g. real cells) drawn behind ``adata`` in light grey and as dashed
        paths and trends (see above). Matched to ``adata`` by gene name. It is not modified.
    genes
        Names of genes (in ``adata.var_names``) whose expression over time is plotted, one panel each.
    layer
        Layer holding the expression in ``adata`` (and ``reference``); ``None`` uses ``.X``.
    color_key
        Column of ``adata.obs`` (e.g. ``"label"``) colouring the cells instead of the time: categories
        get a legend, numbers a colour bar.
    blueprint
        Lineage blueprint (:class:`~scsynth.data.Blueprint`, e.g. ``model.blueprint``, or a DataFrame:
        trajectories x time steps ``1..T``) used to assign ``reference`` cells to the trajectories;
        default ``adata.uns["blueprint"]`` when present. Its trajectory names must be those of
        ``adata.obs[trajectory_key]``.
    label_key
        Column of ``reference.obs`` holding the cell labels named in the blueprint.
    n_hvg
        Number of highly variable genes used for a computed embedding; all shared genes when there are
        fewer.
    library_size
        Total each cell is scaled to before log1p, in the embedding and in the gene panels.
    max_cells
        Maximum number of cells of each data set embedded and drawn. Centroids are averaged over all
        cells with coordinates: every cell for a stored embedding, the embedded ones otherwise.
    seed
        Seed of the subsampling, PCA and UMAP.
    show
        Call :func:`matplotlib.pyplot.show` at the end.
    figsize
        Figure size in inches; chosen from the number of gene panels when ``None``.

    Returns
    -------
    The figure. The embedding axes has the label ``"embedding"``, one path line per trajectory
    (``gid`` ``"path:<trajectory>"``) and one dashed path per trajectory of the reference
    (``"reference-path:<trajectory>"``); gene axes are labelled ``"gene:<name>"``, with lines
    ``"gene:<name>:<trajectory>"`` and ``"reference:<name>:<trajectory>"`` (``"all cells"`` when
    pooled). Inputs are left unchanged.

    Examples
    --------
    >>> import scsynth
    >>> fig = scsynth.pl.plot_trajectory(adata_gen, reference=adata, genes=["GATA1", "SPI1"])
    >>> fig.savefig("trajectories.png", dpi=150)

    ``adata_gen`` (from ``model.generate``) carries the blueprint, so the real cells of ``adata`` are
    drawn per fate; for other cells pass it, e.g. ``blueprint=model.blueprint``.

    Real cells with trajectories assigned by a classifier, on their stored UMAP:

    >>> fig = scsynth.pl.plot_trajectory(adata, trajectory_key="genesys_trajectory", color_key="label")
    """
    check_anndata(adata)
    if reference is not None:
        check_anndata(reference, "reference")
        check_not_empty(reference, "reference")
    if max_cells < 2 or n_hvg < 2 or not library_size > 0:
        raise ValueError("`max_cells` and `n_hvg` must be at least 2 and `library_size` positive.")
    _require_column(adata, time_key, "time_key", "adata")
    if color_key is not None:
        _require_column(adata, color_key, "color_key", "adata")
    if trajectory_key is not None and trajectory_key not in adata.obs.columns:
        if trajectory_key != _DEFAULT_TRAJECTORY_KEY:
            _require_column(adata, trajectory_key, "trajectory_key", "adata")
        trajectory_key = None
    if adata.n_obs < 1:
        raise ValueError("`adata` has no cells.")
    gene_list = _check_genes(adata, genes)

    times = _numeric(adata, time_key, "adata")
    traj, traj_names = _trajectories(adata, trajectory_key)
    fates = None
    if reference is not None and time_key in reference.obs.columns:
        if blueprint is None:
            blueprint = adata.uns.get("blueprint")
        fates = _reference_fates(
            reference,
            traj_names,
            trajectory_key=trajectory_key,
            time_key=time_key,
            label_key=label_key,
            blueprint=blueprint,
        )
    ref_traj_names = [] if fates is None or fates.pooled else [n for n in fates.names if n not in traj_names]
    colors = _path_colors(traj_names + ref_traj_names, single=trajectory_key is None)
    names = _origin_names(adata)

    rng = np.random.default_rng(seed)
    rows = _subsample(adata.n_obs, max_cells, rng)
    coords, coord_rows, ref_coords, ref_rows, basis_label = _coordinates(
        adata,
        reference,
        rows,
        basis=basis,
        layer=layer,
        n_hvg=n_hvg,
        library_size=library_size,
        max_cells=max_cells,
        rng=rng,
        seed=seed,
    )
    centroids = _centroids(coords, traj[coord_rows], times[coord_rows])
    drawn = coords[np.searchsorted(coord_rows, rows)]  # coord_rows: sorted, every cell or just `rows`

    import matplotlib.pyplot as plt

    n_genes = len(gene_list)
    ncols = 0 if n_genes == 0 else 1 if n_genes <= 3 else 2 if n_genes <= 8 else 3
    nrows = 0 if n_genes == 0 else int(np.ceil(n_genes / ncols))
    if figsize is None:
        figsize = (7.6, 6.2) if n_genes == 0 else (7.6 + 3.3 * ncols, max(6.2, 2.4 * nrows))
    fig = plt.figure(figsize=figsize, layout="constrained")
    if n_genes:
        left, right = fig.subfigures(1, 2, width_ratios=[7.6, 3.3 * ncols], wspace=0.02)
    else:
        left, right = fig, None
    ax = left.subplots()
    ax.set_label("embedding")
    label_handles = _plot_cells(ax, left, adata, drawn, times[rows], ref_coords, rows, time_key, color_key)
    ref_centroids: dict[str, pd.DataFrame] = {}
    if fates is not None and not fates.pooled and ref_coords is not None:
        idx, member = fates.expand(ref_rows)
        ref_centroids = _centroids(ref_coords[idx], member, fates.times[ref_rows][idx])
    handles = _plot_paths(ax, centroids, colors)
    _plot_reference_paths(ax, ref_centroids, colors)
    if ref_coords is not None:
        handles += _reference_handles(len(ref_coords), bool(ref_centroids), names, fates)
    if handles:
        ax.legend(
            handles=handles, loc="best", fontsize="small", title=trajectory_key or None, framealpha=0.85
        )
    if label_handles:  # the last legend is the one constrained layout makes room for
        if ax.legend_ is not None:
            ax.add_artist(ax.legend_)  # keep the trajectory legend
        ax.legend(
            handles=label_handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize="small",
            title=color_key,
            borderaxespad=0,
            ncol=int(np.ceil(len(label_handles) / 16)),
        )
    axis = {"umap": "UMAP", "pca": "PC"}.get(basis, basis.upper())
    ax.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2", xticks=[], yticks=[])
    if trajectory_key is None:
        ax.set_title(f"Time course of all cells ({basis_label})")
    else:
        ax.set_title(f"{len(traj_names)} trajector{'y' if len(traj_names) == 1 else 'ies'} ({basis_label})")

    if right is not None:
        gene_axes = right.subplots(nrows, ncols, squeeze=False)
        _plot_genes(
            gene_axes,
            adata,
            reference,
            gene_list,
            traj,
            times,
            colors,
            fates=fates,
            names=names,
            time_key=time_key,
            layer=layer,
            library_size=library_size,
        )
    return _finish(fig, show)


# --------------------------------------------------------------------------------------------- checks


def _require_column(adata: AnnData, key: str, arg: str, name: str) -> None:
    if key not in adata.obs.columns:
        cols = list(map(str, adata.obs.columns))
        shown = cols[:20] + (["..."] if len(cols) > 20 else [])
        raise KeyError(f"`{arg}` {key!r} is not a column of `{name}.obs` (available columns: {shown}).")


def _check_genes(adata: AnnData, genes: Sequence[str] | str | None) -> list[str]:
    if genes is None:
        return []
    gene_list = [genes] if isinstance(genes, str) else [str(g) for g in genes]
    if not adata.var_names.is_unique:
        raise ValueError("`adata.var_names` are not unique; call `adata.var_names_make_unique()`.")
    missing = [g for g in gene_list if g not in adata.var_names]
    if missing:
        raise KeyError(f"Gene(s) {missing} are not in `adata.var_names` (e.g. {list(adata.var_names[:5])}).")
    return list(dict.fromkeys(gene_list))


def _numeric(adata: AnnData, key: str, name: str) -> np.ndarray:
    """``obs[key]`` as float64 (categories of numbers included); NaN where missing."""
    col = adata.obs[key]
    raw = pd.Series(np.asarray(col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col))
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        raise ValueError(
            f"`{name}.obs[{key!r}]` must hold numeric time steps; {raw[bad].iloc[0]!r} is not a number."
        )
    return values.to_numpy(dtype=np.float64)


def _trajectories(adata: AnnData, key: str | None) -> tuple[np.ndarray, list[str]]:
    """Trajectory name of every cell (``None`` where missing) and the names present, in category order."""
    if key is None:
        return np.full(adata.n_obs, ALL_CELLS, dtype=object), [ALL_CELLS]
    col = adata.obs[key]
    values = np.asarray(col.astype(object)).copy()
    missing = pd.isna(values)
    values[~missing] = [str(v) for v in values[~missing]]
    values[missing] = None
    present = set(values[~missing])
    if isinstance(col.dtype, pd.CategoricalDtype):
        order = [str(c) for c in col.cat.categories]
        names = [c for c in order if c in present] + sorted(present.difference(order))
    else:
        names = list(dict.fromkeys(values[~missing]))
    return values, names


def _origin_names(adata: AnnData) -> tuple[str, str]:
    """What to call ``adata`` and the reference in legends: generated cells carry ``uns["scsynth"]``."""
    return ("generated", "real") if "scsynth" in adata.uns else ("adata", "reference")


@dataclass(frozen=True)
class _Fates:
    """Which reference cells stand for which trajectory: ``member[cell, k]`` for ``names[k]``.

    A cell may belong to several trajectories (a progenitor shared in the blueprint). ``pooled``: one
    group of all cells (``names == [ALL_CELLS]``), for the reason given by ``reason``.
    """

    names: list[str]
    member: np.ndarray
    times: np.ndarray
    how: str
    reason: str = ""

    @property
    def pooled(self) -> bool:
        return bool(self.reason)

    def expand(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions into ``rows`` (a cell once per trajectory it belongs to) and that trajectory's name."""
        pos, k = np.nonzero(self.member[rows])
        return pos, np.asarray(self.names, dtype=object)[k]


def _pooled(times: np.ndarray, reason: str) -> _Fates:
    member = np.ones((len(times), 1), dtype=bool)
    return _Fates([ALL_CELLS], member, times, f"all cells pooled ({reason})", reason)


def _as_blueprint(blueprint) -> Blueprint:
    from ..data import Blueprint, read_blueprint

    if isinstance(blueprint, dict):
        return Blueprint.from_dict(blueprint)
    if isinstance(blueprint, Blueprint | pd.DataFrame):
        return read_blueprint(blueprint)
    raise TypeError(
        f"`blueprint` must be a Blueprint (e.g. `model.blueprint`) or a DataFrame (trajectories x time "
        f"steps), got {type(blueprint).__name__}."
    )


def _reference_fates(
    reference: AnnData,
    traj_names: list[str],
    *,
    trajectory_key: str | None,
    time_key: str,
    label_key: str,
    blueprint,
) -> _Fates:
    """Assign the reference cells to the trajectories of ``adata``: by column, by blueprint, or pooled."""
    times = _numeric(reference, time_key, "reference")
    if trajectory_key is None:
        return _pooled(times, "a single path")
    if trajectory_key in reference.obs.columns:
        ref_traj, names = _trajectories(reference, trajectory_key)
        member = np.asarray(ref_traj, dtype=object)[:, None] == np.asarray(names, dtype=object)[None, :]
        member = member.reshape(reference.n_obs, len(names))
        return _Fates(names, member, times, f"per trajectory, by obs[{trajectory_key!r}]")
    if blueprint is None:
        return _pooled(times, "no blueprint")
    bp = _as_blueprint(blueprint)

    def unusable(reason: str, advice: str) -> _Fates:
        warnings.warn(
            f"The reference cells are drawn pooled, not per trajectory: {reason}. {advice}",
            UserWarning,
            stacklevel=4,
        )
        return _pooled(times, reason)

    if label_key not in reference.obs.columns:
        return unusable(
            f"`reference.obs` has no {label_key!r} column to match the blueprint's labels",
            "Pass `label_key=` the column holding the cell labels.",
        )
    shared = [n for n in traj_names if n in bp.trajectories]
    if not shared:
        return unusable(
            f"none of the trajectories {traj_names[:10]} is in the blueprint ({bp.trajectories[:10]})",
            "Pass the blueprint the cells were generated with (`blueprint=model.blueprint`).",
        )
    col = reference.obs[label_key]
    labels = np.asarray(col.astype(object), dtype=object)
    labels = np.array([None if pd.isna(v) else str(v) for v in labels], dtype=object)
    step = np.where(np.isfinite(times) & (times % 1 == 0) & (times >= 1) & (times <= bp.n_times), times, 0)
    step = step.astype(np.int64)
    table = bp.table.to_numpy(dtype=object)
    member = np.zeros((reference.n_obs, len(shared)), dtype=bool)
    on = step > 0
    for k, name in enumerate(shared):
        wanted = table[bp.trajectories.index(name)]
        member[on, k] = labels[on] == wanted[step[on] - 1]
    if not member.any():
        return unusable(
            f"no reference cell has a blueprint label at its time step (obs[{label_key!r}] and "
            f"obs[{time_key!r}])",
            "Check that `label_key` names the column of the blueprint's labels and that times count from 1.",
        )
    return _Fates(shared, member, times, "per trajectory, from the blueprint")


def _path_colors(names: list[str], *, single: bool) -> dict[str, str]:
    if single:
        return {
            ALL_CELLS: SINGLE_COLOR,
            **dict(zip(names[1:], _palette(max(len(names) - 1, 0)), strict=True)),
        }
    return dict(zip(names, _palette(len(names)), strict=True))


# ------------------------------------------------------------------------------------------ embedding


def _coordinates(
    adata: AnnData,
    reference: AnnData | None,
    rows: np.ndarray,
    *,
    basis: str,
    layer: str | None,
    n_hvg: int,
    library_size: float,
    max_cells: int,
    rng: np.random.Generator,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """Two-dimensional coordinates of cells of ``adata``, which rows they belong to, those of the drawn
    ``reference`` cells and their rows, and the name of the embedding.

    A stored embedding gives coordinates of every cell of ``adata``; a computed one only of ``rows``.
    """
    key = f"X_{basis}"
    ref_rows = None if reference is None else _subsample(reference.n_obs, max_cells, rng)
    stored = key in adata.obsm
    if stored and reference is not None and key not in reference.obsm:
        warnings.warn(
            f"`reference.obsm` has no {key!r}; computing a joint embedding of `adata` and `reference` "
            f"instead of using `adata.obsm[{key!r}]`.",
            UserWarning,
            stacklevel=3,
        )
        stored = False
    if stored:
        coords = _stored(adata, key, "adata")
        ref_coords = None if reference is None else _stored(reference, key, "reference")[ref_rows]
        label = {"umap": "UMAP", "pca": "PCA"}.get(basis, basis)
        return coords, np.arange(adata.n_obs), ref_coords, ref_rows, label
    if basis not in ("umap", "pca"):
        raise ValueError(
            f"`adata.obsm` has no {key!r} and only 'umap' or 'pca' can be computed; got `basis={basis!r}`."
        )
    if not adata.var_names.is_unique:
        raise ValueError("`adata.var_names` are not unique; call `adata.var_names_make_unique()`.")
    if reference is None:
        shared = adata.var_names
    else:
        if not reference.var_names.is_unique:
            raise ValueError(
                "`reference.var_names` are not unique; call `reference.var_names_make_unique()`."
            )
        shared = adata.var_names[adata.var_names.isin(reference.var_names)]
    if len(shared) < 2:
        raise ValueError(
            f"{len(shared)} gene(s) usable for the embedding; at least 2 are needed"
            + ("" if reference is None else " (genes are matched between `adata` and `reference` by name)")
            + "."
        )
    parts = [
        _normalize_total(
            _take(_expression(adata, layer, "adata"), rows, adata.var_names.get_indexer(shared), "adata"),
            library_size,
        )
    ]
    if reference is not None:
        parts.append(
            _normalize_total(
                _take(
                    _expression(reference, layer, "reference"),
                    ref_rows,
                    reference.var_names.get_indexer(shared),
                    "reference",
                ),
                library_size,
            )
        )
    joint = sparse.vstack(parts, format="csr")
    if joint.shape[0] < 3:
        raise ValueError(f"{joint.shape[0]} cell(s) to embed; at least 3 are needed to compute an embedding.")
    # HVGs of all drawn cells (first argument), PCA on their union, then UMAP for basis="umap"
    emb = _embed(joint, joint[:0], basis=basis, n_hvg=n_hvg, seed=seed)
    n = len(rows)
    label = "UMAP" if basis == "umap" else "PCA"
    return emb[:n], rows, (None if reference is None else emb[n:]), ref_rows, label


def _stored(adata: AnnData, key: str, name: str) -> np.ndarray:
    emb = np.asarray(adata.obsm[key], dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] < 2:
        raise ValueError(f"`{name}.obsm[{key!r}]` must have at least two columns, got shape {emb.shape}.")
    return emb[:, :2]


def _centroids(coords: np.ndarray, traj: np.ndarray, times: np.ndarray) -> dict[str, pd.DataFrame]:
    """Per trajectory, the mean coordinates (columns ``x``, ``y``) of its cells per time step, time-sorted."""
    df = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "traj": traj, "time": times})
    df = df[df["traj"].notna() & np.isfinite(df["time"])]
    out = {}
    for name, group in df.groupby("traj", sort=False):
        out[str(name)] = group.groupby("time", sort=True)[["x", "y"]].mean()
    return out


# ------------------------------------------------------------------------------------------- drawing


def _time_label(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def _plot_cells(
    ax: Axes,
    fig,
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
    s = _marker_size(n_total)
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
    cbar = fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.01, aspect=30)
    if len(steps) <= 20:
        cbar.set_ticks(steps)
        cbar.set_ticklabels([_time_label(t) for t in steps])
    cbar.set_label(label)
    return []


def _plot_categories(ax: Axes, coords: np.ndarray, col: pd.Series, s: float) -> list:
    labels = col.astype(object).where(col.notna(), "NA").astype(str).to_numpy()
    order = [str(c) for c in col.cat.categories] if isinstance(col.dtype, pd.CategoricalDtype) else []
    present = set(labels)
    cats = [c for c in order if c in present] + sorted(present.difference(order))
    colors = dict(zip(cats, _palette(len(cats)), strict=True))
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


def _plot_paths(ax: Axes, centroids: dict[str, pd.DataFrame], colors: dict[str, str]) -> list:
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
                    _time_label(t),
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


def _plot_reference_paths(ax: Axes, centroids: dict[str, pd.DataFrame], colors: dict[str, str]) -> None:
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


def _reference_handles(
    n_drawn: int, per_trajectory: bool, names: tuple[str, str], fates: _Fates | None
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


def _log_expression(
    adata: AnnData, genes: list[str], layer: str | None, library_size: float, name: str
) -> np.ndarray:
    """``log1p`` of the expression of ``genes`` scaled to ``library_size`` per cell (all genes' total)."""
    matrix = _expression(adata, layer, name)
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


def _plot_genes(
    axes: np.ndarray,
    adata: AnnData,
    reference: AnnData | None,
    genes: list[str],
    traj: np.ndarray,
    times: np.ndarray,
    colors: dict[str, str],
    *,
    fates: _Fates | None,
    names: tuple[str, str],
    time_key: str,
    layer: str | None,
    library_size: float,
) -> None:
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
    for i, ax in enumerate(axes.ravel()):
        if i >= len(genes):
            ax.set_axis_off()
            continue
        gene = genes[i]
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
        if i % axes.shape[1] == 0:
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
        axes.ravel()[0].legend(handles=handles, fontsize="x-small", loc="best", framealpha=0.8)
