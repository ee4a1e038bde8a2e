"""Local inverse Simpson's index (LISI) of a labelling on a kNN graph.

Written here rather than imported: scib-metrics needs JAX (and drops Python 3.11) and harmonypy is
GPL. The algorithm follows Korsunsky et al. 2019 (harmony's ``compute_lisi``), vectorised over cells.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from ._checks import as_matrix_pair


def _neighbour_weights(
    dist: np.ndarray, perplexity: float, *, tol: float = 1e-5, n_iter: int = 50
) -> np.ndarray:
    """Row-normalised weights ``exp(-beta_i d_ij)`` with ``beta_i`` set so each row has the perplexity."""
    # as in harmony, weights decay with the (unsquared) kNN distance. Shifting each row by its
    # nearest distance leaves the normalised weights and the entropy unchanged but avoids underflow.
    d = dist - dist[:, :1]
    n = d.shape[0]
    beta = np.ones(n)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    target = np.log(perplexity)
    for _ in range(n_iter):
        p = np.exp(-d * beta[:, None])
        total = p.sum(axis=1)  # >= 1 thanks to the shift
        entropy = np.log(total) + beta * (d * p).sum(axis=1) / total
        diff = entropy - target
        active = np.abs(diff) >= tol
        if not active.any():
            break
        # entropy too high -> raise the precision; too low -> lower it (bisection once bracketed)
        up = active & (diff > 0)
        down = active & (diff <= 0)
        lo[up] = beta[up]
        beta[up] = np.where(np.isinf(hi[up]), beta[up] * 2, (beta[up] + hi[up]) / 2)
        hi[down] = beta[down]
        beta[down] = np.where(np.isinf(lo[down]), beta[down] / 2, (beta[down] + lo[down]) / 2)
    p = np.exp(-d * beta[:, None])
    return p / p.sum(axis=1, keepdims=True)


def lisi(
    embedding: np.ndarray,
    labels: np.ndarray,
    *,
    perplexity: float = 30,
    n_neighbors: int | None = None,
) -> np.ndarray:
    """Per-cell LISI: the effective number of label classes in each cell's neighbourhood.

    Parameters
    ----------
    embedding
        Cells x dimensions (e.g. PCA coordinates).
    labels
        One label per cell.
    perplexity
        Effective neighbourhood size of the Gaussian weights; lowered to ``n_neighbors // 3`` when
        there are too few neighbours.
    n_neighbors
        Neighbours per cell (excluding itself); ``min(3 * perplexity, n_cells - 1)`` when ``None``.

    Returns
    -------
    LISI per cell, between 1 (one class around the cell) and the number of classes (perfect mixing).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(300, 2))
    >>> round(float(lisi(emb, rng.integers(0, 2, 300)).mean()), 1)
    1.9
    >>> float(lisi(np.r_[emb, emb + 100], np.repeat([0, 1], 300)).mean())
    1.0
    """
    emb = np.asarray(embedding, dtype=np.float64)
    labels = np.asarray(labels)
    if emb.ndim != 2 or emb.shape[1] == 0:
        raise ValueError(f"embedding must be 2-D (cells x dimensions, at least one), got shape {emb.shape}.")
    n = emb.shape[0]
    if labels.shape != (n,):
        raise ValueError(f"labels must have one entry per cell ({n}), got shape {labels.shape}.")
    if n < 3:
        raise ValueError(f"LISI needs at least 3 cells, got {n}.")
    if not np.isfinite(emb).all():
        raise ValueError("embedding contains NaN or infinite values.")
    if perplexity <= 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}.")
    k = min(int(3 * perplexity), n - 1) if n_neighbors is None else int(n_neighbors)
    if not 1 <= k <= n - 1:
        raise ValueError(f"n_neighbors must be between 1 and n_cells - 1 = {n - 1}, got {n_neighbors}.")
    perplexity = min(perplexity, max(k // 3, 1))
    # without X, kneighbors excludes each cell from its own neighbours
    dist, idx = NearestNeighbors(n_neighbors=k).fit(emb).kneighbors()
    weights = _neighbour_weights(dist, perplexity)
    _, codes = np.unique(labels, return_inverse=True)
    nbr_codes = codes[idx]
    simpson = np.zeros(n)
    for c in range(codes.max() + 1):  # loop over classes, not cells
        simpson += np.where(nbr_codes == c, weights, 0.0).sum(axis=1) ** 2
    return 1.0 / simpson


def milisi(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_components: int = 50,
    n_neighbors: int = 90,
    perplexity: float = 30,
    seed: int = 0,
) -> float:
    """Mean LISI of the origin label (x vs y) in a joint PCA of ``log1p`` expression.

    Parameters
    ----------
    x
        Normalised (non-log) expression of the first set, cells x genes.
    y
        Normalised expression of the second set, same genes.
    n_components
        PCA dimensions; fewer when there are not enough cells or genes.
    n_neighbors
        Neighbours per cell; at most ``n_cells - 1``.
    perplexity
        Perplexity of the neighbour weights.
    seed
        Seed of the PCA solver.

    Returns
    -------
    Mean LISI; 2 for perfectly mixed sets, 1 for fully separated ones.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.poisson(2.0, (150, 20)).astype(float)
    >>> milisi(x, rng.poisson(2.0, (150, 20)).astype(float)) > 1.8
    True
    """
    x, y = as_matrix_pair(x, y, nonnegative=True)
    union = np.log1p(np.vstack([x, y]))
    n_comp = max(1, min(n_components, union.shape[0] - 1, union.shape[1]))
    emb = PCA(n_components=n_comp, random_state=seed).fit_transform(union)
    labels = np.repeat([0, 1], [len(x), len(y)])
    k = min(n_neighbors, union.shape[0] - 1)
    return float(lisi(emb, labels, perplexity=perplexity, n_neighbors=k).mean())
