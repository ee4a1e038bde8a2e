"""The WGAN-GP training plan shared by every GAN in scsynth."""

from __future__ import annotations

import math
from typing import Any

import torch
from scvi.module.base import BaseModuleClass, LossOutput
from scvi.train import TrainingPlan

#: Keys written to ``model.history`` by :class:`WGANGPTrainingPlan` (one row per epoch).
HISTORY_KEYS = {
    "critic_loss_train": "critic loss E[D(fake)] - E[D(real)] + lambda * GP, averaged over critic steps",
    "wasserstein_train": "critic estimate of the Wasserstein distance E[D(real)] - E[D(fake)] on training batches",
    "gradient_penalty_train": "mean (||grad D(x_hat)|| - 1)^2 on interpolates",
    "generator_loss_train": "generator loss -E[D(G(z))] plus any extra losses of the module",
    "generator_step": "number of generator steps done by the end of the epoch",
    "lr_generator": "generator learning rate at the end of the epoch",
    "wasserstein_validation": "critic estimate of the Wasserstein distance on validation cells",
}


class WGANGPTrainingPlan(TrainingPlan):
    """WGAN-GP with manual optimisation, driven in generator steps.

    Every training batch is one critic step on fresh real cells; every ``n_critic``-th critic step
    is followed by one generator step. Training stops after exactly ``max_generator_steps``
    generator steps. Both learning rates decay exponentially per generator step, from ``lr`` to
    ``lr * lr_decay_to`` over the planned number of generator steps. Optimisers are AdamW with
    AMSGrad and ``betas``; gradients are clipped by hand when ``gradient_clip_val`` is set (Lightning
    refuses ``gradient_clip_val`` under manual optimisation).

    The module must provide ``generator_parameters()``, ``critic_parameters()``,
    ``critic(x, labels)``, ``inference`` returning ``x_real`` and ``labels``, ``generative``
    returning ``x_fake`` and ``loss`` returning the generator's :class:`~scvi.module.base.LossOutput`.
    A module adds its own generator losses in ``loss`` (their parts go in ``extra_metrics`` and are
    logged as ``<name>_train``). The logged keys are listed in :data:`HISTORY_KEYS`.

    Parameters
    ----------
    module
        The GAN module.
    lr
        Initial generator learning rate.
    lr_critic
        Initial critic learning rate (``lr`` when ``None``).
    lr_decay_to
        Final learning rate as a fraction of the initial one (1 keeps it constant).
    lr_critic_decay_to
        The same for the critic (``lr_decay_to`` when ``None``; GRouNdGAN keeps its critic's rate constant).
    n_critic
        Critic steps per generator step.
    lambda_gp
        Weight of the gradient penalty.
    betas
        Adam betas.
    weight_decay
        Decoupled weight decay of AdamW.
    amsgrad
        Use the AMSGrad variant.
    gradient_clip_val
        Clip each network's gradient norm to this value, or ``None``.
    max_generator_steps
        Stop after this many generator steps; ``None`` runs the Trainer's ``max_epochs``.
    **kwargs
        Passed to :class:`scvi.train.TrainingPlan`.
    """

    def __init__(
        self,
        module: BaseModuleClass,
        *,
        lr: float = 1e-4,
        lr_critic: float | None = None,
        lr_decay_to: float = 0.1,
        lr_critic_decay_to: float | None = None,
        n_critic: int = 5,
        lambda_gp: float = 10.0,
        betas: tuple[float, float] = (0.5, 0.9),
        weight_decay: float = 0.01,
        amsgrad: bool = True,
        gradient_clip_val: float | None = None,
        max_generator_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(module, lr=lr, weight_decay=weight_decay, **kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}.")
        lr_critic_decay_to = lr_decay_to if lr_critic_decay_to is None else lr_critic_decay_to
        for name, value in (("lr_decay_to", lr_decay_to), ("lr_critic_decay_to", lr_critic_decay_to)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}.")
        if max_generator_steps is not None and max_generator_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_generator_steps}.")
        self.lr_critic = lr if lr_critic is None else lr_critic
        self.lr_decay_to = lr_decay_to
        self.lr_critic_decay_to = lr_critic_decay_to
        self.n_critic = n_critic
        self.lambda_gp = lambda_gp
        self.betas = tuple(betas)
        self.amsgrad = amsgrad
        self.gradient_clip_val = gradient_clip_val
        self.max_generator_steps = max_generator_steps
        self.automatic_optimization = False
        self.critic_steps = 0
        self.generator_steps = 0

    # -- setup -----------------------------------------------------------------------------------
    def planned_generator_steps(self) -> int:
        """Generator steps this fit will run (used by the LR schedule and the progress bar)."""
        if self.max_generator_steps is not None:
            return self.max_generator_steps
        batches = self.trainer.num_training_batches * self.trainer.max_epochs
        return max(1, math.floor(batches / self.n_critic))

    def on_fit_start(self) -> None:
        # scvi leaves the module in eval mode after a previous train()/load() (scvi-tools#3539).
        self.module.train()
        steps = self.planned_generator_steps()
        decays = [self.lr_decay_to, self.lr_critic_decay_to]  # generator, critic; other optimisers keep their lr
        for scheduler, decay in zip(self._schedulers(), decays, strict=False):
            scheduler.gamma = decay ** (1.0 / steps)

    def _adamw(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            [p for p in params if p.requires_grad],
            lr=lr,
            betas=self.betas,
            weight_decay=self.weight_decay,
            amsgrad=self.amsgrad,
        )

    def configure_optimizers(self):
        opt_g = self._adamw(self.module.generator_parameters(), self.lr)
        opt_c = self._adamw(self.module.critic_parameters(), self.lr_critic)
        # gamma is set in on_fit_start, once the number of generator steps is known
        schedulers = [torch.optim.lr_scheduler.ExponentialLR(opt, gamma=1.0) for opt in (opt_g, opt_c)]
        return [opt_g, opt_c], schedulers

    def _schedulers(self) -> list:
        scheds = self.lr_schedulers()
        if scheds is None:
            return []
        return list(scheds) if isinstance(scheds, list | tuple) else [scheds]

    # -- steps -----------------------------------------------------------------------------------
    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Two-sided penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` on random interpolates of real and fake."""
        eps = torch.rand(real.shape[0], 1, device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.module.critic(x_hat, labels).sum(), x_hat, create_graph=True)
        return ((grad.norm(2, dim=1) - 1) ** 2).mean()

    def _log(self, key: str, value: torch.Tensor, n: int, prog_bar: bool = False) -> None:
        self.log(key, value.detach(), on_step=False, on_epoch=True, batch_size=n, prog_bar=prog_bar,
                 sync_dist=self.use_sync_dist)

    def _optimizer_step(self, opt, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.gradient_clip_val is not None:
            self.clip_gradients(opt, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        opt.step()

    def critic_step(self, batch: dict, inference_outputs: dict) -> torch.Tensor:
        """One critic update on a batch of real cells and as many fresh fakes; returns the critic loss."""
        opt_c = self.optimizers()[1]
        real, labels = inference_outputs["x_real"], inference_outputs["labels"]
        n = real.shape[0]
        with torch.no_grad():
            fake = self.module.generative(**self.module._get_generative_input(batch, inference_outputs))["x_fake"]
        with self.toggled_optimizer(opt_c):
            d_real = self.module.critic(real, labels).mean()
            d_fake = self.module.critic(fake, labels).mean()
            gp = self.gradient_penalty(real, fake, labels)
            loss = d_fake - d_real + self.lambda_gp * gp
            self._optimizer_step(opt_c, loss)
        self._log("critic_loss_train", loss, n)
        self._log("wasserstein_train", d_real - d_fake, n, prog_bar=True)
        self._log("gradient_penalty_train", gp, n)
        return loss.detach()

    def generator_step(self, batch: dict, inference_outputs: dict) -> LossOutput:
        """One generator update; returns the module's loss output."""
        opt_g = self.optimizers()[0]
        with self.toggled_optimizer(opt_g):
            generative_outputs = self.module.generative(**self.module._get_generative_input(batch, inference_outputs))
            loss_output = self.module.loss(batch, inference_outputs, generative_outputs)
            self._optimizer_step(opt_g, loss_output.loss)
        n = inference_outputs["x_real"].shape[0]
        self._log("generator_loss_train", loss_output.loss, n, prog_bar=True)
        for key, value in (loss_output.extra_metrics or {}).items():
            self._log(f"{key}_train", value, n)
        return loss_output

    def after_generator_step(self, batch: dict, inference_outputs: dict) -> dict[str, torch.Tensor]:
        """Hook for models that train extra networks once per generator step; returns their losses (none)."""
        return {}

    def training_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """One critic step and, every ``n_critic`` batches, a generator step; returns the step's losses.

        The returned losses are what :class:`~scsynth.train.DivergenceGuard` checks for NaN/inf.
        """
        inference_outputs = self.module.inference(**self.module._get_inference_input(batch))
        losses = {"critic_loss": self.critic_step(batch, inference_outputs)}
        self.critic_steps += 1
        if self.critic_steps % self.n_critic == 0:
            losses["generator_loss"] = self.generator_step(batch, inference_outputs).loss.detach()
            losses.update(self.after_generator_step(batch, inference_outputs))
            self.count_generator_step()
        return losses

    def count_generator_step(self, *, generator_only: bool = False) -> None:
        """Step the learning-rate schedules (``generator_only``: the generator's alone) and stop after
        ``max_generator_steps`` generator steps."""
        for scheduler in self._schedulers()[:1] if generator_only else self._schedulers():
            scheduler.step()
        self.generator_steps += 1
        if self.max_generator_steps is not None and self.generator_steps >= self.max_generator_steps:
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        self.log("generator_step", float(self.generator_steps), on_epoch=True, sync_dist=self.use_sync_dist)
        self.log("lr_generator", self.optimizers()[0].param_groups[0]["lr"], on_epoch=True,
                 sync_dist=self.use_sync_dist)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        inference_outputs = self.module.inference(**self.module._get_inference_input(batch))
        real, labels = inference_outputs["x_real"], inference_outputs["labels"]
        fake = self.module.generative(**self.module._get_generative_input(batch, inference_outputs))["x_fake"]
        w = self.module.critic(real, labels).mean() - self.module.critic(fake, labels).mean()
        self._log("wasserstein_validation", w, real.shape[0])

    def on_validation_epoch_end(self) -> None:
        """Manual optimisation: nothing to step here (the LR decays per generator step)."""
