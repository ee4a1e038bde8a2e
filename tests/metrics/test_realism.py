from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

from scsynth.metrics import (
    centroid_distances,
    gene_statistics_agreement,
    lisi,
    mmd,
    realism,
    rf_auroc,
    summarize_realism,
)
from scsynth.metrics._realism import overall_verdict, verdict
from scsynth.data import normalize_total as normalize_library

METRICS = [
    "rf_auroc",
    "mmd",
    "euclidean_centroid",
    "cosine_centroid",
    "milisi",
    "gene_mean_corr",
    "gene_var_corr",
    "gene_zero_frac_corr",
    "gene_corr_corr",
]
COLUMNS = ["metric", "value", "value_sd", "control", "control_sd", "ratio", "ideal", "better", "n_cells",
           "verdict", "summary"]
SMALL = {"n_obs": 200, "n_hvg": 200, "n_repeats": 2, "rf_trees": 50}


@pytest.fixture(scope="module")
def pbmc() -> ad.AnnData:
    """700 cells x 765 genes of non-negative normalised expression."""
    raw = sc.datasets.pbmc68k_reduced()
    x = np.expm1(raw.raw.X.toarray()).astype(np.float32)
    return ad.AnnData(x, obs=raw.obs[["bulk_labels"]].copy(), var=pd.DataFrame(index=raw.raw.var_names))


@pytest.fixture(scope="module")
def halves(pbmc: ad.AnnData) -> tuple[ad.AnnData, ad.AnnData]:
    perm = np.random.default_rng(0).permutation(pbmc.n_obs)
    return pbmc[perm[:350]].copy(), pbmc[perm[350:]].copy()


@pytest.fixture(scope="module")
def permuted(pbmc: ad.AnnData) -> ad.AnnData:
    """The same cells with the gene columns shuffled: realistic values, wrong genes."""
    cols = np.random.default_rng(1).permutation(pbmc.n_vars)
    return ad.AnnData(pbmc.X[:, cols].copy(), var=pbmc.var.copy())


@pytest.fixture(scope="module")
def same_df(halves: tuple[ad.AnnData, ad.AnnData]) -> pd.DataFrame:
    return realism(*halves, **SMALL)


@pytest.fixture(scope="module")
def permuted_df(pbmc: ad.AnnData, permuted: ad.AnnData) -> pd.DataFrame:
    return realism(pbmc, permuted, **SMALL)


def test_table_layout(same_df: pd.DataFrame) -> None:
    assert list(same_df.columns) == COLUMNS
    assert same_df["metric"].tolist() == METRICS
    assert (same_df["n_cells"] == 175).all()  # min(200, 350 // 2, 350)
    assert same_df.set_index("metric").loc["milisi", "ideal"] == "2"
    assert same_df.set_index("metric").loc["rf_auroc", "better"] == "closer to 0.5"
    params = same_df.attrs["params"]
    assert {"n_obs": 200, "m": 175, "n_hvg": 200, "n_repeats": 2, "seed": 0}.items() <= params.items()
    assert params["library_size"] == 20000
    assert params["n_genes_used"] == 200
    assert same_df[["value", "control"]].notna().all().all()


def test_same_distribution_is_realistic(same_df: pd.DataFrame) -> None:
    t = same_df.set_index("metric")
    assert t.loc["rf_auroc", "value"] < 0.7
    assert t.loc["rf_auroc", "control"] < 0.7
    assert t.loc["mmd", "ratio"] < 2
    assert t.loc["milisi", "value"] > 1.8
    assert t.loc["gene_mean_corr", "value"] > 0.95
    np.testing.assert_allclose(t["ratio"], t["value"] / t["control"])


