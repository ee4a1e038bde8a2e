"""Start a ReLU output layer at the data: each gene's mean and zero fraction (and each label's mean)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm
from torch import nn

# a ReLU of a standard normal (BatchNorm's output at initialisation): its mean and variance
_RELU_MEAN = float(1 / np.sqrt(2 * np.pi))
_RELU_VAR = 0.5 - _RELU_MEAN**2
_MIN_P, _MAX_P = 0.02, 0.98  # zero fractions of exactly 0 or 1 would put the bias at +-infinity
_MIN_Q = -6.0  # a label without the gene: its pre-activation sits 6 standard deviations below zero


def _relu_mean(q: np.ndarray) -> np.ndarray:
    """``E[relu(q + e)]`` for ``e ~ N(0, 1)``, increasing in ``q``."""
    return norm.pdf(q) + q * norm.cdf(q)


def _relu_mean_inverse(target: np.ndarray) -> np.ndarray:
    """The ``q`` with ``_relu_mean(q) == target`` (bisection; ``target > 0``), clipped below at ``_MIN_Q``."""
    lo, hi = np.full(target.shape, _MIN_Q), np.maximum(target, 0.0) + 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        below = _relu_mean(mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


@torch.no_grad()
def init_output_at_data(
    output: nn.Linear,
    mean: np.ndarray,
    nonzero_fraction: np.ndarray,
    *,
    label_bias: nn.Embedding | None = None,
    label_means: np.ndarray | None = None,
) -> None:
    """Rescale and shift a generator's ``Linear -> ReLU`` output so that it starts at the data's profile.

    At initialisation the output layer's input is a ReLU of BatchNorm-ed units, so gene ``g``'s
    pre-activation is about normal with mean ``0.40 * sum(w_g)`` and variance ``0.34 * sum(w_g ** 2)``.
    Each row of the weights is rescaled and the bias set so that the ReLU output is positive in the
    gene's fraction of non-zero cells and its mean is proportional to the gene's mean (the library-size
    normalisation after it removes the common factor); the weights keep their median scale. With labels,
    ``label_bias`` (added to the pre-activation of a cell of that label) moves each label's mean to its own.
    A randomly initialised output puts every gene at the same mean: the generator then spends its first
    hundreds of steps finding the mean profile, and a conditional one the differences between labels.

    Parameters
    ----------
    output
        The generator's last ``Linear`` (followed by a ReLU); changed in place.
    mean
        Mean of each gene over the training cells, after library-size normalisation.
    nonzero_fraction
        Fraction of training cells in which each gene is positive.
    label_bias
        Per-label shift of the pre-activation, ``n_labels x n_genes``; changed in place.
    label_means
        Mean of each gene in the training cells of each label (``n_labels x n_genes``), needed with
        ``label_bias``; labels without cells can hold the overall mean.
    """
    mean = np.asarray(mean, dtype=np.float64)
    weight = output.weight.detach().double().cpu().numpy()
    if mean.shape != (weight.shape[0],) or np.shape(nonzero_fraction) != mean.shape:
        raise ValueError(f"mean and nonzero_fraction need one value per gene ({weight.shape[0]}), got "
                         f"{mean.shape} and {np.shape(nonzero_fraction)}.")
    fraction = np.asarray(nonzero_fraction, dtype=np.float64)
    if not (np.isfinite(mean).all() and (mean >= 0).all() and np.isfinite(fraction).all()
            and ((fraction >= 0) & (fraction <= 1)).all()):  # NaN here would become NaN weights
        raise ValueError("mean must be finite and >= 0 and nonzero_fraction within [0, 1] for every gene.")
    if label_bias is not None:  # checked before any weight changes
        if label_means is None:
            raise ValueError("label_bias needs label_means.")
        label_means = np.asarray(label_means, dtype=np.float64)
        if label_means.shape != tuple(label_bias.weight.shape):
            raise ValueError(f"label_means must be {tuple(label_bias.weight.shape)}, got {label_means.shape}.")
        if not (np.isfinite(label_means).all() and (label_means >= 0).all()):
            raise ValueError("label_means must be finite and >= 0.")
    shift = _RELU_MEAN * weight.sum(1)
    spread = np.sqrt(_RELU_VAR * (weight**2).sum(1))
    q = norm.ppf(np.clip(fraction, _MIN_P, _MAX_P))
    target = mean / _relu_mean(q)  # the pre-activation's spread that gives the gene's mean
    target = np.maximum(target, 1e-3 * np.median(target[target > 0]) if (target > 0).any() else 1.0)
    target *= np.median(spread) / np.median(target)
    factor = target / np.maximum(spread, 1e-12)
    output.weight.mul_(torch.as_tensor(factor, dtype=output.weight.dtype, device=output.weight.device)[:, None])
    bias = target * q - shift * factor
    output.bias.copy_(torch.as_tensor(bias, dtype=output.bias.dtype, device=output.bias.device))
    if label_bias is None:
        return
    # same spread per gene as the pooled cells: the label's mean fixes where its pre-activation sits
    ratio = label_means / np.maximum(mean, 1e-12)
    q_label = _relu_mean_inverse(np.maximum(ratio * _relu_mean(q), 1e-9))
    label_bias.weight.copy_(torch.as_tensor(target * (q_label - q), dtype=label_bias.weight.dtype,
                                            device=label_bias.weight.device))
