"""Real-vs-generated random-forest classifier (the scGAN / GRouNdGAN realism test)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from ._checks import as_matrix_pair


def rf_auroc(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_components: int = 50,
    n_estimators: int = 1000,
    seed: int = 0,
    n_jobs: int = -1,
) -> float:
    """Test AUROC of a random forest telling ``x`` cells from ``y`` cells.

    The cells are split 70/30 (stratified); a PCA fit on the training split reduces the expression
    and a random forest is trained on it.

    Parameters
    ----------
    x
        Normalised (non-log) expression of the first set (e.g. real cells), cells x genes.
    y
        Normalised expression of the second set (e.g. generated cells), same genes.
    n_components
        PCA dimensions; fewer when there are not enough training cells or genes.
    n_estimators
        Trees in the forest.
    seed
        Seed of the split, the PCA and the forest.
    n_jobs
        Parallel jobs of the forest (``-1``: all cores).

    Returns
    -------
    AUROC on the held-out cells; 0.5 when the sets are indistinguishable, 1 when fully separable.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.poisson(2.0, (100, 20)).astype(float)
    >>> rf_auroc(x, x + 5, n_estimators=20) > 0.95
    True
    """
    x, y = as_matrix_pair(x, y)
    if min(len(x), len(y)) < 5:
        raise ValueError(f"rf_auroc needs at least 5 cells per set, got {len(x)} and {len(y)}.")
    if n_estimators < 1:
        raise ValueError(f"n_estimators must be at least 1, got {n_estimators}.")
    data = np.vstack([x, y])
    target = np.repeat([0, 1], [len(x), len(y)])
    x_train, x_test, y_train, y_test = train_test_split(
        data, target, test_size=0.3, stratify=target, random_state=seed
    )
    n_comp = max(1, min(n_components, x_train.shape[0] - 1, x_train.shape[1]))
    pca = PCA(n_components=n_comp, random_state=seed).fit(x_train)
    forest = RandomForestClassifier(n_estimators=n_estimators, n_jobs=n_jobs, random_state=seed)
    forest.fit(pca.transform(x_train), y_train)
    return float(roc_auc_score(y_test, forest.predict_proba(pca.transform(x_test))[:, 1]))
