"""Cross-fitted realism (benchmarks/realism_crossfit.py): every sample held out once, genes chosen on training folds."""

from __future__ import annotations

import sys
from pathlib import Path

import anndata
import numpy as np
import pytest
from scipy import sparse

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from realism_crossfit import fold_splits, pooled

import scsynth


@pytest.fixture(scope="module")
def splits():
    return fold_splits(3, seed=0)


def test_every_sample_is_held_out_exactly_once_and_never_trained_on(splits):
    adata = scsynth.data.geuvadis_lcl()
    names, overall = adata.obs_names, (adata.obs["sex"].astype(str) == adata.obs["sex"].astype(str).iloc[0]).mean()
    held = np.concatenate([s.held_out.obs_names for s in splits])
    assert sorted(held) == sorted(names)
    for s in splits:
        assert not set(s.train.obs_names) & set(s.held_out.obs_names)
        first = s.held_out.obs["sex"].astype(str) == adata.obs["sex"].astype(str).iloc[0]
        assert abs(first.mean() - overall) < 0.05  # stratified by sex


def test_genes_are_chosen_per_fold_and_pooled_on_their_intersection(splits):
    gene_sets = [set(s.train.var_names) for s in splits]
    assert all(len(g) == 2000 for g in gene_sets)
    assert len(set.union(*gene_sets)) > 2000  # each fold chose on its own training samples
    # a stand-in generator: each fold's "pseudo-samples" are its held-out samples, shifted so they are told apart
    generated = [anndata.AnnData(np.full(s.held_out.shape, 7.0), obs=s.held_out.obs.copy(), var=s.held_out.var.copy())
                 for s in splits]
    real, cells = pooled(splits, generated)
    common = set.intersection(*gene_sets)
    assert set(real.held_out.var_names) == common and list(cells.var_names) == list(real.held_out.var_names)
    assert real.held_out.n_obs == cells.n_obs == sum(s.held_out.n_obs for s in splits)
    assert cells.obs_names.is_unique
    assert np.all(np.asarray(cells.X) == 7.0)
    first, genes = splits[0].held_out, list(real.held_out.var_names[:5])
    pooled_values = real.held_out[first.obs_names[0], genes].X
    own_values = first[first.obs_names[0], genes].X
    np.testing.assert_array_equal(_dense(pooled_values), _dense(own_values))  # values pooled as held out


def _dense(x) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)
