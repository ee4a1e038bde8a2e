"""Renamed arguments keep working for one release, with a ``FutureWarning`` that names the new spelling."""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["renamed_kwarg", "warn_renamed"]


def warn_renamed(old: str, new: str, *, where: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` (in ``where``) is deprecated in favour of ``new``.

    ``FutureWarning`` rather than ``DeprecationWarning``: it is shown to users by default, as scanpy does.
    """
    warnings.warn(f"{where}: `{old}` is deprecated and will be removed in scsynth 0.4; use `{new}` instead.",
                  FutureWarning, stacklevel=stacklevel)


def renamed_kwarg(kwargs: dict[str, Any], old: str, new: str, *, where: str, current: Any = None) -> Any:
    """Pop the deprecated ``old`` from ``kwargs`` (warning) and return the value to use for ``new``.

    ``current`` is the value given for ``new`` (``None`` when not given); passing both raises ``TypeError``.

    Examples
    --------
    >>> def f(*, labels_key=None, **kwargs):
    ...     labels_key = renamed_kwarg(kwargs, "groupby", "labels_key", where="f", current=labels_key)
    ...     return labels_key
    """
    if old not in kwargs:
        return current
    value = kwargs.pop(old)
    if current is not None:
        raise TypeError(f"{where}: pass `{new}` only (`{old}` is its deprecated name), not both.")
    warn_renamed(old, new, where=where, stacklevel=4)
    return value
