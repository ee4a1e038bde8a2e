from __future__ import annotations

import numpy as np
import pytest
import torch

from scsynth.nn import PathwayLinear

ROWS = [2, 0, 0, 1, 1, 1, 2]
COLS = [5, 0, 3, 1, 2, 3, 0]
N_GENES, N_SETS = 6, 4  # set 3 has no member


def dense_mask() -> torch.Tensor:
    mask = torch.zeros(N_SETS, N_GENES)
    mask[ROWS, COLS] = 1.0
    return mask


@pytest.mark.parametrize("normalize", ["mean", "sqrt", "sum"])
def test_matches_a_dense_masked_reference_with_gradients(normalize):
    torch.manual_seed(0)
    layer = PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=2, normalize=normalize, seed=0)
    with torch.no_grad():
        layer.weight.uniform_(-1, 2)
        layer.bias.normal_()
    x = torch.randn(5, N_GENES, requires_grad=True)
    mask = dense_mask()
    size = mask.sum(1).clamp(min=1)
    scale = {"mean": 1 / size, "sqrt": size.rsqrt(), "sum": torch.ones(N_SETS)}[normalize]
    # dense weights holding the layer's membership weights at the mask's nonzeros
    w = torch.zeros(N_SETS, N_GENES)
    w[layer.membership_rows, layer.membership_cols] = layer.weight.detach()
    w.requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    ref_known = (x_ref @ (w * mask).T) * scale + layer.bias.detach()
    ref = torch.cat([ref_known, x_ref @ layer.learned_weight.detach() + layer.learned_bias.detach()], 1)
    out = layer(x)
    assert out.shape == (5, N_SETS + 2)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(layer.dense_weight()[:N_SETS], (w * mask * scale[:, None]).detach())

    g = torch.randn_like(out)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.weight.grad, w.grad[layer.membership_rows, layer.membership_cols])
    assert torch.all(out[:, 3] == layer.bias[3])  # empty set: bias only


def test_initial_activity_is_the_member_mean_and_parameter_count_is_sparse():
    layer = PathwayLinear(ROWS, COLS, N_GENES, N_SETS)
    x = torch.arange(12.0).reshape(2, N_GENES)
    expected = torch.stack(
        [x[:, [0, 3]].mean(1), x[:, [1, 2, 3]].mean(1), x[:, [0, 5]].mean(1), torch.zeros(2)], 1
    )
    torch.testing.assert_close(layer(x), expected)
    assert layer.n_parameters == len(ROWS) + N_SETS
    assert layer.n_parameters < N_SETS * N_GENES
    assert PathwayLinear(ROWS, COLS, N_GENES, N_SETS, bias=False).n_parameters == len(ROWS)
    learned = PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=3)
    assert learned.n_parameters == len(ROWS) + N_SETS + N_GENES * 3 + 3
    assert "n_memberships=7" in repr(learned) and "n_learned=3" in repr(learned)


def test_membership_order_does_not_matter_and_seed_is_reproducible():
    perm = np.random.default_rng(0).permutation(len(ROWS))
    a = PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=2, seed=1)
    b = PathwayLinear(np.array(ROWS)[perm], np.array(COLS)[perm], N_GENES, N_SETS, n_learned=2, seed=1)
    x = torch.randn(3, N_GENES)
    torch.testing.assert_close(a(x), b(x))
    assert not torch.equal(
        a.learned_weight, PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=2, seed=2).learned_weight
    )


def test_freeze_and_unfreeze():
    layer = PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=2)
    assert layer.freeze_learned() is layer
    assert not layer.learned_weight.requires_grad and not layer.learned_bias.requires_grad
    assert layer.weight.requires_grad and layer.bias.requires_grad
    layer(torch.randn(4, N_GENES)).sum().backward()
    assert layer.learned_weight.grad is None and layer.weight.grad is not None
    before = layer.learned_weight.detach().clone()
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, weight_decay=0.1)
    opt.step()
    assert torch.equal(layer.learned_weight, before)
    layer.freeze()
    assert not any(p.requires_grad for p in layer.parameters())
    layer.unfreeze()
    assert all(p.requires_grad for p in layer.parameters())
    layer.freeze("known")
    assert not layer.weight.requires_grad and layer.learned_weight.requires_grad
    with pytest.raises(ValueError, match="part must be"):
        layer.freeze("genes")


def test_l1_penalty_and_its_gradient():
    layer = PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=2, seed=0)
    penalty = layer.l1_penalty()
    assert penalty > 0
    torch.testing.assert_close(penalty, layer.learned_weight.abs().sum())
    penalty.backward()
    torch.testing.assert_close(layer.learned_weight.grad, torch.sign(layer.learned_weight.detach()))
    assert layer.weight.grad is None  # known sets are not penalised
    assert PathwayLinear(ROWS, COLS, N_GENES, N_SETS).l1_penalty() == 0


def test_output_names_and_bad_input():
    layer = PathwayLinear(ROWS, COLS, N_GENES, N_SETS, n_learned=2)
    assert layer.output_names(["A", "B", "C", "D"]) == ["A", "B", "C", "D", "learned_0", "learned_1"]
    with pytest.raises(ValueError, match="Expected 4 set names"):
        layer.output_names(["A"])
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(2, N_GENES + 1))
    with pytest.raises(ValueError, match="outside"):
        PathwayLinear([0], [N_GENES], N_GENES, 1)
    with pytest.raises(ValueError, match="repeated"):
        PathwayLinear([0, 0], [1, 1], N_GENES, 1)
    with pytest.raises(ValueError, match="normalize"):
        PathwayLinear(ROWS, COLS, N_GENES, N_SETS, normalize="max")


def test_works_with_matched_gene_sets():
    import pandas as pd

    from scsynth.data import match_gene_sets

    gs = pd.DataFrame({"source": ["A", "A", "B", "B", "B"], "target": ["G1", "G3", "G2", "G3", "G4"]})
    m = match_gene_sets(gs, ["G1", "G2", "G3", "G4"], min_genes_per_set=2)
    layer = PathwayLinear(m.rows, m.cols, m.n_genes, m.n_sets, n_learned=1)
    mask = torch.as_tensor(m.membership.toarray())
    torch.testing.assert_close(layer.dense_weight()[: m.n_sets], mask / mask.sum(1, keepdim=True))
    assert layer.output_names(m.sets) == ["A", "B", "learned_0"]
