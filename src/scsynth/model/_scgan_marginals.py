"""Fitting ScGAN's marginal calibration (:class:`~scsynth.nn.MarginalCalibration`) after training."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

from ..data._matrix import read_rows

#: training cells read (per label) and generated cells made (per label) to fit the tables
CALIBRATION_CELLS = 5000
#: fewer training cells of a label than this: its generated values stay as they are (too few for quantiles)
MIN_CALIBRATION_CELLS = 30


def normalized_rows(adata, layer: str | None, rows: np.ndarray, library_size: float) -> np.ndarray:
    """Training cells ``rows`` (sorted) as a dense float32 array, each cell normalised to ``library_size``."""
    x = read_rows(adata, layer, rows)
    x = np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)
    totals = x.sum(1, keepdims=True, dtype=np.float64)
    return (x * (library_size / np.where(totals > 0, totals, 1.0))).astype(np.float32)


def fit_scgan_marginals(model, train_indices: np.ndarray, seed: int) -> None:
    """Fit ``model.module.marginals`` per label (one group when unconditional) on up to ``CALIBRATION_CELLS``
    training cells and as many generated ones (at least 1000), both normalised to the library size."""
    module = model.module
    calibration = module.marginals
    calibration.reset()
    rng = np.random.default_rng(seed)
    layer = model.registry_["setup_args"].get("layer")
    library_size = module.normalize.library_size
    codes = model._label_codes()[train_indices] if module.conditional else np.zeros(len(train_indices), np.int64)
    generator = torch.Generator().manual_seed(seed)
    for code in np.unique(codes):
        members = np.asarray(train_indices)[codes == code]
        if len(members) < MIN_CALIBRATION_CELLS:
            continue
        take = np.sort(rng.choice(members, min(len(members), CALIBRATION_CELLS), replace=False))
        real = normalized_rows(model.adata, layer, take, library_size)
        n_fake = max(len(take), 1000)
        labels = torch.full((n_fake,), int(code), dtype=torch.long) if module.conditional else None
        fake = module.sample(n_fake, labels, generator=generator).numpy()
        calibration.fit(fake, real, int(code))
