"""One way to run a training: seeding, quiet Lightning, one progress bar, and a history per stage.

Every scsynth model trains through :meth:`TrainingMixin.run_training` (ScGAN and GRouNdGAN through
``GANModelBase.train``, GeneSys per cycle, RNAGAN per stage), so the scaffolding is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

from .._deprecation import warn_renamed
from .._settings import settings
from ..train import GeneratorEMA, RealismCheckpoint
from ..train._quiet import quiet_lightning

__all__ = ["TrainingMixin", "concat_history", "file_realism", "numeric_history", "realism_callbacks"]

#: cells of the realism checks: validation cells scored (and generated) per check, training cells fitting the PCA
MONITOR_CELLS, REFERENCE_CELLS = 1000, 2000


def numeric_history(history: dict[str, pd.DataFrame] | None) -> dict[str, pd.DataFrame]:
    """scvi's logger stores object columns; numbers are what users plot and compare."""
    return {k: v.apply(pd.to_numeric, errors="coerce") for k, v in (history or {}).items()}


def concat_history(old: dict[str, pd.DataFrame] | None, new: dict[str, pd.DataFrame] | None) -> dict:
    """Rows of ``new`` after those of ``old``, key by key (keys of either).

    The epochs of ``new`` (a later ``train()``, counted from 0 again) continue after the last one of ``old``,
    so that every key's index stays unique and keys logged on different epochs line up.
    """
    old, new = old or {}, new or {}
    ends = [v.index.max() for v in old.values() if len(v) and pd.api.types.is_integer_dtype(v.index)]
    if ends and all(pd.api.types.is_integer_dtype(v.index) for v in new.values()):
        shift = int(max(ends)) + 1
        new = {k: v.set_axis(v.index + shift) for k, v in new.items()}
    return {k: pd.concat([v for v in (old.get(k), new.get(k)) if v is not None]) for k in {*old, *new}}