def test_permuted_genes_are_detected(permuted_df: pd.DataFrame) -> None:
    t = permuted_df.set_index("metric")
    assert t.loc["rf_auroc", "value"] > 0.9
    assert t.loc["rf_auroc", "control"] < 0.7
    assert t.loc["mmd", "ratio"] > 2
    assert t.loc["milisi", "value"] < t.loc["milisi", "control"] - 0.5
    assert t.loc["euclidean_centroid", "ratio"] > 2
    assert t.loc["gene_mean_corr", "value"] < t.loc["gene_mean_corr", "control"] - 0.2
    assert t.loc["gene_corr_corr", "value"] < t.loc["gene_corr_corr", "control"]


def test_verdicts_real_halves_are_good(same_df: pd.DataFrame) -> None:
    t = same_df.set_index("metric")
    assert t.loc["rf_auroc", "verdict"] == "good"
    assert set(t["verdict"]) <= {"good", "fair"}  # two halves of the same cells: nothing is poor
    assert (t["verdict"] == "good").sum() >= 7
    text = summarize_realism(same_df)
    lines = text.splitlines()
    assert lines[0].startswith("Overall: good") or lines[0].startswith("Overall: fair")
    assert len(lines) == 1 + len(METRICS)
    assert lines[1].startswith("- rf_auroc (good): Generated cells are hard to tell from real ones: a random")
    assert f"AUROC {t.loc['rf_auroc', 'value']:.2f}" in lines[1]


def test_verdicts_permuted_genes_are_poor(permuted_df: pd.DataFrame) -> None:
    t = permuted_df.set_index("metric")
    assert (t["verdict"] == "poor").all()
    summary = t.loc["rf_auroc", "summary"]
    assert summary == ("Generated cells are easy to tell from real ones: a random forest separates them with "
                       f"AUROC {t.loc['rf_auroc', 'value']:.2f}, where two halves of the real cells score "
                       f"{t.loc['rf_auroc', 'control']:.2f}.")
    assert "times that between two halves of the real cells" in t.loc["mmd", "summary"]
    text = summarize_realism(permuted_df)
    head = "Overall: poor (0 good, 0 fair, 9 poor of 9 metrics, relative to two halves of the real cells)."
    assert text.splitlines()[0] == head
    # the printed form (terminal and notebook) ends with the verdicts; derived frames are plain DataFrames
    assert repr(permuted_df).endswith(text)
    assert "<li>rf_auroc (poor): Generated cells are easy to tell" in permuted_df._repr_html_()
    assert type(permuted_df.set_index("metric")) is pd.DataFrame
    # a table read back from realism.csv gives the same lines
    assert summarize_realism(pd.DataFrame(permuted_df.to_dict("list"))) == text


def test_verdict_limits() -> None:
    # the documented limits (docs/metrics.md, "Verdicts")
    assert [verdict("rf_auroc", v, 0.52) for v in (0.56, 0.66, 0.92)] == ["good", "fair", "poor"]
    assert verdict("rf_auroc", 0.45, 0.52) == "good"  # below 0.5 is as far from chance as above
    assert [verdict("mmd", 0.01 * r, 0.01) for r in (1.9, 4.9, 5.1)] == ["good", "fair", "poor"]
    assert [verdict("cosine_centroid", r, 1.0) for r in (1.4, 2.9, 3.1)] == ["good", "fair", "poor"]
    assert [verdict("milisi", v, 1.9) for v in (1.85, 1.7, 1.5)] == ["good", "fair", "poor"]
    assert [verdict("gene_mean_corr", v, 0.99) for v in (0.98, 0.95, 0.85)] == ["good", "fair", "poor"]
    assert [verdict("gene_corr_corr", v, 0.8) for v in (0.77, 0.65, 0.5)] == ["good", "fair", "poor"]
    assert verdict("mmd", 0.02, float("nan")) == "n/a"
    assert overall_verdict(["good"] * 9) == "good"
    assert overall_verdict(["good"] * 8 + ["poor"]) == "fair"  # never good with a poor metric
    assert overall_verdict(["good"] * 4 + ["poor"] * 5) == "poor"
    assert overall_verdict(["n/a"] * 9) == "n/a"


