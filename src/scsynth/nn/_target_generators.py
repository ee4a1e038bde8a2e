"""GRouNdGAN's per-gene target generators, computed for all genes at once with grouped matrix products."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class _GeneGroup(nn.Module):
    """Independent MLPs of ``n_genes`` genes that share an input size (same number of regulators).

    Weights are stacked per gene, ``(n_genes, fan_in, fan_out)``, and applied with batched matrix
    products. Activations are feature-major, ``(genes, hidden, batch)``: the products read the
    weights transposed in place and BatchNorm sees ``(1, genes * hidden, batch)``, one contiguous row
    per unit, which is exactly the per-unit BatchNorm of the original dense formulation (same batch
    statistics, running averages and affine parameters).

    The genes are independent (BatchNorm statistics are per unit), so they run in chunks small enough
    for a chunk's activations to stay in cache through all layers; the work is bound by memory
    traffic, not arithmetic. With gradients, :class:`_GroupFunction` keeps only the input and
    recomputes each chunk's forward in the backward pass (cheaper than storing and re-reading all
    activations).
    """

    #: Activation elements per chunk (``genes * hidden * batch``): 2 MiB of fp32, about one core's L2.
    chunk_elements = 1 << 19

    def __init__(self, n_genes: int, n_in: int, n_hidden: int, depth: int, output_bias: float = 0.0) -> None:
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
        self.out_bias = nn.Parameter(torch.full((n_genes, 1, 1), float(output_bias)))

    def flat_parameters(self) -> list[nn.Parameter]:
        """Per layer weight, bias, BatchNorm weight and bias, then the output weight and bias."""
        out = []
        for weight, bias, norm in zip(self.weights, self.biases, self.norms, strict=True):
            out += [weight, bias, norm.weight, norm.bias]
        return out + [self.out_weight, self.out_bias]

    def chunks(self, x: torch.Tensor) -> list[tuple[int, int]]:
        """Gene ranges ``(a, b)`` of about :attr:`chunk_elements` activations each (one range off the CPU)."""
        if x.device.type != "cpu":  # the cache argument is the CPU's; a GPU wants few, large kernels
            return [(0, self.n_genes)]
        size = max(1, self.chunk_elements // (self.n_hidden * x.shape[2]))
        return [(a, min(a + size, self.n_genes)) for a in range(0, self.n_genes, size)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n_genes, n_in, batch)`` -> ``(n_genes, batch)``."""
        momenta = self._step_running_stats()
        params = self.flat_parameters()
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
            return _GroupFunction.apply(self, momenta, x, *params)
        stats = self.running_stats()
        outs = [self.run_chunk(x, a, b, momenta=momenta, stats=stats)[0] for a, b in self.chunks(x)]
        return torch.cat(outs)

    def _step_running_stats(self) -> list[float] | None:
        """As :class:`~torch.nn.BatchNorm1d` does once per training forward: count the batch; the momenta."""
        if not self.training:
            return None
        momenta = []
        for norm in self.norms:
            norm.num_batches_tracked.add_(1)
            momenta.append(1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum)
        return momenta

    def run_chunk(
        self, x: torch.Tensor, a: int, b: int, *, momenta: list[float] | None = None,
        stats: list | None = None, keep: bool = False,
    ) -> tuple[torch.Tensor, list, list]:
        """Forward of genes ``a:b``: the output ``(b - a, batch)``, batch statistics and intermediates.

        With ``momenta`` (training mode) BatchNorm uses the batch statistics, updates the running
        ones and returns ``(mean, invstd)`` per layer. Otherwise ``stats`` (per layer ``(mean, var)`` of
        all the group's units: the running statistics in eval mode) are used. Means are those of
        ``z + bias``. ``keep`` also returns each layer's input and ``z`` (the product without the
        bias), and the last hidden layer and the output.
        """
        n_batch, (h, batch_stats, kept) = x.shape[2], (x[a:b], [], [])
        for i, (weight, bias, norm) in enumerate(zip(self.weights, self.biases, self.norms, strict=True)):
            # z + bias is the layer's output; the bias only shifts the mean BatchNorm subtracts, so it is
            # folded into the statistics (a broadcast bias in baddbmm costs a full extra pass)
            z = torch.bmm(weight[a:b].transpose(1, 2), h)  # (genes, hidden, batch)
            units, bias_u = slice(a * z.shape[1], b * z.shape[1]), bias[a:b].reshape(-1)
            if momenta is None:
                given = (stats[i][0][units] - bias_u, stats[i][1][units])
            else:
                given = (norm.running_mean[units], norm.running_var[units])
            y, mean, invstd = torch.native_batch_norm(
                z.view(1, -1, n_batch), norm.weight[units], norm.bias[units], *given, momenta is not None,
                0.0 if momenta is None else momenta[i], norm.eps,
            )
            if momenta is not None:
                norm.running_mean[units].add_(bias_u, alpha=momenta[i])  # the running mean is of z + bias
                batch_stats.append((mean + bias_u, invstd))
            if keep:
                kept.append((h, z))
            h = torch.relu_(y).view(z.shape)  # BatchNorm's backward does not need its output
        out = torch.baddbmm(self.out_bias[a:b], self.out_weight[a:b].transpose(1, 2), h)  # (genes, 1, batch)
        out = torch.relu(out.squeeze(1))
        if keep:
            kept.append((h, out))
        return out, batch_stats, kept

    @torch.no_grad()
    def copy_genes_from(self, other: _GeneGroup, genes: torch.Tensor) -> None:
        """Take the weights and BatchNorm state of ``other``'s genes at positions ``genes`` (this group's size)."""
        units = (genes[:, None] * self.n_hidden + torch.arange(self.n_hidden, device=genes.device)).reshape(-1)
        per_gene = [*self.weights, *self.biases, self.out_weight, self.out_bias]
        for mine, theirs in zip(per_gene, [*other.weights, *other.biases, other.out_weight, other.out_bias], strict=True):
            mine.copy_(theirs[genes])
        for mine, theirs in zip(self.norms, other.norms, strict=True):  # BatchNorm: per hidden unit
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(mine, name).copy_(getattr(theirs, name)[units])
            mine.num_batches_tracked.copy_(theirs.num_batches_tracked)

    def running_stats(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Running mean and variance of each BatchNorm layer."""
        return [(norm.running_mean, norm.running_var) for norm in self.norms]


def _relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad * (out > 0)`` in one pass (what autograd runs for ReLU; masked_fill is several times slower)."""
    return torch.ops.aten.threshold_backward(grad, out, 0)


class _GroupFunction(torch.autograd.Function):
    """A gene group in cache-sized chunks; the backward recomputes each chunk's forward from the input.

    In training mode the forward keeps the per-unit batch statistics, so the recomputation only
    applies them (the cheap, vectorised BatchNorm transform) instead of reducing the batch again.
    """

    @staticmethod
    def forward(ctx, group: _GeneGroup, momenta: list[float] | None, x: torch.Tensor, *params: torch.Tensor):
        outs, stats = [], []
        for a, b in group.chunks(x):
            out, chunk_stats, _ = group.run_chunk(x, a, b, momenta=momenta, stats=group.running_stats())
            outs.append(out)
            stats.append(chunk_stats)
        ctx.group, ctx.training = group, momenta is not None
        # per layer: the batch means and invstds of all chunks
        saved = [torch.cat(s) for layer in zip(*stats, strict=True) for s in zip(*layer, strict=True)]
        saved = saved if ctx.training else []
        ctx.save_for_backward(x, *params, *saved)  # saved: per layer the batch mean and invstd
        ctx.n_params = len(params)
        return torch.cat(outs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        group, training, n_batch = ctx.group, ctx.training, grad_out.shape[1]
        x, *rest = ctx.saved_tensors
        params, saved = rest[: ctx.n_params], rest[ctx.n_params :]
        if training:  # the same statistics as the forward (var to the rounding of 1 / invstd^2)
            bn = [(saved[2 * i], saved[2 * i + 1]) for i in range(len(group.norms))]
            stats = [(mean, invstd.pow(-2).sub_(norm.eps))
                     for (mean, invstd), norm in zip(bn, group.norms, strict=True)]
        else:
            stats = group.running_stats()
        grads = [torch.empty_like(p) for p in params]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[2] else None
        for a, b in group.chunks(x):
            _, _, kept = group.run_chunk(x, a, b, stats=stats, keep=True)
            h_last, out = kept.pop()
            g = _relu_backward(grad_out[a:b], out).unsqueeze(1)  # (genes, 1, batch)
            torch.bmm(h_last, g.transpose(1, 2), out=grads[-2][a:b])
            grads[-1][a:b] = g.sum(dim=2, keepdim=True)
            gh = torch.bmm(params[-2][a:b], g)  # (genes, hidden, batch)
            for i in reversed(range(len(kept))):
                (h, z), norm = kept[i], group.norms[i]
                units = slice(a * z.shape[1], b * z.shape[1])
                gy = _relu_backward(gh, kept[i + 1][0] if i + 1 < len(kept) else h_last)
                bias_u = params[4 * i + 1][a:b].reshape(-1)
                mean, invstd = (bn[i][0][units] - bias_u, bn[i][1][units]) if training else (None, None)
                gz, g_gamma, g_beta = torch.ops.aten.native_batch_norm_backward(
                    gy.view(1, -1, n_batch), z.view(1, -1, n_batch), params[4 * i + 2][units],
                    norm.running_mean[units] - bias_u, norm.running_var[units], mean, invstd, training,
                    norm.eps, [True, True, True],
                )
                gz = gz.view(z.shape)
                torch.bmm(h, gz.transpose(1, 2), out=grads[4 * i][a:b])
                grads[4 * i + 1][a:b] = gz.sum(dim=2).unsqueeze(1)
                grads[4 * i + 2][units], grads[4 * i + 3][units] = g_gamma, g_beta
                if i > 0:
                    gh = torch.bmm(params[4 * i][a:b], gz)
                elif grad_x is not None:
                    torch.bmm(params[0][a:b], gz, out=grad_x[a:b])
        return (None, None, grad_x, *grads)


class TargetGenerators(nn.Module):
    """One small MLP per target gene: its regulators' TF values and its own noise in, its expression out.

    Gene ``g`` with ``k_g`` regulators has hidden width ``max(width * (k_g + noise_per_gene), min_hidden)``, ``depth``
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
    min_hidden
        Fewest hidden units of any gene. ``width * (k + noise)`` alone gives a gene with one or two
        regulators 4-6 units, too few to learn its response (knockout effects, ``benchmarks/groundgan_grn.py``);
        0 keeps GRouNdGAN's rule.
    output_bias
        Initial bias of every output unit. GRouNdGAN's 0 leaves about half of the genes' outputs below
        the ReLU for most cells at the start; 1 (with ``output_scale`` at the genes' means) starts every
        gene alive at its mean level.

    Attributes
    ----------
    output_scale
        Per-target factor applied after the output ReLU (a buffer, 1 by default): with it at the genes'
        mean expression the networks learn in units of each gene's own level, so a gene at 300 and one
        at 3 train equally fast (with Adam's per-parameter steps, a unit-scale output needs thousands of
        steps to reach 300).

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
        output_bias: float = 0.0,
        min_hidden: int = 0,
    ) -> None:
        super().__init__()
        sizes = {"width": width, "depth": depth, "noise_per_gene": noise_per_gene, "min_hidden": min_hidden}
        if any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in sizes.values()) or (
            width < 1 or depth < 0 or noise_per_gene < 1 or min_hidden < 0
        ):  # GRouNdGAN's options carry a _per_gene suffix: name both
            raise ValueError(
                "Target generators: width and noise_per_gene must be integers >= 1, depth and min_hidden integers "
                f">= 0 (GRouNdGAN: width_per_gene, ..., min_hidden_per_gene); got {sizes}."
            )
        regulators = [np.asarray(r, dtype=np.int64).ravel() for r in regulators]
        for g, regs in enumerate(regulators):
            if len(regs) and (regs.min() < 0 or regs.max() >= n_tfs):
                raise ValueError(f"Target {g} has a regulator index outside [0, {n_tfs}).")
        self.n_targets, self.n_tfs = len(regulators), n_tfs
        self.width, self.depth, self.noise_per_gene, self.min_hidden = width, depth, noise_per_gene, min_hidden
        in_degree = np.array([len(r) for r in regulators], dtype=np.int64)
        self.groups = nn.ModuleList()
        for i, k in enumerate(np.unique(in_degree)):
            members = np.flatnonzero(in_degree == k)
            regs = np.stack([regulators[g] for g in members]) if k else np.zeros((len(members), 0), np.int64)
            self.register_buffer(f"_members_{i}", torch.as_tensor(members))
            self.register_buffer(f"_regulators_{i}", torch.as_tensor(regs))
            n_in = int(k) + noise_per_gene
            self.groups.append(_GeneGroup(len(members), n_in, max(width * n_in, min_hidden), depth, output_bias))
        self.register_buffer("output_scale", torch.ones(self.n_targets))

    def forward(self, tf_values: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Expression of every target, ``(batch, n_targets)``.

        ``tf_values``: ``(batch, n_tfs)``; ``noise``: ``(batch, n_targets, noise_per_gene)``.
        """
        tf_by_gene = tf_values.T.contiguous()  # (n_tfs, batch): gathered rows are contiguous
        noise_by_gene = noise.permute(1, 2, 0)  # (n_targets, noise, batch)
        if len(self.groups) == 1:  # one in-degree (the members are then all targets, in order)
            out = self.groups[0](self._group_input(0, tf_by_gene, noise_by_gene)).T
        else:
            out = tf_values.new_empty(tf_values.shape[0], self.n_targets)
            for i, group in enumerate(self.groups):
                x = self._group_input(i, tf_by_gene, noise_by_gene)
                out = out.index_copy(1, getattr(self, f"_members_{i}"), group(x).T)
        return (out * self.output_scale).contiguous()  # the one-group output is a transposed view

    def subset(self, targets: Sequence[int] | torch.Tensor) -> TargetGenerators:
        """The generators of ``targets`` alone (increasing target indices), as a new module in eval mode.

        Column ``j`` of its output is this module's column ``targets[j]`` (the genes are independent networks); it
        costs the chosen genes only, for work that runs a few targets many times (the counterfactual quantiles of a
        knockout's targets). Weights and BatchNorm state are copied; the module is for inference.
        """
        targets = torch.as_tensor(targets, dtype=torch.long).cpu().reshape(-1)
        if not len(targets) or targets.min() < 0 or targets.max() >= self.n_targets:
            raise ValueError(f"TargetGenerators.subset: targets must be 1 or more indices in [0, {self.n_targets}); "
                             f"got {targets.tolist()[:10]}.")
        regulators = self.regulators()
        sub = TargetGenerators([regulators[g] for g in targets.tolist()], self.n_tfs, width=self.width,
                               depth=self.depth, noise_per_gene=self.noise_per_gene, min_hidden=self.min_hidden)
        sub = sub.to(device=self.output_scale.device, dtype=self.output_scale.dtype).eval()
        # each of this module's genes: (its group, its position in the group)
        group_of, position = torch.empty(self.n_targets, dtype=torch.long), torch.empty(self.n_targets, dtype=torch.long)
        for i in range(len(self.groups)):
            members = getattr(self, f"_members_{i}").cpu()
            group_of[members], position[members] = i, torch.arange(len(members))
        for i, group in enumerate(sub.groups):
            chosen = targets[getattr(sub, f"_members_{i}").cpu()]
            (source,) = group_of[chosen].unique().tolist()  # same in-degree: one source group
            group.copy_genes_from(self.groups[source], position[chosen].to(self.output_scale.device))
        with torch.no_grad():
            sub.output_scale.copy_(self.output_scale[targets.to(self.output_scale.device)])
        return sub

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # models saved before output_scale existed had none: scale 1 is exactly what they computed
        state_dict.setdefault(prefix + "output_scale", torch.ones_like(self.output_scale))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _group_input(self, i: int, tf_by_gene: torch.Tensor, noise_by_gene: torch.Tensor) -> torch.Tensor:
        """Feature-major input of group ``i``, ``(genes, k + noise_per_gene, batch)``."""
        members, regs = getattr(self, f"_members_{i}"), getattr(self, f"_regulators_{i}")
        return torch.cat([tf_by_gene[regs], noise_by_gene[members]], dim=1)

    def regulators(self) -> list[np.ndarray]:
        """Regulator indices of each target, as given at construction."""
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * self.n_targets
        for i in range(len(self.groups)):
            members, regs = getattr(self, f"_members_{i}"), getattr(self, f"_regulators_{i}")
            for g, r in zip(members.tolist(), regs.cpu().numpy(), strict=True):
                out[g] = r
        return out

    @staticmethod
    def n_parameters_per_gene(k: int, *, width: int = 2, depth: int = 3, noise_per_gene: int = 1,
                              min_hidden: int = 0) -> int:
        """Parameters of one gene's MLP with ``k`` regulators (weights, biases and BatchNorm affine)."""
        n_in = k + noise_per_gene
        h = max(width * n_in, min_hidden)
        linear = n_in * h + h + depth * (h * h + h)
        batchnorm = 2 * h * (depth + 1)
        return linear + batchnorm + h + 1
