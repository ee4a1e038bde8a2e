"""Where the cells of a trajectory plot lie: a stored or computed embedding, and per-step centroids."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from ..data._matrix import normalize_total
from ._embedding import joint_embedding
from ._utils import expression, subsample, take_matrix

if TYPE_CHECKING:
    from anndata import AnnData


def coordinates(
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
    ref_rows = None if reference is None else subsample(reference.n_obs, max_cells, rng)
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
        normalize_total(
            take_matrix(
                expression(adata, layer, "adata"), rows, adata.var_names.get_indexer(shared), "adata"
            ),
            library_size,
        )
    ]
    if reference is not None:
        parts.append(
            normalize_total(
                take_matrix(
                    expression(reference, layer, "reference"),
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
    emb = joint_embedding(joint, joint[:0], basis=basis, n_hvg=n_hvg, seed=seed)[0]
    n = len(rows)
    label = "UMAP" if basis == "umap" else "PCA"
    return emb[:n], rows, (None if reference is None else emb[n:]), ref_rows, label


def _stored(adata: AnnData, key: str, name: str) -> np.ndarray:
    emb = np.asarray(adata.obsm[key], dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] < 2:
        raise ValueError(f"`{name}.obsm[{key!r}]` must have at least two columns, got shape {emb.shape}.")
    return emb[:, :2]


def path_centroids(coords: np.ndarray, traj: np.ndarray, times: np.ndarray) -> dict[str, pd.DataFrame]:
    """Per trajectory, the mean coordinates (columns ``x``, ``y``) of its cells per time step, time-sorted."""
    df = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "traj": traj, "time": times})
    df = df[df["traj"].notna() & np.isfinite(df["time"])]
    out = {}
    for name, group in df.groupby("traj", sort=False):
        out[str(name)] = group.groupby("time", sort=True)[["x", "y"]].mean()
    return out
