"""Count noise after a generator: each value drawn as Poisson counts at a depth taken from real cells."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from torch import nn

#: quantiles of the per-cell count unit kept per group
N_UNIT_QUANTILES = 101


def count_units(raw, library_size: float, *, counts: bool) -> np.ndarray:
    """One count's worth of each cell's values once normalised to ``library_size``.

    ``raw`` holds cells as rows (dense or scipy sparse; read without densifying). For counts, a cell's unit
    is ``library_size / total count``; otherwise (log-normalised data un-logged sit on a lattice) it is the
    cell's smallest positive value after normalisation. Cells without positive values are left out.
    """
    if sparse.issparse(raw):
        raw = sparse.csr_matrix(raw)
        totals = np.asarray(raw.sum(1, dtype=np.float64)).ravel()
        smallest = np.full(raw.shape[0], np.inf)
        # reduceat over the starts of rows with stored values: a segment ends where the next such row starts
        stored = np.diff(raw.indptr) > 0
        if stored.any():
            values = np.where(raw.data > 0, raw.data, np.inf)
            smallest[stored] = np.minimum.reduceat(values, raw.indptr[:-1][stored])
    else:
        raw = np.asarray(raw)
        totals = raw.sum(1, dtype=np.float64)
        smallest = np.where(raw > 0, raw, np.inf).min(1) if raw.shape[1] else np.full(raw.shape[0], np.inf)
    keep = (totals > 0) & np.isfinite(smallest)
    units = library_size / totals[keep]
    if not counts:
        units = units * smallest[keep]
    return units.astype(np.float32)


class CountNoise(nn.Module):
    """Independent per-gene count noise on generated normalised cells, as sequencing puts on real ones.

    Each cell gets a count unit ``c`` (the normalised value of one count: library size over the cell's
    total count) drawn from its group's fitted unit distribution, and each value ``v`` becomes
    ``c * Poisson(v / c)``. A generator's output is low-rank (every gene is a function of the same noise
    vector), so left alone it packs the cells' gene-level noise into a few directions; with this layer it
    models each cell's expected profile and the full-rank sampling noise comes from the draw. In training
    the gradient passes straight through the draw (``v + (draw - v).detach()``). A group that was never
    fitted, or a module left unfitted (models saved before the layer existed), returns values unchanged.

    With ``latent_levels`` and the generator's input ``latent`` passed to :meth:`forward`, a cell's unit is
    not drawn independently: it is its group's unit quantile at ``Phi(latent[:, 0])`` (the standard-normal
    CDF of its first latent value). The generator sees that value, so it can shape each cell to its own
    depth, as real cells are: a shallow cell has fewer detected genes and larger steps between its values.

    Parameters
    ----------
    n_groups
        Number of groups (e.g. labels) with their own unit distribution.
    latent_levels
        Tie each cell's unit to its first latent value (saved with the weights; weights saved before this
        option load with independent units).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scsynth.nn import CountNoise
    >>> noise = CountNoise()
    >>> noise.fit(np.full(50, 2.0), 0)
    >>> x = noise(torch.full((3, 4), 5.0), generator=torch.Generator().manual_seed(0))
    >>> bool(torch.all(torch.remainder(x, 2.0) == 0))
    True
    """

    def __init__(self, n_groups: int = 1, *, latent_levels: bool = False) -> None:
        super().__init__()
        self.n_groups = int(n_groups)
        self.register_buffer("units", torch.zeros(self.n_groups, N_UNIT_QUANTILES))
        self.register_buffer("latent_levels", torch.tensor(bool(latent_levels)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # saved before the layer existed: unfitted (values unchanged); before latent_levels: independent units
        state_dict.setdefault(prefix + "units", torch.zeros_like(self.units))
        state_dict.setdefault(prefix + "latent_levels", torch.tensor(False))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def is_fitted(self) -> bool:
        """Whether any group has a unit distribution."""
        return bool((self.units > 0).any())

    def fit(self, units: np.ndarray, group: int = 0) -> None:
        """Store the quantiles of ``units`` (one per real cell, positive) for ``group``."""
        units = np.asarray(units, dtype=np.float64).ravel()
        if len(units) == 0 or not np.all(np.isfinite(units)) or np.any(units <= 0):
            raise ValueError("Count units must be positive finite numbers, one per cell (at least one).")
        levels = np.linspace(0.0, 1.0, N_UNIT_QUANTILES)
        self.units[group] = torch.as_tensor(np.quantile(units, levels), dtype=self.units.dtype)

    def forward(self, x: torch.Tensor, groups: torch.Tensor | None = None, *,
                latent: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` (cells x genes, normalised) with count noise; ``groups`` (codes, default 0) pick units;
        ``latent`` (cells x latent, the generator's input) sets each cell's unit with ``latent_levels``."""
        if not self.is_fitted:
            return x
        n = x.shape[0]
        groups = torch.zeros(n, dtype=torch.long) if groups is None else groups.reshape(-1).long().cpu()
        # a unit per cell: the group's quantile function (linearly interpolated) at a level in [0, 1]
        if bool(self.latent_levels) and latent is not None:
            levels = (0.5 * (1 + torch.erf(latent[:, 0].detach() / 2**0.5))).float().cpu().clamp(0, 1)
        else:
            levels = torch.rand(n, generator=generator)
        where = levels * (N_UNIT_QUANTILES - 1)
        lo = where.floor().long().clamp(max=N_UNIT_QUANTILES - 2)
        table = self.units.cpu()[groups]
        frac = where - lo
        lo, frac = lo[:, None], frac[:, None]
        unit = table.gather(1, lo) * (1 - frac) + table.gather(1, lo + 1) * frac
        unit = unit.to(x.device, x.dtype)
        fitted = unit > 0  # groups never fitted keep their values
        safe = torch.where(fitted, unit, torch.ones_like(unit))
        rate = (x.detach() / safe).clamp(min=0)
        # non-finite values (a diverged generator) pass through undrawn, so the callers' NaN guards name the
        # problem instead of torch.poisson failing on an invalid rate
        finite = torch.isfinite(rate)
        rate = torch.where(finite, rate, torch.zeros_like(rate))
        if generator is not None and x.device.type == "cpu":
            counts = torch.poisson(rate, generator=generator)
        else:
            counts = torch.poisson(rate)
        drawn = torch.where(fitted & finite, counts * safe, x.detach())
        return x + (drawn - x).detach()
