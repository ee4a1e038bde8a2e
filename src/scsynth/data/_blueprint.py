"""GeneSys inputs: the lineage blueprint (the label each trajectory samples at each time step), annotations.

A lineage blueprint is a table with one row per trajectory and one column per time step; each entry is
the cell label to draw from at that step. GeneSys' own files are ``lineage.txt`` (the blueprint, tab
separated, no header) and ``annotations.txt`` (``barcode``, ``label``, ``time`` per cell).
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from ._validate import _examples

_FORMAT = "scsynth.Blueprint"
_VERSION = 1
#: How many problems an error message lists before "and N more".
_MAX_LISTED = 10
_ANNOTATION_COLUMNS = ("barcode", "label", "time")
_TIME_HINT = (
    "GeneSys numbers time steps from 1: time 1 is the first column of the lineage blueprint, time 2 the "
    "second, and so on."
)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def _listing(items: Sequence[str], k: int = _MAX_LISTED) -> str:
    more = f"; and {len(items) - k} more" if len(items) > k else ""
    return "; ".join(items[:k]) + more


def _steps(steps: Sequence[int]) -> str:
    return ("time step " if len(steps) == 1 else "time steps ") + ", ".join(map(str, steps))


# ---------------------------------------------------------------- time steps


def _time_steps(values: Any, where: str) -> np.ndarray:
    """Validate time steps (numeric, whole, >= 1) and return them as int64; ``where`` names them in errors."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{where} must be one-dimensional (one time per cell), got shape {arr.shape}.")
    if arr.dtype == bool:
        raise ValueError(f"{where} holds booleans; time steps must be numbers 1, 2, ..., T. {_TIME_HINT}")
    names = values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(arr))
    raw = pd.Series(arr, index=names, dtype=object if arr.dtype.kind in "OUS" else arr.dtype)
    if raw.dtype == object:
        # "6.0 " in a hand-written table is still the number 6
        raw = raw.map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
    missing = raw.isna()
    if missing.any():
        raise ValueError(
            f"{where} has {int(missing.sum())} missing values (e.g. at {_examples(raw.index[missing])}); "
            "every cell needs a time step. Fill them or drop those cells."
        )
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna()
    if bad.any():
        raise ValueError(
            f"{where} holds non-numeric values (e.g. {_examples(pd.unique(raw[bad]))}); time steps must be "
            f"numbers 1, 2, ..., T. {_TIME_HINT} Map ordered stages to numbers first, e.g. `obs['time'] = "
            "obs['stage'].cat.codes + 1` for an ordered categorical."
        )
    num = numeric.to_numpy(dtype=np.float64)
    if not np.isfinite(num).all():
        raise ValueError(f"{where} holds infinite values; time steps must be finite numbers 1, 2, ..., T.")
    fractional = num != np.round(num)
    if fractional.any():
        raise ValueError(
            f"{where} holds non-integer values (e.g. {_examples(pd.unique(num[fractional]))}); time steps "
            "must be whole numbers. Bin a continuous time into steps first, e.g. `pd.qcut(pseudotime, q=10, "
            "labels=False) + 1`."
        )
    if len(num) and num.min() < 1:
        raise ValueError(
            f"{where} holds values below 1 (min {num.min():g}). {_TIME_HINT} Shift them (e.g. `time + 1` "
            "when they start at 0) or rank them: `pd.factorize(time, sort=True)[0] + 1`."
        )
    return num.astype(np.int64)


def as_time_steps(values: Any, *, key: str = "time") -> np.ndarray:
    """Check per-cell time steps and return them as int64: numeric, whole numbers, at least 1.

    GeneSys numbers time steps from 1 (time 1 is the first column of the lineage blueprint). Numbers
    written as text (``"6.0"``) and whole floats (``6.0``) are accepted and become ``6``.

    Parameters
    ----------
    values
        One time per cell (list, array, Series; numbers or numeric strings).
    key
        Name of the column in ``adata.obs``, used in error messages.

    Returns
    -------
    The time steps as a 1-D int64 array.

    Raises
    ------
    ValueError
        For missing, non-numeric, infinite, non-integer values or values below 1; the message says how
        to convert them.

    Examples
    --------
    >>> as_time_steps(["1", "2.0", 3.0])
    array([1, 2, 3])
    """
    return _time_steps(values, f"obs[{key!r}]")