def test_cell_types_differ(pbmc: ad.AnnData) -> None:
    labels = pbmc.obs["bulk_labels"]
    mono, bcell = pbmc[labels == "CD14+ Monocyte"], pbmc[labels == "CD19+ B"]
    t = realism(mono, bcell, n_obs=60, n_hvg=200, n_repeats=1, rf_trees=50).set_index("metric")
    assert t.loc["rf_auroc", "value"] > 0.9
    assert t.loc["milisi", "value"] < 1.5


def test_deterministic_and_inputs_untouched(halves: tuple[ad.AnnData, ad.AnnData]) -> None:
    real, gen = halves
    before = real.X.copy(), gen.X.copy()
    kwargs = {"n_obs": 50, "n_hvg": 100, "n_repeats": 2, "rf_trees": 20, "seed": 3}
    first, second = realism(real, gen, **kwargs), realism(real, gen, **kwargs)
    pd.testing.assert_frame_equal(first, second)
    assert first.attrs == second.attrs
    np.testing.assert_array_equal(real.X, before[0])
    np.testing.assert_array_equal(gen.X, before[1])
    other = realism(real, gen, **{**kwargs, "seed": 4})
    assert not np.allclose(other["value"], first["value"])


def test_sparse_dense_and_gene_matching(halves: tuple[ad.AnnData, ad.AnnData]) -> None:
    real, gen = halves
    kwargs = {"n_obs": 40, "n_hvg": 100, "n_repeats": 1, "rf_trees": 20}
    dense = realism(real, gen, **kwargs)
    real_sp = ad.AnnData(sparse.csr_matrix(real.X), var=real.var)
    gen_sp = ad.AnnData(sparse.csr_matrix(gen.X), var=gen.var)
    pd.testing.assert_frame_equal(dense, realism(real_sp, gen_sp, **kwargs), rtol=1e-6)
    # generated genes in another order plus an extra gene: matched by name
    order = np.arange(gen.n_vars)[::-1]
    shuffled = ad.AnnData(
        np.c_[gen.X[:, order], np.ones(gen.n_obs, dtype=np.float32)],
        var=pd.DataFrame(index=[*gen.var_names[order], "EXTRA"]),
    )
    pd.testing.assert_frame_equal(dense, realism(real, shuffled, **kwargs), rtol=1e-6)


def test_layer_and_no_control(halves: tuple[ad.AnnData, ad.AnnData]) -> None:
    real, gen = (a.copy() for a in halves)
    real.layers["expr"], gen.layers["expr"] = real.X.copy(), gen.X.copy()
    real.X, gen.X = np.zeros_like(real.X), np.zeros_like(gen.X)
    df = realism(real, gen, layer="expr", n_obs=40, n_hvg=100, n_repeats=1, rf_trees=20, control=False)
    assert df[["control", "control_sd", "ratio"]].isna().all().all()
    assert (df["verdict"] == "n/a").all()
    assert summarize_realism(df).startswith("Overall: no verdict (no real-vs-real control was computed")
    assert df["value"].notna().all()
    del gen.layers["expr"]
    with pytest.raises(KeyError, match="missing from `generated.layers`"):
        realism(real, gen, layer="expr")
    with pytest.raises(KeyError, match="nope"):
        realism(real, gen, layer="nope")


