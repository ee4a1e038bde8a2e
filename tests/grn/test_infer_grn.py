"""GRN inference (GRNBoost2 scheme) on real expression."""

from __future__ import annotations

import importlib.util
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scsynth.data._infer_grn as infer_module
from scsynth.data import infer_grn, tf_list

# genes of the immune fixture used as regulators (it holds only 2 Lambert TFs: YBX1, SON)
IMMUNE_TFS = ["YBX1", "SON", "LYZ", "CD74", "HLA-DRA", "S100A9", "MALAT1", "FTL", "TMSB4X", "CST3"]
FAST = {"n_estimators": 60, "progress": False, "n_jobs": 1}


@pytest.fixture(scope="module")
def planted(_pbmc) -> tuple[ad.AnnData, dict[str, list[str]]]:
    """The 33 real TF columns of pbmc68k plus targets built from known TFs: the truth to recover."""
    tfs = [g for g in _pbmc.var_names if g in set(tf_list("human"))]
    x = pd.DataFrame(_pbmc[:, tfs].X.toarray(), columns=tfs)
    rng = np.random.default_rng(0)
    noise = lambda scale: rng.normal(0, scale, len(x)).clip(0)  # noqa: E731
    targets = {
        "T_FOS_KLF6": 2 * x["FOS"] + x["KLF6"] + noise(0.5),
        "T_SPI1xZNF706": x["SPI1"] * x["ZNF706"] + noise(0.5),
        "T_JUNB": np.log1p(x["JUNB"]) * 3 + noise(0.2),
    }
    truth = {"T_FOS_KLF6": ["FOS", "KLF6"], "T_SPI1xZNF706": ["SPI1", "ZNF706"], "T_JUNB": ["JUNB"]}
    full = pd.concat([x, pd.DataFrame(targets)], axis=1).astype(np.float32)
    adata = ad.AnnData(full.to_numpy(), var=pd.DataFrame(index=full.columns))
    adata.obs_names = _pbmc.obs_names
    return adata, truth


def test_infer_recovers_planted_regulators(planted):
    adata, truth = planted
    grn = infer_grn(adata, targets=list(truth), normalize=False, top_k=5, n_estimators=300, progress=False)
    for target, tfs in truth.items():
        ranked = grn.loc[grn["target"] == target, "source"].tolist()
        assert set(ranked[: len(tfs)]) == set(tfs), (target, ranked)
    assert grn["target"].unique().tolist() == list(truth)  # data order


def test_infer_output_format_real_counts(counts):
    grn = infer_grn(counts, tfs=IMMUNE_TFS, targets=["CTSB", "CD52", "LYZ", "VIM"], top_k=3, **FAST)
    assert list(grn.columns) == ["source", "target", "weight"]
    assert grn["weight"].dtype == np.float64 and (grn["weight"] > 0).all()
    assert grn["target"].unique().tolist() == [
        g for g in counts.var_names if g in {"CTSB", "CD52", "LYZ", "VIM"}
    ]
    assert grn.groupby("target").size().max() == 3
    assert set(grn["source"]) <= set(IMMUNE_TFS)
    assert not (grn["source"] == grn["target"]).any()  # LYZ is a TF here and never its own regulator
    for _, sub in grn.groupby("target"):
        assert sub["weight"].is_monotonic_decreasing
    # the bundled human list matches YBX1 and SON in this small fixture
    human = infer_grn(counts, targets=["LYZ"], top_k=None, **FAST)
    assert set(human["source"]) <= {"YBX1", "SON"}


def test_infer_importance_scale_and_top_k_none(counts):
    full = infer_grn(
        counts, tfs=IMMUNE_TFS, targets=["CTSB"], top_k=None, n_estimators=40, progress=False, n_jobs=1
    )
    # importances sum to the number of trees fitted (at most n_estimators), as in arboreto
    assert 1 <= full["weight"].sum() <= 40 + 1e-6
    assert len(full) <= len(IMMUNE_TFS)


def test_infer_deterministic_and_parallel_equal(counts):
    kwargs = {
        "tfs": IMMUNE_TFS,
        "targets": ["CTSB", "CD52", "VIM", "TYROBP", "SRGN", "IFI30"],
        "n_estimators": 60,
    }
    a = infer_grn(counts, **kwargs, progress=False, n_jobs=1)
    b = infer_grn(counts, **kwargs, progress=False, n_jobs=1)
    pd.testing.assert_frame_equal(a, b)
    c = infer_grn(counts, **kwargs, progress=False, n_jobs=2)
    pd.testing.assert_frame_equal(a, c)
    d = infer_grn(counts, **kwargs, progress=False, n_jobs=1, seed=1)
    assert not a["weight"].equals(d["weight"])


def test_infer_obs_subset_and_layer(counts):
    kwargs = {"tfs": IMMUNE_TFS, "targets": ["CTSB", "CD52"], **FAST}
    mask = np.arange(counts.n_obs) % 3 != 0
    by_mask = infer_grn(counts, obs_subset=mask, **kwargs)
    by_index = infer_grn(counts, obs_subset=np.flatnonzero(mask), **kwargs)
    on_subset = infer_grn(counts[mask].copy(), **kwargs)
    pd.testing.assert_frame_equal(by_mask, by_index)
    pd.testing.assert_frame_equal(by_mask, on_subset)
    layered = counts.copy()
    layered.layers["counts"] = layered.X.copy()
    layered.X = layered.X * 0
    pd.testing.assert_frame_equal(infer_grn(layered, layer="counts", **kwargs), infer_grn(counts, **kwargs))


