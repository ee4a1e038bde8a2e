"""Train the first part of a GAN's training without its count noise, then with it."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback, Timer


class CountNoiseWarmup(Callback):
    """Leave a module's count noise out of the first ``fraction`` of a training's generator steps.

    The generator first learns each cell's expected profile from clean gradients, then the draw
    (:class:`~scsynth.nn.CountNoise`) is switched on for the rest of the steps and the critic sees counts, as
    in generation. The module must have a boolean ``count_noise_in_training`` that its training pass reads; it
    is set before every batch and left ``True`` when training ends or fails. Generation is never affected.
    Under a time budget (Lightning ``max_time``) the draw starts at ``fraction`` of the planned steps or of
    the time, whichever comes first, so a budget that ends training early still trains its last part with it.

    Parameters
    ----------
    fraction
        Share of the plan's generator steps (``planned_generator_steps()``) trained without the noise, in
        ``[0, 1)``; 0 draws from the first step.

    Examples
    --------
    >>> from scsynth.train import CountNoiseWarmup
    >>> CountNoiseWarmup(0.5).fraction
    0.5
    """

    def __init__(self, fraction: float) -> None:
        if not 0 <= fraction < 1:
            raise ValueError(f"The count noise warm-up must be a fraction in [0, 1), got {fraction!r}.")
        self.fraction = float(fraction)
        self.first_noisy_step = 0
        self._timer: Timer | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.first_noisy_step = round(self.fraction * pl_module.planned_generator_steps())
        self._timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)

    def warming_up(self, generator_steps: int) -> bool:
        """Whether a batch that starts after ``generator_steps`` steps trains without the draw."""
        if generator_steps >= self.first_noisy_step:
            return False
        remaining = None if self._timer is None else self._timer.time_remaining()
        if remaining is None:
            return True
        elapsed = self._timer.time_elapsed()
        return elapsed < self.fraction * (elapsed + remaining)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        pl_module.module.count_noise_in_training = not self.warming_up(pl_module.generator_steps)

    def on_train_end(self, trainer, pl_module) -> None:
        pl_module.module.count_noise_in_training = True

    def on_exception(self, trainer, pl_module, exception) -> None:
        pl_module.module.count_noise_in_training = True