class TrainingMixin:
    """Training scaffolding shared by all scsynth models.

    ``histories_`` holds one history per training stage (``"train"`` for single-stage models;
    ``"controller"`` and ``"generator"`` for GRouNdGAN; RNAGAN's stage names), each a dict of
    per-epoch DataFrames as scvi-tools' ``history``; ``history`` (``history_``) is the latest stage's.
    """

    #: the stage of a single-stage model
    default_stage = "train"

    def run_training(
        self,
        stage: str,
        *,
        training_plan: Any,
        data_splitter: Any,
        max_epochs: int,
        seed: int,
        accelerator: str | None = None,
        devices: int | list[int] | str = "auto",
        progress_bar: Callback | None = None,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        history_extras: Callable[[], dict[str, pd.DataFrame]] | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        """Seed, run scvi-tools' :class:`~scvi.train.TrainRunner` quietly, and file the history under ``stage``.

        ``progress_bar`` is added unless ``enable_progress_bar=False`` is in ``trainer_kwargs`` or
        ``scsynth.settings.progress`` is off. After the run ``is_trained_`` is true (the caller lowers it
        when the run diverged before any finite step). ``history_extras()`` gives more entries of this run's
        history (e.g. the realism checks of :class:`~scsynth.train.RealismCheckpoint`), filed with it.
        """
        import lightning
        from scvi.train import TrainRunner

        lightning.seed_everything(seed, verbose=False)
        callbacks = [*trainer_kwargs.pop("callbacks", []), *callbacks]
        show = bool(trainer_kwargs.pop("enable_progress_bar", True))
        if show and progress_bar is not None:
            if not settings.progress:
                progress_bar.disable()
            callbacks.append(progress_bar)
        was_trained = bool(getattr(self, "is_trained_", False))
        # scvi replaces history_ (rather than appending) on an untrained model: this run's rows alone
        self.is_trained_ = False
        finished = False
        try:
            with quiet_lightning():
                TrainRunner(
                    self, training_plan=training_plan, data_splitter=data_splitter, max_epochs=max_epochs,
                    accelerator=accelerator or settings.accelerator, devices=devices, simple_progress_bar=False,
                    enable_progress_bar=show, enable_model_summary=False, callbacks=callbacks, **trainer_kwargs,
                )()
            finished = True
        finally:
            self._file_history(stage, history_extras() if history_extras is not None else None)
            self.is_trained_ = True if finished else was_trained

    def _file_history(self, stage: str, extras: dict[str, pd.DataFrame] | None = None) -> None:
        histories = dict(getattr(self, "histories_", None) or {})
        new = {**numeric_history(getattr(self, "history_", None)), **(extras or {})}
        histories[stage] = concat_history(histories.get(stage), new)
        self.histories_ = histories
        self.history_ = histories[stage]

    def upgrade_loaded_attributes(self) -> None:
        """Give a model saved before per-stage histories (scsynth <= 0.2) its ``histories_``."""
        if not getattr(self, "histories_", None) and getattr(self, "history_", None):
            self.histories_ = {self.default_stage: self.history_}


def deprecated_history_alias(stage: str, old: str):
    """A property ``old`` reading ``histories_[stage]`` (with a ``FutureWarning``); loading old files sets it."""

    def fget(self):
        warn_renamed(old, f"histories_[{stage!r}]", where=type(self).__name__)
        return self.histories_.get(stage, {})

    def fset(self, value):  # an attribute of models saved by scsynth <= 0.2
        self.histories_ = {**(getattr(self, "histories_", None) or {}), stage: value or {}}

    return property(fget, fset, doc=f"Deprecated: use ``histories_[{stage!r}]``.")


# -- GANs: weight average and realism checkpoint ---------------------------------------------------------
def monitor_every(monitor_realism: bool | int | None) -> int:
    """Generator steps between realism checks (0: no checks) from ``train(monitor_realism=...)``."""
    if monitor_realism is None or monitor_realism is False:
        return 0
    if monitor_realism is True:
        return 100
    if not isinstance(monitor_realism, int | np.integer) or monitor_realism < 0:
        raise ValueError(f"monitor_realism must be True, False or a number of generator steps, got "
                         f"{monitor_realism!r}.")
    return int(monitor_realism)


def cells_batch(model: Any, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """The model's registered tensors of cells ``indices`` as one batch (what its data loader yields)."""
    loader = model._make_data_loader(adata=model.adata, indices=indices, batch_size=min(len(indices), 4096),
                                     shuffle=False)
    batches = list(loader)
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def realism_callbacks(
    model: Any, splits: list[np.ndarray], *, ema_decay: float | None, monitor_realism: bool | int, metric: str,
    seed: int,
) -> tuple[GeneratorEMA | None, RealismCheckpoint | None]:
    """The weight average and the realism checkpoint of a GAN's ``train()`` (``None`` when off); raises first."""
    ema = GeneratorEMA(ema_decay) if ema_decay else None
    every = monitor_every(monitor_realism)
    if not every:
        return ema, None
    train_idx, val_idx = splits[0], splits[1]
    if len(val_idx) < 10:
        raise ValueError(f"monitor_realism scores generated cells against validation cells, and this split has "
                         f"{len(val_idx)}; set train_size < 1 (e.g. train_size=0.9) so that at least 10 cells are "
                         "held out.")
    rng = np.random.default_rng(seed)  # its own stream: which cells are monitored does not move training's draws
    pick = lambda idx, n: np.sort(rng.choice(idx, size=n, replace=False)) if len(idx) > n else idx  # noqa: E731
    validation, reference = pick(val_idx, MONITOR_CELLS), pick(train_idx, REFERENCE_CELLS)
    return ema, RealismCheckpoint(cells_batch(model, validation), reference=cells_batch(model, reference),
                                  every=every, metric=metric, ema=ema, seed=seed)


def file_realism(model: Any, stage: str, realism: RealismCheckpoint, kept_steps: int) -> int:
    """Note a run's best realism check on the model (its checks are in the history through ``history_extras``).

    Returns the generator steps behind the weights the model now holds (the best check's when it was
    restored, else ``kept_steps``).
    """
    if realism.best_step is None:
        return kept_steps
    best = {"metric": realism.metric, "generator_step": int(realism.best_step), "value": float(realism.best_value),
            "control": float(realism.control_), "every": int(realism.every), "restored": bool(realism.restored)}
    model.realism_best_ = {**(getattr(model, "realism_best_", None) or {}), stage: best}
    model.best_generator_step_ = int(realism.best_step)
    return int(realism.best_step) if realism.restored else kept_steps
