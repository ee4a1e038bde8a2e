"""A progress bar that counts generator steps (the unit in which GAN training is budgeted)."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import ProgressBar
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks


class GeneratorStepProgressBar(ProgressBar):
    """One tqdm bar per ``train()``, advanced per generator step, with the logged losses as postfix.

    Callbacks with a ``progress_postfix()`` method returning ``{name: text}`` add to the postfix
    (:class:`~scsynth.train.RealismCheckpoint`: the latest and the best realism score).
    """

    def __init__(self, desc: str = "Training") -> None:
        super().__init__()
        self._enabled = True
        self._bar: tqdm | None = None
        self._desc = desc

    def disable(self) -> None:
        """Hide the bar (Lightning calls this on non-zero ranks)."""
        self._enabled = False

    def enable(self) -> None:
        """Show the bar."""
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        """Whether the bar is shown."""
        return self._enabled

    def _open(self, trainer, total: int, unit: str) -> tqdm:
        return tqdm(
            total=total,
            desc=self._desc,
            unit=unit,
            disable=not (self._enabled and trainer.is_global_zero),
            dynamic_ncols=True,
            # in a terminal the bar redraws in place; in logs and notebooks every redraw is kept, so redraw rarely
            mininterval=0.1 if sys.stderr.isatty() else 10.0,
        )

    def on_train_start(self, trainer, pl_module) -> None:
        self._bar = self._open(trainer, pl_module.planned_generator_steps(), "step")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is None:
            return
        done = pl_module.generator_steps - self._bar.n
        if done > 0:
            self._bar.update(done)
            metrics = {k: f"{float(v):.3g}" for k, v in trainer.progress_bar_metrics.items() if k != "v_num"}
            for callback in trainer.callbacks:  # e.g. RealismCheckpoint's latest and best realism
                postfix = getattr(callback, "progress_postfix", None)
                if callable(postfix):
                    metrics.update(postfix())
            if metrics:
                self._bar.set_postfix(metrics, refresh=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochProgressBar(GeneratorStepProgressBar):
    """One tqdm bar per ``train()`` (or cycle), advanced per epoch, with the epoch's losses as postfix.

    Redraws rarely outside a terminal, so a notebook keeps a few lines instead of one per epoch.
    """

    def on_train_start(self, trainer, pl_module) -> None:
        self._bar = self._open(trainer, trainer.max_epochs, "epoch")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Nothing per batch: the bar counts epochs."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        keys = ("train_loss", "validation_loss", "accuracy_validation")
        metrics = {k: f"{float(trainer.callback_metrics[k]):.4g}" for k in keys if k in trainer.callback_metrics}
        for callback in trainer.callbacks:  # GeneSys' realism checks
            postfix = getattr(callback, "progress_postfix", None)
            if callable(postfix):
                metrics.update(postfix())
        if metrics:
            self._bar.set_postfix(metrics, refresh=False)


class BatchProgressBar(GeneratorStepProgressBar):
    """One tqdm bar per ``train()`` (or stage), advanced per batch, with the last epoch's metrics as postfix.

    For plans whose budget is counted in batches (RNAGAN: one discriminator step per batch) but whose
    metrics are logged per epoch: the bar moves every batch, the postfix changes every epoch. Redraws
    rarely outside a terminal, as :class:`GeneratorStepProgressBar`.

    Parameters
    ----------
    desc
        Title of the bar.
    total
        Batches in all; ``max_epochs`` times the batches per epoch when ``None``.
    postfix_keys
        ``callback_metrics`` shown after each epoch, as ``{metric: short name}``.
    """

    def __init__(self, desc: str = "Training", total: int | None = None,
                 postfix_keys: dict[str, str] | None = None) -> None:
        super().__init__(desc)
        self._total = total
        self._keys = dict(postfix_keys or {})

    def on_train_start(self, trainer, pl_module) -> None:
        total = self._total
        if total is None:
            total = int(trainer.max_epochs) * int(trainer.num_training_batches)
        self._bar = self._open(trainer, total, "step")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._bar is None:
            return
        metrics = {short: f"{float(trainer.callback_metrics[k]):.3g}" for k, short in self._keys.items()
                   if k in trainer.callback_metrics}
        for callback in trainer.callbacks:  # e.g. the realism checks
            postfix = getattr(callback, "progress_postfix", None)
            if callable(postfix):
                metrics.update(postfix())
        if metrics:
            self._bar.set_postfix(metrics, refresh=False)
