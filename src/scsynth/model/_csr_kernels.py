"""Numba kernels that turn one dense batch of generated cells into CSR pieces in one pass each.

Imported lazily by :mod:`scsynth.model._generated` (numba comes with scanpy), so ``import scsynth`` stays fast.
The loops are branch-free (every entry is written, the output position only advances for kept entries):
generated profiles have about half their entries zero at random, where branches would mispredict. Output
buffers therefore need one slack element past the last kept entry.
"""

from __future__ import annotations

import numba
import numpy as np

# 'reassoc' lets the row sums vectorise; NaN/inf semantics stay exact (no 'nnan'/'ninf')
_FLAGS = {"reassoc"}


@numba.njit(cache=True, nogil=True, fastmath=_FLAGS)
def row_stats(a: np.ndarray, positive: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: number of kept entries (``> 0`` if ``positive`` else ``!= 0``), their sum and the sum of all
    entries (NaN/inf when the row has a non-finite value)."""
    n, g = a.shape
    nnz = np.zeros(n, np.int64)
    total = np.zeros(n, np.float64)
    raw = np.zeros(n, np.float64)
    for i in range(n):
        k = 0
        s = 0.0
        r = 0.0
        for j in range(g):
            v = np.float64(a[i, j])
            keep = (v > 0) if positive else (v != 0)
            k += keep
            s += v if keep else 0.0
            r += v
        nnz[i] = k
        total[i] = s
        raw[i] = r
    return nnz, total, raw


@numba.njit(cache=True, nogil=True)
def compact(a: np.ndarray, scale: np.ndarray, positive: bool, data: np.ndarray, indices: np.ndarray) -> int:
    """CSR data (``a[i, j] * scale[i]``) and column indices of the kept entries of ``a``, row by row."""
    n, g = a.shape
    p = 0
    for i in range(n):
        f = scale[i]
        for j in range(g):
            v = a[i, j]
            data[p] = v * f
            indices[p] = j
            p += (v > 0) if positive else (v != 0)
    return p


@numba.njit(cache=True, nogil=True)
def round_profiles(a: np.ndarray, x_scale: np.ndarray, n_scale: np.ndarray, uniforms: np.ndarray,
                   x_data: np.ndarray, x_indices: np.ndarray, x_row_nnz: np.ndarray, n_data: np.ndarray,
                   n_indices: np.ndarray) -> int:
    """One pass over non-negative profiles ``a``: the normalised layer (``a * n_scale[i]`` at the positive
    entries) and the counts ``floor(a * x_scale[i] + u)`` (non-zero ones), the k-th positive entry using
    ``uniforms[k]`` (one slack element needed). Returns the number of counts written."""
    n, g = a.shape
    p = 0
    q = 0
    for i in range(n):
        fx = x_scale[i]
        fn = n_scale[i]
        start = q
        for j in range(g):
            v = a[i, j]
            n_data[p] = v * fn
            n_indices[p] = j
            c = np.floor(v * fx + uniforms[p])
            x_data[q] = c
            x_indices[q] = j
            q += c > 0  # u < 1: a zero entry never rounds up
            p += v > 0
        x_row_nnz[i] = q - start
    return q


@numba.njit(cache=True, nogil=True, fastmath=_FLAGS)
def values_to_csr(a: np.ndarray, b: np.ndarray, positive: bool, norm_total: float, x_data: np.ndarray,
                  x_indices: np.ndarray, x_row_nnz: np.ndarray, n_data: np.ndarray, n_indices: np.ndarray,
                  n_row_nnz: np.ndarray, x_total: np.ndarray, raw_total: np.ndarray) -> None:
    """One pass per row (kept in cache) over values ``a`` and expected profiles ``b``: CSR of the kept
    entries of ``a`` and of ``b`` rescaled to sum to ``norm_total`` (left as they are when their total is
    not positive); ``x_total`` is the total of the kept values, ``raw_total`` of all (non-finite if any is).

    Kept: ``> 0`` if ``positive`` else ``!= 0``. Both outputs need room for a dense batch plus one.
    """
    n, g = a.shape
    p = 0
    q = 0
    for i in range(n):
        tb = 0.0
        for j in range(g):
            w = np.float64(b[i, j])
            tb += w if ((w > 0) if positive else (w != 0)) else 0.0
        ta = 0.0
        raw = 0.0
        for j in range(g):
            v = np.float64(a[i, j])
            ta += v if ((v > 0) if positive else (v != 0)) else 0.0
            raw += v
        x_total[i] = ta
        raw_total[i] = raw
        fb = np.float32(norm_total / tb) if tb > 0 else np.float32(1.0)
        start_q, start_p = q, p
        if positive:
            for j in range(g):
                v = a[i, j]
                w = b[i, j]
                x_data[q] = v
                x_indices[q] = j
                q += v > 0
                n_data[p] = w * fb
                n_indices[p] = j
                p += w > 0
        else:
            for j in range(g):
                v = a[i, j]
                w = b[i, j]
                x_data[q] = v
                x_indices[q] = j
                q += v != 0
                n_data[p] = w * fb
                n_indices[p] = j
                p += w != 0
        x_row_nnz[i] = q - start_q
        n_row_nnz[i] = p - start_p
