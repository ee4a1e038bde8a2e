"""Turning normalised generated profiles into the AnnData that every scsynth generator returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse

from .._constants import UNS_KEY


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
    values: torch.Tensor,
    normalized: torch.Tensor,
    *,
    var_names: np.ndarray,
    obs: pd.DataFrame,
    counts: bool,
    uns: dict[str, Any],
    layers: dict[str, torch.Tensor] | None = None,
) -> AnnData:
    """AnnData with ``.X`` = ``values`` (sparse), ``layers["counts"]`` for count data, ``layers["normalized"]``."""
    check_finite_output(values, uns.get("model", "model"))
    x = sparse.csr_matrix(values.numpy())
    out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(np.asarray(var_names, dtype=str), dtype=str)))
    if counts:
        out.layers["counts"] = x.copy()
    out.layers["normalized"] = sparse.csr_matrix(normalized.numpy())
    for key, value in (layers or {}).items():
        out.layers[key] = sparse.csr_matrix(value.numpy())
    out.uns[UNS_KEY] = uns
    return out


def provenance(model: Any, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """``uns["scsynth"]``: model, package version, seed and parameters."""
    from .. import __version__

    return {"model": type(model).__name__, "version": __version__, "seed": seed, "params": params}
