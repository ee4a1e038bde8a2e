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


def normalized_profiles(values: torch.Tensor | np.ndarray, scale: float = NORMALIZED_SCALE) -> np.ndarray:
    """Rows rescaled to sum to ``scale`` (:data:`NORMALIZED_SCALE` by default; all-zero rows stay zero)."""
    array = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    array = array.astype(np.float32, copy=False)
    totals = array.sum(axis=1, keepdims=True, dtype=np.float64)
    return (array * (scale / np.where(totals > 0, totals, 1.0))).astype(np.float32)


def check_finite_output(values: torch.Tensor | np.ndarray, model_name: str) -> None:
    """Raise rather than return NaN "cells" when a model's weights have diverged (no silent NaN)."""
    array = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        _raise_not_finite(bad, model_name)


def _kernels():
    from . import _csr_kernels  # numba: compiled (or loaded from its cache) on first use

    return _csr_kernels


def _raise_not_finite(n_bad: int, model_name: str) -> None:
    raise RuntimeError(
        f"This {model_name} generated {n_bad} NaN or infinite values: its weights are not usable "
        "(training diverged; see model.history). Train it again with a lower learning rate."
    )


class SparseRows:
    """Rows of a cells x genes CSR matrix, written batch by batch straight into its final arrays.

    The arrays are sized from the density of the first batch (grown if needed) and trimmed in place at the
    end, so there is no dense ``n_obs x n_vars`` matrix and no concatenation of per-batch pieces.
    """

    def __init__(self, n_rows: int, n_vars: int) -> None:
        self.shape = (int(n_rows), int(n_vars))
        self.row_nnz = np.zeros(self.shape[0], np.int64)
        self.rows = self.nnz = 0
        self.data, self.indices = np.zeros(1, np.float32), np.zeros(1, np.int32)

    def reserve(self, n_entries: int) -> tuple[np.ndarray, np.ndarray]:
        """Room for up to ``n_entries`` more entries (plus the kernels' slack element): views of data and indices.

        The views must not outlive the call that writes them (the arrays may be reallocated afterwards).
        Unwritten room costs no memory (pages that are never touched are never allocated).
        """
        need = self.nnz + n_entries + 1
        if need > len(self.data):
            # the density so far, for all rows, plus room for one more batch
            estimate = int(self.nnz / self.rows * self.shape[0] * 1.02) + n_entries + 1 if self.rows else need
            size = max(need, min(max(estimate, int(1.25 * len(self.data))), self.shape[0] * self.shape[1] + 1))
            for name in ("data", "indices"):
                old = getattr(self, name)
                new = np.empty(size, old.dtype)
                new[:self.nnz] = old[:self.nnz]
                setattr(self, name, new)
        return self.data[self.nnz:need], self.indices[self.nnz:need]

    def commit(self, row_nnz: np.ndarray) -> None:
        """The next ``len(row_nnz)`` rows, whose entries were written into the views of :meth:`reserve`."""
        self.row_nnz[self.rows:self.rows + len(row_nnz)] = row_nnz
        self.rows += len(row_nnz)
        self.nnz += int(row_nnz.sum())

    def to_csr(self, *, copies: int = 1) -> list[sparse.csr_matrix]:
        """``copies`` independent CSR matrices (nothing shared: AnnData users modify layers in place)."""
        if self.rows != self.shape[0]:
            raise RuntimeError(f"{self.rows} of {self.shape[0]} rows were generated.")
        nnz = self.nnz
        # trim in place (realloc: no copy of a large array); no view of these arrays exists at this point
        data, indices = self.data, self.indices
        data.resize(nnz, refcheck=False)
        indices.resize(nnz, refcheck=False)
        self.data, self.indices = np.zeros(1, np.float32), np.zeros(1, np.int32)
        dtype = np.int32 if max(nnz, self.shape[1]) < np.iinfo(np.int32).max else np.int64  # as scipy does
        indices = indices.astype(dtype, copy=False)
        indptr = np.zeros(self.shape[0] + 1, dtype=dtype)
        np.cumsum(self.row_nnz, out=indptr[1:])
        out = [sparse.csr_matrix((data, indices, indptr), shape=self.shape)]
        out += [sparse.csr_matrix((data.copy(), indices.copy(), indptr.copy()), shape=self.shape)
                for _ in range(copies - 1)]
        for x in out:
            x.has_sorted_indices = True  # columns are written in order
        return out


def _dense_batch(values: torch.Tensor | np.ndarray) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return np.ascontiguousarray(array, dtype=np.float32)


