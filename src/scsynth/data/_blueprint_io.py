"""Reading a GeneSys lineage blueprint: GeneSys' ``lineage.txt`` (tab-separated, no header) or a DataFrame."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._blueprint import Blueprint
from ._time_steps import describe_steps
from ._validate import MAX_LISTED, examples, listing, plural


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
                f"names has {len(names)} entries but {source} has {plural(n, 'row')} (trajectories)."
            )
    names = [str(x) for x in names]
    dup = pd.Index(names)[pd.Index(names).duplicated()].unique()
    if len(dup):
        raise ValueError(f"Duplicated trajectory names in {source}: {examples(dup)}; names must be unique.")
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
            f"row {r + 1}{f' (line {lines[r]})' if lines else ''}, trajectory {traj[r]!r}: "
            f"{describe_steps(steps)}"
            for r, steps in gaps.items()
        ]
        raise ValueError(
            f"{source} has empty entries: {listing(where)}. Every trajectory needs a label at each of the "
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
            f"row {i + 1}" + (f" (line {lines[i]})" if lines else "") for i in empty[:MAX_LISTED]
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
