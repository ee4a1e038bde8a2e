"""GeneSys realism on normalised (FPKM-like) data: each test pins one root cause fixed in issue 14."""

import numpy as np
import pandas as pd
import pytest
import torch

import scsynth
from scsynth.model import GeneSys
from scsynth.module import GeneSysModule

from ..conftest import SMALL_GS

TABLE = pd.DataFrame([["State1", "State2", "State2", "State2"], ["State1", "State3", "State3", "State3"]],
                     index=["myotube", "mesenchymal"])


@pytest.fixture(scope="module")
def fpkm():
    """The myoblast time course (FPKM, 57% zeros), 200 genes."""
    hsmm = scsynth.data.hsmm_myoblast()[:, :200].copy()
    return hsmm[np.asarray(hsmm.X.sum(1)).ravel() > 0].copy()


def _fit(adata, **model_kwargs):
    adata = adata.copy()
    GeneSys.setup_anndata(adata)
    model = GeneSys(adata, blueprint=TABLE, fallback="neighbors", **{**SMALL_GS, **model_kwargs})
    model.train(max_epochs=4, batch_size=32, seed=0, enable_progress_bar=False)
    return model


@pytest.fixture(scope="module")
def hurdle(fpkm):
    return _fit(fpkm)


def _dense(x):
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def test_hurdle_density_is_normalised_and_sampling_matches_it():
    module = GeneSysModule(3, 1, 2, n_latent=2, n_hidden=8, likelihood="hurdle")
    params = {"mean": torch.tensor([[0.3, 2.0, -0.5]]), "scale": torch.tensor([0.8, 0.5, 1.0]),
              "zero_logits": torch.tensor([[0.0, -2.0, 1.0]])}
    # P(0) + integral of the positive density over y = log1p(x) > 0 is 1, gene by gene
    y = torch.linspace(1e-4, 12, 20001)
    x = torch.expm1(y)[:, None]
    density = torch.stack([module.log_likelihood(x, {k: v[..., g:g + 1] for k, v in params.items()}).exp()
                           for g in range(3)], 1)
    p_zero = torch.sigmoid(params["zero_logits"][0])
    # the density is w.r.t. y, the likelihood w.r.t. log1p(x): integrate over y
    mass = torch.trapezoid(density, y, dim=0)
    assert torch.allclose(mass + p_zero, torch.ones(3), atol=1e-3)
    big = {k: v.expand(200_000, -1) if v.dim() == 2 else v for k, v in params.items()}
    values, expected = module.sample_values(big, generator=torch.Generator().manual_seed(0))
    assert (values >= 0).all()
    assert torch.allclose((values == 0).float().mean(0), p_zero, atol=0.01)
    assert torch.allclose(values.mean(0), expected[0], rtol=0.05)


def test_old_gaussian_weights_load_as_the_gaussian_they_were():
    old = GeneSysModule(20, 2, 3, n_latent=4, n_hidden=16, likelihood="normal")
    new = GeneSysModule(20, 2, 3, n_latent=4, n_hidden=16, likelihood="hurdle")
    new.load_state_dict(old.state_dict())
    assert new.likelihood == "normal" and new.px_zero is None


def test_gaussian_decoder_misses_the_zeros_and_the_hurdle_keeps_them(fpkm, hurdle):
    """Root cause 1: a Gaussian on log1p cannot make exact zeros (FPKM: 57%), so its cells were
    unlike real ones in the kNN graph; the hurdle models them."""
    real = _dense(fpkm.X)
    zeros = (real == 0).mean()
    normal = _fit(fpkm, continuous_likelihood="normal")
    assert hurdle.module.likelihood == "hurdle"
    gen_h, gen_n = _dense(hurdle.generate(100, seed=0).X), _dense(normal.generate(100, seed=0).X)
    assert abs((gen_h == 0).mean() - zeros) < 0.05
    assert (gen_n == 0).mean() < zeros - 0.2
    per_gene = np.corrcoef((real == 0).mean(0), (gen_h == 0).mean(0))[0, 1]
    assert per_gene > 0.9


def test_generated_library_sizes_and_spread_match_the_training_cells(fpkm, hurdle):
    """Root cause 2: the decoder's noise scale started at an arbitrary 0.69 and barely moved in a short
    run, so cells were over-smoothed and too small; it now starts at the data's per-gene spread."""
    real, gen = _dense(fpkm.X), _dense(hurdle.generate(100, seed=0).X)
    ratio = np.median(gen.sum(1)) / np.median(real.sum(1))
    assert 0.7 < ratio < 1.4, ratio

    def log_norm(x):
        return np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1e-9) * 1e4)

    keep = (real > 0).mean(0) > 0.1
    var_ratio = np.median(log_norm(gen).var(0)[keep] / log_norm(real).var(0)[keep])
    assert 0.6 < var_ratio < 1.6, var_ratio


