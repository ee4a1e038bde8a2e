import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scsynth.nn import MarginalCalibration
from scsynth.nn._marginal_calibration import N_QUANTILES, zero_fraction_and_quantiles

LEVELS = np.linspace(0, 1, N_QUANTILES)


def _sample(rng, n, zero, shape=2.0, scale=3.0, lognormal=False):
    values = rng.lognormal(0, 1, (n, len(zero))) if lognormal else rng.gamma(shape, scale, (n, len(zero)))
    return (values * (rng.random((n, len(zero))) > np.asarray(zero))).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 60), st.integers(1, 5), st.integers(0, 10_000))
def test_quantiles_equal_numpy_per_gene(n, genes, seed):
    rng = np.random.default_rng(seed)
    x = (rng.gamma(1.0, 2.0, (n, genes)) * (rng.random((n, genes)) > 0.5)).astype(np.float32)
    zero, q, n_pos = zero_fraction_and_quantiles(x, LEVELS)
    for g in range(genes):
        pos = x[:, g][x[:, g] > 0]
        assert n_pos[g] == len(pos) and zero[g] == pytest.approx(1 - len(pos) / n)
        expected = np.quantile(pos, LEVELS) if len(pos) else np.zeros(N_QUANTILES)
        np.testing.assert_allclose(q[g], expected, rtol=1e-5, atol=1e-6)


def test_maps_the_model_marginals_onto_the_data():
    rng = np.random.default_rng(0)
    data_zero, model_zero = [0.1, 0.5, 0.8, 0.3], [0.3, 0.2, 0.9, 0.3]
    data = _sample(rng, 5000, data_zero)
    calibration = MarginalCalibration(4)
    calibration.fit(_sample(rng, 5000, model_zero, lognormal=True), data)
    new = _sample(rng, 5000, model_zero, lognormal=True)
    out = calibration(torch.as_tensor(new), uniforms=torch.rand(new.shape)).numpy()
    np.testing.assert_allclose((out == 0).mean(0), data_zero, atol=0.03)  # more and fewer zeros than the model
    for g in range(4):
        got, want = out[:, g][out[:, g] > 0], data[:, g][data[:, g] > 0]
        np.testing.assert_allclose(np.quantile(got, [0.1, 0.5, 0.9]), np.quantile(want, [0.1, 0.5, 0.9]), rtol=0.1)
        # monotone: the order of the positive model values is kept
        pos = new[:, g] > 0
        order = np.argsort(new[pos, g])
        assert (np.diff(out[pos, g][order]) >= -1e-5).all()
    assert (out >= 0).all() and np.isfinite(out).all()


def test_unfitted_groups_and_sparse_genes_are_unchanged():
    rng = np.random.default_rng(1)
    calibration = MarginalCalibration(3, n_groups=2)
    x = torch.as_tensor(_sample(rng, 50, [0.2, 0.2, 0.2]))
    torch.testing.assert_close(calibration(x), x)  # nothing fitted
    assert not calibration.is_fitted
    data = _sample(rng, 200, [0.2, 0.2, 1.0])  # gene 2: no positive training value
    calibration.fit(_sample(rng, 200, [0.5, 0.5, 0.5], lognormal=True), data, group=1)
    assert calibration.active.tolist() == [[0, 0, 0], [1, 1, 0]]
    groups = torch.tensor([0] * 25 + [1] * 25)
    out = calibration(x, groups)
    torch.testing.assert_close(out[:25], x[:25])  # group 0 was never fitted
    torch.testing.assert_close(out[25:, 2], x[25:, 2])  # inactive gene
    assert not torch.equal(out[25:, :2], x[25:, :2])
    calibration.reset()
    torch.testing.assert_close(calibration(x, groups), x)


def test_min_data_positive_zero_maps_genes_the_data_hardly_express():
    rng = np.random.default_rng(2)
    data = _sample(rng, 40, [0.2, 1.0, 1.0])  # gene 1: never positive; gene 2: positive once (below)
    data[7, 2] = 5.0
    model = _sample(rng, 400, [0.0, 0.0, 0.0], lognormal=True)
    default, every = MarginalCalibration(3), MarginalCalibration(3)
    default.fit(model, data)
    every.fit(model, data, min_data_positive=0)
    assert default.active.tolist() == [[1, 0, 0]] and every.active.tolist() == [[1, 1, 1]]
    new = torch.as_tensor(_sample(rng, 400, [0.0, 0.0, 0.0], lognormal=True))
    out = every(new, uniforms=torch.rand(new.shape)).numpy()
    assert (out[:, 1] == 0).all()  # never expressed in the data: 0
    assert set(np.unique(out[:, 2])) <= {0.0, 5.0} and 0 < (out[:, 2] == 5.0).mean() < 0.1  # about 1 in 40
    torch.testing.assert_close(default(new)[:, 1:], new[:, 1:])  # the default leaves both as they are


