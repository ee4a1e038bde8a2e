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
        stored = np.diff(raw.indptr) > 0  # the segment of a row with stored values ends where the next one starts
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

    Parameters
    ----------
    n_groups
        Number of groups (e.g. labels) with their own unit distribution.

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

    def __init__(self, n_groups: int = 1) -> None:
        super().__init__()
        self.n_groups = int(n_groups)
        self.register_buffer("units", torch.zeros(self.n_groups, N_UNIT_QUANTILES))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before the layer existed: unfitted (values unchanged)
        state_dict.setdefault(prefix + "units", torch.zeros_like(self.units))
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
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` (cells x genes, normalised) with count noise; ``groups`` (codes, default 0) pick units."""
        if not self.is_fitted:
            return x
        n = x.shape[0]
        groups = torch.zeros(n, dtype=torch.long) if groups is None else groups.reshape(-1).long().cpu()
        # a unit per cell: the group's quantile function at a uniform draw (linear interpolation)
        where = torch.rand(n, generator=generator) * (N_UNIT_QUANTILES - 1)
        lo = where.floor().long().clamp(max=N_UNIT_QUANTILES - 2)
        table = self.units.cpu()[groups]
        frac = where - lo
        lo, frac = lo[:, None], frac[:, None]
        unit = table.gather(1, lo) * (1 - frac) + table.gather(1, lo + 1) * frac
        unit = unit.to(x.device, x.dtype)
        fitted = unit > 0  # groups never fitted keep their values
        safe = torch.where(fitted, unit, torch.ones_like(unit))
        rate = (x.detach() / safe).clamp(min=0)
        if generator is not None and x.device.type == "cpu":
            counts = torch.poisson(rate, generator=generator)
        else:
            counts = torch.poisson(rate)
        drawn = torch.where(fitted, counts * safe, x.detach())
        return x + (drawn - x).detach()