# ---------------------------------------------------------------- Blueprint


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
            f"The blueprint table has {_plural(n_cols, 'time step')}; GeneSys needs at least 2 (it learns "
            "transitions between consecutive time steps)."
        )
    cols = list(table.columns)
    if not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in cols) or [
        int(c) for c in cols
    ] != list(range(1, n_cols + 1)):
        raise ValueError(
            f"The blueprint table's columns must be the time steps 1..{n_cols} in order, got "
            f"{_examples(cols)}; use `read_blueprint(table)` to renumber them."
        )
    names = list(table.index)
    if not all(isinstance(n, str) for n in names):
        raise ValueError("The blueprint table's index must hold the trajectory names as strings.")
    if table.index.has_duplicates:
        raise ValueError(
            f"Duplicated trajectory names: {_examples(table.index[table.index.duplicated()].unique())}; "
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
                    f"{_plural(self.n_trajectories, 'trajectory', 'trajectories')} (positions "
                    f"0..{self.n_trajectories - 1})."
                )
            return int(trajectory)
        if isinstance(trajectory, str):
            try:
                return self._table.index.get_loc(trajectory)
            except KeyError:
                raise KeyError(
                    f"Trajectory {trajectory!r} is not in the blueprint (trajectories: "
                    f"{_examples(self.trajectories, 10)})."
                ) from None
        raise TypeError(
            f"A trajectory is a name (str) or a row position (int), got {type(trajectory).__name__}."
        )

    def label(self, trajectory: str | int, time: int) -> str:
        """The label that ``trajectory`` (name, or 0-based row position) samples at time step ``time``.

        Examples
        --------
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
        >>> bp = read_blueprint(pd.DataFrame([["QC", "Cortex", "Cortex"]]))
        >>> bp.check_against(["QC", "Cortex", "Cortex"], [1, 2, 2], fallback="neighbors")
        {(0, 1): ('QC', [1]), (0, 2): ('Cortex', [2]), (0, 3): ('Cortex', [2])}
        """
        if fallback not in ("raise", "neighbors"):
            raise ValueError(f"fallback must be 'raise' or 'neighbors', got {fallback!r}.")
        cell_labels = _cell_labels(labels, where)
        cell_times = _time_steps(times, f"the time steps of {where}")
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
        head = _plural(len(missing), "blueprint entry", "blueprint entries") + (
            " has" if len(missing) == 1 else " have"
        )
        if missing and fallback == "raise":
            raise ValueError(
                f"{head} no cells in {where} with that label at that time: {_listing(missing)}. "
                'Pass fallback="neighbors" to draw them from the cells of the same label at the previous and '
                "next time steps (as GeneSys does), or change the blueprint or the annotations."
            )
        if missing:
            raise ValueError(
                f"{head} no cells in {where} with that label at that time, nor at the previous or next time "
                f"step: {_listing(missing)}. Change the blueprint (e.g. use a precursor label at those "
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
                f"{_listing(absent)}. Labels there: {_examples(sorted(known), 10)}. Labels are compared as "
                f"exact strings (case, spaces and '_' matter); fix the blueprint or the annotations.{hint}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (lists of str and int) that :meth:`from_dict` turns back into this blueprint.

        Examples
        --------
        >>> import json
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
            f"Blueprint: {_plural(self.n_trajectories, 'trajectory', 'trajectories')} x "
            f"{_plural(self.n_times, 'time step')} (labels: {_examples(self.labels)})"
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


# ---------------------------------------------------------------- read_blueprint


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _read_lineage_file(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """Parse GeneSys' lineage.txt: rows of tab-separated labels; also return each row's line number."""
    if not path.exists():
        raise FileNotFoundError(
            f"Lineage blueprint file {str(path)!r} not found. Pass the path to GeneSys' lineage.txt "
            "(tab-separated, no header, one row per trajectory, one column per time step)."
        )
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory; pass the lineage.txt file inside it.")
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter="\t")
            for row in reader:
                cells = [c.strip() for c in row]
                # trailing tabs are a common editing artefact, not extra time steps
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    rows.append(cells)
                    lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as err:  # a binary or non-UTF-8 file
        raise ValueError(
            f"Lineage blueprint file {str(path)!r} is not a UTF-8 text file ({err}); it needs one "
            "tab-separated row of labels per trajectory."
        ) from err
    if not rows:
        raise ValueError(
            f"Lineage blueprint file {str(path)!r} is empty; it needs one tab-separated row of labels per "
            "trajectory."
        )
    # ragged rows are padded with None and reported as missing entries below
    return pd.DataFrame(rows, dtype=object), lines


def _trajectory_names(names: Sequence[str] | None, frame: pd.DataFrame, source: str) -> list[str]:
    n = len(frame)
    if names is None:
        index = frame.index
        default = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        names = [f"trajectory_{i}" for i in range(n)] if default else list(index)
    elif isinstance(names, str):
        raise TypeError("names must be a list of trajectory names, not a single string.")
    else:
        names = list(names)
        if len(names) != n:
            raise ValueError(
                f"names has {len(names)} entries but {source} has {_plural(n, 'row')} (trajectories)."
            )
    names = [str(x) for x in names]
    dup = pd.Index(names)[pd.Index(names).duplicated()].unique()
    if len(dup):
        raise ValueError(f"Duplicated trajectory names in {source}: {_examples(dup)}; names must be unique.")
    return names


def _blueprint_from_frame(
    frame: pd.DataFrame, names: Sequence[str] | None, source: str, lines=None
) -> Blueprint:
    n_rows, n_cols = frame.shape
    if n_rows == 0 or n_cols == 0:
        raise ValueError(
            f"{source} is empty; a blueprint needs one row per trajectory and one column per time step."
        )
    if n_cols < 2:
        raise ValueError(
            f"{source} has a single time step (column); GeneSys needs at least 2 (it learns transitions "
            "between consecutive time steps). A file must be tab-separated: labels separated by spaces or "
            "commas read as one column."
        )
    traj = _trajectory_names(names, frame, source)
    values = frame.to_numpy(dtype=object)
    cells = np.empty(values.shape, dtype=object)
    gaps: dict[int, list[int]] = {}
    for (r, k), v in np.ndenumerate(values):
        text = "" if _is_missing(v) else str(v).strip()
        if not text:
            gaps.setdefault(r, []).append(k + 1)
        cells[r, k] = text
    if gaps:
        where = [
            f"row {r + 1}{f' (line {lines[r]})' if lines else ''}, trajectory {traj[r]!r}: {_steps(steps)}"
            for r, steps in gaps.items()
        ]
        raise ValueError(
            f"{source} has empty entries: {_listing(where)}. Every trajectory needs a label at each of the "
            f"{n_cols} time steps; to keep a trajectory in its last state, repeat its last label."
        )
    table = pd.DataFrame(
        cells, index=pd.Index(traj, dtype=object), columns=range(1, n_cols + 1), dtype=object
    )
    return Blueprint(table)


def _split_row_names(frame: pd.DataFrame, source: str, lines=None) -> tuple[pd.DataFrame, list[str]]:
    """Take the trajectory names from the first column of ``frame``; the rest are the time steps."""
    first = frame.iloc[:, 0].tolist()
    names = ["" if _is_missing(v) else str(v).strip() for v in first]
    empty = [i for i, n in enumerate(names) if not n]
    if empty:
        where = ", ".join(
            f"row {i + 1}" + (f" (line {lines[i]})" if lines else "") for i in empty[:_MAX_LISTED]
        )
        raise ValueError(
            f"{source} is read with row names (its first column names the trajectories), but {where} "
            "has no name there; name every row, or read it without row_names."
        )
    rest = frame.iloc[:, 1:]
    rest.columns = range(rest.shape[1])
    return rest.reset_index(drop=True), names


def read_blueprint(
    blueprint: Blueprint | pd.DataFrame | str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    row_names: bool = False,
) -> Blueprint:
    """Read a GeneSys lineage blueprint: one row per trajectory, one column per time step, labels as entries.

    Parameters
    ----------
    blueprint
        - a path to GeneSys' ``lineage.txt``: tab-separated, no header, no row names (unless
          ``row_names=True``); column k is time step k (counting from 1). Labels are read as text
          exactly as written (``3`` stays ``"3"``, ``2.0`` stays ``"2.0"``), with surrounding
          whitespace stripped;
        - a DataFrame of the same shape: its columns are renumbered 1..T, its index names the
          trajectories unless it is the default ``0..R-1`` index; values are turned into text;
        - a :class:`Blueprint`, returned as is (renamed when ``names`` is given).
    names
        Trajectory names, one per row. Default: the first column with ``row_names=True``, else the
        DataFrame's index, else ``"trajectory_0"``, ``"trajectory_1"``, ... (GeneSys' 0-based row
        numbers).
    row_names
        The first column (of the file or DataFrame) names the trajectories, e.g. a ``lineage.txt`` line
        ``cortex<TAB>QC<TAB>Cortex<TAB>Cortex``; the time steps are the columns after it. GeneSys'
        own files have no such column, and a name cannot be told from a label, so this is never guessed.

    Returns
    -------
    The checked :class:`Blueprint`.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For an empty table, fewer than 2 time steps, empty entries or rows shorter than the others
        (named by row, line and time step), duplicated or mismatched names.

    Examples
    --------
    >>> table = pd.DataFrame([["QC", "Cortex", "Cortex"], ["QC", "Xylem", "Xylem"]])
    >>> bp = read_blueprint(table, names=["cortex", "xylem"])
    >>> bp.trajectories, bp.n_times
    (['cortex', 'xylem'], 3)

    Names in the first column:

    >>> named = pd.DataFrame([["cortex", "QC", "Cortex"], ["xylem", "QC", "Xylem"]])
    >>> read_blueprint(named, row_names=True).trajectories
    ['cortex', 'xylem']
    """
    if not isinstance(row_names, bool | np.bool_):
        raise TypeError(f"row_names must be True or False, got {row_names!r}.")
    if row_names and names is not None:
        raise ValueError(
            "Pass either names= or row_names=True (names taken from the first column), not both."
        )
    if isinstance(blueprint, Blueprint):
        if row_names:
            raise ValueError(
                "row_names=True reads names from the first column of a file or DataFrame; a Blueprint is "
                "already named: pass names= to rename it."
            )
        if names is None:
            return blueprint
        return _blueprint_from_frame(blueprint.table, names, "the blueprint")
    if isinstance(blueprint, pd.DataFrame):
        source = "The blueprint DataFrame"
        if row_names:
            blueprint, names = _split_row_names(blueprint, source)
        return _blueprint_from_frame(blueprint, names, source)
    if isinstance(blueprint, str | os.PathLike):
        path = Path(blueprint)
        frame, lines = _read_lineage_file(path)
        source = f"Lineage blueprint file {str(path)!r}"
        if row_names:
            frame, names = _split_row_names(frame, source, lines)
        return _blueprint_from_frame(frame, names, source, lines)
    raise TypeError(
        "blueprint must be a path to lineage.txt, a DataFrame or a Blueprint, got "
        f"{type(blueprint).__name__}."
    )


# ---------------------------------------------------------------- annotations


def _read_annotation_table(path: Path) -> pd.DataFrame:
    """Read annotations.txt as text, indexed by barcode, with clear errors for GeneSys' format."""
    if not path.exists():
        raise FileNotFoundError(
            f"Annotation file {str(path)!r} not found. Pass the path to GeneSys' annotations.txt "
            "(tab-separated, header 'barcode<TAB>label<TAB>time')."
        )
    try:
        # dtype=str and no default NA strings: labels such as "NA" or "3" stay as written
        anno = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ValueError(f"Annotation file {str(path)!r} is empty.") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as err:  # a binary or non-UTF-8 file
        raise ValueError(
            f"Annotation file {str(path)!r} could not be read as a UTF-8 tab-separated table ({err})."
        ) from err
    anno.columns = [str(c).strip() for c in anno.columns]
    absent = [c for c in _ANNOTATION_COLUMNS if c not in anno.columns]
    if absent:
        raise ValueError(
            f"Annotation file {str(path)!r} lacks the column(s) {_examples(absent)}: it must be "
            "tab-separated with the header line 'barcode<TAB>label<TAB>time' (found columns "
            f"{_examples(anno.columns, 10)})."
        )
    for col in ("barcode", "label"):
        anno[col] = anno[col].str.strip()
        empty = anno[col].isna() | (anno[col] == "")
        if empty.any():
            lines = (np.flatnonzero(empty.to_numpy()) + 2).tolist()  # +1 header, +1 one-based
            raise ValueError(
                f"Annotation file {str(path)!r} has {int(empty.sum())} rows without a {col} (lines "
                f"{_examples(lines)}); every row needs a barcode, a label and a time."
            )
    dup = anno["barcode"][anno["barcode"].duplicated()].unique()
    if len(dup):
        raise ValueError(
            f"Annotation file {str(path)!r} lists {len(dup)} barcodes more than once ({_examples(dup)}); "
            "each cell needs exactly one label and time."
        )
    return anno.set_index("barcode")


def _read_10x(folder: Path) -> AnnData:
    """Read a 10x matrix directory with gene symbols as names, or gene ids when genes.tsv has one column."""
    import scanpy as sc

    try:
        adata = sc.read_10x_mtx(folder, var_names="gene_symbols")
    except (KeyError, IndexError):
        # scanpy reads genes.tsv's second column in both modes, so a one-column file needs a manual read
        adata = _read_10x_one_column(folder)
    adata.var_names_make_unique()
    from scipy import sparse

    adata.X = sparse.csr_matrix(adata.X)  # models read rows: CSR is the fast layout
    return adata


def _read_10x_one_column(folder: Path) -> AnnData:
    from scipy import io, sparse

    legacy = (folder / "genes.tsv").is_file()
    gz = "" if legacy else ".gz"
    x = sparse.csr_matrix(io.mmread(folder / f"matrix.mtx{gz}").T)
    genes = pd.read_csv(
        folder / ("genes.tsv" if legacy else "features.tsv.gz"), header=None, sep="\t", dtype=str
    )
    barcodes = pd.read_csv(folder / f"barcodes.tsv{gz}", header=None, sep="\t", dtype=str)
    adata = AnnData(x.astype(np.float32))
    adata.var_names = genes[0].to_numpy()
    adata.obs_names = barcodes[0].to_numpy()
    return adata


def _load_matrix(matrix: AnnData | str | os.PathLike | None, annotations: Path) -> tuple[AnnData, str]:
    """The expression matrix (a copy, never the user's object) and how to call it in messages."""
    if matrix is None:
        folder = annotations.parent
        if not any((folder / n).is_file() for n in ("matrix.mtx", "matrix.mtx.gz")):
            raise ValueError(
                f"No matrix given and {str(folder)!r} (the annotation file's folder) holds no "
                "matrix.mtx(.gz); pass `matrix=` an AnnData, an .h5ad file or a 10x matrix directory."
            )
        matrix = folder
    if isinstance(matrix, AnnData):
        return matrix.copy(), "the AnnData"
    if not isinstance(matrix, str | os.PathLike):
        raise TypeError(
            "matrix must be an AnnData, a path to an .h5ad file or a 10x matrix directory, got "
            f"{type(matrix).__name__}."
        )
    path = Path(matrix)
    if not path.exists():
        raise FileNotFoundError(
            f"Matrix {str(path)!r} not found; pass an .h5ad file or a 10x matrix directory."
        )
    if path.is_dir():
        return _read_10x(path), f"the 10x matrix in {str(path)!r}"
    if path.suffix.lower() == ".h5ad":
        import anndata

        try:
            return anndata.read_h5ad(path), f"{str(path)!r}"
        except Exception as err:  # noqa: BLE001 - h5py raises OSError (and others) for a damaged file
            raise ValueError(f"Matrix {str(path)!r} could not be read as an .h5ad file ({err}).") from err
    raise ValueError(
        f"Cannot read matrix {str(path)!r}: pass an .h5ad file, a 10x matrix directory (matrix.mtx, "
        "genes.tsv, barcodes.tsv) or an AnnData."
    )


def _check_start(times: np.ndarray, path: Path) -> None:
    """GeneSys' time steps start at 1; gaps are allowed (neighbours fill them) but usually a mistake."""
    steps = np.unique(times)
    if len(steps) and steps[0] != 1:
        raise ValueError(
            f"The 'time' column of {str(path)!r} starts at {steps[0]}, not 1. {_TIME_HINT} Renumber them, "
            "e.g. `pd.factorize(time, sort=True)[0] + 1`."
        )
    gaps = sorted(set(range(1, int(steps[-1]) + 1)) - set(steps.tolist())) if len(steps) else []
    if gaps:
        warnings.warn(
            f"The 'time' column of {str(path)!r} has no cells at {_steps(gaps)} (it runs 1..{steps[-1]}); "
            "blueprint entries at those steps can only use neighbouring steps (fallback='neighbors').",
            UserWarning,
            stacklevel=3,
        )


def _align(anno: pd.DataFrame, adata: AnnData, path: Path, source: str) -> pd.DataFrame:
    """Annotation rows in the matrix's cell order, matched by barcode (GeneSys matched labels by position)."""
    obs_names = pd.Index(adata.obs_names)
    if obs_names.has_duplicates:
        raise ValueError(
            f"{source} has duplicated cell barcodes "
            f"({_examples(obs_names[obs_names.duplicated()].unique())}); annotations are matched to cells by "
            "barcode, so barcodes must be unique."
        )
    unannotated = obs_names[~obs_names.isin(anno.index)]
    if len(unannotated):
        hint = (
            " No barcode matches at all: check that both use the same barcode format (e.g. a '-1' suffix)."
            if len(unannotated) == len(obs_names)
            else ""
        )
        raise ValueError(
            f"{len(unannotated)} of {adata.n_obs} cells of {source} have no row in {str(path)!r} "
            f"({_examples(unannotated)}); annotations are matched to cells by barcode.{hint} Annotate them, "
            "or subset the matrix to the annotated cells first, e.g. `adata = "
            "adata[adata.obs_names.isin(annotations['barcode'])].copy()`."
        )
    extra = anno.index[~anno.index.isin(obs_names)]
    if len(extra):
        warnings.warn(
            f"{len(extra)} barcodes of {str(path)!r} are not cells of {source} ({_examples(extra)}); their "
            "annotations are ignored.",
            UserWarning,
            stacklevel=3,
        )
    return anno.reindex(obs_names)


def read_genesys_annotations(
    path: str | os.PathLike,
    matrix: AnnData | str | os.PathLike | None = None,
    *,
    label_key: str = "label",
    time_key: str = "time",
) -> AnnData:
    """Read GeneSys' ``annotations.txt`` and attach it to the expression matrix, matching cells by barcode.

    Parameters
    ----------
    path
        The annotation file: tab-separated, header ``barcode``, ``label``, ``time`` (GeneSys' format);
        further columns are kept in ``obs`` as text. ``time`` must hold whole numbers starting at 1
        (``6.0`` becomes ``6``); see :func:`as_time_steps`.
    matrix
        An AnnData (copied; yours is never modified), a path to an ``.h5ad`` file or a 10x matrix
        directory (``matrix.mtx``, ``genes.tsv``, ``barcodes.tsv``; gene symbols as names, or gene ids
        when ``genes.tsv`` has one column; names made unique). Default: the annotation file's folder,
        when it holds ``matrix.mtx`` or ``matrix.mtx.gz``.
    label_key
        ``obs`` column for the labels (string categorical).
    time_key
        ``obs`` column for the time steps (int64).

    Returns
    -------
    A new AnnData in the matrix's cell order, with ``obs[label_key]`` and ``obs[time_key]``.

    Raises
    ------
    ValueError
        For a missing header column, rows without barcode or label, duplicated barcodes, invalid times
        (non-numeric, non-integer, below 1 or not starting at 1), or cells of the matrix without an
        annotation (subset the matrix first). Annotated barcodes absent from the matrix only warn, and
        so do time steps without cells.

    Examples
    --------
    >>> import anndata, numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> text = "barcode\\tlabel\\ttime\\nc2\\tCortex\\t2.0\\nc1\\tQC\\t1.0\\n"
    >>> _ = (folder / "annotations.txt").write_text(text)
    >>> adata = anndata.AnnData(np.ones((2, 3), dtype=np.float32), obs=pd.DataFrame(index=["c1", "c2"]))
    >>> out = read_genesys_annotations(folder / "annotations.txt", adata)
    >>> out.obs["label"].tolist(), out.obs["time"].tolist()
    (['QC', 'Cortex'], [1, 2])
    """
    if label_key == time_key:
        raise ValueError(f"label_key and time_key must differ, both are {label_key!r}.")
    path = Path(path)
    anno = _read_annotation_table(path)
    extras = [c for c in anno.columns if c not in ("label", "time")]
    clash = [k for k in (label_key, time_key) if k in extras]
    if clash:
        raise ValueError(
            f"Annotation file {str(path)!r} already has a column {clash[0]!r}; choose another "
            "label_key/time_key."
        )
    times = pd.Series(
        _time_steps(anno["time"], f"The 'time' column of {str(path)!r}"), index=anno.index, dtype=np.int64
    )
    _check_start(times.to_numpy(), path)
    adata, source = _load_matrix(matrix, path)
    aligned = _align(anno, adata, path, source)
    replaced = [c for c in [label_key, time_key, *extras] if c in adata.obs]
    if replaced:
        warnings.warn(
            f"obs columns {_examples(replaced)} of {source} are replaced by the annotations of "
            f"{str(path)!r}.",
            UserWarning,
            stacklevel=2,
        )
    adata.obs[label_key] = pd.Categorical(aligned["label"].to_numpy(dtype=object).astype(str))
    adata.obs[time_key] = times.reindex(aligned.index).to_numpy(dtype=np.int64)
    for col in extras:
        adata.obs[col] = aligned[col].to_numpy(dtype=object)
    return adata
