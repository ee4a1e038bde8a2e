"""Conditional quantiles of per-gene generators: where a value lies given its inputs, and where it goes after a change.

Used for counterfactuals in the style of Pearl's abduction-action-prediction: a target's value ``y`` given
its regulators ``t`` is located at its conditional quantile level ``u = F(y | t)`` (abduction), the
regulators are changed to ``t'`` (action) and the target becomes ``y + Q(u | t') - Q(u | t)``
(prediction). Inside the generator's range ``Q(u | t) = y``, so that is ``Q(u | t')``: the standard
monotone counterfactual; the shift form leaves a target whose regulators did not change exactly
unchanged, and moves a value outside the range by the shift at the range's end.

``F`` and ``Q`` are read off ``M`` draws of the generator at fixed noise, sorted per cell and gene,
at the levels ``(m + 0.5) / M``, with linear interpolation between them. With one noise input per gene
the draws are the standard normal's quantiles at those levels (a stratified, deterministic grid).
"""

from __future__ import annotations

import torch

#: Default number of quantile levels per cell and gene.
DEFAULT_N_QUANTILES = 32


def noise_grid(n_quantiles: int, noise_per_gene: int) -> torch.Tensor:
    """Fixed noise of ``n_quantiles`` draws, ``(n_quantiles, noise_per_gene)``.

    One noise input: the standard normal's quantiles at ``(m + 0.5) / M``; more: seeded normal draws
    (the same on every call, so results are deterministic).
    """
    if noise_per_gene == 1:
        levels = (torch.arange(n_quantiles, dtype=torch.float64) + 0.5) / n_quantiles
        return torch.special.ndtri(levels).float().unsqueeze(1)
    return torch.randn(n_quantiles, noise_per_gene, generator=torch.Generator().manual_seed(0))


def sorted_draws(generate, inputs: torch.Tensor, grid: torch.Tensor, n_genes: int) -> torch.Tensor:
    """``generate(inputs, noise)`` at every grid noise, sorted per cell and gene: ``(n, n_genes, M)``.

    ``generate`` maps ``(batch, n_inputs)`` and ``(batch, n_genes, noise_per_gene)`` to ``(batch, n_genes)``
    and must not depend on the batch's composition (eval mode).
    """
    n, m = inputs.shape[0], grid.shape[0]
    noise = grid.to(inputs)[:, None, None, :].expand(m, n, n_genes, grid.shape[1]).reshape(m * n, n_genes, -1)
    draws = generate(inputs.repeat(m, 1), noise).view(m, n, n_genes)
    return draws.permute(1, 2, 0).contiguous().sort(dim=-1).values


def quantile_levels(draws: torch.Tensor, y: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Each value's conditional quantile level ``F(y | t)`` in ``[0.5 / M, 1 - 0.5 / M]``, ``(n, n_genes)``.

    ``draws``: :func:`sorted_draws`; ``y``: ``(n, n_genes)``. A value tied with several draws (zeros,
    typically) gets a level drawn uniformly over theirs with ``uniforms`` (the randomised probability
    integral transform), so the zeros of a gene do not all map to one value after a change.
    """
    m = draws.shape[-1]
    y = y.unsqueeze(-1).to(draws)
    lo = torch.searchsorted(draws, y).squeeze(-1)  # first draw >= y
    hi = torch.searchsorted(draws, y, right=True).squeeze(-1)  # first draw > y
    y = y.squeeze(-1)
    # between draws lo - 1 and lo: linear interpolation (clamped at the range's ends)
    below = draws.gather(-1, (lo - 1).clamp(0, m - 1).unsqueeze(-1)).squeeze(-1)
    above = draws.gather(-1, lo.clamp(0, m - 1).unsqueeze(-1)).squeeze(-1)
    width = (above - below).clamp_min(torch.finfo(draws.dtype).tiny)
    between = (lo - 1).clamp(0, m - 1) + ((y - below) / width).clamp(0, 1)
    position = torch.where(lo == 0, 0.0, torch.where(lo == m, m - 1.0, between))
    # tied with draws lo .. hi - 1: uniformly over their positions
    tied = hi > lo
    position = torch.where(tied, lo + uniforms.to(draws) * (hi - 1 - lo), position)
    return (position + 0.5) / m


def quantile_at(draws: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``Q(u | t)``: the sorted draws interpolated at ``levels`` (clamped to the range), ``(n, n_genes)``."""
    m = draws.shape[-1]
    position = (levels * m - 0.5).clamp(0, m - 1)
    i = position.floor().long().clamp(max=max(m - 2, 0))
    frac = (position - i).unsqueeze(-1)
    lo = draws.gather(-1, i.unsqueeze(-1))
    hi = draws.gather(-1, (i + 1).clamp(max=m - 1).unsqueeze(-1))
    return (lo + frac * (hi - lo)).squeeze(-1)
