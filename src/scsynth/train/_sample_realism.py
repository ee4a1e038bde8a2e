"""Monitor the realism of RNAGAN's pseudo-samples on held-out samples during training; keep the best weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._realism_checkpoint import RealismCheckpoint, seeded_eval

#: reference sets run through the generator at once in a check (bounds the check's memory)
CHECK_CHUNK = 256


class SampleRealismCheckpoint(RealismCheckpoint):
    """:class:`~scsynth.train.RealismCheckpoint` for :class:`~scsynth.module.RNAGANNetworks`: every ``every``
    generator steps, generate one pseudo-sample per held-out sample, from a reference set of training samples
    of its group, and score them against the held-out samples.

    The reference sets are drawn once (seeded), so every check sees the same sets and the same noise
    (:func:`torch.random.fork_rng`; training's own random stream is not disturbed); the generated
    ``log1p`` profiles are scored on the normalised scale (``expm1``), as the held-out ones. The best check
    keeps a CPU copy of the *whole* module's weights: the generator reads its reference sets through the
    pathway layer it shares with the discriminator, so its weights of one step only work with that step's
    pathway layer (and the discriminator with it).

    Parameters
    ----------
    validation
        Held-out samples x the model's genes on the networks' scale (``log1p`` of the normalised values).
    pool
        The training samples the reference sets are drawn from, samples x genes on the same scale.
    sets
        The reference set of each held-out sample, rows of ``pool`` (samples of its group), shape
        ``(len(validation), n_refs)``.
    reference
        More real samples (e.g. training samples) on the same scale to choose the genes and fit the PCA with,
        and to score the real-vs-real control; ``None``: the held-out samples alone, no control.
    every, metric, seed, restore_best, scorer_kwargs
        As in :class:`~scsynth.train.RealismCheckpoint` (``every`` counts generator steps).

    Examples
    --------
    ``RNAGAN.train(train_size=0.8, monitor_realism=True)`` builds one per adversarial stage:

    >>> model.train(max_steps={"bulk": 1000}, train_size=0.8, monitor_realism=50)  # doctest: +SKIP
    >>> model.histories_["bulk"]["realism_validation"]  # doctest: +SKIP
    """

    def __init__(
        self,
        validation: np.ndarray,
        pool: np.ndarray,
        sets: np.ndarray,
        *,
        reference: np.ndarray | None = None,
        every: int = 50,
        metric: str = "mmd",
        seed: int = 0,
        restore_best: bool = True,
        scorer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__({}, every=every, metric=metric, seed=seed, restore_best=restore_best,
                         scorer_kwargs=scorer_kwargs)
        validation, pool, sets = np.asarray(validation, np.float32), np.asarray(pool, np.float32), np.asarray(sets)
        if pool.ndim != 2 or pool.shape[1] != validation.shape[1]:
            raise ValueError(f"pool must be samples x the held-out samples' {validation.shape[1]} genes, got "
                             f"shape {pool.shape}.")
        if sets.ndim != 2 or len(sets) != len(validation) or sets.min(initial=0) < 0 or sets.max(initial=0) >= len(pool):
            raise ValueError(f"sets must hold one reference set (rows of pool) per held-out sample, shape "
                             f"({len(validation)}, n_refs); got shape {sets.shape}.")
        self.x_validation = np.expm1(validation)
        self.x_reference = None if reference is None else np.expm1(np.asarray(reference, np.float32))
        self.pool, self.sets = torch.as_tensor(pool), torch.as_tensor(sets, dtype=torch.long)

    whole_module = True  # see the class description

    def setup_scorer(self, module: torch.nn.Module) -> None:
        self.fit_scorer(self.x_validation, self.x_reference)
        self.x_reference = None  # only needed to fit the scorer

    @torch.no_grad()
    def generate(self, module: torch.nn.Module) -> np.ndarray:
        """The check's pseudo-samples (normalised, the model's genes), from the fixed reference sets and noise."""
        device = next(module.parameters()).device
        with seeded_eval(module, self.seed):
            parts = [module.generative(self.pool[chunk].to(device))["x_fake"].float().cpu()
                     for chunk in self.sets.split(CHECK_CHUNK)]
        return torch.expm1(torch.cat(parts)).clamp_min(0).numpy()

