import numpy as np
import pytest
import torch

from scsynth.nn import (
    ConditionalBatchNorm1d,
    LibrarySizeNormalization,
    MLPCritic,
    MLPGenerator,
    init_output_at_data,
)


def test_lsn_rows_sum_to_library_size_and_zero_rows_stay_zero():
    lsn = LibrarySizeNormalization(20_000)
    x = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [5.0, 5.0, 10.0]])
    out = lsn(x)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[[0, 2]].sum(1), torch.tensor([20_000.0, 20_000.0]))
    assert (out[1] == 0).all()
    assert torch.allclose(out[0], torch.tensor([5_000.0, 15_000.0, 0.0]))


def test_lsn_reuses_a_given_scale():
    lsn = LibrarySizeNormalization(10)
    x = torch.tensor([[1.0, 1.0]])
    scale = lsn.scale(x)
    y = lsn(torch.tensor([[2.0, 0.0]]), scale=scale)
    assert torch.allclose(y, torch.tensor([[10.0, 0.0]]))


def test_lsn_gradient_is_finite_on_zero_rows():
    x = torch.zeros(2, 3, requires_grad=True)
    LibrarySizeNormalization(5)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_lsn_rejects_non_positive_size():
    with pytest.raises(ValueError, match="positive"):
        LibrarySizeNormalization(0)


def test_conditional_batchnorm_uses_per_label_affine():
    bn = ConditionalBatchNorm1d(3, n_labels=2)
    with torch.no_grad():
        bn.gamma.weight[1] = 2.0
        bn.beta.weight[1] = 1.0
    x = torch.randn(16, 3)
    labels = torch.tensor([0] * 8 + [1] * 8)
    out = bn(x, labels)
    base = bn.bn(x)  # same batch statistics (train mode)
    assert torch.allclose(out[:8], base[:8], atol=1e-5)
    assert torch.allclose(out[8:], 2 * base[8:] + 1, atol=1e-5)


def test_generator_architecture_and_output():
    gen = MLPGenerator(128, 50, library_size=20_000)
    widths = [lin.out_features for lin in gen.linears]
    assert widths == [256, 512, 1024]
    assert all(isinstance(n, torch.nn.BatchNorm1d) for n in gen.norms)
    x = gen(torch.randn(8, 128))
    assert x.shape == (8, 50) and (x >= 0).all()
    assert torch.allclose(x.sum(1), torch.full((8,), 20_000.0), rtol=1e-4)
    assert (gen.output.bias == 0).all()


def test_conditional_generator_requires_labels():
    gen = MLPGenerator(4, 6, n_hidden=(8,), n_labels=3)
    with pytest.raises(ValueError, match="labels"):
        gen(torch.randn(2, 4))
    assert gen(torch.randn(2, 4), torch.tensor([0, 2])).shape == (2, 6)


def test_critic_architecture_projection_and_no_normalisation():
    critic = MLPCritic(30, n_labels=4)
    widths = [m.out_features for m in critic.body if isinstance(m, torch.nn.Linear)]
    assert widths == [1024, 512, 256]
    assert not any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.LayerNorm) for m in critic.modules())
    x = torch.rand(5, 30)
    a = critic(x, torch.zeros(5, dtype=torch.long))
    b = critic(x, torch.ones(5, dtype=torch.long))
    assert a.shape == (5,) and not torch.allclose(a, b)  # the projection term depends on the label
    with pytest.raises(ValueError, match="input_transform"):
        MLPCritic(3, input_transform="sqrt")


def _profile(n_genes, rng):
    mean = rng.gamma(0.5, 20.0, n_genes)  # skewed, like expression means
    nonzero = np.clip(rng.uniform(0.05, 0.95, n_genes), 0, 1)
    return mean, nonzero


def test_output_init_at_data_gives_each_gene_its_mean_and_zero_fraction():
    rng = np.random.default_rng(0)
    mean, nonzero = _profile(40, rng)
    torch.manual_seed(0)
    gen = MLPGenerator(16, 40, n_hidden=(64, 128))
    gen.train()  # BatchNorm on batch statistics, as in the first training steps
    with torch.no_grad():
        before = gen(torch.randn(4000, 16)).numpy()
    init_output_at_data(gen.output, mean, nonzero)
    with torch.no_grad():
        after = gen(torch.randn(4000, 16)).numpy()
    target = mean / mean.sum()
    assert np.corrcoef(after.mean(0) / after.mean(0).sum(), target)[0, 1] > 0.95
    assert np.corrcoef(before.mean(0) / before.mean(0).sum(), target)[0, 1] < 0.5  # random: no profile
    assert np.abs((after > 0).mean(0) - nonzero).max() < 0.15


def test_output_init_at_data_gives_each_label_its_mean():
    rng = np.random.default_rng(1)
    mean, nonzero = _profile(30, rng)
    label_means = mean * rng.lognormal(0, 1.0, (3, 30))  # each label: other markers
    torch.manual_seed(0)
    gen = MLPGenerator(16, 30, n_hidden=(64, 128), n_labels=3, label_output_bias=True)
    gen.train()
    init_output_at_data(gen.output, mean, nonzero, label_bias=gen.label_bias, label_means=label_means)
    for label in range(3):
        with torch.no_grad():
            x = gen(torch.randn(4000, 16), torch.full((4000,), label)).numpy().mean(0)
        # each label's generated means follow its own profile (log scale), not the pooled one
        own = np.corrcoef(np.log(x + 1e-3), np.log(label_means[label]))[0, 1]
        pooled = np.corrcoef(np.log(x + 1e-3), np.log(mean))[0, 1]
        assert own > 0.9 and own > pooled


def test_output_init_at_data_errors():
    gen = MLPGenerator(4, 10, n_hidden=(8,), n_labels=2, label_output_bias=True)
    with pytest.raises(ValueError, match="one value per gene"):
        init_output_at_data(gen.output, np.ones(9), np.ones(9) / 2)
    with pytest.raises(ValueError, match="needs label_means"):
        init_output_at_data(gen.output, np.ones(10), np.ones(10) / 2, label_bias=gen.label_bias)
    with pytest.raises(ValueError, match=r"\(2, 10\)"):
        init_output_at_data(gen.output, np.ones(10), np.ones(10) / 2, label_bias=gen.label_bias,
                            label_means=np.ones((3, 10)))
    before = gen.output.weight.detach().clone()
    for mean, fraction in ((np.full(10, np.nan), np.ones(10) / 2), (-np.ones(10), np.ones(10) / 2),
                           (np.ones(10), np.full(10, 1.5))):
        with pytest.raises(ValueError, match="finite and >= 0"):
            init_output_at_data(gen.output, mean, fraction)
    with pytest.raises(ValueError, match="label_means must be finite"):
        init_output_at_data(gen.output, np.ones(10), np.ones(10) / 2, label_bias=gen.label_bias,
                            label_means=np.full((2, 10), np.inf))
    assert torch.equal(gen.output.weight, before)  # refused before any change
