"""GeneSys training plan: scvi-tools' VAE plan with AdamW and GeneSys's relative-threshold plateau schedule."""

from __future__ import annotations

import copy
from typing import Any

import lightning
import torch
from scvi.train import TrainingPlan
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ._divergence import is_invalid_distribution_parameter


class GeneSysTrainingPlan(TrainingPlan):
    """Minimise ``-ELBO + classification_weight * cross-entropy`` over trajectory batches.

    Differences from :class:`scvi.train.TrainingPlan`: AdamW by default (``weight_decay=0.01``,
    ``eps=1e-8``, as GeneSys), the plateau schedule uses a *relative* threshold (GeneSys: halve the
    learning rate after 10 epochs without a 5% improvement), and the validation loss is always
    computed with the full KL weight so that it is comparable across the KL warm-up.

    Parameters
    ----------
    module
        A :class:`~scsynth.module.GeneSysModule`.
    lr_scheduler_metric
        Logged metric the plateau schedule follows (``"validation_loss"``; ``"train_loss"`` when
        there are no validation cells).
    **kwargs
        Options of :class:`scvi.train.TrainingPlan` (``lr``, ``weight_decay``, ``n_epochs_kl_warmup``,
        ``reduce_lr_on_plateau``, ``lr_factor``, ``lr_patience``, ``lr_threshold``, ``lr_min``).
    """

    def __init__(self, module: torch.nn.Module, *, lr_scheduler_metric: str = "validation_loss", **kwargs: Any):
        defaults = {
            "optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.01, "eps": 1e-8, "n_epochs_kl_warmup": 50,
            "reduce_lr_on_plateau": True, "lr_factor": 0.5, "lr_patience": 10, "lr_threshold": 0.05,
        }
        super().__init__(module, **{**defaults, **kwargs})
        self.lr_scheduler_metric = lr_scheduler_metric

    def on_fit_start(self) -> None:
        self.module.train()  # scvi leaves the module in eval mode after a previous train() or load()

    def training_step(self, batch, batch_idx):
        try:
            return super().training_step(batch, batch_idx)
        except ValueError as err:
            if not is_invalid_distribution_parameter(err):
                raise
            # weights that overflowed give NaN distribution parameters: report a NaN loss that updates no
            # weight, so that DivergenceGuard stops training with a clear error
            return {"loss": torch.full((), torch.nan, device=self.device, requires_grad=True)}

    def validation_step(self, batch, batch_idx):
        kwargs = {**self.loss_kwargs, "kl_weight": 1.0}
        try:
            _, _, loss_output = self.forward(batch, loss_kwargs=kwargs)
        except ValueError as err:
            if not is_invalid_distribution_parameter(err):
                raise
            # weights that overflow (training then stops on the NaN training loss): no best state, no crash
            self.log("validation_loss", torch.nan, on_epoch=True, sync_dist=self.use_sync_dist)
            return
        self.log("validation_loss", loss_output.loss, on_epoch=True, sync_dist=self.use_sync_dist)
        self.compute_and_log_metrics(loss_output, self.val_metrics, "validation")

    def compute_and_log_metrics(self, loss_output, metrics, mode):
        # scvi runs this under inference_mode; metric states made there cannot be synced in place across
        # DDP ranks at epoch end ("Inplace update to inference tensor"), so use no_grad instead
        with torch.no_grad():
            TrainingPlan.compute_and_log_metrics.__wrapped__(self, loss_output, metrics, mode)

    def configure_optimizers(self):
        params = filter(lambda p: p.requires_grad, self.module.parameters())
        optimizer = self.get_optimizer_creator()(params)
        if not self.reduce_lr_on_plateau:
            return {"optimizer": optimizer}
        scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=self.lr_factor, patience=self.lr_patience,
                                      threshold=self.lr_threshold, threshold_mode="rel", min_lr=self.lr_min)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.lr_scheduler_metric}}


class BestStateTracker(lightning.Callback):
    """Keep a copy of the module's weights at the epoch with the lowest (``mode="max"``: highest) ``monitor``."""

    def __init__(self, monitor: str, best: float | None = None, *, mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        self.sign = 1.0 if mode == "min" else -1.0
        best = float("inf") * self.sign if best is None else best
        self.monitor, self.best, self.state, self.epoch = monitor, best, None, None

    def _check(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        value = float(value)
        if self.sign * value < self.sign * self.best:
            self.best, self.epoch = value, trainer.current_epoch
            self.state = copy.deepcopy(plan.module.state_dict())

    def on_validation_epoch_end(self, trainer, plan) -> None:
        if "validation" in self.monitor:
            self._check(trainer, plan)

    def on_train_epoch_end(self, trainer, plan) -> None:
        if "validation" not in self.monitor:
            self._check(trainer, plan)
