"""BatchNorm whose affine parameters depend on a class label (cscGAN's conditional generator)."""

from __future__ import annotations

import torch
from torch import nn


class ConditionalBatchNorm1d(nn.Module):
    """``BatchNorm1d`` without own affine parameters, followed by a per-label scale and shift.

    Parameters
    ----------
    n_features
        Number of features normalised.
    n_labels
        Number of classes; each gets its own ``gamma`` and ``beta`` (initialised to 1 and 0).

    Examples
    --------
    >>> import torch
    >>> from scsynth.nn import ConditionalBatchNorm1d
    >>> bn = ConditionalBatchNorm1d(4, n_labels=3)
    >>> bn(torch.randn(8, 4), torch.randint(0, 3, (8,))).shape
    torch.Size([8, 4])
    """

    def __init__(self, n_features: int, n_labels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(n_features, affine=False)
        self.gamma = nn.Embedding(n_labels, n_features)
        self.beta = nn.Embedding(n_labels, n_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.reshape(-1).long()
        return self.bn(x) * self.gamma(labels) + self.beta(labels)
