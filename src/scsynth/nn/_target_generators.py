"""GRouNdGAN's per-gene target generators, computed for all genes at once with grouped matrix products."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class _GeneGroup(nn.Module):
    """Independent MLPs of ``n_genes`` genes that share an input size (same number of regulators).

    Weights are stacked per gene, ``(n_genes, fan_in, fan_out)``, and applied with one batched matrix
    product per layer; BatchNorm over the flattened ``(batch, n_genes * hidden)`` units is exactly the
    per-unit BatchNorm of the original dense formulation.
    """

    def __init__(self, n_genes: int, n_in: int, n_hidden: int, depth: int) -> None:
        super().__init__()
        self.n_genes, self.n_hidden = n_genes, n_hidden
        sizes = [n_in] + [n_hidden] * (depth + 1)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.norms = nn.ModuleList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            # Xavier-uniform with the per-gene fans (the dense original used the fans of the whole
            # masked matrix, ~1000x too small a scale; BatchNorm hides it except at the output)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            self.weights.append(nn.Parameter(torch.empty(n_genes, fan_in, fan_out).uniform_(-bound, bound)))
            b = 1.0 / math.sqrt(fan_in)
            self.biases.append(nn.Parameter(torch.empty(n_genes, 1, fan_out).uniform_(-b, b)))
            self.norms.append(nn.BatchNorm1d(n_genes * fan_out))
        self.out_weight = nn.Parameter(torch.randn(n_genes, n_hidden, 1) * math.sqrt(2.0 / n_hidden))  # Kaiming
        self.out_bias = nn.Parameter(torch.zeros(n_genes, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n_genes, batch, n_in)`` -> ``(batch, n_genes)``."""
        n_batch = x.shape[1]
        h = x
        for weight, bias, norm in zip(self.weights, self.biases, self.norms, strict=True):
            h = torch.baddbmm(bias, h, weight)  # (genes, batch, hidden)
            h = norm(h.transpose(0, 1).reshape(n_batch, -1)).reshape(n_batch, self.n_genes, -1).transpose(0, 1)
            h = torch.relu(h)
        out = torch.baddbmm(self.out_bias, h, self.out_weight)  # (genes, batch, 1)
        return torch.relu(out.squeeze(-1).T)


class TargetGenerators(nn.Module):
    """One small MLP per target gene: its regulators' TF values and its own noise in, its expression out.

    Gene ``g`` with ``k_g`` regulators has hidden width ``width * (k_g + noise_per_gene)``, ``depth``
    hidden layers (``Linear -> BatchNorm -> ReLU`` after an input block of the same form) and a
    ``Linear -> ReLU`` output, as in GRouNdGAN. Genes are grouped by ``k_g`` and each group runs as
    stacked weights with batched matrix products, so the parameter count is exactly the sum of the
    per-gene networks (no dense hidden x hidden masked matrices). A gene with no regulators is a
    noise-only generator.

    Parameters
    ----------
    regulators
        For each target gene, the indices of its regulators in the TF vector.
    n_tfs
        Length of the TF vector.
    width
        Hidden units per input of a gene (``width per gene`` of GRouNdGAN).
    depth
        Number of hidden layers after the input block (``depth per gene``).
    noise_per_gene
        Standard-normal noise inputs per gene.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scsynth.nn import TargetGenerators
    >>> gen = TargetGenerators([np.array([0, 1]), np.array([1]), np.array([], dtype=int)], n_tfs=2)
    >>> gen(torch.rand(8, 2), torch.randn(8, 3, 1)).shape
    torch.Size([8, 3])
    """

    def __init__(
        self,
        regulators: Sequence[np.ndarray],
        n_tfs: int,
        *,
        width: int = 2,
        depth: int = 3,
        noise_per_gene: int = 1,
    ) -> None:
        super().__init__()
        if width < 1 or depth < 0 or noise_per_gene < 1:
            raise ValueError(
                f"width and noise_per_gene must be >= 1 and depth >= 0, got {width}, {noise_per_gene}, {depth}."
            )
        regulators = [np.asarray(r, dtype=np.int64).ravel() for r in regulators]
        for g, regs in enumerate(regulators):
            if len(regs) and (regs.min() < 0 or regs.max() >= n_tfs):
                raise ValueError(f"Target {g} has a regulator index outside [0, {n_tfs}).")
        self.n_targets, self.n_tfs = len(regulators), n_tfs
        self.width, self.depth, self.noise_per_gene = width, depth, noise_per_gene
        in_degree = np.array([len(r) for r in regulators], dtype=np.int64)
        self.groups = nn.ModuleList()
        for i, k in enumerate(np.unique(in_degree)):
            members = np.flatnonzero(in_degree == k)
            regs = np.stack([regulators[g] for g in members]) if k else np.zeros((len(members), 0), np.int64)
            self.register_buffer(f"_members_{i}", torch.as_tensor(members))
            self.register_buffer(f"_regulators_{i}", torch.as_tensor(regs))
            n_in = int(k) + noise_per_gene
            self.groups.append(_GeneGroup(len(members), n_in, width * n_in, depth))

    def forward(self, tf_values: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Expression of every target, ``(batch, n_targets)``.

        ``tf_values``: ``(batch, n_tfs)``; ``noise``: ``(batch, n_targets, noise_per_gene)``.
        """
        n_batch = tf_values.shape[0]
        out = tf_values.new_empty(n_batch, self.n_targets)
        tf_by_gene = tf_values.T  # (n_tfs, batch): gathering rows keeps each gene's inputs contiguous
        noise_by_gene = noise.permute(1, 0, 2)  # (n_targets, batch, noise)
        for i, group in enumerate(self.groups):
            members, regs = getattr(self, f"_members_{i}"), getattr(self, f"_regulators_{i}")
            tf_in = tf_by_gene[regs]  # (genes, k, batch)
            x = torch.cat([tf_in.transpose(1, 2), noise_by_gene[members]], dim=2)  # (genes, batch, k + noise)
            out = out.index_copy(1, members, group(x))
        return out

    def regulators(self) -> list[np.ndarray]:
        """Regulator indices of each target, as given at construction."""
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * self.n_targets
        for i in range(len(self.groups)):
            members, regs = getattr(self, f"_members_{i}"), getattr(self, f"_regulators_{i}")
            for g, r in zip(members.tolist(), regs.cpu().numpy(), strict=True):
                out[g] = r
        return out

    @staticmethod
    def n_parameters_per_gene(k: int, *, width: int = 2, depth: int = 3, noise_per_gene: int = 1) -> int:
        """Parameters of one gene's MLP with ``k`` regulators (weights, biases and BatchNorm affine)."""
        n_in = k + noise_per_gene
        h = width * n_in
        linear = n_in * h + h + depth * (h * h + h)
        batchnorm = 2 * h * (depth + 1)
        return linear + batchnorm + h + 1
