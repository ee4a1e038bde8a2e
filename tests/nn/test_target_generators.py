"""The chunked target generators are exactly per-gene MLPs (outputs, gradients, BatchNorm statistics)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from scsynth.nn import TargetGenerators


def per_gene_mlps(gen: TargetGenerators) -> list[nn.Sequential]:
    """Plain reference: for each target, ``(Linear -> BatchNorm1d -> ReLU) x (depth + 1) -> Linear -> ReLU``
    built from (sharing, not copying) the grouped model's weights; BatchNorm state is copied."""
    nets: list[nn.Sequential | None] = [None] * gen.n_targets
    for i, group in enumerate(gen.groups):
        for gi, g in enumerate(getattr(gen, f"_members_{i}").tolist()):
            layers: list[nn.Module] = []
            for weight, bias, norm in zip(group.weights, group.biases, group.norms, strict=True):
                fan_in, fan_out = weight.shape[1:]
                lin = nn.Linear(fan_in, fan_out).to(weight.dtype)
                lin.weight = nn.Parameter(weight.detach()[gi].T.clone())
                lin.bias = nn.Parameter(bias.detach()[gi, 0].clone())
                bn = nn.BatchNorm1d(fan_out).to(weight.dtype)
                units = slice(gi * fan_out, (gi + 1) * fan_out)
                with torch.no_grad():
                    bn.weight.copy_(norm.weight[units]), bn.bias.copy_(norm.bias[units])
                    bn.running_mean.copy_(norm.running_mean[units])
                    bn.running_var.copy_(norm.running_var[units])
                    bn.num_batches_tracked.copy_(norm.num_batches_tracked)
                layers += [lin, bn, nn.ReLU()]
            out = nn.Linear(group.n_hidden, 1).to(group.out_weight.dtype)
            out.weight = nn.Parameter(group.out_weight.detach()[gi].T.clone())
            out.bias = nn.Parameter(group.out_bias.detach()[gi, 0].clone())
            nets[g] = nn.Sequential(*layers, out, nn.ReLU())
    return nets


