"""Realism beyond the classifier: library-size distributions and between-label fold changes of generated cells."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse, stats

from ..data._validate import check_obs_key
from ._preprocess import match_genes

__all__ = ["label_lfc_agreement", "library_size_distance"]


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float64)


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def library_size_distance(
    real: ad.AnnData, generated: ad.AnnData, *, layer: str | None = None, seed: int = 0
) -> dict[str, float]:
    """How far the generated cells' library sizes (totals per cell) are from the real ones.

    The distance is the Wasserstein-1 distance between the distributions of log10 library sizes (in
    decades: 0.1 means the generated totals are off by ~26% on average); ``control`` is the same distance
    between two random halves of the real cells, the sampling-noise level.

    Parameters
    ----------
    real, generated
        Cells with the same genes (generated genes matched by name); raw counts or values on the same
        scale (a generator's ``.X``).
    layer
        Layer read from both; ``.X`` when ``None``.
    seed
        Seed of the real halves.

    Returns
    -------
    ``distance``, ``control``, ``ratio`` (distance / control) and ``median_ratio`` (median generated
    library size / median real library size; 1 is ideal).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = ad.AnnData(rng.poisson(5.0, (200, 30)).astype(np.float32))
    >>> small = ad.AnnData(rng.poisson(2.5, (200, 30)).astype(np.float32))
    >>> d = library_size_distance(real, small)
    >>> round(d["median_ratio"], 1), d["ratio"] > 5
    (0.5, True)
    """
    x_real, x_gen = match_genes(real, generated, layer=layer)
    lib_real = np.asarray(x_real.sum(1)).ravel().astype(np.float64)
    lib_gen = np.asarray(x_gen.sum(1)).ravel().astype(np.float64)
    if len(lib_real) < 4:
        raise ValueError(f"library_size_distance needs at least 4 real cells, got {len(lib_real)}.")
    log_real, log_gen = np.log10(np.maximum(lib_real, 1e-8)), np.log10(np.maximum(lib_gen, 1e-8))
    a, b = _halves(len(log_real), np.random.default_rng(seed))
    distance = float(stats.wasserstein_distance(log_real, log_gen))
    control = float(stats.wasserstein_distance(log_real[a], log_real[b]))
    return {
        "distance": distance,
        "control": control,
        "ratio": distance / control if control > 0 else float("nan"),
        "median_ratio": float(np.median(lib_gen) / max(np.median(lib_real), 1e-12)),
    }


def _normalized(x: np.ndarray, library_size: float) -> np.ndarray:
    return x / np.maximum(x.sum(1, keepdims=True), 1e-12) * library_size


def _lfc(x: np.ndarray, labels: np.ndarray, label: str, pseudocount: float) -> np.ndarray:
    inside = labels == label
    return np.log2((x[inside].mean(0) + pseudocount) / (x[~inside].mean(0) + pseudocount))


def _annotate(x_real: np.ndarray, labels_real: np.ndarray, x_gen: np.ndarray, seed: int) -> np.ndarray:
    """Labels of generated cells by a 15-NN vote in the PCA of the real cells' log1p values."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    n_comps = max(1, min(30, x_real.shape[0] - 1, x_real.shape[1]))
    pca = PCA(n_comps, random_state=seed).fit(np.log1p(x_real))
    knn = KNeighborsClassifier(min(15, len(x_real))).fit(pca.transform(np.log1p(x_real)), labels_real)
    return knn.predict(pca.transform(np.log1p(x_gen)))


def _ratios(x_ref, lab_ref, x_test, lab_test, labels, n_top, pseudocount, min_cells) -> pd.DataFrame:
    rows = []
    for label in labels:
        if min((lab_ref == label).sum(), (lab_test == label).sum(), (lab_ref != label).sum(),
               (lab_test != label).sum()) < min_cells:
            continue
        ref = _lfc(x_ref, lab_ref, label, pseudocount)
        test = _lfc(x_test, lab_test, label, pseudocount)
        top = np.argsort(-ref)[:n_top]
        top = top[ref[top] > 0]  # markers: genes up in the label
        if len(top) == 0:
            continue
        ratio = test[top] / ref[top]
        rows.append({"label": label, "n_markers": len(top), "median_ratio": float(np.median(ratio)),
                     "frac_within": float(np.mean((ratio >= 0.8) & (ratio <= 1.25))),
                     "pearson": float(stats.pearsonr(ref[top], test[top])[0]) if len(top) > 2 else float("nan")})
    return pd.DataFrame(rows, columns=["label", "n_markers", "median_ratio", "frac_within", "pearson"])


def label_lfc_agreement(
    real: ad.AnnData,
    generated: ad.AnnData,
    labels_key: str,
    *,
    generated_key: str | None = None,
    n_top: int = 20,
    layer: str | None = None,
    library_size: float = 1e4,
    pseudocount: float = 1.0,
    min_cells: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Do generated cells keep the real differences between labels, not an exaggeration or a blur of them?

    For each label, its top ``n_top`` markers are the genes with the largest log2 fold change (label vs
    the other cells, means of values normalised to ``library_size``, ``pseudocount`` added) in the real
    cells; the same fold changes are computed in the generated cells. ``median_ratio`` (generated / real
    fold change of the markers) is 1 when the differences are kept, above 1 when exaggerated, below 1
    when blurred; ``frac_within`` is the fraction of markers within 0.8-1.25x. The ``control`` rows do the
    same between two random halves of the real cells (markers chosen on one half, measured on the other),
    the sampling-noise level.

    Parameters
    ----------
    real
        Real cells with labels in ``real.obs[labels_key]``.
    generated
        Generated cells (genes matched by name).
    labels_key
        Column of ``real.obs`` with the labels.
    generated_key
        Column of ``generated.obs`` with the generated cells' labels (``labels_key`` when it is there).
        When the generated cells have no labels (an unconditional model) they are annotated by a
        15-nearest-neighbour vote of the real cells in the PCA of log1p values.
    n_top
        Markers per label.
    layer
        Layer read from both; ``.X`` when ``None``.
    library_size, pseudocount
        Normalisation target and pseudocount of the fold changes.
    min_cells
        Labels with fewer cells (in or outside the label) in either set are skipped.
    seed
        Seed of the real halves and the annotation's PCA.

    Returns
    -------
    One row per label and set (``"generated"`` or ``"control"``): ``label``, ``n_markers``,
    ``median_ratio``, ``frac_within``, ``pearson`` (real vs generated marker fold changes) and ``set``;
    ``attrs["annotated"]`` says whether generated labels were predicted.

    Examples
    --------
    >>> table = scsynth.metrics.label_lfc_agreement(held_out, cells, "cell_type")  # doctest: +SKIP
    >>> table.groupby("set")["median_ratio"].median()  # doctest: +SKIP
    """
    check_obs_key(real, labels_key)
    x_real, x_gen = (_normalized(_dense(x), library_size) for x in match_genes(real, generated, layer=layer))
    lab_real = real.obs[labels_key].astype(str).to_numpy()
    key = generated_key or (labels_key if labels_key in generated.obs else None)
    if key is not None:
        check_obs_key(generated, key, what="generated_key")
        lab_gen = generated.obs[key].astype(str).to_numpy()
    else:
        lab_gen = _annotate(x_real, lab_real, x_gen, seed)
    labels = sorted(set(lab_real))
    gen = _ratios(x_real, lab_real, x_gen, lab_gen, labels, n_top, pseudocount, min_cells).assign(set="generated")
    a, b = _halves(len(x_real), np.random.default_rng(seed))
    ctrl = _ratios(x_real[a], lab_real[a], x_real[b], lab_real[b], labels, n_top, pseudocount, min_cells)
    table = pd.concat([gen, ctrl.assign(set="control")], ignore_index=True)
    table.attrs["annotated"] = key is None
    return table
