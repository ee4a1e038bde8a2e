"""RNAGAN's marginal calibration: pseudo-samples mapped gene by gene onto their group's training samples.

The generator makes each pseudo-sample from a reference set of its group. On a small cohort it gets each
gene's mean right but not its spread (cross-fitted GEUVADIS: variance agreement 0.83, the NB-copula peer 0.93),
and a random forest tells pseudo-samples from real ones by that. After training, one
:class:`~scsynth.nn.MarginalCalibration` table per (modality, group) maps each gene's normalised values onto
the group's training samples (zero fraction and positive quantiles), as ScGAN's per label. The map is monotone
per gene: the generator's gene-gene structure (what the copula peer loses on few samples) is kept in rank.
"""

from __future__ import annotations

import numpy as np
import torch

from ._marginals import CALIBRATION_CELLS
from ._rnagan_inputs import MODALITIES, NETWORK_LIBRARY_SIZE, draw_sets

#: fewer training samples of a (modality, group) than this: its pseudo-samples stay as generated
MIN_CALIBRATION_SAMPLES = 10
#: pseudo-samples made per group to fit the generator's side of the table (at least as many as real ones)
MIN_GENERATED = 1000
#: reference-set size of the fitted pseudo-samples (``generate``'s default ``n_refs``)
CALIBRATION_REFS = 10
#: values of reference sets fed to the generator at once (batch x n_refs x genes): bounded memory on wide data
_REF_CHUNK = 2**24


def label_categories(model) -> list[str]:
    """The labels registered at setup, in code order (from the registry: also for a model loaded without data)."""
    try:
        return [str(c) for c in model.registry_["field_registries"]["labels"]["state_registry"]["categorical_mapping"]]
    except (KeyError, TypeError, AttributeError):
        return []


def calibration_group(model, modality: str, group: str) -> int | None:
    """Row of ``module.marginals`` holding (``modality``, ``group``)'s tables; ``None`` for an unknown group."""
    labels = label_categories(model)
    if group not in labels:
        return None
    return MODALITIES.index(modality) * len(labels) + labels.index(group)


@torch.inference_mode()
def pseudo_expression(module, ref_x: np.ndarray, picks: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """The generator's expression (CPU, ``expm1`` of its output, *not* normalised) for the reference sets
    ``ref_x[picks]``; ``ref_x``: the network's input (``log1p`` of normalised samples), ``picks``: sets x members.
    Fed in chunks."""
    device = next(module.parameters()).device
    step = max(1, _REF_CHUNK // max(1, picks.shape[1] * ref_x.shape[1]))
    out = []
    for start in range(0, len(picks), step):
        log_x = module.sample(torch.as_tensor(ref_x[picks[start:start + step]], device=device),
                              generator=generator).cpu()
        out.append(torch.expm1(log_x).clamp_min(0))
    return torch.cat(out)


def to_network_scale(expr: torch.Tensor) -> torch.Tensor:
    """Each profile scaled to sum to ``NETWORK_LIBRARY_SIZE`` (all-zero profiles stay 0)."""
    return expr / expr.sum(1, keepdim=True).clamp_min(1e-12) * NETWORK_LIBRARY_SIZE


def is_calibrated(model, modality: str, group: str) -> bool:
    """Whether (``modality``, ``group``)'s pseudo-samples are mapped by a fitted table."""
    code = calibration_group(model, modality, group)
    return code is not None and bool((model.module.marginals.active[code] > 0).any())


def normalized_pseudo_samples(model, expr: torch.Tensor, modality: str, group: str, seed: int) -> torch.Tensor:
    """The generator's expression ``expr`` mapped by (``modality``, ``group``)'s tables (when fitted), then normalised.

    The map takes the generator's values *before* normalisation: normalised first, one gene's large value pushes
    every other gene of its profile to a low rank, and the mapped profile's total then strays far from the
    library size (on ``pbmc68k_reduced``, 5-95% of totals 1000-28000 instead of 6200-14500), so that renormalising
    inflated the cells with a low total (NK cells' top genes 1.28x the training mean instead of 1.03x).
    """
    if not is_calibrated(model, modality, group):
        return to_network_scale(expr)
    code = calibration_group(model, modality, group)
    # the map's uniforms come from their own stream: noise, references, libraries and rounding stay as uncalibrated
    uniforms = torch.from_numpy(np.random.default_rng([seed, 1]).random(tuple(expr.shape), dtype=np.float32))
    return to_network_scale(model.module.marginals(expr, torch.full((len(expr),), code), uniforms=uniforms))


def fit_rnagan_marginals(model, x, train: np.ndarray, seed: int) -> None:
    """Fit ``model.module.marginals`` for every trained modality and group with enough training samples.

    ``x``: the training samples on the networks' scale (:class:`~scsynth.model._rnagan_inputs.NetworkRows`: only
    the rows used are read, also from a backed file); ``train``: per sample of ``model.adata``, whether it trained
    (held-out samples stay out). Up to ``CALIBRATION_CELLS`` training samples of a group give its data side; at
    least ``MIN_GENERATED`` pseudo-samples from reference sets of those samples (``CALIBRATION_REFS`` each; the
    generator's expression before normalisation, see :func:`normalized_pseudo_samples`) the generator's side.
    Every gene is mapped, also one that the group's training samples never express (to 0).
    """
    calibration = model.module.marginals
    calibration.reset()
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    modalities = model._modalities(model.adata)
    labels = model.adata.obs[model.labels_key].astype(str).to_numpy()
    model.module.eval()
    for modality in model.train_libraries_:
        for group in label_categories(model):
            members = np.flatnonzero(train & (modalities == modality) & (labels == group))
            if len(members) < MIN_CALIBRATION_SAMPLES:
                continue
            take = np.sort(rng.choice(members, min(len(members), CALIBRATION_CELLS), replace=False))
            ref_x = x.read(take)
            picks = draw_sets(rng, np.arange(len(take)), max(len(take), MIN_GENERATED), CALIBRATION_REFS)
            fake = pseudo_expression(model.module, ref_x, picks, generator).numpy()
            # a gene the group's training samples (almost) never express is mapped too (to their 0s): left as
            # generated, it kept whatever the generator put there (MMD on pbmc68k_reduced 0.12 -> 0.04)
            calibration.fit(fake, np.expm1(ref_x), calibration_group(model, modality, group), min_data_positive=0)