def reference_forward(gen: TargetGenerators, nets, tf: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    regs = gen.regulators()
    return torch.cat([net(torch.cat([tf[:, torch.as_tensor(regs[g], dtype=torch.long)], noise[:, g]], 1))
                      for g, net in enumerate(nets)], 1)


def grouped_grads(gen: TargetGenerators, nets) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, grouped grad, reference grad laid out as the grouped tensor) for every parameter."""
    out = []
    for i, group in enumerate(gen.groups):
        members = getattr(gen, f"_members_{i}").tolist()
        for layer in range(len(group.weights)):
            seq = [nets[g][3 * layer] for g in members]
            bns = [nets[g][3 * layer + 1] for g in members]
            norm = group.norms[layer]
            out += [(f"{i}.w{layer}", group.weights[layer].grad, torch.stack([m.weight.grad.T for m in seq])),
                    (f"{i}.b{layer}", group.biases[layer].grad,
                     torch.stack([m.bias.grad[None] for m in seq])),
                    (f"{i}.g{layer}", norm.weight.grad, torch.cat([b.weight.grad for b in bns])),
                    (f"{i}.beta{layer}", norm.bias.grad, torch.cat([b.bias.grad for b in bns]))]
        outs = [nets[g][-2] for g in members]
        out += [(f"{i}.ow", group.out_weight.grad, torch.stack([m.weight.grad.T for m in outs])),
                (f"{i}.ob", group.out_bias.grad, torch.stack([m.bias.grad[None] for m in outs]))]
    return out


def assert_same_bn_state(gen: TargetGenerators, nets) -> None:
    for i, group in enumerate(gen.groups):
        members = getattr(gen, f"_members_{i}").tolist()
        for layer, norm in enumerate(group.norms):
            bns = [nets[g][3 * layer + 1] for g in members]
            for stat in ("running_mean", "running_var"):
                torch.testing.assert_close(getattr(norm, stat), torch.cat([getattr(b, stat) for b in bns]),
                                           rtol=1e-12, atol=1e-12)
            assert all(int(b.num_batches_tracked) == int(norm.num_batches_tracked) for b in bns)


def _regulators(seed: int, n_tfs: int, n_targets: int, single: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if single:
        return [np.sort(rng.choice(n_tfs, size=3, replace=False)) for _ in range(n_targets)]
    sizes = rng.integers(0, n_tfs + 1, size=n_targets)
    return [np.sort(rng.choice(n_tfs, size=int(k), replace=False)) for k in sizes]


@pytest.mark.parametrize("single_group", [False, True])
@pytest.mark.parametrize("chunk_genes", [1, 3, 1000])
def test_chunked_groups_equal_per_gene_mlps(single_group, chunk_genes):
    torch.manual_seed(0)
    n_tfs, n_targets, batch = 6, 23, 32
    gen = TargetGenerators(_regulators(1, n_tfs, n_targets, single_group), n_tfs, width=2, depth=2).double()
    for group in gen.groups:
        group.chunk_elements = chunk_genes * group.n_hidden * batch
        with torch.no_grad():
            for norm in group.norms:  # non-trivial affine parameters (negative scales too)
                norm.weight.uniform_(-1.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
    nets = per_gene_mlps(gen)
    for step, (mode, grad) in enumerate([("train", True), ("train", False), ("train", True), ("eval", True),
                                         ("eval", False)]):
        gen.train(mode == "train")
        for net in nets:
            net.train(mode == "train")
        tf = (torch.rand(batch, n_tfs, dtype=torch.float64) * 5).requires_grad_(grad)
        noise = torch.randn(batch, n_targets, 1, dtype=torch.float64)
        with torch.set_grad_enabled(grad):
            out = gen(tf, noise)
            ref = reference_forward(gen, nets, tf, noise)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        assert out.shape == (batch, n_targets) and out.is_contiguous()
        assert_same_bn_state(gen, nets)
        if grad:
            gen.zero_grad(), [net.zero_grad() for net in nets]
            w = torch.randn_like(out)
            (g_tf,) = torch.autograd.grad((out * w).sum(), tf, retain_graph=True)
            (r_tf,) = torch.autograd.grad((ref * w).sum(), tf, retain_graph=True)
            torch.testing.assert_close(g_tf, r_tf, rtol=1e-9, atol=1e-10)
            (out * w).sum().backward(), (ref * w).sum().backward()
            for name, got, expected in grouped_grads(gen, nets):
                # BatchNorm cancels the pre-BN bias in training mode: its true gradient is 0
                torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9, msg=f"{name} step {step}")


def test_float32_matches_the_unchunked_formulation():
    """float32 at a realistic size: chunking changes nothing beyond rounding."""
    torch.manual_seed(0)
    gen = TargetGenerators(_regulators(2, 12, 200, single=True), 12)
    whole = copy.deepcopy(gen)
    whole.groups[0].chunk_elements = 1 << 40
    gen.groups[0].chunk_elements = 7 * gen.groups[0].n_hidden * 256
    tf, noise = torch.rand(256, 12) * 10, torch.randn(256, 200, 1)
    a, b = gen(tf, noise), whole(tf, noise)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    a.square().mean().backward(), b.square().mean().backward()
    for (name, p), q in zip(gen.named_parameters(), whole.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("single_group", [False, True])
def test_subset_computes_the_chosen_columns_of_the_full_model(single_group):
    # the counterfactual's quantile draws run the moved targets only: each column as the full model's
    torch.manual_seed(0)
    n_tfs, n_targets, batch = 6, 23, 40
    gen = TargetGenerators(_regulators(3, n_tfs, n_targets, single_group), n_tfs, width=2, depth=2).double()
    with torch.no_grad():
        gen.output_scale.uniform_(0.5, 3.0)
        for group in gen.groups:
            for norm in group.norms:
                norm.weight.uniform_(-1.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
                norm.running_mean.normal_(), norm.running_var.uniform_(0.5, 2.0)
    gen.eval()
    tf, noise = torch.rand(batch, n_tfs, dtype=torch.float64) * 5, torch.randn(batch, n_targets, 1, dtype=torch.float64)
    full = gen(tf, noise)
    for targets in ([0], [3, 4, 17, 22], list(range(n_targets)), [5, 9]):
        sub = gen.subset(targets)
        assert not sub.training and sub.n_targets == len(targets)
        assert [list(r) for r in sub.regulators()] == [list(gen.regulators()[g]) for g in targets]
        with torch.no_grad():
            out = sub(tf, noise[:, targets])
        torch.testing.assert_close(out, full[:, targets], rtol=1e-12, atol=1e-12)
    for bad in ([], [n_targets], [-1, 2]):
        with pytest.raises(ValueError, match=r"targets must be 1 or more indices in \[0, 23\)"):
            gen.subset(bad)


STATS = ("weight", "bias", "running_mean", "running_var")


def test_state_dict_names_and_shapes_are_unchanged():
    gen = TargetGenerators([np.array([0, 1]), np.array([1]), np.array([0, 1])], n_tfs=2, depth=1)
    shapes = {k: tuple(v.shape) for k, v in gen.state_dict().items()}
    assert shapes == {
        "_members_0": (1,), "_regulators_0": (1, 1), "_members_1": (2,), "_regulators_1": (2, 2),
        "groups.0.weights.0": (1, 2, 4), "groups.0.weights.1": (1, 4, 4),
        "groups.0.biases.0": (1, 1, 4), "groups.0.biases.1": (1, 1, 4),
        **{f"groups.0.norms.{i}.{s}": (4,) for i in (0, 1) for s in STATS},
        **{f"groups.0.norms.{i}.num_batches_tracked": () for i in (0, 1)},
        "groups.0.out_weight": (1, 4, 1), "groups.0.out_bias": (1, 1, 1),
        "groups.1.weights.0": (2, 3, 6), "groups.1.weights.1": (2, 6, 6),
        "groups.1.biases.0": (2, 1, 6), "groups.1.biases.1": (2, 1, 6),
        **{f"groups.1.norms.{i}.{s}": (12,) for i in (0, 1) for s in STATS},
        **{f"groups.1.norms.{i}.num_batches_tracked": () for i in (0, 1)},
        "groups.1.out_weight": (2, 6, 1), "groups.1.out_bias": (2, 1, 1),
        "output_scale": (3,),  # added with the data-started outputs; older state dicts load with scale 1
    }


def test_state_dict_saved_without_output_scale_loads_with_scale_one():
    regs = [np.array([0, 1]), np.array([1]), np.array([0, 1])]
    old = TargetGenerators(regs, n_tfs=2, depth=1)
    state = {k: v for k, v in old.state_dict().items() if k != "output_scale"}  # a model saved before the buffer
    new = TargetGenerators(regs, n_tfs=2, depth=1)
    new.output_scale.fill_(5.0)
    new.load_state_dict(state)
    assert torch.equal(new.output_scale, torch.ones(3))
    old.eval(), new.eval()
    tfs, noise = torch.rand(8, 2), torch.randn(8, 3, 1)
    torch.testing.assert_close(new(tfs, noise), old(tfs, noise), rtol=0, atol=0)


def test_min_hidden_floors_only_the_narrow_genes():
    regs = [np.array([0]), np.array([0, 1, 2, 3, 4, 5])]  # 2 and 7 inputs: 4 and 14 units by width alone
    gen = TargetGenerators(regs, n_tfs=6, depth=1, min_hidden=8)
    assert [group.n_hidden for group in gen.groups] == [8, 14]
    expected = sum(TargetGenerators.n_parameters_per_gene(len(r), depth=1, min_hidden=8) for r in regs)
    assert sum(p.numel() for p in gen.parameters()) == expected
    assert gen(torch.rand(16, 6), torch.randn(16, 2, 1)).shape == (16, 2)
    for bad in ({"min_hidden": -1}, {"min_hidden": 12.5}, {"width": True}, {"noise_per_gene": 0}):
        with pytest.raises(ValueError, match="min_hidden_per_gene"):
            TargetGenerators(regs, n_tfs=6, **bad)
