"""scGAN generator: noise -> (Linear, BatchNorm, ReLU) x k -> Linear -> ReLU [-> LSN]."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._conditional_batchnorm import ConditionalBatchNorm1d
from ._lsn import LibrarySizeNormalization


class MLPGenerator(nn.Module):
    """The scGAN / cscGAN generator.

    Hidden blocks are ``Linear -> BatchNorm1d -> ReLU`` (Xavier-uniform weights); with ``n_labels > 0``
    the BatchNorm is conditional on the label (cscGAN). The output block is ``Linear -> ReLU``
    (Kaiming-normal weights, zero bias) followed by library-size normalisation when ``library_size``
    is set.

    Parameters
    ----------
    n_latent
        Size of the noise vector.
    n_output
        Number of genes generated.
    n_hidden
        Widths of the hidden blocks.
    n_labels
        Number of classes for a conditional generator, 0 for an unconditional one.
    library_size
        Total per generated cell, or ``None`` to return the un-normalised ReLU output.
    label_output_bias
        With ``n_labels > 0``, add a per-label bias (``label_bias``, zeros at first) to the output's
        pre-activation: each label gets its own mean profile directly, not only through the BatchNorm
        (see :func:`~scsynth.nn.init_output_at_data`).

    Examples
    --------
    >>> import torch
    >>> from scsynth.nn import MLPGenerator
    >>> gen = MLPGenerator(16, 50, n_hidden=(32, 64), library_size=1000)
    >>> x = gen(torch.randn(4, 16))
    >>> x.shape, bool(torch.allclose(x.sum(1), torch.full((4,), 1000.0)))
    (torch.Size([4, 50]), True)
    """

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        *,
        n_hidden: Sequence[int] = (256, 512, 1024),
        n_labels: int = 0,
        library_size: float | None = None,
        label_output_bias: bool = False,
    ) -> None:
        super().__init__()
        self.n_latent = n_latent
        self.n_labels = n_labels
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        n_in = n_latent
        for width in n_hidden:
            linear = nn.Linear(n_in, width)
            nn.init.xavier_uniform_(linear.weight)
            self.linears.append(linear)
            self.norms.append(ConditionalBatchNorm1d(width, n_labels) if n_labels > 0 else nn.BatchNorm1d(width))
            n_in = width
        self.output = nn.Linear(n_in, n_output)
        nn.init.kaiming_normal_(self.output.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.output.bias)
        self.label_bias = nn.Embedding(n_labels, n_output) if label_output_bias and n_labels > 0 else None
        if self.label_bias is not None:
            nn.init.zeros_(self.label_bias.weight)
        self.lsn = LibrarySizeNormalization(library_size) if library_size is not None else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, normalize: bool = True) -> torch.Tensor:
        """Generated cells; ``normalize=False`` returns the ReLU output before the LSN (GRouNdGAN's TF values)."""
        if self.n_labels > 0 and labels is None:
            raise ValueError("This generator is conditional: pass `labels`.")
        h = z
        for linear, norm in zip(self.linears, self.norms, strict=True):
            h = linear(h)
            h = norm(h, labels) if self.n_labels > 0 else norm(h)
            h = torch.relu(h)
        x = self.output(h)
        if self.label_bias is not None:
            x = x + self.label_bias(labels.reshape(-1).long())
        x = torch.relu(x)
        return self.lsn(x) if self.lsn is not None and normalize else x