def test_infer_errors(counts):
    with pytest.raises(ValueError, match="None of the 2 TFs of the list.*tfs=\\['GENE1'"):
        infer_grn(counts, tfs=["NOTAGENE", "ALSONOT"])
    with pytest.raises(ValueError, match="top_k must be a positive int or None, got 0"):
        infer_grn(counts, top_k=0)
    with pytest.raises(KeyError, match="Layer 'spliced' is not in"):
        infer_grn(counts, layer="spliced")
    with pytest.raises(KeyError, match="'NOPE'.*not in adata.var_names"):
        infer_grn(counts, targets=["LYZ", "NOPE"])
    with pytest.raises(ValueError, match="boolean mask of length 3; adata has 559 cells"):
        infer_grn(counts, obs_subset=[True, False, True])
    with pytest.raises(ValueError, match="backend must be"):
        infer_grn(counts, backend="dask")
    with pytest.raises(ValueError, match="n_jobs must be"):
        infer_grn(counts, n_jobs=0)
    bad = counts.copy()
    bad.X = bad.X * -1.0
    with pytest.raises(ValueError, match="negative values"):
        infer_grn(bad, tfs=IMMUNE_TFS)


@pytest.fixture
def fake_arboreto(monkeypatch):
    """Pretend arboreto and distributed are installed."""
    monkeypatch.setattr(infer_module, "_arboreto_installed", lambda: True)


def test_auto_backend_uses_arboreto_when_it_works(counts, monkeypatch, fake_arboreto):
    calls = []

    def fake(x, genes, tf_cols, target_cols, **kwargs):
        calls.append(kwargs)
        t = int(target_cols[0])
        return pd.DataFrame({"source": tf_cols[:2], "target": [t, t], "weight": [1.0, 2.0]})

    monkeypatch.setattr(infer_module, "_arboreto", fake)
    grn = infer_grn(counts, tfs=IMMUNE_TFS, targets=["CTSB"], progress=False, seed=3)
    assert calls == [{"seed": 3, "window": 25, "n_jobs": 2 if (infer_module.os.cpu_count() or 1) >= 2 else 1}]
    first_two = [g for g in counts.var_names if g in IMMUNE_TFS][:2]
    assert grn["source"].tolist() == first_two[::-1] and grn["weight"].tolist() == [2.0, 1.0]
    # a non-default n_estimators is sklearn only
    infer_grn(counts, tfs=IMMUNE_TFS, targets=["CTSB"], **FAST)
    assert len(calls) == 1


def test_auto_backend_falls_back_when_arboreto_fails(counts, monkeypatch, fake_arboreto):
    def broken(*args, **kwargs):
        raise TypeError("Must supply at least one delayed object")

    monkeypatch.setattr(infer_module, "_arboreto", broken)
    kwargs = {
        "tfs": IMMUNE_TFS,
        "targets": ["CTSB", "CD52"],
        "progress": False,
        "n_jobs": 1,
        "early_stop_window": 5,
    }
    with pytest.warns(UserWarning, match="arboreto's grnboost2 failed.*delayed object.*sklearn"):
        grn = infer_grn(counts, **kwargs)
    pd.testing.assert_frame_equal(grn, infer_grn(counts, backend="sklearn", **kwargs))
    with pytest.raises(TypeError, match="delayed object"):
        infer_grn(counts, backend="arboreto", **kwargs)
    with pytest.raises(ValueError, match="fixes n_estimators"):
        infer_grn(counts, backend="arboreto", n_estimators=10, tfs=IMMUNE_TFS)


def test_sklearn_backend_matches_arboreto(counts):
    pytest.importorskip("arboreto")
    pytest.importorskip("distributed")
    kwargs = {
        "tfs": IMMUNE_TFS,
        "targets": ["CTSB", "CD52", "LYZ"],
        "progress": False,
        "n_jobs": 1,
        "top_k": None,
    }
    pd.testing.assert_frame_equal(infer_grn(counts, backend="arboreto", **kwargs),
                                  infer_grn(counts, backend="sklearn", **kwargs))  # fmt: skip


def test_auto_backend_without_arboreto_is_sklearn(counts, monkeypatch):
    monkeypatch.setattr(infer_module, "_arboreto_installed", lambda: False)
    kwargs = {"tfs": IMMUNE_TFS, "targets": ["CTSB"], "progress": False, "n_jobs": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = infer_grn(counts, **kwargs)
    pd.testing.assert_frame_equal(auto, infer_grn(counts, backend="sklearn", **kwargs))
    if importlib.util.find_spec("arboreto") is None:
        with pytest.raises(ImportError):
            infer_grn(counts, backend="arboreto", **kwargs)


def test_constant_target_has_no_regulators(counts):
    zeroed = counts.copy()
    x = zeroed.X.toarray()
    x[:, zeroed.var_names.get_loc("CTSB")] = 0
    zeroed.X = x
    grn = infer_grn(zeroed, tfs=IMMUNE_TFS, targets=["CTSB", "CD52"], progress=False, n_jobs=1)
    assert grn["target"].unique().tolist() == ["CD52"]
