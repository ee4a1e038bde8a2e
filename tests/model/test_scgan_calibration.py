"""ScGAN's marginal calibration: fitted after training, applied by generate, saved, refused where absent."""

import numpy as np
import pytest

import scsynth
from scsynth.model import ScGAN

from ..conftest import SMALL, SMALL_GG


def _model(adata, steps=5, **train):
    model = ScGAN(adata, **SMALL)
    model.train(max_steps=steps, batch_size=32, enable_progress_bar=False, seed=0, **train)
    return model


def _uncalibrated(model, n, seed, **kw):
    with model.module.marginals.disabled():
        return model.generate(n, seed=seed, **kw)


def test_generated_zero_fractions_match_the_training_cells(pbmc):
    ScGAN.setup_anndata(pbmc, is_count_data=False)
    model = _model(pbmc)
    assert model.module.marginals.is_fitted
    real = (pbmc.X.toarray() == 0).mean(0)
    cells = model.generate(2000, seed=1)
    assert cells.uns["scsynth"]["params"]["calibrated"] is True
    plain = _uncalibrated(model, 2000, 1)
    error = np.abs((cells.X.toarray() == 0).mean(0) - real)
    error_plain = np.abs((plain.X.toarray() == 0).mean(0) - real)
    assert error.mean() < 0.03 < error_plain.mean()  # 5 steps: the generator itself is far off
    # positive values: each gene's median moves onto the training cells' (normalised scale)
    norm = pbmc.X.toarray() / pbmc.X.toarray().sum(1, keepdims=True) * 1e4
    gen = cells.layers["normalized"].toarray()
    genes = np.flatnonzero(((norm > 0).sum(0) > 100) & ((gen > 0).sum(0) > 100))[:50]
    ratio = [np.median(gen[:, g][gen[:, g] > 0]) / np.median(norm[:, g][norm[:, g] > 0]) for g in genes]
    assert 0.7 < np.median(ratio) < 1.4


def test_calibrated_generation_is_reproducible_and_saved(counts, tmp_path):
    ScGAN.setup_anndata(counts)
    model = _model(counts, steps=3)
    cells = model.generate(300, seed=2, batch_size=128)
    np.testing.assert_array_equal(model.generate(300, seed=2, batch_size=128).X.toarray(), cells.X.toarray())
    assert (model.generate(300, seed=3).X != cells.X).nnz > 0
    assert (_uncalibrated(model, 300, 2, batch_size=128).X != cells.X).nnz > 0
    model.save(tmp_path / "m", save_anndata=False)
    loaded = ScGAN.load(tmp_path / "m", adata=counts.copy())
    assert loaded.module.marginals.is_fitted
    np.testing.assert_array_equal(loaded.generate(300, seed=2, batch_size=128).X.toarray(), cells.X.toarray())


def test_calibrate_marginals_false_removes_the_calibration(counts):
    ScGAN.setup_anndata(counts)
    model = _model(counts, steps=2)
    model.train(max_steps=1, batch_size=32, enable_progress_bar=False, seed=0, calibrate_marginals=False)
    assert not model.module.marginals.is_fitted
    cells = model.generate(100, seed=0)
    assert cells.uns["scsynth"]["params"]["calibrated"] is False
    np.testing.assert_array_equal(cells.X.toarray(), _uncalibrated(model, 100, 0).X.toarray())


def test_labels_from_the_smallest_cscgan_accepts_are_calibrated(counts):
    counts.obs["label"] = np.where(np.arange(counts.n_obs) < 8, "rare", "common")  # cscGAN's minimum: 5
    ScGAN.setup_anndata(counts, labels_key="label")
    model = _model(counts, steps=2, train_size=1.0)
    active = model.module.marginals.active
    assert active[model.label_categories.index("rare")].any()
    condition = ["rare"] * 300
    real = counts[counts.obs["label"] == "rare"].X.toarray()
    cells = model.generate(300, condition=condition, seed=0)
    plain = _uncalibrated(model, 300, 0, condition=condition)
    detected = lambda x: np.median((x > 0).sum(1))  # noqa: E731
    # detected genes per cell: the calibrated cells' move onto the label's real cells'
    target = detected(real)
    assert abs(detected(cells.X.toarray()) - target) < abs(detected(plain.X.toarray()) - target)


def test_labels_under_the_threshold_keep_their_values(counts, monkeypatch):
    monkeypatch.setattr("scsynth.model._marginals.MIN_CALIBRATION_CELLS", 30)
    counts.obs["label"] = np.where(np.arange(counts.n_obs) < 25, "rare", "common")
    ScGAN.setup_anndata(counts, labels_key="label")
    model = _model(counts, steps=2, train_size=1.0)
    active = model.module.marginals.active
    rare = model.label_categories.index("rare")
    assert not active[rare].any() and active[1 - rare].any()
    cells = model.generate(60, condition=["rare"] * 30 + ["common"] * 30, seed=0)
    plain = _uncalibrated(model, 60, 0, condition=["rare"] * 30 + ["common"] * 30)
    np.testing.assert_array_equal(cells.X[:30].toarray(), plain.X[:30].toarray())
    assert (cells.X[30:] != plain.X[30:]).nnz > 0


def test_calibrate_marginals_is_checked_before_training(counts, _pbmc, pbmc_grn):
    ScGAN.setup_anndata(counts)
    model = ScGAN(counts, **SMALL)
    with pytest.raises(TypeError, match="calibrate_marginals"):
        model.train(max_steps=1, calibrate_marginals="yes", enable_progress_bar=False)
    assert not model.is_trained_
    adata = _pbmc.copy()
    scsynth.model.GRouNdGAN.setup_anndata(adata, is_count_data=False)
    gg = scsynth.model.GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    with pytest.raises(TypeError, match="calibrate_marginals"):
        gg.train(max_steps=1, controller_steps=1, calibrate_marginals=1, enable_progress_bar=False)
    assert gg.controller_steps_ == 0

    class Uncalibrated(ScGAN):  # a model without a calibration refuses to fit one
        _calibrates_marginals = False

    Uncalibrated.setup_anndata(counts)
    plain = Uncalibrated(counts, **SMALL)
    with pytest.raises(ValueError, match="Uncalibrated has no marginal calibration"):
        plain.train(max_steps=1, calibrate_marginals=True, enable_progress_bar=False)
    assert not plain.is_trained_
