"""Conditional quantiles of per-gene generators (``target_noise="controller"`` counterfactuals)."""

import numpy as np
import torch

from scsynth.nn import _conditional_quantiles as cq


def _draws(values):
    return torch.tensor(values, dtype=torch.float32).sort(dim=-1).values


def test_noise_grid_is_the_normal_quantiles_and_fixed():
    grid = cq.noise_grid(4, 1)
    levels = (np.arange(4) + 0.5) / 4
    from scipy.stats import norm

    np.testing.assert_allclose(grid[:, 0].numpy(), norm.ppf(levels), rtol=1e-5)
    np.testing.assert_array_equal(cq.noise_grid(8, 3).numpy(), cq.noise_grid(8, 3).numpy())
    assert cq.noise_grid(8, 3).shape == (8, 3)


def test_levels_and_quantiles_invert_inside_the_range():
    draws = _draws([[[0.0, 1.0, 2.0, 4.0]]])
    y = torch.tensor([[0.5, 1.0, 3.0, 4.0]]).T.reshape(4, 1)
    draws4 = draws.expand(4, 1, 4)
    levels = cq.quantile_levels(draws4, y, torch.zeros(4, 1))
    np.testing.assert_allclose(levels[:, 0].numpy(), [0.25, 0.375, 0.75, 0.875], rtol=1e-6)
    np.testing.assert_allclose(cq.quantile_at(draws4, levels).numpy(), y.numpy(), rtol=1e-6)


def test_values_outside_the_range_clamp_to_its_ends():
    draws = _draws([[[1.0, 2.0, 3.0, 4.0]]]).expand(2, 1, 4)
    levels = cq.quantile_levels(draws, torch.tensor([[0.0], [9.0]]), torch.zeros(2, 1))
    np.testing.assert_allclose(levels[:, 0].numpy(), [0.125, 0.875])
    np.testing.assert_allclose(cq.quantile_at(draws, levels)[:, 0].numpy(), [1.0, 4.0])


def test_ties_spread_uniformly_over_their_levels():
    # half the draws are 0: a zero lies anywhere in the lower half, placed by its uniform
    draws = _draws([[[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]]]).expand(3, 1, 8)
    uniforms = torch.tensor([[0.0], [0.5], [1.0]])
    levels = cq.quantile_levels(draws, torch.zeros(3, 1), uniforms)
    np.testing.assert_allclose(levels[:, 0].numpy(), [0.5 / 8, 2.0 / 8, 3.5 / 8])
    # the same levels under a shifted conditional give distinct values where the zeros now differ
    after = _draws([[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]]).expand(3, 1, 8)
    np.testing.assert_allclose(cq.quantile_at(after, levels)[:, 0].numpy(), [1.0, 2.5, 4.0])


def test_sorted_draws_runs_the_generator_on_every_grid_noise():
    def generate(inputs, noise):  # y = t + noise per gene: quantiles are t + the grid
        return inputs[:, :2] + noise[..., 0]

    t = torch.tensor([[0.0, 10.0], [5.0, -1.0]])
    grid = cq.noise_grid(5, 1)
    draws = cq.sorted_draws(generate, t, grid, n_genes=2)
    assert draws.shape == (2, 2, 5)
    np.testing.assert_allclose(draws.numpy(), (t[:, :, None] + grid[:, 0]).numpy(), rtol=1e-6)
