"""A cheap realism score against a fixed set of real cells, fitted once, for monitoring training."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from ..data._matrix import normalize_total
from ._checks import as_matrix
from ._classifier import rf_auroc
from ._mmd import median_knn_distance, mmd
from ._preprocess import select_hvg

#: metric -> the value a perfect generator scores
SCORER_METRICS = {"mmd": 0.0, "rf_auroc": 0.5}


class RealismScorer:
    """Score generated cells against fixed real cells in a fraction of a second (to monitor training).

    The preparation is that of :func:`~scsynth.metrics.realism`, done once: every cell is scaled to
    ``library_size``, the ``n_hvg`` Seurat-flavour highly variable genes of the real (and ``reference``)
    cells are kept, and a PCA with ``n_components`` dimensions is fitted on those cells. Each call then
    projects the generated cells and returns

    - ``metric="mmd"`` (default): the multi-scale Gaussian-kernel MMD² (:func:`~scsynth.metrics.mmd`) between
      the real and the generated cells in the PCA space, with bandwidths fixed from the real cells
      (half, once and twice their median distance to their 24 nearest neighbours), so that scores of
      successive calls compare;
    - ``metric="rf_auroc"``: the held-out AUROC of a small random forest (:func:`~scsynth.metrics.rf_auroc`,
      ``rf_trees`` trees, one core) telling them apart in the PCA space.

    It is a monitor, not a report: :func:`~scsynth.metrics.realism` (with its real-vs-real control and
    nine metrics) is the call that reports realism.

    Parameters
    ----------
    real
        The real cells the generated ones are compared with (e.g. validation cells), cells x genes, counts
        or non-negative normalised (non-log) expression, dense or sparse.
    reference
        More real cells (same genes) used with ``real`` to choose the genes and fit the PCA, e.g.
        training cells; ``None`` uses ``real`` alone.
    metric
        ``"mmd"`` or ``"rf_auroc"``.
    n_hvg
        Highly variable genes kept; all genes when there are fewer.
    n_components
        PCA dimensions (fewer when there are not enough cells or genes).
    library_size
        Total each cell is scaled to.
    rf_trees
        Trees of the forest (``metric="rf_auroc"``).
    seed
        Seed of the PCA and the forest; the score is a deterministic function of the cells.

    Attributes
    ----------
    genes_
        Indices of the genes kept (columns of the input).
    pca_
        The fitted :class:`~sklearn.decomposition.PCA`.
    real_
        The real cells in the PCA space.
    sigmas_
        The MMD kernel bandwidths.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = rng.poisson(3.0, (200, 50)).astype(float)
    >>> scorer = RealismScorer(real[:100], reference=real[100:], n_components=10)
    >>> scorer(real[100:]) < scorer(real[100:] * rng.uniform(0, 2, 50))
    True
    """

    def __init__(
        self,
        real: Any,
        *,
        reference: Any | None = None,
        metric: str = "mmd",
        n_hvg: int = 1000,
        n_components: int = 50,
        library_size: float = 20000,
        rf_trees: int = 50,
        seed: int = 0,
    ) -> None:
        if metric not in SCORER_METRICS:
            raise ValueError(f"metric must be one of {sorted(SCORER_METRICS)}, got {metric!r}.")
        for name, value in (("n_hvg", n_hvg), ("n_components", n_components), ("rf_trees", rf_trees)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if not np.isfinite(library_size) or library_size <= 0:
            raise ValueError(f"`library_size` must be a positive number, got {library_size!r}.")
        self.metric, self.library_size, self.rf_trees, self.seed = metric, float(library_size), rf_trees, seed
        x_real = self._normalize(real, "real")
        if x_real.shape[0] < 10:
            raise ValueError(f"RealismScorer needs at least 10 real cells, got {x_real.shape[0]}.")
        fit = x_real
        if reference is not None:
            x_ref = self._normalize(reference, "reference")
            if x_ref.shape[1] != x_real.shape[1]:
                raise ValueError(f"real and reference must have the same genes, got {x_real.shape[1]} and "
                                 f"{x_ref.shape[1]} columns.")
            fit = np.vstack([x_real, x_ref])
        self.n_genes = x_real.shape[1]
        self.genes_ = select_hvg(fit, n_hvg)
        n_comp = max(1, min(n_components, fit.shape[0] - 1, len(self.genes_)))
        # small matrices: threaded BLAS only oversubscribes the cores training uses (5-30x slower when busy)
        with threadpool_limits(limits=1, user_api="blas"):
            self.pca_ = PCA(n_components=n_comp, random_state=seed).fit(fit[:, self.genes_])
            self.real_ = self.pca_.transform(x_real[:, self.genes_])
            m_d = median_knn_distance(self.real_)
        self.sigmas_ = (m_d / 2, m_d, 2 * m_d)

    def _normalize(self, x: Any, name: str) -> np.ndarray:
        x = as_matrix(x, name)
        if (x < 0).any():
            raise ValueError(f"`{name}` contains negative values; pass counts or normalised non-log expression.")
        return normalize_total(x, self.library_size)

    def embed(self, cells: Any) -> np.ndarray:
        """``cells`` (same genes as ``real``) normalised, restricted to the kept genes and projected on the PCA."""
        x = self._normalize(cells, "generated")
        if x.shape[1] != self.n_genes:
            raise ValueError(f"generated cells must have the real cells' {self.n_genes} genes, got {x.shape[1]}.")
        return self.pca_.transform(x[:, self.genes_])

    def __call__(self, generated: Any) -> float:
        """The score of ``generated`` cells (:attr:`metric`); see :meth:`gap` for the distance to a perfect one."""
        with threadpool_limits(limits=1, user_api="blas"):
            g = self.embed(generated)
            if self.metric == "mmd":
                return mmd(self.real_, g, sigmas=self.sigmas_)
            return rf_auroc(self.real_, g, n_components=self.real_.shape[1], n_estimators=self.rf_trees,
                            seed=self.seed, n_jobs=1)

    def gap(self, value: float) -> float:
        """Distance of a score from the perfect one (lower is better): MMD² itself, ``|AUROC - 0.5|``.

        Examples
        --------
        >>> scorer = RealismScorer(np.random.default_rng(0).poisson(3.0, (40, 20)), metric="rf_auroc")
        >>> round(scorer.gap(0.4), 3), scorer.gap(0.75)
        (0.1, 0.25)
        """
        return abs(float(value) - SCORER_METRICS[self.metric])
