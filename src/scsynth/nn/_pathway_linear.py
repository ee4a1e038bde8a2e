"""A sparse gene -> pathway linear layer: known gene sets (one weight per member) plus learned pathways."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

_Part = Literal["all", "known", "learned"]


class PathwayLinear(nn.Module):
    """Gene expression -> pathway activities, through known gene sets and optional learned pathways.

    Known set ``k`` with members ``S_k`` gives ``p_k = sum_{g in S_k} w_{kg} x_g / |S_k| + b_k``. Only the
    member weights are stored (a 1-D parameter, one entry per (set, gene) membership) and the map runs as
    a gather plus ``index_add_``, so memory and time scale with the number of memberships, not with
    ``n_sets x n_genes`` (a dense MSigDB layer over 20k genes is hundreds of MB). Weights start at 1 and
    biases at 0, so at initialisation a pathway's activity is the mean expression of its members.

    Dividing by ``|S_k|`` (``normalize="mean"``) keeps every pathway on the scale of a gene: the
    activities are concatenated with the genes as features, and neither a raw sum (the original's choice)
    nor ``sqrt(|S_k|)`` stops large sets from dominating. ``"sqrt"`` and ``"sum"`` are available.

    The ``n_learned`` learned pathways are free linear combinations of all genes (a dense
    ``n_genes x n_learned`` weight), made sparse by adding ``l1_penalty()`` to the loss. Train them on
    single-cell data, then :meth:`freeze_learned` for bulk fine-tuning ("pathways learned from
    single-cell data").

    Parameters
    ----------
    membership_rows
        Set index of each membership, in ``[0, n_sets)``.
    membership_cols
        Gene index of each membership, in ``[0, n_genes)``.
    n_genes
        Number of input genes.
    n_sets
        Number of known sets (a set without members outputs its bias only).
    n_learned
        Number of learned pathways appended after the known sets.
    normalize
        Divide a known set's weighted sum by its size (``"mean"``), its square root or nothing.
    bias
        Add a bias per output.
    seed
        Seed of the learned pathways' initialisation (the global torch RNG when None).

    Examples
    --------
    >>> import torch
    >>> from scsynth.nn import PathwayLinear
    >>> layer = PathwayLinear([0, 0, 1], [0, 2, 1], n_genes=3, n_sets=2, n_learned=1, seed=0)
    >>> layer(torch.tensor([[1.0, 2.0, 3.0]]))[:, :2]  # set means at initialisation
    tensor([[2., 2.]], grad_fn=<SliceBackward0>)
    >>> layer.n_parameters  # 3 memberships + 2 biases + 3 learned weights + 1 bias
    9
    >>> layer.output_names(["A", "B"])
    ['A', 'B', 'learned_0']
    """

    def __init__(
        self,
        membership_rows: Sequence[int] | np.ndarray | torch.Tensor,
        membership_cols: Sequence[int] | np.ndarray | torch.Tensor,
        n_genes: int,
        n_sets: int,
        *,
        n_learned: int = 0,
        normalize: Literal["mean", "sqrt", "sum"] = "mean",
        bias: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if n_genes < 1 or n_sets < 0 or n_learned < 0 or n_sets + n_learned < 1:
            raise ValueError(
                f"Need n_genes >= 1 and at least one output, got n_genes={n_genes}, n_sets={n_sets}, "
                f"n_learned={n_learned}."
            )
        if normalize not in ("mean", "sqrt", "sum"):
            raise ValueError(f"normalize must be 'mean', 'sqrt' or 'sum', got {normalize!r}.")
        rows = torch.as_tensor(np.array(membership_rows, dtype=np.int64).ravel())
        cols = torch.as_tensor(np.array(membership_cols, dtype=np.int64).ravel())
        if rows.shape != cols.shape:
            raise ValueError(
                f"membership_rows and membership_cols differ in length: {len(rows)} vs {len(cols)}."
            )
        if len(rows) and (rows.min() < 0 or rows.max() >= n_sets or cols.min() < 0 or cols.max() >= n_genes):
            raise ValueError(f"A membership index is outside [0, n_sets={n_sets}) x [0, n_genes={n_genes}).")
        # canonical order (by set, then gene) so a layer's weights do not depend on the input order
        order = torch.as_tensor(np.lexsort((cols.numpy(), rows.numpy())))
        rows, cols = rows[order], cols[order]
        if len(rows) > 1 and ((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])).any():
            raise ValueError("A (set, gene) membership is repeated; it would be counted twice.")
        self.n_genes, self.n_sets, self.n_learned = n_genes, n_sets, n_learned
        self.normalize = normalize
        self.register_buffer("membership_rows", rows)
        self.register_buffer("membership_cols", cols)
        size = torch.bincount(rows, minlength=n_sets).clamp(min=1).double()
        scale = {"mean": 1.0 / size, "sqrt": size.rsqrt(), "sum": torch.ones_like(size)}[normalize]
        self.register_buffer("set_scale", scale.float())
        self.weight = nn.Parameter(torch.ones(len(rows)))
        self.bias = nn.Parameter(torch.zeros(n_sets)) if bias else None
        if n_learned:
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            bound = 1.0 / math.sqrt(n_genes)  # nn.Linear's default scale
            init = torch.empty(n_genes, n_learned).uniform_(-bound, bound, generator=gen)
            self.learned_weight = nn.Parameter(init)
            self.learned_bias = nn.Parameter(torch.zeros(n_learned)) if bias else None
        else:
            self.register_parameter("learned_weight", None)
            self.register_parameter("learned_bias", None)

    @property
    def n_memberships(self) -> int:
        """Number of (set, gene) memberships, i.e. stored known-set weights."""
        return self.weight.numel()

    @property
    def n_outputs(self) -> int:
        """Known sets plus learned pathways."""
        return self.n_sets + self.n_learned

    @property
    def n_parameters(self) -> int:
        """All parameters, trainable or frozen."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pathway activities ``(batch, n_sets + n_learned)`` of ``x``: ``(batch, n_genes)``."""
        if x.dim() != 2 or x.shape[1] != self.n_genes:
            raise ValueError(f"Expected input of shape (batch, {self.n_genes}), got {tuple(x.shape)}.")
        contrib = x[:, self.membership_cols] * self.weight  # (batch, memberships)
        known = x.new_zeros(x.shape[0], self.n_sets).index_add_(1, self.membership_rows, contrib)
        known = known * self.set_scale
        if self.bias is not None:
            known = known + self.bias
        if not self.n_learned:
            return known
        learned = x @ self.learned_weight
        if self.learned_bias is not None:
            learned = learned + self.learned_bias
        return torch.cat([known, learned], dim=1)

    def l1_penalty(self) -> torch.Tensor:
        """Sum of absolute learned-pathway weights (0 without learned pathways); add ``lambda *`` it to the loss."""
        if self.learned_weight is None:
            return self.weight.new_zeros(())
        return self.learned_weight.abs().sum()

    def dense_weight(self) -> torch.Tensor:
        """The effective ``(n_sets + n_learned, n_genes)`` matrix (normalisation included), for inspection."""
        known = self.weight.new_zeros(self.n_sets, self.n_genes)
        known = known.index_put((self.membership_rows, self.membership_cols), self.weight)
        known = known * self.set_scale[:, None]
        if self.learned_weight is None:
            return known
        return torch.cat([known, self.learned_weight.T], dim=0)

    def _parts(self, part: _Part) -> list[nn.Parameter]:
        if part not in ("all", "known", "learned"):
            raise ValueError(f"part must be 'all', 'known' or 'learned', got {part!r}.")
        known = [self.weight, self.bias]
        learned = [self.learned_weight, self.learned_bias]
        chosen = {"all": known + learned, "known": known, "learned": learned}[part]
        return [p for p in chosen if p is not None]

    def freeze(self, part: _Part = "all") -> PathwayLinear:
        """Stop training ``part`` of the layer (``requires_grad=False``); returns the layer.

        Frozen parameters get no gradient, so optimizers skip them as long as gradients are reset
        to None (``zero_grad(set_to_none=True)``, the default).
        """
        for p in self._parts(part):
            p.requires_grad_(False)
        return self

    def unfreeze(self, part: _Part = "all") -> PathwayLinear:
        """Train ``part`` of the layer again; returns the layer."""
        for p in self._parts(part):
            p.requires_grad_(True)
        return self

    def freeze_learned(self) -> PathwayLinear:
        """Freeze the learned pathways (for bulk fine-tuning after single-cell training); returns the layer."""
        return self.freeze("learned")

    def output_names(self, set_names: Sequence[str]) -> list[str]:
        """Names of the outputs: ``set_names`` then ``learned_0``, ``learned_1``, ..."""
        set_names = [str(s) for s in set_names]
        if len(set_names) != self.n_sets:
            raise ValueError(f"Expected {self.n_sets} set names, got {len(set_names)}.")
        return set_names + [f"learned_{i}" for i in range(self.n_learned)]

    def extra_repr(self) -> str:
        return (
            f"n_genes={self.n_genes}, n_sets={self.n_sets}, n_memberships={self.n_memberships}, "
            f"n_learned={self.n_learned}, normalize={self.normalize!r}, bias={self.bias is not None}"
        )
