import pytest
import torch

from scsynth.nn import SetPooling


def test_pooling_matches_explicit_statistics_and_ignores_padding():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    out = SetPooling()(x, mask)
    assert out.shape == (3, 12)
    for b in range(3):
        members = x[b, mask[b]]
        expected = torch.cat([members.mean(0), members.amax(0), members.std(0, unbiased=False)])
        assert torch.allclose(out[b], expected, atol=1e-5)
    padded = x.clone()
    padded[~mask] = 1e6  # whatever sits in padding never matters
    assert torch.allclose(SetPooling()(padded, mask), out)


def test_pooling_is_permutation_invariant_and_differentiable():
    torch.manual_seed(1)
    x = torch.randn(2, 6, 3, requires_grad=True)
    out = SetPooling()(x)
    perm = torch.randperm(6)
    assert torch.allclose(SetPooling()(x[:, perm]), out, atol=1e-6)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    single = SetPooling(("std",))(torch.ones(1, 1, 2, requires_grad=True))
    assert torch.allclose(single, torch.zeros(1, 2), atol=1e-5)


def test_pooling_errors():
    with pytest.raises(ValueError, match="subset"):
        SetPooling(("median",))
    with pytest.raises(ValueError, match="at least one member"):
        SetPooling()(torch.ones(1, 2, 3), torch.zeros(1, 2, dtype=torch.bool))
