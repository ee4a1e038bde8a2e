"""The independence oracle of benchmarks/groundgan_independence.py on synthetic cells of known structure."""

from __future__ import annotations

import sys
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

import scsynth

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from groundgan_independence import independence_oracle, predictability

TFS = ["SPI1", "GATA1", "PAX5", "TCF7"]  # in the bundled human TF list


def cells(n: int = 400, seed: int = 0) -> anndata.AnnData:
    """T1-T3 follow a hidden cell state that no TF carries; T4-T6 follow SPI1; the TFs are independent.

    Forty steady genes make up most of each library, so the hidden state barely moves the TFs' shares.
    """
    rng = np.random.default_rng(seed)
    tfs = rng.lognormal(1.0, 0.6, (n, len(TFS)))
    state = rng.normal(size=(n, 1))
    hidden = np.exp(1.5 + state + 0.2 * rng.normal(size=(n, 3)))
    driven = np.exp(0.5 + 1.5 * np.log(tfs[:, :1]) + 0.2 * rng.normal(size=(n, 3)))
    steady = rng.lognormal(3.5, 0.05, (n, 40))
    genes = TFS + [f"T{i}" for i in range(1, 7)] + [f"H{i}" for i in range(40)]
    x = np.hstack([tfs, hidden, driven, steady]).astype(np.float32)
    return anndata.AnnData(x, var=pd.DataFrame(index=genes))


def log_shares(adata: anndata.AnnData) -> pd.DataFrame:
    x = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=float)
    return pd.DataFrame(np.log(x / x.sum(1, keepdims=True)), columns=adata.var_names)


def test_independent_targets_lose_what_no_tf_carries_and_keep_what_the_tfs_do():
    real = cells()
    independent = log_shares(independence_oracle(real, 2000, k=10, seed=1, is_count_data=False))
    coupled = log_shares(independence_oracle(real, 2000, k=10, coupled=True, seed=1, is_count_data=False))
    truth = log_shares(real)
    assert truth["T1"].corr(truth["T2"]) > 0.8
    assert coupled["T1"].corr(coupled["T2"]) > 0.8  # one neighbour per cell keeps the joint profile
    assert abs(independent["T1"].corr(independent["T2"])) < 0.15  # the hidden state's co-expression is gone
    assert independent["T4"].corr(independent["SPI1"]) > 0.7  # dependence through the TFs stays
    assert independent["T4"].corr(independent["T5"]) > 0.5


def test_one_neighbour_makes_independence_vacuous():
    real = cells()
    a = independence_oracle(real, 300, k=1, seed=3, is_count_data=False)
    b = independence_oracle(real, 300, k=1, coupled=True, seed=3, is_count_data=False)
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())


def test_hubs_of_the_knn_graph_do_not_donate_most_targets():
    """In 40 dimensions a few cells neighbour many: drawn uniformly among neighbours, one cell donated 2% of
    the cells' targets here (8 times its fair share); weighted by inverse in-degree, about twice its share."""
    rng = np.random.default_rng(0)
    tfs = scsynth.data.tf_list("human")[:40]
    x = np.hstack([rng.lognormal(1, 0.6, (400, 40)), rng.lognormal(2, 0.5, (400, 20))]).astype(np.float32)
    real = anndata.AnnData(x, var=pd.DataFrame(index=tfs + [f"T{i}" for i in range(20)]))
    out = independence_oracle(real, 4000, k=10, coupled=True, seed=0, is_count_data=False).X.toarray()[:, 40:]
    profiles = x[:, 40:] / x[:, 40:].sum(1, keepdims=True)
    donor = NearestNeighbors(n_neighbors=1).fit(profiles).kneighbors(out / out.sum(1, keepdims=True),
                                                                      return_distance=False).ravel()
    assert np.bincount(donor).max() / len(donor) < 0.01  # a fair share is 1/400 = 0.0025


def test_counts_are_integers_with_the_library_sizes_of_training_cells():
    real = cells()
    real.X = np.random.default_rng(0).poisson(real.X * 3).astype(np.float32)
    real = real[real.X.sum(1) > 0].copy()
    out = independence_oracle(real, 500, k=5, seed=0).X.toarray()
    assert np.array_equal(out, np.round(out))
    totals = set(np.asarray(real.X.sum(1)).ravel().tolist())
    near = [min(abs(t - s) for s in totals) <= 5 for t in out.sum(1)]  # rounding moves a few counts
    assert np.mean(near) > 0.95


def test_predictability_tells_tf_driven_from_hidden_targets():
    real = cells()
    steady = [f"H{i}" for i in range(40)]
    hidden = real[:, TFS + ["T1", "T2", "T3", *steady]].copy()
    driven = real[:, TFS + ["T4", "T5", "T6", *steady]].copy()
    assert max(predictability(hidden).values()) < 0.1
    fit = predictability(driven)
    assert fit["knn_20"] > 0.6 and fit["ridge"] > 0.6


def test_bad_input():
    real = cells(50)
    with pytest.raises(ValueError, match="k must be"):
        independence_oracle(real, 10, k=50)
    with pytest.raises(ValueError, match="are TFs"):
        independence_oracle(real[:, ["T1", "T2"]].copy(), 10, k=5)
