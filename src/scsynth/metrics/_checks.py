"""Input checks shared by the metrics that take matrices: one clear error instead of a silent NaN."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData
from scipy import sparse


def as_matrix(x: Any, name: str) -> np.ndarray:
    """``x`` (dense or sparse, cells x features) as a float64 2-D array, checked to be finite.

    Raises
    ------
    TypeError
        ``x`` is an AnnData (pass its matrix) or does not hold real numbers.
    ValueError
        ``x`` is not 2-D, has no rows or no columns, or holds NaN / infinite values.
    """
    if isinstance(x, AnnData):
        raise TypeError(f"`{name}` must be a cells x genes matrix, got an AnnData; pass its `.X` (or a "
                        "layer), or use scsynth.metrics.realism for AnnData objects.")
    if sparse.issparse(x):
        x = x.toarray()
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must hold real numbers, got {type(x).__name__} ({err}).") from None
    if out.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (cells x genes), got shape {out.shape}.")
    if out.shape[0] == 0 or out.shape[1] == 0:
        raise ValueError(f"`{name}` is empty ({out.shape[0]} cells x {out.shape[1]} genes).")
    finite = np.isfinite(out)
    if not finite.all():
        raise ValueError(
            f"`{name}` contains {int((~finite).sum())} NaN or infinite values; remove or impute them."
        )
    return out


def as_matrix_pair(
    x: Any, y: Any, *, names: tuple[str, str] = ("x", "y"), nonnegative: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Two checked matrices (see :func:`as_matrix`) with the same number of columns.

    ``nonnegative`` also rejects negative values (metrics that take ``log1p`` of expression).
    """
    a, b = as_matrix(x, names[0]), as_matrix(y, names[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same genes (columns), got {a.shape} and {b.shape}."
        )
    if nonnegative:
        for name, m in zip(names, (a, b), strict=True):
            if (m < 0).any():
                raise ValueError(f"`{name}` contains negative values (min {m.min():.3g}); pass normalised "
                                 "non-log expression, not scaled or centred data.")
    return a, b


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_positive_number(name: str, value: object) -> float:
    """``value`` as a float, if it is a finite positive number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}.")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.")
    return float(value)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value
