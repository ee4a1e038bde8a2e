"""GRouNdGAN's labeler / anti-labeler: an MLP that regresses TF expression from target-gene expression."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLPRegressor(nn.Module):
    """``(Linear -> BatchNorm1d -> ReLU) x k -> Linear`` with PyTorch's default initialisation.

    Parameters
    ----------
    n_input
        Input features (target genes).
    n_output
        Outputs (TFs).
    n_hidden
        Widths of the hidden blocks (GRouNdGAN: 2000, 2000, 2000).

    Examples
    --------
    >>> import torch
    >>> from scsynth.nn import MLPRegressor
    >>> MLPRegressor(30, 5, n_hidden=(16, 16))(torch.rand(4, 30)).shape
    torch.Size([4, 5])
    """

    def __init__(self, n_input: int, n_output: int, *, n_hidden: Sequence[int] = (2000, 2000, 2000)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = n_input
        for width in n_hidden:
            layers += [nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU()]
            n_in = width
        layers.append(nn.Linear(n_in, n_output))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
