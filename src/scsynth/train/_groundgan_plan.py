"""GRouNdGAN's training plan: WGAN-GP plus a labeler and an anti-labeler in stage 2."""

from __future__ import annotations

from typing import Any

import torch
from scvi.module.base import BaseModuleClass

from ._wgan_gp import WGANGPTrainingPlan

#: Extra keys GRouNdGAN's stage 2 writes to ``model.history`` (besides :data:`~scsynth.train.HISTORY_KEYS`).
GROUNDGAN_HISTORY_KEYS = {
    "generator_adversarial_train": "-E[D(fake)], the adversarial part of the generator loss",
    "generator_labeler_train": "labeler MSE on fake cells, as minimised by the generator",
    "generator_antilabeler_train": "anti-labeler MSE on fake cells, as minimised by the generator",
    "labeler_real_train": "labeler MSE on real cells (the labeler's own update)",
    "labeler_fake_train": "labeler MSE on fake cells (the labeler's own update)",
    "antilabeler_train": "anti-labeler MSE on fake cells (its own update)",
    "generator_conditional_train": "energy score of targets generated from real cells' TFs (target_objective "
                                   "'conditional')",
    "generator_conditional_validation": "the same energy score on validation cells (target_objective 'conditional')",
}


class GRouNdGANTrainingPlan(WGANGPTrainingPlan):
    """:class:`WGANGPTrainingPlan` for :class:`~scsynth.module.GRouNdGANModule`.

    In stage 1 it trains the causal controller exactly as scGAN. In stage 2, after each generator
    step, the anti-labeler takes a step on fresh fake cells and the labeler one step on the same
    fake cells and one on the real batch (GRouNdGAN's order), each with its own AdamW optimiser at a
    constant learning rate. With ``target_objective="conditional"`` (the default), stage 2 has no critic
    and no labeler steps: every batch is one generator step on
    :meth:`~scsynth.module.GRouNdGANModule.conditional_loss`. Before the first stage-2 step of a new
    model, the target generators' output scales start at the first real batch's means
    (:meth:`~scsynth.module.GRouNdGANModule.init_targets`).

    Parameters
    ----------
    module
        A :class:`~scsynth.module.GRouNdGANModule`.
    lr_labeler
        Learning rate of the labeler and the anti-labeler.
    **kwargs
        Options of :class:`WGANGPTrainingPlan`.
    """

    def __init__(self, module: BaseModuleClass, *, lr_labeler: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(module, **kwargs)
        self.lr_labeler = lr_labeler

    def configure_optimizers(self):
        optimizers, schedulers = super().configure_optimizers()
        if self.module.stage == 2 and not self.module.conditional_stage:  # the conditional one trains no labelers
            optimizers += [self._adamw(self.module.labeler.parameters(), self.lr_labeler),
                           self._adamw(self.module.anti_labeler.parameters(), self.lr_labeler)]
        return optimizers, schedulers

    def _labeler_step(self, opt, x: torch.Tensor, network: str, key: str) -> torch.Tensor:
        with self.toggled_optimizer(opt):
            loss = self.module.labeler_loss(x, network)
            self._optimizer_step(opt, loss)
        self._log(key, loss, x.shape[0])
        return loss.detach()

    def _real_cells(self, batch: dict) -> torch.Tensor:
        return self.module.inference(**self.module._get_inference_input(batch))["x_real"]

    def training_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        pending = self.module.stage == 2 and self.module.init_targets_pending
        if not self.module.conditional_stage:
            if pending:  # data-dependent start of the target generators, before their first use
                self.module.init_targets(self._real_cells(batch))
            return super().training_step(batch, batch_idx)
        x_real = self._real_cells(batch)
        if pending:
            self.module.init_targets(x_real)
        # target_objective="conditional": every batch is one generator step on real (TF, target) pairs
        opt_g = self.optimizers()[0]
        with self.toggled_optimizer(opt_g):
            loss = self.module.conditional_loss(x_real)
            self._optimizer_step(opt_g, loss)
        self._log("generator_loss_train", loss, x_real.shape[0], prog_bar=True)
        self._log("generator_conditional_train", loss, x_real.shape[0])
        self.count_generator_step(generator_only=True)  # the critic is not trained
        return {"generator_loss": loss.detach()}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if not self.module.conditional_stage:
            return super().validation_step(batch, batch_idx)
        x_real = self._real_cells(batch)
        self._log("generator_conditional_validation", self.module.conditional_loss(x_real), x_real.shape[0])

    def after_generator_step(self, batch: dict, inference_outputs: dict) -> dict[str, torch.Tensor]:
        if self.module.stage != 2:
            return {}
        opt_labeler, opt_anti = self.optimizers()[2:4]
        real = inference_outputs["x_real"]
        with torch.no_grad():
            fake = self.module.generative(**self.module._get_generative_input(batch, inference_outputs))["x_fake"]
        return {"antilabeler_loss": self._labeler_step(opt_anti, fake, "anti_labeler", "antilabeler_train"),
                "labeler_fake_loss": self._labeler_step(opt_labeler, fake, "labeler", "labeler_fake_train"),
                "labeler_real_loss": self._labeler_step(opt_labeler, real, "labeler", "labeler_real_train")}
