"""Gene-level agreement between two sets of cells: centroids, moments, dropout and co-expression."""

from __future__ import annotations

import numpy as np
from scipy.spatial import distance

from ._checks import as_matrix_pair


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two vectors; NaN (without warnings) when either is constant or too short."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    if not np.isfinite(denom) or denom == 0:
        return float("nan")
    return float(np.clip((a @ b) / denom, -1.0, 1.0))


def _correlation_matrix(x: np.ndarray) -> np.ndarray:
    """Gene-gene Pearson correlation of cells x genes ``x`` (columns must not be constant)."""
    z = x - x.mean(axis=0)
    z /= np.linalg.norm(z, axis=0)
    return z.T @ z


def centroid_distances(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Euclidean and cosine distance between the mean expression profiles of two sets.

    Parameters
    ----------
    x
        Normalised (non-log) expression of the first set, cells x genes.
    y
        Normalised expression of the second set, same genes.

    Returns
    -------
    ``{"euclidean_centroid": ..., "cosine_centroid": ...}``; lower is better. The cosine distance is
    NaN when a centroid is all zeros.

    Examples
    --------
    >>> centroid_distances(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    {'euclidean_centroid': 1.4142135623730951, 'cosine_centroid': 1.0}
    """
    x, y = as_matrix_pair(x, y)
    cx, cy = x.mean(axis=0), y.mean(axis=0)
    zero = not cx.any() or not cy.any()
    return {
        "euclidean_centroid": float(distance.euclidean(cx, cy)),
        "cosine_centroid": float("nan") if zero else float(distance.cosine(cx, cy)),
    }


def gene_statistics_agreement(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson r between per-gene statistics of two sets of cells.

    Means and variances are taken of ``log1p`` expression; zero fractions of the raw values. The
    gene-gene correlation matrices (``log1p``, genes constant in either set dropped) are compared
    through their upper triangles.

    Parameters
    ----------
    x
        Normalised (non-log) expression of the first set (e.g. real cells), cells x genes.
    y
        Normalised expression of the second set, same genes.

    Returns
    -------
    ``gene_mean_corr``, ``gene_var_corr``, ``gene_zero_frac_corr`` and ``gene_corr_corr``; each is 1
    for perfect agreement and NaN when undefined (e.g. a constant statistic).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.poisson(rng.uniform(0.1, 5, 30), (200, 30)).astype(float)
    >>> round(gene_statistics_agreement(x, x)["gene_corr_corr"], 6)
    1.0
    """
    x, y = as_matrix_pair(x, y, nonnegative=True)
    lx, ly = np.log1p(x), np.log1p(y)
    var_x, var_y = lx.var(axis=0), ly.var(axis=0)
    out = {
        "gene_mean_corr": _pearson(lx.mean(axis=0), ly.mean(axis=0)),
        "gene_var_corr": _pearson(var_x, var_y),
        "gene_zero_frac_corr": _pearson((x == 0).mean(axis=0), (y == 0).mean(axis=0)),
    }
    # a constant gene has no defined correlation with anything
    keep = (np.ptp(lx, axis=0) > 0) & (np.ptp(ly, axis=0) > 0)
    if keep.sum() < 3:  # fewer than 2 gene pairs
        out["gene_corr_corr"] = float("nan")
        return out
    upper = np.triu_indices(int(keep.sum()), k=1)
    corr_x = _correlation_matrix(lx[:, keep])[upper]
    corr_y = _correlation_matrix(ly[:, keep])[upper]
    out["gene_corr_corr"] = _pearson(corr_x, corr_y)
    return out