class GeneratedCells:
    """The AnnData of generated cells, assembled batch by batch as the generator produces them.

    Each batch is sparsified as it comes (numba kernels, one pass over the dense batch each), so memory
    stays at one dense batch plus the sparse output, and nothing is computed in float64 over the matrix.

    Parameters
    ----------
    n_obs
        Number of cells that will be added.
    n_vars
        Number of genes.
    counts
        Whether ``.X`` holds counts (then also ``layers["counts"]``, an independent copy).
    model_name
        For the error raised when a model generates NaN or infinite values.
    """

    def __init__(self, n_obs: int, n_vars: int, *, counts: bool, model_name: str) -> None:
        self.counts, self.model_name = counts, model_name
        self.x, self.normalized = SparseRows(n_obs, n_vars), SparseRows(n_obs, n_vars)
        self._uniforms = np.zeros(1, np.float32)  # reused from batch to batch

    def _check(self, a: np.ndarray, raw: np.ndarray) -> None:
        """``raw``: the row sums of ``a``, non-finite exactly when the row has a NaN or infinite value."""
        bad = ~np.isfinite(raw)
        if bad.any():
            _raise_not_finite(int(np.count_nonzero(~np.isfinite(a[bad]))), self.model_name)

    def add_profiles(
        self, profiles: torch.Tensor | np.ndarray, library: np.ndarray, *, rng: np.random.Generator | None = None
    ) -> None:
        """Cells from non-negative expression profiles on any per-cell scale (e.g. a ReLU output before LSN).

        ``.X = profile / total * library``, stochastically rounded for counts with uniforms from ``rng``
        (one per positive entry, in row-major order: unbiased, ``E[count] = profile / total * library``);
        ``layers["normalized"] = profile / total * 1e4``. All-zero profiles give all-zero cells.
        """
        a, k = _dense_batch(profiles), _kernels()
        nnz, total, raw = k.row_stats(a, True)
        self._check(a, raw)
        safe = np.where(total > 0, total, 1.0)
        x_scale = (np.asarray(library, dtype=np.float64) / safe).astype(np.float32)
        n_scale = (NORMALIZED_SCALE / safe).astype(np.float32)
        n = int(nnz.sum())
        n_data, n_indices = self.normalized.reserve(n)
        if self.counts:
            if len(self._uniforms) < n + 1:
                self._uniforms = np.zeros(n + 1, np.float32)
            rng.random(out=self._uniforms[:n], dtype=np.float32)  # [n]: the kernel's slack, read but never used
            x_data, x_indices = self.x.reserve(n)  # counts: at most one per positive entry
            x_nnz = np.empty(len(a), np.int64)
            k.round_profiles(a, x_scale, n_scale, self._uniforms, x_data, x_indices, x_nnz, n_data, n_indices)
        else:
            x_data, x_indices = self.x.reserve(n)
            k.compact(a, x_scale, True, x_data, x_indices)
            k.compact(a, n_scale, True, n_data, n_indices)
            x_nnz = nnz
        del x_data, x_indices, n_data, n_indices  # views of arrays that the next batch may reallocate
        self.x.commit(x_nnz)
        self.normalized.commit(nnz)

    def add_values(
        self, values: torch.Tensor | np.ndarray, normalized: torch.Tensor | np.ndarray, *, positive: bool = False
    ) -> np.ndarray:
        """Cells given as ``.X`` values and expected profiles (rescaled to sum to 1e4 per cell, as
        :func:`normalized_profiles`); ``positive`` keeps only the positive part of both (``clip(., 0)``).

        Returns the total of each cell's values (of their positive part with ``positive``).
        """
        a, b = _dense_batch(values), _dense_batch(normalized)
        if a.shape != b.shape:
            raise ValueError(f"values {a.shape} and normalized {b.shape} differ in shape.")
        n_rows = len(a)
        x_data, x_indices = self.x.reserve(a.size)
        n_data, n_indices = self.normalized.reserve(b.size)
        x_nnz, n_nnz = np.empty(n_rows, np.int64), np.empty(n_rows, np.int64)
        x_total, raw = np.empty(n_rows, np.float64), np.empty(n_rows, np.float64)
        _kernels().values_to_csr(a, b, positive, float(NORMALIZED_SCALE), x_data, x_indices, x_nnz, n_data,
                                 n_indices, n_nnz, x_total, raw)
        del x_data, x_indices, n_data, n_indices
        self._check(a, raw)
        self.x.commit(x_nnz)
        self.normalized.commit(n_nnz)
        return x_total

    def anndata(
        self,
        *,
        var_names: np.ndarray,
        obs: pd.DataFrame,
        uns: dict[str, Any],
        layers: dict[str, torch.Tensor | np.ndarray] | None = None,
    ) -> AnnData:
        """The AnnData of :func:`generated_anndata` from the cells added so far."""
        x, *counts = self.x.to_csr(copies=2 if self.counts else 1)
        out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(np.asarray(var_names, dtype=str), dtype=str)))
        if self.counts:
            out.layers["counts"] = counts[0]
        out.layers["normalized"] = self.normalized.to_csr()[0]
        for key, value in (layers or {}).items():
            out.layers[key] = sparse.csr_matrix(value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value))
        out.uns[UNS_KEY] = uns
        return out


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
    Generators that produce cells batch by batch use :class:`GeneratedCells` directly.
    """
    cells = GeneratedCells(*np.shape(values), counts=counts, model_name=uns.get("model", "model"))
    cells.add_values(values, normalized)
    return cells.anndata(var_names=var_names, obs=obs, uns=uns, layers=layers)


def provenance(model: Any, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """``uns["scsynth"]``: model, package version, seed and parameters."""
    from .. import __version__

    return {"model": type(model).__name__, "version": __version__, "seed": seed, "params": params}