def test_bad_inputs(halves: tuple[ad.AnnData, ad.AnnData]) -> None:
    real, gen = halves
    missing = gen[:, 3:].copy()
    with pytest.raises(ValueError, match=real.var_names[0]):
        realism(real, missing)
    negative = gen.copy()
    negative.X[0, 0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        realism(real, negative)
    nan = gen.copy()
    nan.X[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        realism(real, nan)
    with pytest.raises(ValueError, match="Too few cells"):
        realism(real[:15].copy(), gen)
    with pytest.raises(ValueError, match="empty"):
        realism(real, gen[:0].copy())
    with pytest.raises(TypeError, match="AnnData"):
        realism(real, gen.X)
    with pytest.raises(ValueError, match="n_repeats"):
        realism(real, gen, n_repeats=0)


def test_log1p_scale_changes_what_the_forest_and_mmd_see_only(halves: tuple[ad.AnnData, ad.AnnData]) -> None:
    real, gen = halves
    x = gen.X.copy()
    low = (x > 0) & (x < np.quantile(x[x > 0], 0.3))
    x[low] *= 4  # the lowly expressed values bent
    bent = ad.AnnData(x, var=gen.var.copy())
    norm, log = (realism(real, bent, scale=s, **SMALL).set_index("metric") for s in ("normalized", "log1p"))
    assert log.attrs["params"]["scale"] == "log1p" and norm.attrs["params"]["scale"] == "normalized"
    for metric in ("rf_auroc", "mmd", "euclidean_centroid"):
        assert not np.isclose(norm.loc[metric, "value"], log.loc[metric, "value"]), metric
        assert not np.isclose(norm.loc[metric, "control"], log.loc[metric, "control"]), metric
    # miLISI and the gene statistics take their own log1p on either scale
    own_log = ["milisi", "gene_mean_corr", "gene_var_corr", "gene_zero_frac_corr", "gene_corr_corr"]
    columns = ["value", "control"]
    pd.testing.assert_frame_equal(norm.loc[own_log, columns], log.loc[own_log, columns])
    assert abs(log.loc["rf_auroc", "control"] - 0.5) < 0.1
    with pytest.raises(ValueError, match="`scale` must be one of"):
        realism(real, gen, scale="log")


def test_normalize_library_keeps_empty_cells() -> None:
    x = np.array([[1.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalize_library(x, 100), [[25.0, 75.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalize_library(sparse.csr_matrix(x), 100).toarray(), [[25, 75], [0, 0]])


def test_lisi_extremes() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(600, 2))
    mixed = lisi(emb, rng.integers(0, 2, 600))
    assert mixed.shape == (600,)
    assert 1.85 < mixed.mean() <= 2.0
    assert 2.6 < lisi(emb, rng.integers(0, 3, 600)).mean() <= 3.0
    blobs = np.r_[emb, emb + 1000.0]
    np.testing.assert_allclose(lisi(blobs, np.repeat(["a", "b"], 600)), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="one entry per cell"):
        lisi(emb, np.zeros(5))


def test_mmd_properties() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 10)), rng.normal(size=(200, 10))
    assert mmd(x, x) == 0.0
    sigmas = [1.0, 2.0, 4.0]
    assert np.isclose(mmd(x, y, sigmas=sigmas), mmd(y, x, sigmas=sigmas))
    assert np.isclose(mmd(x, y), mmd(y, x, reference=x))
    same, shifted = mmd(x, y), mmd(x, y + 1.0)
    assert shifted > 10 * same > 0
    with pytest.raises(ValueError, match="sigmas"):
        mmd(x, y, sigmas=[0.0])


def test_classifier_and_gene_stats() -> None:
    rng = np.random.default_rng(0)
    x = rng.poisson(rng.uniform(0.2, 5, 30), (100, 30)).astype(float)
    y = rng.poisson(rng.uniform(0.2, 5, 30), (100, 30)).astype(float)
    assert rf_auroc(x, x[:, ::-1], n_estimators=30, n_jobs=1) > 0.9
    assert centroid_distances(x, x) == {"euclidean_centroid": 0.0, "cosine_centroid": 0.0}
    np.testing.assert_allclose(list(gene_statistics_agreement(x, x).values()), 1.0)
    assert gene_statistics_agreement(x, y)["gene_mean_corr"] < 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant statistics give NaN, not warnings
        const = gene_statistics_agreement(np.ones((20, 5)), x[:20, :5])
    assert np.isnan(const["gene_var_corr"]) and np.isnan(const["gene_corr_corr"])
