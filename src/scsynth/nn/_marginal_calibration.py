"""Per-gene marginal calibration: a generator's values mapped, gene by gene, onto the training cells' distribution."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

#: quantiles of each gene's positive values kept per group
N_QUANTILES = 101
#: genes per block when tables are fitted (one sort of cells x block at a time: bounded memory)
_GENE_BLOCK = 1024
#: values mapped at once (cells x genes): the map's ~10 temporaries stay small on wide data
_MAP_CHUNK = 2**21


def zero_fraction_and_quantiles(values: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``values`` (cells x genes): the fraction of values that are not positive, the ``levels``
    quantiles of the positive ones (linear interpolation, as :func:`numpy.quantile`) and their number.

    Vectorised (one sort of the whole block) instead of one :func:`numpy.quantile` call per gene. A column
    without positive values gets quantiles of 0.
    """
    values = np.asarray(values, dtype=np.float32)
    n = len(values)
    ordered = np.sort(values, axis=0)
    n_pos = np.count_nonzero(values > 0, axis=0)
    # positives are the last n_pos sorted values: position of each level within them
    where = (n - n_pos)[None, :] + levels[:, None] * np.maximum(n_pos - 1, 0)[None, :]
    lo = np.minimum(np.floor(where).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = (where - lo).astype(np.float32)
    q = np.take_along_axis(ordered, lo, 0) * (1 - frac) + np.take_along_axis(ordered, hi, 0) * frac
    q[:, n_pos == 0] = 0.0
    return 1.0 - n_pos / max(n, 1), q.T, n_pos


class MarginalCalibration(nn.Module):
    """Map generated values gene by gene (and group by group) onto the training cells' marginal distribution.

    For each group (e.g. a label) and gene, two tables are stored: the zero fraction and ``N_QUANTILES``
    quantiles of the positive values, of the model's generated values and of the training cells'. A value
    ``v`` goes through the model's (randomised, for the atom at 0) probability integral transform ``u``
    and then the data's quantile function: ``u`` below the data's zero fraction gives 0, above it the data's
    positive quantile at ``(u - zero) / (1 - zero)``. The map is monotone within a gene, so each cell keeps
    the order of its values relative to other generated cells (trends, correlations in rank) and only the
    shape of each gene's distribution changes: the zero fraction and the positive values become the data's.
    The buffers are plain tensors (saved with the module); a group that was never fitted is left unchanged.

    Parameters
    ----------
    n_genes
        Number of genes.
    n_groups
        Number of groups with their own tables (1: one table per gene).
    """

    def __init__(self, n_genes: int, n_groups: int = 1) -> None:
        super().__init__()
        self.n_genes, self.n_groups = int(n_genes), int(n_groups)
        for side in ("model", "data"):
            self.register_buffer(f"{side}_zero", torch.zeros(n_groups, n_genes))
            self.register_buffer(f"{side}_quantiles", torch.zeros(n_groups, n_genes, N_QUANTILES))
        self.register_buffer("active", torch.zeros(n_groups, n_genes))  # 1 where a (group, gene) is mapped

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before the calibration existed: unfitted (values unchanged)
        for name, buffer in self.named_buffers(recurse=False):
            state_dict.setdefault(prefix + name, torch.zeros_like(buffer))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def is_fitted(self) -> bool:
        """Whether any group's tables are fitted."""
        return bool((self.active > 0).any())

    def reset(self) -> None:
        """Forget every table: values pass unchanged."""
        for buffer in self.buffers():
            buffer.zero_()

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """Values pass unchanged inside the ``with`` block; the tables come back after it (also on an error).

        Examples
        --------
        >>> with model.module.marginals.disabled():  # doctest: +SKIP
        ...     raw = model.generate(1000, seed=0)  # the generator's own values, same seed
        """
        tables = {name: buffer.clone() for name, buffer in self.named_buffers()}
        self.reset()
        try:
            yield
        finally:
            for name, buffer in self.named_buffers():
                buffer.copy_(tables[name])

    @torch.no_grad()
    def fit(self, model_values: np.ndarray, data_values: np.ndarray, group: int = 0, *, min_positive: int = 2,
            min_data_positive: int | None = None) -> None:
        """Fit ``group``'s tables from generated (``model_values``) and real cells (``data_values``), cells x genes.

        A gene with fewer than ``min_positive`` positive generated values, or fewer than ``min_data_positive``
        (default: ``min_positive``) positive real ones, keeps its values. With ``min_data_positive=0`` a gene the
        real cells never express maps to 0, and one they express once maps to 0 or that value.
        """
        min_data_positive = min_positive if min_data_positive is None else min_data_positive
        if not 0 <= group < self.n_groups:
            raise ValueError(f"group must be in [0, {self.n_groups}), got {group}.")
        for name, values in (("model_values", model_values), ("data_values", data_values)):
            if np.ndim(values) != 2 or np.shape(values)[1] != self.n_genes or len(values) < 2:
                raise ValueError(f"{name} must be cells x {self.n_genes} genes with at least 2 cells; got shape "
                                 f"{np.shape(values)}.")
            if not np.isfinite(values).all():
                raise ValueError(f"{name} holds NaN or infinite values.")
        levels = np.linspace(0.0, 1.0, N_QUANTILES)
        for start in range(0, self.n_genes, _GENE_BLOCK):
            block = slice(start, min(start + _GENE_BLOCK, self.n_genes))
            mz, mq, mn = zero_fraction_and_quantiles(model_values[:, block], levels)
            dz, dq, dn = zero_fraction_and_quantiles(data_values[:, block], levels)
            active = (mn >= min_positive) & (dn >= min_data_positive)
            for name, value in (("model_zero", mz), ("model_quantiles", mq), ("data_zero", dz),
                                ("data_quantiles", dq), ("active", active)):
                getattr(self, name)[group, block] = torch.as_tensor(value, dtype=torch.float32)

    def forward(self, values: torch.Tensor, groups: torch.Tensor | None = None, *,
                uniforms: torch.Tensor | None = None) -> torch.Tensor:
        """Calibrated copy of ``values`` (cells x genes, non-negative); ``groups``: each cell's group (default 0).

        ``uniforms`` (cells x genes, U(0, 1)) place the model's zeros within its zero fraction (drawn with
        :func:`torch.rand` when ``None``); only cells of fitted groups change (and of them only active genes).
        """
        if not self.is_fitted:
            return values.clone()
        if uniforms is None:
            uniforms = torch.rand(values.shape)
        step = max(1, _MAP_CHUNK // max(self.n_genes, 1))
        groups = None if groups is None else groups.reshape(-1).long().cpu()
        if groups is None or not len(groups) or bool((groups == groups[0]).all()):  # one group: slices, no copies
            g = 0 if groups is None or not len(groups) else int(groups[0])
            if not (self.active[g] > 0).any():
                return values.clone()
            out = torch.empty_like(values)
            for start in range(0, len(values), step):
                part = slice(start, start + step)
                out[part] = self._map(values[part], uniforms[part].to(values.device), g)
            return out
        out = values.clone()
        for g in torch.unique(groups).tolist():
            if not (self.active[g] > 0).any():
                continue
            for part in (groups == g).nonzero().ravel().split(step):
                rows = part.to(values.device)
                out[rows] = self._map(values[rows], uniforms[part].to(values.device), g)
        return out

    def _map(self, values: torch.Tensor, uniforms: torch.Tensor, g: int) -> torch.Tensor:
        v = values.T.contiguous().float()  # genes x cells
        last = N_QUANTILES - 1
        model_q, data_q = self.model_quantiles[g].to(v.device), self.data_quantiles[g].to(v.device)
        model_zero, data_zero = self.model_zero[g].to(v.device)[:, None], self.data_zero[g].to(v.device)[:, None]
        # the model's CDF: positives by their place among its quantiles, zeros uniformly within its zero fraction
        hi = torch.searchsorted(model_q, v).clamp_(1, last)
        lo = hi - 1
        q_lo = model_q.gather(1, lo)
        level = (v - q_lo).div_(model_q.gather(1, hi).sub_(q_lo).clamp_min_(1e-12)).clamp_(0, 1).add_(lo)
        u = torch.where(v > 0, level.mul_((1 - model_zero) / last).add_(model_zero),
                        uniforms.T.to(v.dtype) * model_zero)
        # the data's quantile function (in place over the CDF's buffers)
        t = u.sub(data_zero).div_((1 - data_zero).clamp_min(1e-12)).clamp_(0, 1).mul_(last)
        torch.floor(t, out=level)
        lo = level.long().clamp_(0, last - 1)
        mapped = torch.lerp(data_q.gather(1, lo), data_q.gather(1, lo + 1), t.sub_(lo))
        mapped.masked_fill_(u < data_zero, 0.0)
        active = self.active[g].to(v.device) > 0
        if not bool(active.all()):
            mapped = torch.where(active[:, None], mapped, v)
        return mapped.T.to(values.dtype)
