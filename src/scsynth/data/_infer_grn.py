"""GRN inference from expression, GRNBoost2-style: one gradient-boosting regression per gene on the TFs."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse
from sklearn.ensemble import GradientBoostingRegressor
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks

from .._settings import settings
from ._grn import tf_list
from ._matrix import check_values, get_matrix, normalize_total
from ._validate import examples

#: Per-cell library size of the inputs (GRouNdGAN normalises to 20,000, without log).
LIBRARY_SIZE = 20_000.0
_N_ESTIMATORS = 5000
_WINDOW = 25


class _OOBEarlyStop:
    """Stop boosting once the out-of-bag improvement, averaged over the last ``window`` trees, is negative."""

    def __init__(self, window: int) -> None:
        self.window = window

    def __call__(self, i: int, model: GradientBoostingRegressor, _locals: dict) -> bool:
        if i + 1 < self.window:
            return False
        return bool(np.mean(model.oob_improvement_[i + 1 - self.window : i + 1]) < 0)


def _fit_targets(
    x: np.ndarray, tf_cols: np.ndarray, target_cols: Sequence[int], seed: int, n_estimators: int, window: int
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Fit one boosted regressor per target; return (target column, TF columns, importances)."""
    out = []
    for t in target_cols:
        features = tf_cols[tf_cols != t]
        y = x[:, t]
        # a constant gene has no regulator, and its boosting would never stop early
        if len(features) == 0 or y.min() == y.max():
            continue
        model = GradientBoostingRegressor(
            learning_rate=0.01,
            n_estimators=n_estimators,
            max_features=0.1,
            subsample=0.9,
            max_depth=3,
            random_state=seed,
        )
        model.fit(x[:, features], y, monitor=_OOBEarlyStop(window))
        out.append((int(t), features, model.feature_importances_ * model.n_estimators_))
    return out


def _sklearn(x, tf_cols, target_cols, *, seed, n_estimators, window, n_jobs, progress) -> pd.DataFrame:
    size = max(1, math.ceil(len(target_cols) / (max(n_jobs, 1) * 20)))
    chunks = [target_cols[i : i + size] for i in range(0, len(target_cols), size)]
    args = (seed, n_estimators, window)
    bar = tqdm(
        total=len(target_cols),
        desc="infer_grn",
        unit="gene",
        disable=not progress,
        mininterval=0.1 if sys.stderr.isatty() else 10.0,  # few redraws in logs and notebooks
    )
    if n_jobs == 1:
        results = (_fit_targets(x, tf_cols, c, *args) for c in chunks)
    else:
        from joblib import Parallel, delayed

        # threads: trees are grown without the GIL, and worker processes would each import scsynth and torch
        parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
        results = parallel(delayed(_fit_targets)(x, tf_cols, c, *args) for c in chunks)
    rows = []
    with bar:
        for chunk, res in zip(chunks, results, strict=False):
            rows.extend(res)
            bar.update(len(chunk))
    if not rows:
        return pd.DataFrame({"source": [], "target": [], "weight": []})
    return pd.DataFrame(
        {
            "source": np.concatenate([f for _, f, _ in rows]),
            "target": np.concatenate([np.full(len(f), t) for t, f, _ in rows]),
            "weight": np.concatenate([w for _, _, w in rows]),
        }
    )


def _arboreto(x, genes, tf_cols, target_cols, *, seed, window, n_jobs) -> pd.DataFrame:
    from arboreto.algo import grnboost2
    from distributed import Client, LocalCluster

    cols = np.union1d(tf_cols, target_cols)
    df = pd.DataFrame(x[:, cols], columns=genes[cols])
    cluster = LocalCluster(n_workers=1, threads_per_worker=n_jobs, processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client:
        net = grnboost2(
            expression_data=df,
            tf_names=list(genes[tf_cols]),
            client_or_address=client,
            early_stop_window_length=window,
            seed=seed,
        )
    pos = {g: i for i, g in enumerate(genes)}
    net = net[net["target"].isin(set(genes[target_cols]))]
    return pd.DataFrame(
        {
            "source": net["TF"].map(pos),
            "target": net["target"].map(pos),
            "weight": net["importance"].astype(float),
        }
    )


def _arboreto_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("arboreto", "distributed"))


