import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from scsynth.nn import CountNoise
from scsynth.nn._count_noise import count_units


def test_unfitted_layer_passes_values_through():
    x = torch.rand(5, 7)
    assert torch.equal(CountNoise()(x), x)


def test_draws_sit_on_the_unit_lattice_and_keep_the_mean():
    noise = CountNoise()
    noise.fit(np.full(20, 0.5))
    x = torch.tensor([[0.1, 1.0, 4.0, 0.0]]).repeat(20_000, 1)
    y = noise(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.remainder(y, 0.5), torch.zeros_like(y))  # multiples of one count
    assert torch.all(y[:, 3] == 0)  # zero stays zero
    torch.testing.assert_close(y.mean(0), x[0], atol=0.03, rtol=0.02)  # unbiased: E[draw] = value
    # Poisson: variance = unit * value
    torch.testing.assert_close(y.var(0)[:3], 0.5 * x[0, :3], rtol=0.05, atol=0.01)


def test_gradient_passes_straight_through_the_draw():
    noise = CountNoise()
    noise.fit(np.full(10, 1.0))
    x = torch.full((4, 3), 2.5, requires_grad=True)
    (noise(x) * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, torch.arange(3.0).repeat(4, 1))


def test_non_finite_values_pass_through_for_the_nan_guards():
    noise = CountNoise()
    noise.fit(np.full(10, 0.5))
    x = torch.tensor([[float("nan"), 2.0, float("inf")], [1.0, float("-inf"), 3.0]])
    y = noise(x, generator=torch.Generator().manual_seed(0))  # torch.poisson alone raises on these
    finite = torch.isfinite(x)
    assert not torch.isfinite(y[~finite]).any()  # still non-finite (inf + (inf - inf) is NaN: either is caught)
    assert torch.equal(torch.remainder(y[finite], 0.5), torch.zeros(int(finite.sum())))  # the rest is drawn


def test_groups_use_their_own_units_and_unfitted_groups_are_unchanged():
    noise = CountNoise(3)
    noise.fit(np.full(10, 2.0), 0)
    noise.fit(np.full(10, 3.0), 2)
    x = torch.full((6, 50), 7.3)
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    y = noise(x, groups, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.remainder(y[:2], 2.0), torch.zeros(2, 50))
    assert torch.equal(y[2:4], x[2:4])
    assert torch.equal(torch.remainder(y[4:], 3.0), torch.zeros(2, 50))


def test_units_are_drawn_from_the_fitted_distribution():
    noise = CountNoise()
    units = np.r_[np.full(500, 1.0), np.full(500, 4.0)]
    noise.fit(units)
    y = noise(torch.full((4000, 200), 0.25), generator=torch.Generator().manual_seed(2))
    # a cell's smallest positive value is one count of its unit: 1.0 for about half the cells, 4.0 for others
    smallest = torch.where(y > 0, y, torch.full_like(y, np.inf)).min(1).values.numpy()
    assert np.quantile(smallest, 0.25) == 1.0 and np.quantile(smallest, 0.75) == 4.0


def test_same_generator_same_draws_and_state_dict_round_trip():
    noise = CountNoise(2)
    noise.fit(np.linspace(0.5, 2.0, 30), 1)
    copy = CountNoise(2)
    copy.load_state_dict(noise.state_dict())
    x, groups = torch.rand(10, 6) * 5, torch.ones(10, dtype=torch.long)
    a = noise(x, groups, generator=torch.Generator().manual_seed(3))
    b = copy(x, groups, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    holder = torch.nn.Module()
    holder.count_noise = CountNoise(2, latent_levels=True)
    holder.load_state_dict({})  # weights saved before the layer existed
    assert not holder.count_noise.is_fitted and not holder.count_noise.latent_levels


def test_latent_levels_set_each_cells_unit():
    noise = CountNoise(latent_levels=True)
    noise.fit(np.array([1.0, 7.0]))  # quantiles from 1 to 7: level 0 -> 1, 0.5 -> 4, 1 -> 7
    latent = torch.randn(60, 5)
    latent[:, 0] = torch.tensor([-12.0, 0.0, 12.0]).repeat(20)
    x = torch.full((60, 30), 50.0)
    y = noise(x, latent=latent, generator=torch.Generator().manual_seed(0))
    for unit, rows in ((1.0, y[0::3]), (4.0, y[1::3]), (7.0, y[2::3])):
        assert bool(torch.all(torch.remainder(rows, unit) < 1e-3)), unit
    # the same latent gives the same units whatever the draw; without latent_levels (or latent) they are drawn
    again = noise(x, latent=latent, generator=torch.Generator().manual_seed(1))
    assert bool(torch.all(torch.remainder(again[2::3], 7.0) < 1e-3)) and not torch.equal(again, y)
    independent = CountNoise()
    independent.load_state_dict({"units": noise.units})  # saved before latent levels: independent units
    assert not independent.latent_levels
    z = independent(x, latent=latent, generator=torch.Generator().manual_seed(0))
    assert not bool(torch.all(torch.remainder(z[0::3], 1.0) < 1e-3))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.floats(max_value=0.0), st.just(float("nan")), st.just(float("inf"))), min_size=1,
                max_size=5), st.lists(st.floats(0.1, 10.0), max_size=5))
def test_fit_refuses_units_that_are_not_positive_and_finite(bad, good):
    with pytest.raises(ValueError, match="positive finite"):
        CountNoise().fit(np.array(good + bad))


def test_fit_refuses_no_units():
    with pytest.raises(ValueError, match="at least one"):
        CountNoise().fit(np.array([]))


def test_count_units_of_counts_and_of_a_lattice():
    counts = np.array([[1, 0, 3], [2, 1, 1], [0, 0, 0], [0, 5, 0]], np.float32)
    # 100 / total; the empty cell is left out
    np.testing.assert_allclose(count_units(counts, 100, counts=True), [25.0, 25.0, 20.0])
    # values on a count lattice but not counts (e.g. expm1 of log-normalised data): after normalisation, one
    # count = the smallest positive value
    lattice = counts * np.array([[0.5], [3.0], [1.0], [0.1]], np.float32)
    np.testing.assert_allclose(count_units(lattice, 100, counts=False), [25.0, 25.0, 100.0], rtol=1e-6)


@pytest.mark.parametrize("counts", [True, False])
def test_count_units_read_sparse_rows_as_dense_ones(counts):
    rng = np.random.default_rng(0)
    dense = (rng.poisson(0.7, (40, 12)) * rng.uniform(0.5, 2, (40, 1))).astype(np.float32)
    stored = sparse.csr_matrix(dense)
    stored.data[::5] = 0.0  # explicit zeros are not a cell's smallest positive value
    dense = stored.toarray()
    assert stored.nnz > np.count_nonzero(dense)
    expected = count_units(dense, 1e4, counts=counts)
    assert len(expected) == np.count_nonzero(dense.sum(1))
    np.testing.assert_allclose(count_units(stored, 1e4, counts=counts), expected, rtol=1e-6)
    np.testing.assert_allclose(count_units(sparse.csc_matrix(dense), 1e4, counts=counts), expected, rtol=1e-6)
