"""Permutation-invariant pooling of a masked set of profiles (reference sets of any size)."""

from __future__ import annotations

import torch
from torch import nn


class SetPooling(nn.Module):
    """Mean, max and standard deviation over the members of each set, ignoring padded members.

    A batch holds sets of different sizes padded to a common ``n``; ``mask`` marks the real members.
    The output is invariant to the order of the members and to how much padding there is, so one
    model handles reference sets of any size (the original needed one network per size).

    Parameters
    ----------
    stats
        Statistics to concatenate, in order, from ``"mean"``, ``"max"`` and ``"std"`` (the spread is
        what makes a *group*, not a sample, the reference).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])  # one set of 3 slots, the last one padding
    >>> SetPooling()(x, torch.tensor([[True, True, False]]))
    tensor([[2., 3., 1.]])
    """

    def __init__(self, stats: tuple[str, ...] = ("mean", "max", "std")) -> None:
        super().__init__()
        unknown = set(stats) - {"mean", "max", "std"}
        if unknown or not stats:
            raise ValueError(f"stats must be a non-empty subset of ('mean', 'max', 'std'), got {stats}.")
        self.stats = tuple(stats)

    def n_outputs(self, n_features: int) -> int:
        """Width of the pooled vector for ``n_features`` features per member."""
        return len(self.stats) * n_features

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``x`` (batch, members, features) over members where ``mask`` (batch, members) is true."""
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        if (mask.sum(1) == 0).any():
            raise ValueError("Every set needs at least one member (a row of `mask` is all false).")
        weight = mask.unsqueeze(-1).to(x.dtype)
        count = weight.sum(1)
        mean = (x * weight).sum(1) / count
        out = []
        for stat in self.stats:
            if stat == "mean":
                out.append(mean)
            elif stat == "max":
                out.append(x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1))
            else:  # population std (about 0 for a one-member set); the clamp keeps its gradient finite
                var = (((x - mean.unsqueeze(1)) ** 2) * weight).sum(1) / count
                out.append(torch.sqrt(var.clamp_min(1e-12)))
        return torch.cat(out, -1)