def test_decoder_starts_at_the_training_marginals(fpkm):
    adata = fpkm.copy()
    GeneSys.setup_anndata(adata)
    model = GeneSys(adata, blueprint=TABLE, fallback="neighbors", **SMALL_GS)
    model.train(max_epochs=1, batch_size=256, seed=0, enable_progress_bar=False, lr=1e-12)  # init only
    y = np.log1p(_dense(adata.X)[model.train_indices])
    positive = np.where(y > 0, y, np.nan)
    bias = model.module.decoder[1].bias.detach().numpy()
    assert np.allclose(bias, np.nan_to_num(np.nanmean(positive, 0)), atol=1e-3)
    p_zero = torch.sigmoid(model.module.px_zero.bias).detach().numpy()
    assert np.allclose(p_zero, np.clip((y == 0).mean(0), 1e-3, 1 - 1e-3), atol=1e-4)


def test_default_trains_every_epoch_and_validation_monitor_stops_early(fpkm):
    """Root cause 3: the validation loss is lowest after a few epochs on small data, long before the
    generated cells are realistic; by default the schedule follows the training loss and every epoch runs."""
    adata = fpkm.copy()
    GeneSys.setup_anndata(adata)
    model = GeneSys(adata, blueprint=TABLE, fallback="neighbors", **SMALL_GS)
    model.train(max_epochs=5, batch_size=64, seed=0, enable_progress_bar=False)
    assert model.n_epochs_trained_ == 5 and model.best_loss_["monitor"] == "train_loss"
    assert np.isfinite(model.best_validation_loss_)
    other = GeneSys(adata, blueprint=TABLE, fallback="neighbors", **SMALL_GS)
    other.train(max_epochs=30, batch_size=64, seed=0, enable_progress_bar=False, monitor="validation_loss",
                early_stopping_patience=2, lr=1e-2)
    assert other.n_epochs_trained_ < 30 and other.best_loss_["monitor"] == "validation_loss"
    with pytest.raises(ValueError, match="monitor"):
        other.train(max_epochs=1, monitor="elbo")


def test_calibration_maps_each_genes_positive_values_onto_the_real_ones():
    """Root cause 4: a truncated Gaussian per gene misses FPKM's many small positive values (a random forest
    told generated cells apart by them); a per-gene monotone map onto the training cells' quantiles fixes it."""
    module = GeneSysModule(2, 1, 2, n_latent=2, n_hidden=8, likelihood="hurdle")
    rng = np.random.default_rng(0)
    values = torch.as_tensor(np.where(rng.random((4000, 2)) < 0.3, 0.0, rng.exponential(1.0, (4000, 2))),
                             dtype=torch.float32)
    assert torch.equal(module.calibrate(values), values) and not module.is_calibrated
    levels = np.linspace(0, 1, module.marginal_model.shape[1])
    model_q = np.quantile(values.numpy()[values.numpy()[:, 0] > 0, 0], levels)
    data_q = np.stack([np.quantile(rng.lognormal(3.0, 1.5, 5000), levels)] * 2)
    module.set_calibration(torch.as_tensor(np.stack([model_q, model_q])), torch.as_tensor(data_q))
    out = module.calibrate(values).numpy()
    assert np.array_equal(out == 0, values.numpy() == 0)  # zeros stay zeros, positives stay positive
    positive = out[:, 0][out[:, 0] > 0]
    np.testing.assert_allclose(np.quantile(positive, [0.1, 0.5, 0.9]), np.quantile(data_q[0], [0.1, 0.5, 0.9]),
                               rtol=0.1)
    order = np.argsort(values.numpy()[:, 0])
    assert (np.diff(out[order, 0]) >= 0).all()  # monotone: ranks (trends, rank correlations) are kept
    state = module.state_dict()
    loaded = GeneSysModule(2, 1, 2, n_latent=2, n_hidden=8, likelihood="hurdle")
    loaded.load_state_dict(state)
    assert torch.equal(loaded.calibrate(values), module.calibrate(values))
    del state["marginal_model"], state["marginal_data"]  # saved before the calibration: loads uncalibrated
    loaded.load_state_dict(state)
    assert not loaded.is_calibrated
    with pytest.raises(ValueError, match="marginal_model"):
        module.set_calibration(torch.zeros(2, 3), torch.zeros(2, 3))


def test_trained_model_is_calibrated_and_its_values_match_the_real_marginals(fpkm, hurdle, tmp_path):
    assert hurdle.module.is_calibrated
    real = _dense(fpkm.X)
    calibrated = _dense(hurdle.generate(100, seed=0).X)
    table = hurdle.module.marginal_model.clone()
    hurdle.module.marginal_model.zero_()
    try:
        raw = _dense(hurdle.generate(100, seed=0).X)
    finally:
        hurdle.module.marginal_model.copy_(table)
    assert np.array_equal(raw == 0, calibrated == 0)  # the zeros are the model's

    def small_positive(x):  # share of positive log1p values below 1, the mass the Gaussian missed
        y = np.log1p(x[x > 0])
        return (y < 1).mean()

    assert abs(small_positive(calibrated) - small_positive(real)) < abs(small_positive(raw) - small_positive(real))
    hurdle.save(tmp_path / "m")
    loaded = GeneSys.load(tmp_path / "m")
    np.testing.assert_array_equal(_dense(loaded.generate(100, seed=0).X), calibrated)
    off = _fit(fpkm, n_hidden=16)
    off.train(max_epochs=1, batch_size=32, seed=0, enable_progress_bar=False, calibrate_marginals=False)
    assert not off.module.is_calibrated
