"""Fitting a model's marginal calibration (:class:`~scsynth.nn.MarginalCalibration`) after training.

ScGAN / cscGAN (per label) and GRouNdGAN (over its genes, after stage 2) share it: up to
``CALIBRATION_CELLS`` training cells and as many generated ones (at least 1000), both normalised to the
model's library size, give each gene's zero fraction and positive quantiles on either side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import sparse

from ..data._matrix import read_rows
from ..nn._count_noise import count_units
from ._generated import normalized_profiles

#: training cells read (per label) and generated cells made (per label) to fit the tables
CALIBRATION_CELLS = 5000
#: fewer training cells of a label than this: its generated values stay as they are. As few as cscGAN accepts
#: per label: left uncalibrated, its labels under 30 cells had 340-360 detected genes per cell where real
#: ones have 227-310; calibrated from 6-29 cells they match, RF AUROC unmoved (benchmarks/realism_curve.py)
MIN_CALIBRATION_CELLS = 5


def normalized_rows(adata, layer: str | None, rows: np.ndarray, library_size: float,
                    columns: np.ndarray | None = None) -> np.ndarray:
    """Training cells ``rows`` (sorted) over ``columns`` (all when ``None``) as a dense float32 array, each
    cell normalised to ``library_size`` over those columns."""
    x = read_rows(adata, layer, rows)
    if columns is not None:
        x = x[:, columns]
    x = np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)
    return normalized_profiles(x, library_size)


def fit_marginals(model, train_indices: np.ndarray, codes: np.ndarray, seed: int,
                  sample: Callable[[int, int, torch.Generator], torch.Tensor],
                  columns: np.ndarray | None = None) -> None:
    """Fit ``model.module.marginals``, one group per code of ``codes`` (the training cells' groups).

    ``sample(n, code, generator)`` returns ``n`` generated cells of the group, normalised to the library size.
    """
    calibration = model.module.marginals
    calibration.reset()
    rng = np.random.default_rng(seed)
    layer = model.registry_["setup_args"].get("layer")
    library_size = model.module.normalize.library_size
    generator = torch.Generator().manual_seed(seed)
    for code in np.unique(codes):
        members = np.asarray(train_indices)[codes == code]
        if len(members) < MIN_CALIBRATION_CELLS:
            continue
        take = np.sort(rng.choice(members, min(len(members), CALIBRATION_CELLS), replace=False))
        real = normalized_rows(model.adata, layer, take, library_size, columns)
        fake = sample(max(len(take), 1000), int(code), generator).numpy()
        calibration.fit(fake, real, int(code))


def scgan_codes(model, train_indices: np.ndarray) -> np.ndarray:
    """ScGAN's groups of its training cells: label codes for cscGAN, one group when unconditional."""
    if model.module.conditional:
        return model._label_codes()[train_indices]
    return np.zeros(len(train_indices), np.int64)


def fit_count_units(model, train_indices: np.ndarray, seed: int) -> None:
    """Fit ``model.module.count_noise``: per group (:func:`scgan_codes`), the count units of up to
    ``CALIBRATION_CELLS`` of its training cells (``library_size / total`` for counts, else each cell's
    smallest positive normalised value; ``scsynth.nn._count_noise.count_units``), read as stored (sparse
    rows stay sparse)."""
    codes = scgan_codes(model, train_indices)
    noise = model.module.count_noise
    rng = np.random.default_rng([seed, 2])
    layer = model.registry_["setup_args"].get("layer")
    library_size = model.module.normalize.library_size
    for code in np.unique(codes):
        members = np.asarray(train_indices)[codes == code]
        take = np.sort(rng.choice(members, min(len(members), CALIBRATION_CELLS), replace=False))
        units = count_units(read_rows(model.adata, layer, take), library_size, counts=model.is_count_data)
        if len(units):
            noise.fit(units, int(code))


def fit_scgan_marginals(model, train_indices: np.ndarray, seed: int) -> None:
    """ScGAN: per label (one group when unconditional), over all genes."""
    module = model.module
    codes = scgan_codes(model, train_indices)

    def sample(n: int, code: int, generator: torch.Generator) -> torch.Tensor:
        labels = torch.full((n,), code, dtype=torch.long) if module.conditional else None
        return module.sample(n, labels, generator=generator)

    fit_marginals(model, train_indices, codes, seed, sample)


def fit_groundgan_marginals(model, train_indices: np.ndarray, seed: int) -> None:
    """GRouNdGAN: one group, over the model's genes (cells normalised over them, as its generator's)."""
    module = model.module

    def sample(n: int, code: int, generator: torch.Generator) -> torch.Tensor:
        raw = torch.cat([p.raw for p in module.sample_parts(n, generator=generator)])
        return module.normalize(raw)

    fit_marginals(model, train_indices, np.zeros(len(train_indices), np.int64), seed, sample,
                  columns=module.gene_index.cpu().numpy())