def test_fit_refuses_bad_tables():
    calibration = MarginalCalibration(3)
    good = np.ones((10, 3), np.float32)
    for bad in (np.ones((10, 2)), np.ones((1, 3)), np.ones(3)):
        with pytest.raises(ValueError, match="cells x 3 genes"):
            calibration.fit(bad, good)
    nan = good.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="data_values holds NaN"):
        calibration.fit(good, nan)
    with pytest.raises(ValueError, match="group"):
        calibration.fit(good, good, group=1)


def test_state_dict_round_trip_and_old_weights_load_unfitted():
    rng = np.random.default_rng(2)
    calibration = MarginalCalibration(4)
    calibration.fit(_sample(rng, 100, [0.3] * 4), _sample(rng, 100, [0.6] * 4))
    copy = MarginalCalibration(4)
    copy.load_state_dict(calibration.state_dict())
    x, u = torch.as_tensor(_sample(rng, 30, [0.3] * 4)), torch.rand(30, 4)
    torch.testing.assert_close(copy(x, uniforms=u), calibration(x, uniforms=u))
    holder = torch.nn.Module()
    holder.marginals = MarginalCalibration(4)
    holder.load_state_dict({})  # weights saved before the calibration existed
    assert not holder.marginals.is_fitted


def test_map_equals_a_per_value_reference():
    rng = np.random.default_rng(3)
    calibration = MarginalCalibration(6, n_groups=2)
    calibration.fit(_sample(rng, 300, [0.1, 0.6, 0.3, 0.5, 0.2, 0.9]), _sample(rng, 300, [0.4, 0.2, 0.3, 0.7, 0.0, 0.5]))
    calibration.fit(_sample(rng, 200, [0.5] * 6, lognormal=True), _sample(rng, 200, [0.3] * 6), group=1)
    x = torch.as_tensor(_sample(rng, 80, [0.4] * 6, lognormal=True))
    u, groups = torch.rand(x.shape), torch.as_tensor(rng.integers(0, 2, 80))
    out = calibration(x, groups, uniforms=u).numpy()
    for i in range(80):  # F_model (randomised at 0), then Q_data, by np.interp on the stored tables
        g = int(groups[i])
        mz, mq, dz, dq = (getattr(calibration, k)[g].numpy()
                          for k in ("model_zero", "model_quantiles", "data_zero", "data_quantiles"))
        for j in range(6):
            v = float(x[i, j])
            level = mz[j] + (1 - mz[j]) * np.interp(v, mq[j], LEVELS) if v > 0 else mz[j] * float(u[i, j])
            want = 0.0 if level < dz[j] else np.interp((level - dz[j]) / (1 - dz[j]), LEVELS, dq[j])
            assert out[i, j] == pytest.approx(want, rel=1e-4, abs=1e-4), (i, j)
    # one group for every cell (the sliced path) gives the same values as the per-group path
    ones = torch.ones(80, dtype=torch.long)
    torch.testing.assert_close(calibration(x, ones, uniforms=u)[groups == 1], torch.as_tensor(out)[groups == 1])


def test_disabled_passes_values_and_restores_the_tables():
    rng = np.random.default_rng(0)
    calibration = MarginalCalibration(3)
    calibration.fit(rng.exponential(size=(200, 3)).astype(np.float32), rng.exponential(3, size=(200, 3)).astype(np.float32))
    before = {k: v.clone() for k, v in calibration.state_dict().items()}
    values = torch.as_tensor(rng.exponential(size=(10, 3)).astype(np.float32))
    with pytest.raises(RuntimeError, match="inside"), calibration.disabled():
        assert not calibration.is_fitted
        assert torch.equal(calibration(values.clone(), torch.zeros(10, dtype=torch.long)), values)
        raise RuntimeError("inside")
    assert all(torch.equal(v, calibration.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(calibration(values.clone(), torch.zeros(10, dtype=torch.long)), values)
