"""The GeneSys lineage blueprint: the label each trajectory samples at each time step.

A lineage blueprint is a table with one row per trajectory and one column per time step; each entry is
the cell label to draw from at that step. Reading it (GeneSys' ``lineage.txt``, a DataFrame) is in
``_blueprint_io``, GeneSys' ``annotations.txt`` in ``_annotations``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ._time_steps import time_steps
from ._validate import examples, listing, plural

_FORMAT = "scsynth.Blueprint"
_VERSION = 1


def _check_table(table: pd.DataFrame) -> pd.DataFrame:
    """Validate a ready-made blueprint table and return a normalised copy (object values, int columns)."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"Blueprint needs a pandas DataFrame, got {type(table).__name__}; use `read_blueprint()` to read "
            "a lineage.txt file."
        )
    n_rows, n_cols = table.shape
    if n_rows == 0:
        raise ValueError("The blueprint table has no trajectories (rows).")
    if n_cols < 2:
        raise ValueError(
            f"The blueprint table has {plural(n_cols, 'time step')}; GeneSys needs at least 2 (it learns "
            "transitions between consecutive time steps)."
        )
    cols = list(table.columns)
    if not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in cols) or [
        int(c) for c in cols
    ] != list(range(1, n_cols + 1)):
        raise ValueError(
            f"The blueprint table's columns must be the time steps 1..{n_cols} in order, got "
            f"{examples(cols)}; use `read_blueprint(table)` to renumber them."
        )
    names = list(table.index)
    if not all(isinstance(n, str) for n in names):
        raise ValueError("The blueprint table's index must hold the trajectory names as strings.")
    if table.index.has_duplicates:
        raise ValueError(
            f"Duplicated trajectory names: {examples(table.index[table.index.duplicated()].unique())}; "
            "names must be unique."
        )
    values = table.to_numpy(dtype=object)
    bad = [(r, t) for (r, t), v in np.ndenumerate(values) if not isinstance(v, str) or not v]
    if bad:
        r, t = bad[0]
        raise ValueError(
            f"The blueprint table must hold non-empty strings; trajectory {names[r]!r} at time {t + 1} holds "
            f"{values[r, t]!r}. Use `read_blueprint(table)` to convert and check a table."
        )
    index = pd.Index(names, dtype=object, name="trajectory")
    columns = pd.RangeIndex(1, n_cols + 1, name="time")
    return pd.DataFrame(values, index=index, columns=columns, dtype=object)


