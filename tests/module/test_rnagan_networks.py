import numpy as np
import torch

from scsynth.module import RNAGANNetworks
from scsynth.nn import PathwayLinear


def _networks(n_genes=12, seed=0):
    torch.manual_seed(seed)
    rows, cols = [0, 0, 0, 1, 1, 1], [0, 1, 2, 5, 6, 7]
    return RNAGANNetworks(PathwayLinear(rows, cols, n_genes=n_genes, n_sets=2, n_learned=1, seed=seed),
                          hidden=(32, 8), n_latent=4, n_noise=3, dropout=0.0).eval()


def _episodes(batch=4, n=5, n_genes=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.log1p(torch.rand(batch, n_genes, generator=g) * 50), \
        torch.log1p(torch.rand(batch, n, n_genes, generator=g) * 50)


def test_pathway_layer_is_shared_by_both_networks():
    nets = _networks()
    assert nets.discriminator.features is nets.generator.features
    d_ids = {id(p) for p in nets.discriminator_parameters()}
    g_ids = {id(p) for p in nets.generator_parameters()}
    assert all(id(p) in d_ids for p in nets.features.parameters()) and not d_ids & g_ids
    assert d_ids | g_ids == {id(p) for p in nets.parameters()}


def test_discriminator_is_invariant_to_reference_order_and_padding():
    nets = _networks()
    target, refs = _episodes()
    logit = nets.discriminator(target, refs)
    assert logit.shape == (4,)
    assert torch.allclose(nets.discriminator(target, refs[:, torch.randperm(5)]), logit, atol=1e-5)
    padded = torch.cat([refs, torch.full((4, 3, 12), 7.0)], 1)
    mask = torch.cat([torch.ones(4, 5), torch.zeros(4, 3)], 1).bool()
    assert torch.allclose(nets.discriminator(target, padded, mask), logit, atol=1e-5)
    # each target is scored on its own: no batch statistics
    assert torch.allclose(nets.discriminator(target[:1], refs[:1]), logit[:1], atol=1e-5)


def test_untrained_generator_returns_the_reference_mean_and_noise_varies_it():
    nets = _networks()
    _, refs = _episodes()
    out = nets.generator(refs, generator=torch.Generator().manual_seed(0))
    expected = torch.log1p(torch.expm1(refs).mean(1))
    assert torch.allclose(out, expected, atol=1e-5)
    with torch.no_grad():
        nets.generator.fold_change.weight.normal_()  # as after some training
    a = nets.generator(refs, generator=torch.Generator().manual_seed(0))
    b = nets.generator(refs, generator=torch.Generator().manual_seed(0))
    c = nets.generator(refs, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert (a >= 0).all() and np.isfinite(a.detach().numpy()).all()


def test_gradients_reach_the_generator_through_the_discriminator():
    nets = _networks().train()
    with torch.no_grad():
        nets.generator.fold_change.weight.normal_(std=0.1)
    _, refs = _episodes()
    fake = nets.generator(refs)
    loss = torch.nn.functional.softplus(-nets.discriminator(fake, refs)).mean()
    loss.backward()
    grads = [p.grad for p in nets.generator_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
