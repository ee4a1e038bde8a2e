"""RNAGAN's held-out samples and the realism checks of ``RNAGAN.train(train_size=..., monitor_realism=...)``."""

from __future__ import annotations

import numpy as np

from ..train._sample_realism import SampleRealismCheckpoint
from ._inputs import split_indices
from ._rnagan_inputs import MODALITY_WORDS, NetworkRows, draw_sets
from ._training import MONITOR_CELLS, REFERENCE_CELLS

#: generator steps between checks of ``monitor_realism=True`` (a history row is about 50 steps)
RNAGAN_MONITOR_EVERY = 50
#: training samples in each check's reference set (``RNAGAN.generate``'s default)
CHECK_REFS = 10


def training_mask(modalities: np.ndarray, labels: np.ndarray, train_size: float, seed: int) -> np.ndarray:
    """Which samples train (``True``) and which are held out: ``1 - train_size`` of each (modality, group),
    rounded down, so every group keeps at least one training sample."""
    if isinstance(train_size, bool) or not isinstance(train_size, float | int) or not 0 < train_size <= 1:
        raise ValueError(f"train_size must be a number in (0, 1], got {train_size!r}.")
    strata = np.char.add(np.char.add(modalities.astype(str), "/"), labels.astype(str))
    train = split_indices(len(labels), float(train_size), None, seed, strata)[0]
    mask = np.zeros(len(labels), dtype=bool)
    mask[train] = True
    return mask


def realism_checks(
    x: NetworkRows, modalities: np.ndarray, labels: np.ndarray, train: np.ndarray, stage_modalities: list[str], *,
    every: int, metric: str, seed: int,
) -> dict[str, SampleRealismCheckpoint]:
    """One :class:`~scsynth.train.SampleRealismCheckpoint` per modality with an adversarial stage; raises first.

    Each scores one pseudo-sample per held-out sample of the modality (up to ``MONITOR_CELLS``), generated from
    ``CHECK_REFS`` training samples of its group, against those held-out samples.
    """
    rng = np.random.default_rng(seed)  # its own stream: which samples are checked does not move training's draws
    checks = {}
    for modality in stage_modalities:
        held = np.flatnonzero(~train & (modalities == modality))
        if len(held) < 10:
            raise ValueError(
                f"monitor_realism scores pseudo-samples against held-out samples, and the {MODALITY_WORDS[modality]} "
                f"samples have {len(held)} held out; lower train_size (e.g. train_size=0.8) so that at least 10 "
                f"of the {int((modalities == modality).sum())} are held out.")
        held = np.sort(rng.choice(held, min(len(held), MONITOR_CELLS), replace=False))
        trained = np.flatnonzero(train & (modalities == modality))
        sets = np.empty((len(held), CHECK_REFS), dtype=np.int64)
        for group in np.unique(labels[held]):
            rows = labels[held] == group
            sets[rows] = draw_sets(rng, trained[labels[trained] == group], int(rows.sum()), CHECK_REFS)
        pool, inverse = np.unique(sets, return_inverse=True)  # each reference sample read once
        reference = np.sort(rng.choice(trained, min(len(trained), REFERENCE_CELLS), replace=False))
        checks[modality] = SampleRealismCheckpoint(
            x.read(held), x.read(pool), inverse.reshape(sets.shape), reference=x.read(reference), every=every,
            metric=metric, seed=seed)
    return checks