class Blueprint:
    """An immutable GeneSys lineage blueprint: the label each trajectory samples at each time step.

    Build it with :func:`read_blueprint`; store it with :meth:`to_dict` and restore it with
    :meth:`from_dict`. A trajectory's row position (0-based) is its class in GeneSys' classifier.

    Parameters
    ----------
    table
        Index: trajectory names (unique strings); columns: the time steps ``1..T`` (ints); values: the
        labels (non-empty strings). It is copied; :attr:`table` returns a copy too, so editing it
        does not change the blueprint.

    Examples
    --------
    >>> from scsynth.data import read_blueprint
    >>> rows = [["QC", "Cortex", "Cortex"], ["QC", "Xylem", "Xylem"]]
    >>> bp = read_blueprint(pd.DataFrame(rows, index=["cortex", "xylem"]))
    >>> bp
    Blueprint: 2 trajectories x 3 time steps (labels: 'QC', 'Cortex', 'Xylem')
    >>> bp.label("xylem", 2)
    'Xylem'
    """

    __slots__ = ("_table", "_values")

    def __init__(self, table: pd.DataFrame) -> None:
        checked = _check_table(table)
        values = checked.to_numpy(dtype=object)
        values.setflags(write=False)
        object.__setattr__(self, "_table", checked)
        object.__setattr__(self, "_values", values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Blueprint is immutable; build a new one with `read_blueprint()`.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Blueprint is immutable.")

    def __reduce__(self):
        # __slots__ plus the blocked __setattr__ would break the default pickle/deepcopy protocol
        return (Blueprint, (self._table,))

    @property
    def table(self) -> pd.DataFrame:
        """The blueprint as a DataFrame (a copy): trajectories x time steps ``1..T``, label strings."""
        return self._table.copy()

    @property
    def trajectories(self) -> list[str]:
        """Trajectory names, in row order (row position = classifier class)."""
        return list(self._table.index)

    @property
    def n_trajectories(self) -> int:
        """Number of trajectories (rows)."""
        return self._values.shape[0]

    @property
    def times(self) -> np.ndarray:
        """The time steps ``1..T`` (int64)."""
        return np.arange(1, self.n_times + 1, dtype=np.int64)

    @property
    def n_times(self) -> int:
        """Number of time steps T (columns)."""
        return self._values.shape[1]

    @property
    def labels(self) -> list[str]:
        """The distinct labels, in order of first appearance reading the table row by row."""
        return list(pd.unique(self._values.ravel()))

    def _row(self, trajectory: str | int) -> int:
        if isinstance(trajectory, int | np.integer) and not isinstance(trajectory, bool):
            if not 0 <= trajectory < self.n_trajectories:
                raise IndexError(
                    f"Trajectory position {int(trajectory)} is out of range; the blueprint has "
                    f"{plural(self.n_trajectories, 'trajectory', 'trajectories')} (positions "
                    f"0..{self.n_trajectories - 1})."
                )
            return int(trajectory)
        if isinstance(trajectory, str):
            try:
                return self._table.index.get_loc(trajectory)
            except KeyError:
                raise KeyError(
                    f"Trajectory {trajectory!r} is not in the blueprint (trajectories: "
                    f"{examples(self.trajectories, 10)})."
                ) from None
        raise TypeError(
            f"A trajectory is a name (str) or a row position (int), got {type(trajectory).__name__}."
        )

    def label(self, trajectory: str | int, time: int) -> str:
        """The label that ``trajectory`` (name, or 0-based row position) samples at time step ``time``.

        Examples
        --------
        >>> from scsynth.data import read_blueprint
        >>> bp = read_blueprint(pd.DataFrame([["QC", "Cortex"]]))
        >>> bp.label(0, 1), bp.label("trajectory_0", 2)
        ('QC', 'Cortex')
        """
        row = self._row(trajectory)
        if not isinstance(time, int | np.integer) or isinstance(time, bool) or not 1 <= time <= self.n_times:
            raise IndexError(
                f"time must be a time step 1..{self.n_times} (GeneSys counts from 1), got {time!r}."
            )
        return self._values[row, int(time) - 1]

    def check_against(
        self,
        labels: Any,
        times: Any,
        *,
        fallback: Literal["raise", "neighbors"] = "raise",
        where: str = "the data",
    ) -> dict[tuple[int, int], tuple[str, list[int]]]:
        """Match every (trajectory, time step) of the blueprint to the cells it samples from.

        Parameters
        ----------
        labels
            The label of each cell (e.g. ``adata.obs["label"]``); compared as exact strings.
        times
            The time step of each cell (e.g. ``adata.obs["time"]``), see :func:`as_time_steps`.
        fallback
            What to do when no cell has a trajectory's label at its time step: ``"raise"`` a
            ValueError listing them, or ``"neighbors"``: pool the cells of that label at the previous
            and next time steps (only the next one at time 1, only the previous one at time T), as
            GeneSys does.
        where
            How the cells are called in error messages, e.g. ``"obs['label']"``.

        Returns
        -------
        ``{(row, time): (label, time_steps)}`` for every trajectory row (0-based) and time step
        ``1..T``: draw from the cells with that label at any of ``time_steps`` (``[time]`` when it has
        cells).

        Raises
        ------
        ValueError
            When a blueprint label is absent from the cells altogether, or a (label, time) has no cells
            (and, with ``fallback="neighbors"``, neither do its neighbouring time steps).

        Examples
        --------
        >>> from scsynth.data import read_blueprint
        >>> bp = read_blueprint(pd.DataFrame([["QC", "Cortex", "Cortex"]]))
        >>> bp.check_against(["QC", "Cortex", "Cortex"], [1, 2, 2], fallback="neighbors")
        {(0, 1): ('QC', [1]), (0, 2): ('Cortex', [2]), (0, 3): ('Cortex', [2])}
        """
        if fallback not in ("raise", "neighbors"):
            raise ValueError(f"fallback must be 'raise' or 'neighbors', got {fallback!r}.")
        cell_labels = _cell_labels(labels, where)
        cell_times = time_steps(times, f"the time steps of {where}")
        if len(cell_labels) != len(cell_times):
            raise ValueError(
                f"labels and times must have one entry per cell, got {len(cell_labels)} labels and "
                f"{len(cell_times)} times."
            )
        self._check_labels_present(set(cell_labels.tolist()), where)
        pairs = pd.DataFrame({"label": cell_labels, "time": cell_times}).drop_duplicates()
        present = set(zip(pairs["label"].tolist(), pairs["time"].tolist(), strict=True))

        out: dict[tuple[int, int], tuple[str, list[int]]] = {}
        missing = []
        for row, name in enumerate(self.trajectories):
            for time in range(1, self.n_times + 1):
                label = self._values[row, time - 1]
                if (label, time) in present:
                    out[(row, time)] = (label, [time])
                    continue
                near = [s for s in (time - 1, time + 1) if 1 <= s <= self.n_times and (label, s) in present]
                if fallback == "neighbors" and near:
                    out[(row, time)] = (label, near)
                else:
                    missing.append(f"trajectory {name!r} at time {time} (label {label!r})")
        head = plural(len(missing), "blueprint entry", "blueprint entries") + (
            " has" if len(missing) == 1 else " have"
        )
        if missing and fallback == "raise":
            raise ValueError(
                f"{head} no cells in {where} with that label at that time: {listing(missing)}. "
                'Pass fallback="neighbors" to draw them from the cells of the same label at the previous and '
                "next time steps (as GeneSys does), or change the blueprint or the annotations."
            )
        if missing:
            raise ValueError(
                f"{head} no cells in {where} with that label at that time, nor at the previous or next time "
                f"step: {listing(missing)}. Change the blueprint (e.g. use a precursor label at those "
                "steps) or the annotations."
            )
        return out

    def _check_labels_present(self, known: set[str], where: str) -> None:
        """Raise when a blueprint label has no cell at all: almost always a typo or a renamed label."""
        absent, missing = [], []
        for label in self.labels:
            if label not in known:
                row = int(np.argmax((self._values == label).any(axis=1)))
                absent.append(f"label {label!r} of trajectory {self.trajectories[row]!r} is not in {where}")
                missing.append(label)
        if absent:
            # exactly the time-1 entries missing, one distinct per row: most likely a column of names
            first = self._values[:, 0].tolist()
            later = set(self._values[:, 1:].ravel().tolist())
            unique = len(set(first)) == len(first) > 1
            named = unique and set(missing) == set(first) and not later & set(first)
            hint = (
                " If the first column names the trajectories, read the blueprint with "
                "`read_blueprint(path, row_names=True)` (command line: --blueprint-row-names)."
                if named
                else ""
            )
            raise ValueError(
                f"{listing(absent)}. Labels there: {examples(sorted(known), 10)}. Labels are compared as "
                f"exact strings (case, spaces and '_' matter); fix the blueprint or the annotations.{hint}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (lists of str and int) that :meth:`from_dict` turns back into this blueprint.

        Examples
        --------
        >>> import json
        >>> from scsynth.data import read_blueprint
        >>> bp = read_blueprint(pd.DataFrame([["QC", "Cortex"]]))
        >>> Blueprint.from_dict(json.loads(json.dumps(bp.to_dict()))) == bp
        True
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "trajectories": self.trajectories,
            "times": self.times.tolist(),
            "table": [[str(v) for v in row] for row in self._values],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Blueprint:
        """Rebuild a blueprint from :meth:`to_dict`'s output (checked for consistency)."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"Not a saved Blueprint: expected a dict with format={_FORMAT!r}.")
        if data.get("version") != _VERSION:
            raise ValueError(
                f"Saved Blueprint has version {data.get('version')!r}; this scsynth reads {_VERSION}."
            )
        rows, names, times = data.get("table"), data.get("trajectories"), data.get("times")
        if not isinstance(rows, list) or not isinstance(names, list) or not isinstance(times, list):
            raise ValueError(
                "Saved Blueprint is incomplete: it needs lists 'table', 'trajectories' and 'times'."
            )
        if len(rows) != len(names) or any(len(r) != len(times) for r in rows):
            raise ValueError(
                "Saved Blueprint is inconsistent: 'table' must have one row per trajectory and one entry "
                "per time."
            )
        return cls(pd.DataFrame(rows, index=names, columns=times, dtype=object))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Blueprint):
            return NotImplemented
        return self._table.equals(other._table)

    def __hash__(self) -> int:
        return hash((tuple(self.trajectories), tuple(map(tuple, self._values))))

    def __repr__(self) -> str:
        return (
            f"Blueprint: {plural(self.n_trajectories, 'trajectory', 'trajectories')} x "
            f"{plural(self.n_times, 'time step')} (labels: {examples(self.labels)})"
        )


def _cell_labels(labels: Any, where: str) -> np.ndarray:
    arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1:
        raise ValueError(
            f"The labels of {where} must be one-dimensional (one label per cell), got shape {arr.shape}."
        )
    missing = pd.isna(arr)
    if missing.any():
        raise ValueError(f"{where} has {int(missing.sum())} cells without a label; fill or drop them.")
    # numeric labels (3) match the blueprint's text "3"
    return np.array([str(v) for v in arr], dtype=object)
