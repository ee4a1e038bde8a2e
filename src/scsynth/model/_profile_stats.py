"""Per-gene mean and non-zero fraction of library-size normalised training cells (a generator's starting point)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ..data._matrix import read_rows

_CHUNK = 20_000  # cells read at once: bounded memory on atlas-sized (also backed) data


def profile_stats(
    adata, layer: str | None, indices: np.ndarray, library_size: float, codes: np.ndarray | None = None,
    n_labels: int = 0, *, columns: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mean and non-zero fraction of each gene over cells ``indices``, each cell normalised to ``library_size``.

    With ``codes`` (a label code per cell of ``adata``) also the ``n_labels x genes`` mean of each label;
    a label without cells gets the overall mean. ``columns``: only these genes, normalised over themselves.
    """
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    total, nonzero, label_total, label_n = None, None, None, np.zeros(n_labels)
    for start in range(0, len(indices), _CHUNK):
        idx = indices[start:start + _CHUNK]
        rows = read_rows(adata, layer, idx)
        rows = rows if columns is None else rows[:, columns]
        rows = sparse.csr_matrix(rows, dtype=np.float64) if sparse.issparse(rows) else np.asarray(rows, np.float64)
        sums = np.asarray(rows.sum(axis=1)).ravel()
        scale = np.divide(library_size, sums, out=np.zeros_like(sums), where=sums > 0)
        normed = sparse.diags(scale) @ rows if sparse.issparse(rows) else rows * scale[:, None]
        part_total = np.asarray(normed.sum(axis=0)).ravel()
        part_nonzero = np.asarray((normed > 0).sum(axis=0)).ravel()
        total = part_total if total is None else total + part_total
        nonzero = part_nonzero if nonzero is None else nonzero + part_nonzero
        if codes is not None:
            onehot = sparse.csr_matrix((np.ones(len(idx)), (codes[idx], np.arange(len(idx)))),
                                       shape=(n_labels, len(idx)))
            part = onehot @ normed
            part = part.toarray() if sparse.issparse(part) else np.asarray(part)
            label_total = part if label_total is None else label_total + part
            label_n += np.bincount(codes[idx], minlength=n_labels)
    n = max(len(indices), 1)
    mean, fraction = total / n, nonzero / n
    if codes is None:
        return mean, fraction, None
    label_means = np.where(label_n[:, None] > 0, label_total / np.maximum(label_n, 1)[:, None], mean[None, :])
    return mean, fraction, label_means
