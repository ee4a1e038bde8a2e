"""RNAGAN's adversarial training plan over episodes (manual optimisation, two optimisers)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from scvi.train import TrainingPlan

from ._episodes import GROUP, MASK, NEGATIVE, REFS, TARGET

#: kernel widths of :func:`group_mmd`, as multiples of the median generated-real squared distance
MMD_SCALES = (0.25, 1.0, 4.0)


def group_mmd(fake: torch.Tensor, batch: dict[str, torch.Tensor], *, max_real: int = 256) -> torch.Tensor:
    """Squared MMD between each group's generated profiles and its real members in the batch, averaged.

    The real members of a group are its episodes' targets and references (at most ``max_real`` of them);
    the kernel is a mixture of Gaussians on the ``log1p`` profiles with widths set by the median
    generated-real distance (no gradient through the widths). Groups with fewer than two generated
    profiles are skipped; 0 when none is left.
    """
    groups, refs, mask, target = batch[GROUP], batch[REFS], batch[MASK], batch[TARGET]
    losses = []
    for g in torch.unique(groups):
        rows = groups == g
        x = fake[rows]
        if x.shape[0] < 2:
            continue
        y = torch.cat([target[rows], refs[rows][mask[rows]]])[:max_real]
        d_xx, d_xy = torch.cdist(x, x).square(), torch.cdist(x, y).square()
        with torch.no_grad():
            d_yy = torch.cdist(y, y).square()
            width = d_xy.median().clamp_min(1e-6)
        k_xx = k_xy = k_yy = 0.0
        for scale in MMD_SCALES:
            k_xx = k_xx + torch.exp(-d_xx / (scale * width))
            k_xy = k_xy + torch.exp(-d_xy / (scale * width))
            k_yy = k_yy + torch.exp(-d_yy / (scale * width))
        n, m = x.shape[0], y.shape[0]
        off = ~torch.eye(n, dtype=torch.bool, device=x.device)
        off_y = ~torch.eye(m, dtype=torch.bool, device=x.device)
        yy = k_yy[off_y].mean() if m > 1 else torch.zeros((), device=x.device)
        losses.append(k_xx[off].mean() - 2 * k_xy.mean() + yy)  # unbiased within each set
    return torch.stack(losses).mean() if losses else fake.sum() * 0.0


#: What :class:`RNAGANTrainingPlan` logs per epoch.
RNAGAN_HISTORY_KEYS = {
    "discriminator_loss_train": "-log sigmoid(D(target, refs)) - log(1 - sigmoid(D(other group's target, refs))) "
                                "- fake_weight * log(1 - sigmoid(D(G(refs), refs))), mean over episodes",
    "generator_loss_train": "mmd_weight * generator_mmd_train + adversarial_weight * -log sigmoid(D(G(refs), refs)) "
                            "(non-saturating, mean over episodes)",
    "generator_mmd_train": "squared MMD between each group's generated profiles and its real members in the batch "
                           "(:func:`group_mmd`), mean over groups",
    "episode_accuracy_train": "fraction of true and other-group episodes the discriminator gets right",
    "fake_detected_train": "fraction of generated targets the discriminator rejects",
}


class RNAGANTrainingPlan(TrainingPlan):
    """Train the episode discriminator and the reference-set generator of :class:`~scsynth.module.RNAGANNetworks`.

    Each batch: one discriminator step on true episodes (target of the references' group), negative
    episodes (a target of another group against the same references, the original's "shifted"
    negatives) and, with ``fake_weight``, generated targets, plus ``l1`` times the learned pathways' L1
    norm; then, every ``n_discriminator`` batches, one generator step. The generator's loss is
    ``mmd_weight`` times :func:`group_mmd` (its profiles against the real members of their group in the
    batch: distribution matching) plus ``adversarial_weight`` times the non-saturating loss against the
    discriminator. The discriminator is spectral-normalised (no gradient penalty needed, no BatchNorm).

    Why distribution matching and no adversarial term by default: the discriminator scores *membership*
    (is the target of the references' group rather than of another?), so the generator that pleases it
    makes the most group-like profile, an exaggeration of what sets its group apart. On GEUVADIS sex
    (``benchmarks/rnagan_realism.py``) that loss doubled and more the Y-gene expression of generated males
    (marker log fold change 1.2-1.3x the held-out one) and left their within-group variance at 5-7% of the
    real one (RF AUROC real vs generated 0.95-1.0). The MMD term brings the fold changes to 1.0x and the
    variance to the real level; ``fake_weight`` is then 0, because a discriminator taught to reject
    realistic fakes of a group is taught to reject that group's members (stratify accuracy fell).

    Parameters
    ----------
    networks
        The discriminator/generator pair.
    lr_discriminator, lr_generator
        Adam learning rates (the generator's 1e-3: at 1e-4 it did not reach the members' variance in the
        default 500 generator steps).
    betas
        Adam betas of both optimisers.
    fake_weight
        Weight of generated targets among the discriminator's negatives: needed only with
        ``adversarial_weight > 0`` (the original used 10% of fake episodes, formerly 0.1 here; with 0.5 the
        discriminator of a 2-group bulk data set collapsed to rejecting every target).
    n_discriminator
        Discriminator steps per generator step.
    train_generator
        Whether to update the generator at all.
    l1
        Weight of the learned pathways' L1 penalty.
    adversarial_weight
        Weight of the non-saturating adversarial loss in the generator's (formerly 1, the only term).
    mmd_weight
        Weight of the distribution-matching term :func:`group_mmd` in the generator's loss.
    """

    def __init__(
        self,
        networks: torch.nn.Module,
        *,
        lr_discriminator: float = 1e-3,
        lr_generator: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        fake_weight: float = 0.0,
        n_discriminator: int = 1,
        train_generator: bool = True,
        l1: float = 1e-4,
        adversarial_weight: float = 0.0,
        mmd_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(f"Unknown RNAGANTrainingPlan options: {sorted(kwargs)}.")
        # scvi-tools' plan holds the module (``self.module``); the two Adam optimisers are made below
        super().__init__(networks, lr=lr_generator)
        self.lr_discriminator, self.lr_generator, self.betas = lr_discriminator, lr_generator, betas
        self.fake_weight, self.n_discriminator, self.l1 = fake_weight, max(1, int(n_discriminator)), l1
        self.train_generator = train_generator
        self.adversarial_weight, self.mmd_weight = float(adversarial_weight), float(mmd_weight)
        self.automatic_optimization = False
        #: generator updates so far (what the realism checks of ``train(monitor_realism=...)`` count)
        self.generator_steps = 0

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
            mmd = group_mmd(generated["x_fake"], batch)
            loss_g = self.mmd_weight * mmd
            if self.adversarial_weight > 0:  # the discriminator's pass over the fakes only when it is used
                loss_g = loss_g + self.adversarial_weight * self.module.loss(batch, inference, generated).loss
            self.log("generator_mmd_train", mmd.detach(), on_step=False, on_epoch=True, batch_size=n)
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
            self.generator_steps += 1
            self.log("generator_loss_train", loss_g.detach(), on_step=False, on_epoch=True, batch_size=n)
            losses["generator_loss"] = loss_g.detach()
        return losses  # checked for NaN/inf by DivergenceGuard
