"""Library-size distance and between-label fold-change agreement recover known differences."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from scsynth.metrics._distribution import label_lfc_agreement, library_size_distance


def labelled(n: int, fold: float, seed: int, *, depth: float = 5.0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    labels = np.repeat(["A", "B", "C"], n // 3)
    mu = np.full((len(labels), 40), depth)
    mu[labels == "A", :6] *= fold  # markers of A
    mu[labels == "B", 6:12] *= fold  # markers of B
    adata = ad.AnnData(rng.poisson(mu).astype(np.float32))
    adata.obs["cell_type"] = labels
    adata.var_names = [f"g{i}" for i in range(40)]
    return adata


def test_library_size_distance_sees_a_shift_and_not_noise():
    real = labelled(300, 1.0, 0)
    same = library_size_distance(real, labelled(300, 1.0, 1))
    half = library_size_distance(real, labelled(300, 1.0, 2, depth=2.5))
    assert same["median_ratio"] == pytest.approx(1.0, abs=0.05)
    assert same["ratio"] < 4
    assert half["median_ratio"] == pytest.approx(0.5, abs=0.05)
    assert half["distance"] == pytest.approx(np.log10(2), abs=0.03)
    assert half["ratio"] > 10


def test_label_lfc_agreement_tells_kept_from_exaggerated_and_blurred_differences():
    real = labelled(600, 4.0, 0)
    results = {}
    for name, fold in (("kept", 4.0), ("exaggerated", 16.0), ("blurred", 1.5)):
        table = label_lfc_agreement(real, labelled(600, fold, 1), "cell_type", n_top=6)
        gen = table[table["set"] == "generated"].set_index("label")
        results[name] = gen.loc[["A", "B"], "median_ratio"].median()
        assert set(table["set"]) == {"generated", "control"}
        assert not table.attrs["annotated"]
    assert results["kept"] == pytest.approx(1.0, abs=0.1)
    assert results["exaggerated"] > 1.5
    assert results["blurred"] < 0.5
    control = table[table["set"] == "control"].set_index("label")
    assert control.loc[["A", "B"], "median_ratio"].median() == pytest.approx(1.0, abs=0.15)


def test_unlabelled_generated_cells_are_annotated_from_the_real_ones():
    real = labelled(600, 4.0, 0)
    generated = labelled(600, 4.0, 1)
    del generated.obs["cell_type"]
    table = label_lfc_agreement(real, generated, "cell_type", n_top=6)
    assert table.attrs["annotated"]
    gen = table[table["set"] == "generated"].set_index("label")
    assert gen.loc[["A", "B"], "median_ratio"].median() == pytest.approx(1.0, abs=0.15)


def test_bad_keys_are_named():
    real = labelled(60, 4.0, 0)
    with pytest.raises(KeyError, match="nope"):
        label_lfc_agreement(real, real, "nope")
    with pytest.raises(KeyError, match="missing"):
        label_lfc_agreement(real, real, "cell_type", generated_key="missing")
