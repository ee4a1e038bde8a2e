"""GeneSys time steps: whole numbers from 1 (time 1 is the first column of the lineage blueprint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validate import examples

TIME_HINT = (
    "GeneSys numbers time steps from 1: time 1 is the first column of the lineage blueprint, time 2 the "
    "second, and so on."
)


def describe_steps(steps: Sequence[int]) -> str:
    """``time step 3`` or ``time steps 2, 5``."""
    return ("time step " if len(steps) == 1 else "time steps ") + ", ".join(map(str, steps))


def time_steps(values: Any, where: str) -> np.ndarray:
    """Validate time steps (numeric, whole, >= 1) and return them as int64; ``where`` names them in errors."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{where} must be one-dimensional (one time per cell), got shape {arr.shape}.")
    if arr.dtype == bool:
        raise ValueError(f"{where} holds booleans; time steps must be numbers 1, 2, ..., T. {TIME_HINT}")
    names = values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(arr))
    raw = pd.Series(arr, index=names, dtype=object if arr.dtype.kind in "OUS" else arr.dtype)
    if raw.dtype == object:
        # "6.0 " in a hand-written table is still the number 6
        raw = raw.map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
    missing = raw.isna()
    if missing.any():
        raise ValueError(
            f"{where} has {int(missing.sum())} missing values (e.g. at {examples(raw.index[missing])}); "
            "every cell needs a time step. Fill them or drop those cells."
        )
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna()
    if bad.any():
        raise ValueError(
            f"{where} holds non-numeric values (e.g. {examples(pd.unique(raw[bad]))}); time steps must be "
            f"numbers 1, 2, ..., T. {TIME_HINT} Map ordered stages to numbers first, e.g. `obs['time'] = "
            "obs['stage'].cat.codes + 1` for an ordered categorical."
        )
    num = numeric.to_numpy(dtype=np.float64)
    if not np.isfinite(num).all():
        raise ValueError(f"{where} holds infinite values; time steps must be finite numbers 1, 2, ..., T.")
    fractional = num != np.round(num)
    if fractional.any():
        raise ValueError(
            f"{where} holds non-integer values (e.g. {examples(pd.unique(num[fractional]))}); time steps "
            "must be whole numbers. Bin a continuous time into steps first, e.g. `pd.qcut(pseudotime, q=10, "
            "labels=False) + 1`."
        )
    if len(num) and num.min() < 1:
        raise ValueError(
            f"{where} holds values below 1 (min {num.min():g}). {TIME_HINT} Shift them (e.g. `time + 1` "
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
    return time_steps(values, f"obs[{key!r}]")
