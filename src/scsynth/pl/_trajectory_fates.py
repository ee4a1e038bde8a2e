"""Which trajectory each cell follows: the cells' own column, and the reference cells' fates.

The reference (e.g. real cells) is split by trajectory by its own trajectory column or by the lineage
blueprint, else pooled, with the reason; see :func:`scsynth.pl.plot_trajectory`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from anndata import AnnData

    from ..data import Blueprint

#: Name of the single path drawn when the cells have no trajectory column.
ALL_CELLS = "all cells"


def numeric_obs(adata: AnnData, key: str, name: str) -> np.ndarray:
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


def cell_trajectories(adata: AnnData, key: str | None) -> tuple[np.ndarray, list[str]]:
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


def origin_names(adata: AnnData) -> tuple[str, str]:
    """What to call ``adata`` and the reference in legends: generated cells carry ``uns["scsynth"]``."""
    return ("generated", "real") if "scsynth" in adata.uns else ("adata", "reference")


@dataclass(frozen=True)
class Fates:
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


def _pooled(times: np.ndarray, reason: str) -> Fates:
    member = np.ones((len(times), 1), dtype=bool)
    return Fates([ALL_CELLS], member, times, f"all cells pooled ({reason})", reason)


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


def reference_fates(
    reference: AnnData,
    traj_names: list[str],
    *,
    trajectory_key: str | None,
    time_key: str,
    label_key: str,
    blueprint,
) -> Fates:
    """Assign the reference cells to the trajectories of ``adata``: by column, by blueprint, or pooled."""
    times = numeric_obs(reference, time_key, "reference")
    if trajectory_key is None:
        return _pooled(times, "a single path")
    if trajectory_key in reference.obs.columns:
        ref_traj, names = cell_trajectories(reference, trajectory_key)
        member = np.asarray(ref_traj, dtype=object)[:, None] == np.asarray(names, dtype=object)[None, :]
        member = member.reshape(reference.n_obs, len(names))
        return Fates(names, member, times, f"per trajectory, by obs[{trajectory_key!r}]")
    if blueprint is None:
        return _pooled(times, "no blueprint")
    bp = _as_blueprint(blueprint)

    def unusable(reason: str, advice: str) -> Fates:
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
    return Fates(shared, member, times, "per trajectory, from the blueprint")

