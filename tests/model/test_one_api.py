"""The four models read alike: the same five calls, one history shape, one generated AnnData, old names warn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ..conftest import (BRANCHING_BLUEPRINT, GENE_SETS, SMALL, SMALL_GG, SMALL_GS, SMALL_RG, branching_counts,
                      rnagan_samples)

import scsynth
from scsynth.model import RNAGAN, GeneSys, GRouNdGAN, ScGAN


def _five_calls(name, tmp_path, immune, pbmc, grn):
    """setup_anndata(labels_key=) -> Model(adata) -> train(small budget) -> generate(n_obs, condition=) -> save/load."""
    if name == "ScGAN":
        adata = immune.copy()
        ScGAN.setup_anndata(adata, labels_key="group")
        model = ScGAN(adata, **SMALL)
        model.train(max_steps=3, batch_size=32, enable_progress_bar=False)
        condition, n_cells = "LYZ+", 6
    elif name == "GRouNdGAN":
        adata = pbmc.copy()
        GRouNdGAN.setup_anndata(adata)
        model = GRouNdGAN(adata, grn=grn, **SMALL_GG)
        model.train(controller_steps=2, max_steps=2, batch_size=32, enable_progress_bar=False)
        condition, n_cells = None, 6
    elif name == "GeneSys":
        adata = branching_counts()
        GeneSys.setup_anndata(adata, labels_key="label", time_key="time")
        model = GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
        model.train(max_epochs=2, batch_size=16, enable_progress_bar=False)
        condition, n_cells = "to_A", 6 * 3  # 6 trajectories x 3 time steps
    else:
        adata = rnagan_samples()
        RNAGAN.setup_anndata(adata, labels_key="group")
        model = RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)
        model.train(max_steps={"sc": 4}, batch_size=16, n_refs=(3, 5), enable_progress_bar=False)
        condition, n_cells = "type 1", 6
    cells = model.generate(6, condition=condition, seed=0)
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name, adata=adata)
    return model, loaded, cells, n_cells, condition


@pytest.mark.parametrize("name", ["ScGAN", "GRouNdGAN", "GeneSys", "RNAGAN"])
def test_the_same_five_calls(name, tmp_path, counts, pbmc, pbmc_grn):
    model, loaded, cells, n_cells, condition = _five_calls(name, tmp_path, counts, pbmc, pbmc_grn)
    assert "generate" in model.jobs
    # one generated AnnData: counts or values in X, normalized summing to 1e4, provenance
    assert cells.n_obs == n_cells and list(cells.var_names) == list(model.var_names_)
    np.testing.assert_allclose(np.asarray(cells.layers["normalized"].sum(1)).ravel(), 1e4, rtol=1e-3)
    assert cells.uns["scsynth"]["model"] == name
    if condition is not None:
        assert condition in set(cells.obs.astype(str).to_numpy().ravel())
    # one history shape: histories_[stage] -> {metric: DataFrame}; history is the latest stage's
    assert model.histories_ and all(isinstance(h, dict) for h in model.histories_.values())
    assert model.history is model.histories_[list(model.histories_)[-1]] or model.history == model.histories_[
        list(model.histories_)[-1]]
    assert all(isinstance(v, pd.DataFrame) for h in model.histories_.values() for v in h.values())
    assert list(loaded.histories_) == list(model.histories_)
    again = loaded.generate(6, condition=condition, seed=0)
    np.testing.assert_array_equal(again.X.toarray(), cells.X.toarray())
    # tl.generate is the same call
    via_tl = scsynth.tl.generate(loaded, n_obs=6, condition=condition, seed=0)
    np.testing.assert_array_equal(via_tl.X.toarray(), cells.X.toarray())


def test_groundgan_stages_have_their_own_history(trained_groundgan):
    assert set(trained_groundgan.histories_) == {"controller", "generator"}
    assert trained_groundgan.history == trained_groundgan.histories_["generator"]
    with pytest.warns(FutureWarning, match="controller_history_"):
        old = trained_groundgan.controller_history_
    assert old is trained_groundgan.histories_["controller"]


def test_old_names_still_work_with_a_warning(trained_conditional, trained_genesys, trained_rnagan):
    with pytest.warns(FutureWarning, match="`labels` is deprecated"):
        a = trained_conditional.generate(4, labels="LYZ+", seed=1)
    b = trained_conditional.generate(4, condition="LYZ+", seed=1)
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())
    with pytest.warns(FutureWarning, match="`trajectories` is deprecated"):
        a = trained_genesys.generate(2, trajectories="to_A", seed=1)
    np.testing.assert_array_equal(a.X.toarray(), trained_genesys.generate(2, condition="to_A", seed=1).X.toarray())
    with pytest.warns(FutureWarning, match="`n_per_trajectory` is deprecated"):
        c = scsynth.tl.generate(trained_genesys, n_per_trajectory=2, seed=1)
    assert c.n_obs == 2 * 2 * 3
    model, _ = trained_rnagan
    with pytest.warns(FutureWarning, match="`group` is deprecated"):
        a = model.generate(3, group="type 0", seed=1)
    np.testing.assert_array_equal(a.X.toarray(), model.generate(3, condition="type 0", seed=1).X.toarray())
    with pytest.warns(FutureWarning, match="`groupby` is deprecated"):
        RNAGAN.setup_anndata(rnagan_samples(n_per_group=6), groupby="group")
    with pytest.raises(TypeError, match="not both"):
        trained_conditional.generate(2, labels="LYZ+", condition="LYZ+")
    with pytest.raises(TypeError, match="unexpected keyword"):
        trained_conditional.generate(2, colour="red")


def test_rnagan_budget_names(trained_rnagan):
    adata = rnagan_samples(n_per_group=8)
    RNAGAN.setup_anndata(adata, labels_key="group")
    model = RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)
    with pytest.warns(FutureWarning, match="`sc_steps` is deprecated"):
        model.train(sc_steps=2, batch_size=8, n_refs=(2, 3), enable_progress_bar=False)
    with pytest.raises(ValueError, match="max_steps"):
        model.train(max_steps={"single-cell": 2})
    assert model.labels_key == "group"
    with pytest.warns(FutureWarning, match="groupby"):
        assert model.groupby == "group"


def test_tl_checks_capabilities_not_class_names():
    class NotAModel:
        jobs = ()

    with pytest.raises(TypeError, match="cannot generate"):
        scsynth.tl.generate(NotAModel(), n_obs=3)
    assert set(GRouNdGAN.jobs) >= {"generate", "perturb"}
    assert set(GeneSys.jobs) >= {"generate", "embed", "classify", "rank_genes"}
    assert set(RNAGAN.jobs) >= {"generate", "embed", "stratify", "markers"}
