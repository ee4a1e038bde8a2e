"""scsynth.data: bundled data and the matrix helpers shared by models, metrics and plots."""

import anndata
import numpy as np
import pytest
from scipy import sparse

import scsynth
from scsynth.data import check_expression, check_values, get_matrix, normalize_total


def test_pbmc68k_normalized_is_nonnegative_expression_with_labels():
    adata = scsynth.data.pbmc68k_normalized()
    assert adata.shape == (700, 765)
    assert sparse.issparse(adata.X) and adata.X.min() >= 0
    assert adata.obs["bulk_labels"].nunique() == 10
    assert not np.array_equal(adata.X.data, np.round(adata.X.data))  # normalised, not counts


def test_get_matrix_reads_x_or_layer_and_names_what_is_missing():
    adata = anndata.AnnData(np.ones((2, 3), dtype=np.float32), layers={"counts": np.zeros((2, 3))})
    assert get_matrix(adata) is adata.X
    assert get_matrix(adata, "counts") is adata.layers["counts"]
    with pytest.raises(KeyError, match="'spliced'.*counts"):
        get_matrix(adata, "spliced", name="real")
    with pytest.raises(TypeError, match="AnnData"):
        get_matrix(np.ones(3))


@pytest.mark.parametrize("make", [np.asarray, sparse.csr_matrix])
def test_check_values(make):
    check_values(make(np.array([[0.0, 1.5]])), "X")
    with pytest.raises(ValueError, match="1 NaN"):
        check_values(make(np.array([[np.nan, 1.0]])), "X")
    with pytest.raises(ValueError, match="negative"):
        check_values(make(np.array([[-1.0, 1.0]])), "X")


def test_normalize_total_dense_and_sparse_agree_and_keep_empty_rows():
    x = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    dense = normalize_total(x, 20)
    sp = normalize_total(sparse.csr_matrix(x), 20)
    assert np.allclose(dense, sp.toarray())
    assert np.allclose(dense.sum(1), [20, 0, 20])
    assert x[0, 0] == 1.0  # input untouched


def test_check_expression_counts_rule():
    adata = anndata.AnnData(np.array([[1.0, 2.0], [3.0, 0.5]]))
    with pytest.raises(ValueError, match="is_count_data=False"):
        check_expression(adata)
    check_expression(adata, is_count_data=False)
