"""Turning normalised generated profiles into the AnnData that every scsynth generator returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse

from .._constants import NORMALIZED_SCALE, UNS_KEY
from .._deprecation import renamed_kwarg


def scale_to_library(
    normalized: torch.Tensor, library: np.ndarray, library_size: float, *, counts: bool, uniforms: torch.Tensor | None
) -> torch.Tensor:
    """Scale normalised profiles to per-cell library sizes; for counts, round stochastically (unbiased).

    ``uniforms`` are the U(0, 1) draws of the rounding, so that paired cells can share them.
    """
    values = normalized * torch.as_tensor(library / library_size, dtype=normalized.dtype).unsqueeze(1)
    if counts:
        values = torch.floor(values + uniforms)
    return values


def check_n_obs(n_obs: Any, name: str = "n_obs") -> int:
    """A positive whole number of cells, samples or trajectories to generate."""
    if isinstance(n_obs, bool) or not isinstance(n_obs, int | np.integer) or n_obs < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_obs!r}.")
    return int(n_obs)


def resolve_condition(condition: Any, deprecated: dict[str, Any], old: str | None, *, where: str) -> Any:
    """The ``condition`` of a ``generate`` call, also given under its model's old name ``old`` (deprecated).

    ``deprecated`` are the call's other keyword arguments; any that is not ``old`` is refused.
    """
    if old is not None:
        condition = renamed_kwarg(deprecated, old, "condition", where=where, current=condition)
    if deprecated:
        raise TypeError(f"{where}() got unexpected keyword arguments {sorted(deprecated)}.")
    return condition


def normalized_profiles(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Rows rescaled to sum to :data:`NORMALIZED_SCALE` (all-zero rows stay zero)."""
    array = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    array = array.astype(np.float32, copy=False)
    totals = array.sum(axis=1, keepdims=True, dtype=np.float64)
    return (array * (NORMALIZED_SCALE / np.where(totals > 0, totals, 1.0))).astype(np.float32)


def check_finite_output(values: torch.Tensor | np.ndarray, model_name: str) -> None:
    """Raise rather than return NaN "cells" when a model's weights have diverged (no silent NaN)."""
    array = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise RuntimeError(
            f"This {model_name} generated {bad} NaN or infinite values: its weights are not usable "
            "(training diverged; see model.history). Train it again with a lower learning rate."
        )


def generated_anndata(
    values: torch.Tensor | np.ndarray,
    normalized: torch.Tensor | np.ndarray,
    *,
    var_names: np.ndarray,
    obs: pd.DataFrame,
    counts: bool,
    uns: dict[str, Any],
    layers: dict[str, torch.Tensor] | None = None,
) -> AnnData:
    """The AnnData every scsynth generator returns.

    ``.X`` = ``values`` (sparse), ``layers["counts"]`` for count data, ``layers["normalized"]`` = the
    expected profiles rescaled to sum to :data:`~scsynth._constants.NORMALIZED_SCALE` (1e4) per cell, any
    extra ``layers``, ``obs`` with the conditioning columns and ``uns["scsynth"]`` (see :func:`provenance`).
    """
    check_finite_output(values, uns.get("model", "model"))
    as_array = lambda v: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)  # noqa: E731
    x = sparse.csr_matrix(as_array(values).astype(np.float32, copy=False))
    out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(np.asarray(var_names, dtype=str), dtype=str)))
    if counts:
        out.layers["counts"] = x.copy()
    out.layers["normalized"] = sparse.csr_matrix(normalized_profiles(normalized))
    for key, value in (layers or {}).items():
        out.layers[key] = sparse.csr_matrix(as_array(value))
    out.uns[UNS_KEY] = uns
    return out


def provenance(model: Any, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """``uns["scsynth"]``: model, package version, seed and parameters."""
    from .. import __version__

    return {"model": type(model).__name__, "version": __version__, "seed": seed, "params": params}
