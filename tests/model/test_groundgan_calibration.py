"""GRouNdGAN's marginal calibration: fitted after stage 2 on whole cells, applied by generate and perturb."""

import numpy as np
import pytest

from scsynth.model import GRouNdGAN

from ..conftest import SMALL_GG


@pytest.fixture(scope="module")
def model(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    model.train(controller_steps=5, max_steps=5, batch_size=32, enable_progress_bar=False, seed=0)
    return model


def test_generated_zero_fractions_match_the_training_cells(model):
    assert model.module.marginals.is_fitted
    real = model.adata[model.train_indices, model.var_names_].X
    real_zero = (real.toarray() == 0).mean(0)
    cells = model.generate(2000, seed=1)
    assert cells.uns["scsynth"]["params"]["calibrated"] is True
    with model.module.marginals.disabled():
        plain = model.generate(2000, seed=1)
    assert model.module.marginals.is_fitted
    error = np.abs((cells.X.toarray() == 0).mean(0) - real_zero).mean()
    error_plain = np.abs((plain.X.toarray() == 0).mean(0) - real_zero).mean()
    assert error < 0.03 < error_plain  # 5 + 5 steps: the generator itself is far off
    np.testing.assert_allclose(cells.layers["normalized"].sum(1), 10_000, rtol=1e-4)
    np.testing.assert_array_equal(cells.X.toarray(), model.generate(2000, seed=1).X.toarray())


def test_calibrated_knockout_is_exact_and_leaves_non_targets_unchanged(model):
    grn = model.grn
    tf = grn.edges["source"].value_counts().index[0]
    out = model.perturb(knockout=tf, n_obs=300, seed=0)
    assert out.uns["scsynth"]["params"]["calibrated"] is True
    ctrl = (out.obs["condition"] == "control").to_numpy()
    pre = out.layers["pre_lsn"].toarray()
    downstream = out.var_names.isin(list(grn.edges.loc[grn.edges["source"] == tf, "target"])) | (out.var_names == tf)
    np.testing.assert_array_equal(pre[ctrl][:, ~downstream], pre[~ctrl][:, ~downstream])
    assert (pre[~ctrl][:, out.var_names.get_loc(tf)] == 0).all()
    # the control cells are generate()'s calibrated cells for the same seed
    generated = model.generate(300, seed=0)
    np.testing.assert_array_equal(out.layers["normalized"][ctrl].toarray(), generated.layers["normalized"].toarray())
    np.testing.assert_array_equal(out.X[ctrl].toarray(), generated.X.toarray())
    # set_to is exact in normalised units, overexpress scales the calibrated control value
    tfs = list(grn.tfs)
    both = model.perturb(overexpress={tfs[0]: 2.0}, set_to={tfs[1]: 50.0}, n_obs=50, seed=1)
    pre, ctrl = both.layers["pre_lsn"].toarray(), (both.obs["condition"] == "control").to_numpy()
    i0, i1 = both.var_names.get_loc(tfs[0]), both.var_names.get_loc(tfs[1])
    np.testing.assert_allclose(pre[~ctrl, i0], 2 * pre[ctrl, i0], rtol=1e-5)
    np.testing.assert_allclose(pre[~ctrl, i1], 50.0, rtol=1e-5)


def test_save_load_and_opt_out(model, tmp_path, _pbmc, pbmc_grn):
    model.save(tmp_path / "gg", save_anndata=False)
    adata = model.adata.copy()
    loaded = GRouNdGAN.load(tmp_path / "gg", adata=adata)
    assert loaded.module.marginals.is_fitted
    np.testing.assert_array_equal(model.generate(50, seed=3).X.toarray(), loaded.generate(50, seed=3).X.toarray())
    # a new stage 1 leaves the tables stale: removed; calibrate_marginals=False trains without one
    loaded.train(controller_steps=1, max_steps=0, batch_size=32, enable_progress_bar=False, seed=0)
    assert not loaded.module.marginals.is_fitted
    fresh = _pbmc.copy()
    GRouNdGAN.setup_anndata(fresh, is_count_data=False)
    plain = GRouNdGAN(fresh, grn=pbmc_grn, **SMALL_GG)
    plain.train(controller_steps=2, max_steps=2, batch_size=32, enable_progress_bar=False, seed=0,
                calibrate_marginals=False)
    assert not plain.module.marginals.is_fitted
    assert plain.generate(20, seed=0).uns["scsynth"]["params"]["calibrated"] is False