def _rows(obs_subset, n_obs: int) -> np.ndarray:
    if obs_subset is None:
        return np.arange(n_obs)
    sub = np.asarray(obs_subset)
    if sub.dtype == bool:
        if sub.shape != (n_obs,):
            raise ValueError(f"obs_subset is a boolean mask of length {len(sub)}; adata has {n_obs} cells.")
        rows = np.flatnonzero(sub)
    elif np.issubdtype(sub.dtype, np.integer):
        if sub.size and (sub.min() < -n_obs or sub.max() >= n_obs):
            raise ValueError(f"obs_subset holds cell indices outside 0..{n_obs - 1}.")
        rows = sub.ravel()
    else:
        raise TypeError(f"obs_subset must be a boolean mask or integer cell indices, got dtype {sub.dtype}.")
    if len(rows) < 2:
        raise ValueError(
            f"obs_subset selects {len(rows)} cells; GRN inference needs at least 2 (ideally hundreds)."
        )
    return rows


def infer_grn(
    adata: AnnData,
    *,
    tfs: str | os.PathLike | Sequence[str] = "human",
    top_k: int | None = 15,
    targets: Sequence[str] | None = None,
    layer: str | None = None,
    obs_subset: np.ndarray | Sequence[int] | None = None,
    normalize: bool = True,
    seed: int = 0,
    n_jobs: int | None = None,
    n_estimators: int = _N_ESTIMATORS,
    early_stop_window: int = _WINDOW,
    backend: Literal["auto", "sklearn", "arboreto"] = "auto",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Infer a TF -> target GRN from expression with GRNBoost2's scheme (the GRN GRouNdGAN imposes).

    For every target gene, a stochastic gradient-boosting regressor (scikit-learn's
    :class:`~sklearn.ensemble.GradientBoostingRegressor`: learning rate 0.01, depth-3 trees,
    ``max_features=0.1``, ``subsample=0.9``, up to ``n_estimators`` trees) predicts its expression
    from the TFs' (the target itself excluded). Boosting stops early once the out-of-bag
    improvement, averaged over the last ``early_stop_window`` trees, turns negative. A TF's
    importance is its ``feature_importances_`` times the number of trees fitted, as in arboreto's
    GRNBoost2, so a target's importances sum to its number of trees. The ``top_k`` TFs with non-zero
    importance are kept per target.

    Parameters
    ----------
    adata
        Cells x genes, non-negative expression (counts or normalised, not log or scaled).
    tfs
        Transcription factors, as :func:`tf_list` accepts (``"human"``: Lambert et al. 2018);
        those that are genes of ``adata`` are the candidate regulators.
    top_k
        TFs kept per target; ``None`` keeps all with non-zero importance.
    targets
        Genes to infer regulators for; all genes when ``None``.
    layer
        Layer holding the expression; ``.X`` when ``None``.
    obs_subset
        Boolean mask or integer indices of the cells to use. Infer on the training cells only,
        so that held-out cells stay unseen by the GRN that a model imposes.
    normalize
        Scale each cell to a total of 20,000 (GRouNdGAN's library size, no log) before fitting;
        ``False`` uses the values as they are.
    seed
        Seed of every regressor; the same seed gives the same GRN.
    n_jobs
        Parallel threads (joblib, ``-1``: all cores); ``min(2, os.cpu_count())`` when ``None``.
    n_estimators
        Maximum number of trees per target (early stopping usually ends far sooner).
    early_stop_window
        Trees over which the out-of-bag improvement is averaged for early stopping.
    backend
        ``"sklearn"``: scsynth's own loop over targets (joblib, progress bar). ``"arboreto"``:
        :func:`arboreto.algo.grnboost2` on a threaded dask cluster (``pip install scsynth[grn]``),
        only with the default ``n_estimators``. ``"auto"``: arboreto when it is installed and
        ``n_estimators`` is the default, falling back to sklearn with a warning if it fails.
    progress
        Show a progress bar (sklearn backend); ``scsynth.settings.progress`` when ``None``.

    Returns
    -------
    GRN DataFrame ``source`` (TF), ``target``, ``weight`` (importance), sorted by target (data
    order) then weight descending, ties by TF name.

    Examples
    --------
    >>> import scsynth
    >>> adata = scsynth.data.pbmc68k_normalized()
    >>> grn = scsynth.data.infer_grn(adata, targets=["CD79A", "LYZ"], top_k=5, progress=False)
    >>> grn.groupby("target", sort=False).size().to_dict()  # data order
    {'LYZ': 5, 'CD79A': 5}
    """
    if top_k is not None and (
        not isinstance(top_k, int | np.integer) or isinstance(top_k, bool) or top_k < 1
    ):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}.")
    for name, value in (("n_estimators", n_estimators), ("early_stop_window", early_stop_window)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if backend not in ("auto", "sklearn", "arboreto"):
        raise ValueError(f"backend must be 'auto', 'sklearn' or 'arboreto', got {backend!r}.")
    n_jobs = min(2, os.cpu_count() or 1) if n_jobs is None else n_jobs
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive int or -1 (all cores), got {n_jobs!r}.")
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    progress = settings.progress if progress is None else progress

    x = get_matrix(adata, layer)
    genes = np.asarray(adata.var_names).astype(str)
    tf_names = tf_list(tfs)
    tf_set = set(tf_names)
    tf_cols = np.array([i for i, g in enumerate(genes) if g in tf_set], dtype=np.int64)
    if len(tf_cols) == 0:
        raise ValueError(
            f"None of the {len(tf_names)} TFs of the list ({examples(tf_names)}) is a gene of adata "
            f"({examples(genes)}); check the gene naming or pass tfs=['GENE1', ...] naming the regulators."
        )
    if targets is None:
        target_cols = np.arange(len(genes))
    else:
        pos = {g: i for i, g in enumerate(genes)}
        names = [targets] if isinstance(targets, str) else list(dict.fromkeys(targets))
        absent = [g for g in names if g not in pos]
        if absent:
            raise KeyError(f"targets {examples(absent)} are not in adata.var_names.")
        target_cols = np.array(sorted(pos[g] for g in names), dtype=np.int64)

    rows = _rows(obs_subset, adata.n_obs)
    x = x[rows]
    check_values(x, f"adata.layers[{layer!r}]" if layer is not None else "adata.X")
    if normalize:
        x = normalize_total(x, LIBRARY_SIZE)
    x = np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)

    use_arboreto = backend == "arboreto"
    if backend == "arboreto" and n_estimators != _N_ESTIMATORS:
        raise ValueError(f"backend='arboreto' fixes n_estimators at {_N_ESTIMATORS}; use backend='sklearn'.")
    if backend == "auto" and n_estimators == _N_ESTIMATORS:
        use_arboreto = _arboreto_installed()
    edges = None
    if use_arboreto:
        try:
            edges = _arboreto(
                x, genes, tf_cols, target_cols, seed=seed, window=early_stop_window, n_jobs=n_jobs
            )
        except Exception as err:
            if backend == "arboreto":
                raise
            warnings.warn(
                f"arboreto's grnboost2 failed ({err!r}); using scsynth's sklearn loop.", stacklevel=2
            )
    if edges is None:
        edges = _sklearn(
            x, tf_cols, target_cols, seed=seed, n_estimators=n_estimators, window=early_stop_window,
            n_jobs=n_jobs, progress=progress,
        )  # fmt: skip

    edges = edges[edges["weight"] > 0]
    edges = edges.assign(source=genes[edges["source"].to_numpy(int)], _t=edges["target"].to_numpy(int))
    edges["target"] = genes[edges["_t"].to_numpy()]
    edges = edges.sort_values(["_t", "weight", "source"], ascending=[True, False, True], kind="stable")
    if top_k is not None:
        edges = edges[edges.groupby("_t").cumcount() < top_k]
    return edges[["source", "target", "weight"]].astype({"weight": np.float64}).reset_index(drop=True)
