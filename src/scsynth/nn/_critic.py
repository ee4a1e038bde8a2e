"""WGAN critic: (Linear, ReLU) x k -> Linear, with an optional projection term for labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLPCritic(nn.Module):
    """The scGAN critic, with Miyato & Koyama's projection conditioning when ``n_labels > 0``.

    No normalisation layers (the gradient penalty is per sample). Hidden weights are Kaiming-normal,
    the output Xavier-uniform; biases start at zero. The conditional score is
    ``psi(phi(x)) + <embed(y), phi(x)>``.

    Parameters
    ----------
    n_input
        Number of genes.
    n_hidden
        Widths of the hidden blocks.
    n_labels
        Number of classes for the projection term, 0 for an unconditional critic.
    input_transform
        ``"log1p"`` feeds ``log1p(x)`` to the first layer, which keeps the critic's input on a scale
        where a gradient-norm penalty of 1 is meaningful; ``"none"`` feeds ``x`` as it is (the
        original scGAN).

    Examples
    --------
    >>> import torch
    >>> from scsynth.nn import MLPCritic
    >>> critic = MLPCritic(50, n_hidden=(32, 16), n_labels=3)
    >>> critic(torch.rand(4, 50), torch.tensor([0, 1, 2, 0])).shape
    torch.Size([4])
    """

    def __init__(
        self,
        n_input: int,
        *,
        n_hidden: Sequence[int] = (1024, 512, 256),
        n_labels: int = 0,
        input_transform: str = "log1p",
    ) -> None:
        super().__init__()
        if input_transform not in ("log1p", "none"):
            raise ValueError(f"input_transform must be 'log1p' or 'none', got {input_transform!r}.")
        self.input_transform = input_transform
        layers: list[nn.Module] = []
        n_in = n_input
        for width in n_hidden:
            linear = nn.Linear(n_in, width)
            nn.init.kaiming_normal_(linear.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.ReLU()]
            n_in = width
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(n_in, 1)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.n_labels = n_labels
        self.embedding = nn.Embedding(n_labels, n_in) if n_labels > 0 else None
        if self.embedding is not None:
            nn.init.xavier_uniform_(self.embedding.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.input_transform == "log1p":
            x = torch.log1p(x)
        h = self.body(x)
        score = self.output(h).squeeze(-1)
        if self.embedding is not None:
            if labels is None:
                raise ValueError("This critic is conditional: pass `labels`.")
            score = score + (self.embedding(labels.reshape(-1).long()) * h).sum(-1)
        return score
