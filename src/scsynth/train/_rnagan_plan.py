"""RNAGAN's adversarial training plan over episodes (manual optimisation, two optimisers)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from scvi.train import TrainingPlan

from ._episodes import MASK, NEGATIVE, REFS, TARGET

#: What :class:`RNAGANTrainingPlan` logs per epoch.
RNAGAN_HISTORY_KEYS = {
    "discriminator_loss_train": "-log sigmoid(D(target, refs)) - log(1 - sigmoid(D(other group's target, refs))) "
                                "- fake_weight * log(1 - sigmoid(D(G(refs), refs))), mean over episodes",
    "generator_loss_train": "-log sigmoid(D(G(refs), refs)) (non-saturating), mean over episodes",
    "episode_accuracy_train": "fraction of true and other-group episodes the discriminator gets right",
    "fake_detected_train": "fraction of generated targets the discriminator rejects",
}


class RNAGANTrainingPlan(TrainingPlan):
    """Train the episode discriminator and the reference-set generator of :class:`~scsynth.module.RNAGANNetworks`.

    Each batch: one discriminator step on true episodes (target of the references' group), negative
    episodes (a target of another group against the same references, the original's "shifted"
    negatives) and generated targets (weight ``fake_weight``), plus ``l1`` times the learned
    pathways' L1 norm; then, every ``n_discriminator`` batches, one generator step with the
    non-saturating loss. The discriminator is spectral-normalised (no gradient penalty needed, no
    BatchNorm); Adam with two time-scale learning rates replaces the original's 0.02-0.04 rates.

    Parameters
    ----------
    networks
        The discriminator/generator pair.
    lr_discriminator, lr_generator
        Adam learning rates.
    betas
        Adam betas of both optimisers.
    fake_weight
        Weight of generated targets among the discriminator's negatives (0 trains the
        discriminator alone, as the original's first stage). The default 0.1 echoes the original's
        10% of fake episodes; with 0.5 the discriminator of a 2-group bulk data set collapsed to
        rejecting every target.
    n_discriminator
        Discriminator steps per generator step.
    train_generator
        Whether to update the generator at all.
    l1
        Weight of the learned pathways' L1 penalty.
    """

    def __init__(
        self,
        networks: torch.nn.Module,
        *,
        lr_discriminator: float = 1e-3,
        lr_generator: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        fake_weight: float = 0.1,
        n_discriminator: int = 1,
        train_generator: bool = True,
        l1: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(f"Unknown RNAGANTrainingPlan options: {sorted(kwargs)}.")
        # scvi-tools' plan holds the module (``self.module``); the two Adam optimisers are made below
        super().__init__(networks, lr=lr_generator)
        self.lr_discriminator, self.lr_generator, self.betas = lr_discriminator, lr_generator, betas
        self.fake_weight, self.n_discriminator, self.l1 = fake_weight, max(1, int(n_discriminator)), l1
        self.train_generator = train_generator
        self.automatic_optimization = False

    def on_fit_start(self) -> None:
        self.networks.train()  # a loaded or previously trained model is in eval mode

    def configure_optimizers(self):
        d_params = [p for p in self.networks.discriminator_parameters() if p.requires_grad]
        g_params = [p for p in self.networks.generator_parameters() if p.requires_grad]
        return [torch.optim.Adam(d_params, lr=self.lr_discriminator, betas=self.betas),
                torch.optim.Adam(g_params, lr=self.lr_generator, betas=self.betas)]

    def _discriminator_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        d, g = self.networks.discriminator, self.networks.generator
        refs, mask = batch[REFS], batch[MASK]
        pos, neg = d(batch[TARGET], refs, mask), d(batch[NEGATIVE], refs, mask)
        loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
        metrics = {"episode_accuracy": 0.5 * ((pos > 0).float().mean() + (neg < 0).float().mean())}
        if self.fake_weight > 0:
            with torch.no_grad():
                fake = g(refs, mask)
            logit_fake = d(fake, refs, mask)
            loss = loss + self.fake_weight * F.softplus(logit_fake).mean()
            metrics["fake_detected"] = (logit_fake < 0).float().mean()
        pathways = self.networks.features.pathways
        if self.l1 > 0 and pathways.n_learned:
            loss = loss + self.l1 * pathways.l1_penalty()
        return loss, metrics

    @property
    def networks(self) -> torch.nn.Module:
        """The discriminator/generator pair (scvi-tools' ``module``)."""
        return self.module

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """A discriminator step and every ``n_discriminator`` batches a generator step; returns the losses."""
        opt_d, opt_g = self.optimizers()
        loss_d, metrics = self._discriminator_loss(batch)
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()
        n = batch[TARGET].shape[0]
        self.log("discriminator_loss_train", loss_d.detach(), on_step=False, on_epoch=True, batch_size=n)
        for key, value in metrics.items():
            self.log(f"{key}_train", value, on_step=False, on_epoch=True, batch_size=n)
        losses = {"discriminator_loss": loss_d.detach()}
        if self.train_generator and (batch_idx + 1) % self.n_discriminator == 0:
            inference = self.module.inference(**self.module._get_inference_input(batch))
            generated = self.module.generative(**self.module._get_generative_input(batch, inference))
            loss_g = self.module.loss(batch, inference, generated).loss
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
            self.log("generator_loss_train", loss_g.detach(), on_step=False, on_epoch=True, batch_size=n)
            losses["generator_loss"] = loss_g.detach()
        return losses  # checked for NaN/inf by DivergenceGuard
