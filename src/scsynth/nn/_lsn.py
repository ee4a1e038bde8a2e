"""Library-size normalisation (LSN) output layer of scGAN."""

from __future__ import annotations

import torch
from torch import nn

from .._constants import DEFAULT_LIBRARY_SIZE


class LibrarySizeNormalization(nn.Module):
    """Rescale each row to a fixed total.

    ``out_i = x_i * library_size / sum(x_i)``. Rows that sum to zero stay zero (no NaN). The layer
    has no parameters. ``forward(x, scale=...)`` reuses a scale computed before, which is how an
    in-silico perturbation keeps the library-size step of the control cells.

    Parameters
    ----------
    library_size
        Total of every output row.

    Examples
    --------
    >>> import torch
    >>> from scsynth.nn import LibrarySizeNormalization
    >>> lsn = LibrarySizeNormalization(100)
    >>> lsn(torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
    tensor([[25., 75.],
            [ 0.,  0.]])
    """

    def __init__(self, library_size: float = DEFAULT_LIBRARY_SIZE) -> None:
        super().__init__()
        if library_size <= 0:
            raise ValueError(f"library_size must be positive, got {library_size}.")
        self.library_size = float(library_size)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row factor ``library_size / row_sum`` (0 for all-zero rows), shape ``(n, 1)``."""
        total = x.sum(dim=-1, keepdim=True)
        safe = torch.where(total > 0, total, torch.ones_like(total))
        return torch.where(total > 0, self.library_size / safe, torch.zeros_like(total))

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        return x * (self.scale(x) if scale is None else scale)

    def extra_repr(self) -> str:
        return f"library_size={self.library_size:g}"
