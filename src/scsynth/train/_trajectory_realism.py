"""Monitor the realism of GeneSys' generated time steps on validation cells during training; keep the best weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scvi.distributions import NegativeBinomial

from ._realism_checkpoint import RealismCheckpoint, seeded_eval


class TrajectoryRealismCheckpoint(RealismCheckpoint):
    """:class:`~scsynth.train.RealismCheckpoint` for :class:`~scsynth.module.GeneSysModule`: every ``every``
    training steps, roll trajectories out of the prior and score their cells against fixed validation cells.

    Validation cell ``i`` sits at blueprint step ``times[i]`` of trajectory ``rows[i]``; each check rolls
    out one trajectory per validation cell and decodes its state at that step, so the generated cells have
    the validation cells' (trajectory, time) composition. Count cells take the validation cell's own total
    as library size and negative binomial counts; continuous values come from the decoder's likelihood.
    The noise is seeded (:func:`torch.random.fork_rng`): every check sees the same draws and training's own
    random stream is not disturbed. The best check keeps a CPU copy of the whole module's weights.

    Parameters
    ----------
    validation
        Validation cells x the model's genes on the input scale (counts or non-negative values).
    rows, times
        Blueprint row and 0-based time step of each validation cell.
    reference
        More real cells (e.g. training cells) to choose the genes and fit the PCA with, and to score the
        real-vs-real control; ``None``: the validation cells alone, no control.
    counts
        Whether the module models counts (library sizes then come from ``validation``).
    every, metric, seed, restore_best, scorer_kwargs
        As in :class:`~scsynth.train.RealismCheckpoint` (``every`` counts training steps).

    Examples
    --------
    ``GeneSys.train(monitor_realism=True)`` builds one:

    >>> model.train(max_epochs=300, monitor_realism=100)  # doctest: +SKIP
    >>> model.histories_["train"]["realism_validation"]  # doctest: +SKIP
    """

    def __init__(
        self,
        validation: np.ndarray,
        rows: np.ndarray,
        times: np.ndarray,
        *,
        reference: np.ndarray | None = None,
        counts: bool = True,
        every: int = 100,
        metric: str = "mmd",
        seed: int = 0,
        restore_best: bool = True,
        scorer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__({}, every=every, metric=metric, seed=seed, restore_best=restore_best,
                         scorer_kwargs=scorer_kwargs)
        self.x_validation = np.asarray(validation, dtype=np.float32)
        self.x_reference = None if reference is None else np.asarray(reference, dtype=np.float32)
        self.rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        self.times = torch.as_tensor(np.asarray(times), dtype=torch.long)
        if not len(self.rows) == len(self.times) == len(self.x_validation):
            raise ValueError(f"rows ({len(self.rows)}), times ({len(self.times)}) and validation cells "
                             f"({len(self.x_validation)}) must have the same length.")
        self.counts = bool(counts)
        self.library = torch.as_tensor(self.x_validation.sum(1))

    whole_module = True  # see the class description

    def setup_scorer(self, module: torch.nn.Module) -> None:
        self.fit_scorer(self.x_validation, self.x_reference)
        self.x_reference = None  # only needed to fit the scorer

    @torch.no_grad()
    def generate(self, module: torch.nn.Module) -> np.ndarray:
        """The check's generated cells (input scale, the model's genes), with the seeded noise."""
        device = module.initial_prior.weight.device
        with seeded_eval(module, self.seed):
            z = module.states_at(self.rows, self.times)
            if self.counts:
                params = module.decode(z, self.library.to(device))
                fake = NegativeBinomial(mu=params["rate"], theta=params["theta"]).sample()
            else:
                fake = module.sample_values(module.decode(z, None))[0]
        return fake.float().cpu().numpy()

    def _steps(self, trainer, plan) -> int:
        return int(trainer.global_step)  # every optimiser step updates the decoder

