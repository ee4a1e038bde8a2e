"""One way to run a training: seeding, quiet Lightning, one progress bar, and a history per stage.

Every scsynth model trains through :meth:`TrainingMixin.run_training` (ScGAN and GRouNdGAN through
``GANModelBase.train``, GeneSys per cycle, RNAGAN per stage), so the scaffolding is written once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from lightning.pytorch.callbacks import Callback

from .._deprecation import warn_renamed
from .._settings import settings
from ..train._quiet import quiet_lightning

__all__ = ["TrainingMixin", "concat_history", "numeric_history"]


def numeric_history(history: dict[str, pd.DataFrame] | None) -> dict[str, pd.DataFrame]:
    """scvi's logger stores object columns; numbers are what users plot and compare."""
    return {k: v.apply(pd.to_numeric, errors="coerce") for k, v in (history or {}).items()}


def concat_history(old: dict[str, pd.DataFrame] | None, new: dict[str, pd.DataFrame] | None) -> dict:
    """Rows of ``new`` after those of ``old``, key by key (keys of either)."""
    old, new = old or {}, new or {}
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
        **trainer_kwargs: Any,
    ) -> None:
        """Seed, run scvi-tools' :class:`~scvi.train.TrainRunner` quietly, and file the history under ``stage``.

        ``progress_bar`` is added unless ``enable_progress_bar=False`` is in ``trainer_kwargs`` or
        ``scsynth.settings.progress`` is off. After the run ``is_trained_`` is true (the caller lowers it
        when the run diverged before any finite step).
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
            self._file_history(stage)
            self.is_trained_ = True if finished else was_trained

    def _file_history(self, stage: str) -> None:
        histories = dict(getattr(self, "histories_", None) or {})
        histories[stage] = concat_history(histories.get(stage), numeric_history(getattr(self, "history_", None)))
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
