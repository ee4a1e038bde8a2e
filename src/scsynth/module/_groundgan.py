"""GRouNdGAN module: causal controller, per-gene target generators, critic, labeler and anti-labeler."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from .._constants import DEFAULT_LIBRARY_SIZE, SCSYNTH_KEYS
from ..nn import LibrarySizeNormalization, MarginalCalibration, MLPCritic, MLPRegressor, TargetGenerators
from ..nn import _conditional_quantiles as cq
from ._scgan import ScGANModule, as_dense


@dataclass
class CellParts:
    """Everything that determines a batch of generated cells (kept for deterministic perturbations)."""

    z: torch.Tensor  #: controller noise, ``(n, n_latent)``
    gene_noise: torch.Tensor | None  #: target-generator noise, ``(n, n_targets, noise_per_gene)`` (None: controller's)
    tf_values: torch.Tensor  #: controller output at the TFs, before library-size normalisation
    targets: torch.Tensor  #: target-generator output, before library-size normalisation
    raw: torch.Tensor  #: the assembled cell before library-size normalisation, ``(n, n_genes)``


class GRouNdGANModule(BaseModuleClass):
    """GRN-guided causal GAN (Zinati et al. 2024).

    Stage 1 (``stage = 1``) is an scGAN, the causal controller, trained on all genes. Stage 2
    (``stage = 2``) freezes it (weights and BatchNorm statistics) and trains the target generators,
    a critic, a labeler and an anti-labeler: each generated cell takes its TF values from the
    controller (before library-size normalisation), each target gene from its own small MLP of its
    regulators' TF values and noise, and the assembled cell is library-size normalised.

    The generator loss in stage 2 is ``-E[D(fake)] + w_l * MSE(labeler(targets), TFs) +
    w_a * MSE(anti_labeler(targets), TFs)`` on the fake cells; the labeler is trained on real and
    fake cells and the anti-labeler on fake cells (by the training plan's ``after_generator_step``).

    Parameters
    ----------
    n_input
        Number of registered genes (columns of the data).
    gene_index
        Columns of the data that are the model's genes, in model order.
    tf_positions, target_positions
        Positions of the TFs and targets among the model's genes.
    regulators
        For each target, indices of its regulators in the TF vector.
    controller_n_input
        Number of genes the controller generates.
    controller_tf_index
        Positions of the model's TFs among the controller's genes.
    n_latent, controller_hidden
        Controller noise size and hidden widths.
    critic_hidden
        Hidden widths of both critics (stage 1 and stage 2).
    width, depth, noise_per_gene, min_hidden
        Per-gene target generators (see :class:`~scsynth.nn.TargetGenerators`).
    labeler_hidden
        Hidden widths of the labeler and the anti-labeler.
    library_size
        Total per cell after library-size normalisation.
    critic_input
        Critic input transform, ``"none"`` (default, as the model's) or ``"log1p"``.
    labeler_input
        ``"log1p"`` trains the labelers on log1p of the normalised values; ``"none"`` on the values
        themselves (the original, whose MSE is on the 20 000 scale).
    labeler_weight, antilabeler_weight
        Weights of the two labeler terms in the generator loss.
    tf_input
        What the target generators see of the controller's TFs: ``"log1p"`` (default: ``log(1 + x / tf_scale)``
        of its library-size normalised values ``x``, ``tf_scale`` each TF's mean in the first real batch of stage 2;
        linear below the mean, so a knockout to 0 stays near the data, logarithmic above, so a long tail does not
        set the scale),
        ``"normalized"`` (those values themselves, on the scale of real normalised cells; the earlier default)
        or ``"raw"`` (its output before normalisation, GRouNdGAN's original and the behaviour of models
        saved by scsynth <= 0.3). The first two let the conditional objective feed real cells' TFs.
    output_bias
        Initial output bias of the target generators (see :class:`~scsynth.nn.TargetGenerators`).
    target_objective
        How stage 2 trains the target generators. ``"conditional"`` (default): the energy score of
        each target generated from *real* cells' TFs against those cells' targets
        (:meth:`conditional_loss`), alone; no critic and no labelers. A target generator models its
        gene given its regulators with its own noise, so the product of these conditionals is the
        model's whole distribution of targets given the TFs, and a strictly proper score fits each
        one directly, from real (TF, target) pairs. ``"adversarial"``: GRouNdGAN's critic and
        labelers on whole cells made from the controller's TFs (the original).
    target_noise
        Where a generated cell's targets get their noise. ``"independent"`` (default, GRouNdGAN's): each
        target its own, so targets are independent given their regulators and the imposed GRN is the
        whole dependence structure. ``"controller"``: from the controller's whole cell (abduction): a
        cell *is* the controller's cell, and a perturbation moves each target along its generator's
        conditional quantiles from that cell's quantile (:meth:`counterfactual`), so the targets share
        whatever the controller learnt beyond the TFs. Needs ``controller_gene_index``.
    controller_gene_index
        Positions of the model's genes among the controller's (``None`` where the controller lacks one).
    """

    def __init__(
        self,
        n_input: int,
        *,
        gene_index: np.ndarray,
        tf_positions: np.ndarray,
        target_positions: np.ndarray,
        regulators: Sequence[np.ndarray],
        controller_n_input: int,
        controller_tf_index: np.ndarray,
        n_latent: int = 128,
        controller_hidden: Sequence[int] = (256, 512, 1024),
        critic_hidden: Sequence[int] = (1024, 512, 256),
        width: int = 2,
        depth: int = 3,
        noise_per_gene: int = 1,
        min_hidden: int = 0,
        labeler_hidden: Sequence[int] = (256, 256, 256),
        library_size: float = DEFAULT_LIBRARY_SIZE,
        critic_input: str = "none",
        labeler_input: str = "log1p",
        labeler_weight: float = 1.0,
        antilabeler_weight: float = 1.0,
        tf_input: str = "log1p",
        output_bias: float = 1.0,
        target_objective: str = "conditional",
        target_noise: str = "independent",
        controller_gene_index: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if labeler_input not in ("log1p", "none"):
            raise ValueError(f"labeler_input must be 'log1p' or 'none', got {labeler_input!r}.")
        if tf_input not in ("log1p", "normalized", "raw"):
            raise ValueError(f"tf_input must be 'log1p', 'normalized' or 'raw', got {tf_input!r}.")
        if target_objective not in ("conditional", "adversarial"):
            raise ValueError(f"target_objective must be 'conditional' or 'adversarial', got {target_objective!r}.")
        if target_objective == "conditional" and tf_input == "raw":
            raise ValueError("target_objective='conditional' needs tf_input='log1p' or 'normalized' (real cells' "
                             "TFs are normalised).")
        if target_noise not in ("independent", "controller"):
            raise ValueError(f"target_noise must be 'independent' or 'controller', got {target_noise!r}.")
        if target_noise == "controller" and (controller_gene_index is None or tf_input == "raw"):
            raise ValueError("target_noise='controller' needs a controller that generates every gene of the model "
                             "and tf_input='log1p' or 'normalized'.")
        self.tf_input, self.target_objective, self.target_noise = tf_input, target_objective, target_noise
        #: set by the model before a first stage 2: start the targets' output scales at the first real batch
        self.init_targets_pending = False
        self.n_input = n_input
        self.n_genes = len(gene_index)
        self.n_tfs, self.n_targets = len(tf_positions), len(target_positions)
        self.noise_per_gene = noise_per_gene
        self.labeler_input = labeler_input
        self.labeler_weight, self.antilabeler_weight = float(labeler_weight), float(antilabeler_weight)
        self.register_buffer("gene_index", torch.as_tensor(np.asarray(gene_index, dtype=np.int64)))
        self.register_buffer("tf_positions", torch.as_tensor(np.asarray(tf_positions, dtype=np.int64)))
        self.register_buffer("target_positions", torch.as_tensor(np.asarray(target_positions, dtype=np.int64)))
        self.register_buffer("controller_tf_index", torch.as_tensor(np.asarray(controller_tf_index, dtype=np.int64)))
        #: each TF's mean in the first real batch of stage 2 (init_targets): the unit of ``tf_input="log1p"``
        self.register_buffer("tf_scale", torch.ones(len(tf_positions)))
        index = np.full(len(gene_index), -1) if controller_gene_index is None else controller_gene_index
        # derived from the constructor's arguments, so not saved (models saved before it load unchanged)
        self.register_buffer("controller_gene_index", torch.as_tensor(np.asarray(index, dtype=np.int64)),
                             persistent=False)
        self.controller = ScGANModule(
            controller_n_input, n_latent=n_latent, generator_hidden=controller_hidden, critic_hidden=critic_hidden,
            library_size=library_size, critic_input=critic_input,
        )
        self.normalize = LibrarySizeNormalization(library_size)
        self.target_generators = TargetGenerators(
            regulators, self.n_tfs, width=width, depth=depth, noise_per_gene=noise_per_gene, output_bias=output_bias,
            min_hidden=min_hidden,
        )
        self.critic_net = MLPCritic(self.n_genes, n_hidden=critic_hidden, input_transform=critic_input)
        self.labeler = MLPRegressor(self.n_targets, self.n_tfs, n_hidden=labeler_hidden)
        self.anti_labeler = MLPRegressor(self.n_targets, self.n_tfs, n_hidden=labeler_hidden)
        #: the generated cells' per-gene marginals mapped onto the training cells' (fitted after stage 2)
        self.marginals = MarginalCalibration(self.n_genes, 1)
        self._stage = 2

    # -- stages ----------------------------------------------------------------------------------
    @property
    def stage(self) -> int:
        """1 trains the causal controller, 2 the target generators (the controller frozen)."""
        return self._stage

    @stage.setter
    def stage(self, value: int) -> None:
        if value not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {value}.")
        self._stage = value
        for p in self.controller.generator.parameters():
            p.requires_grad_(value == 1)
        self.train(self.training)

    @property
    def conditional_stage(self) -> bool:
        """Stage 2 with ``target_objective="conditional"``: no critic or labelers, one energy-score step a batch."""
        return self._stage == 2 and self.target_objective == "conditional"

    def train(self, mode: bool = True) -> GRouNdGANModule:
        super().train(mode)
        if self._stage == 2:  # the controller's BatchNorm statistics stay frozen after stage 1
            self.controller.eval()
        return self

    # -- protocol used by the WGAN-GP plan -------------------------------------------------------
    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Stage 1: the controller's generator; stage 2: the target generators."""
        return self.controller.generator.parameters() if self._stage == 1 else self.target_generators.parameters()

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        """The critic of the current stage."""
        return self.controller.critic_net.parameters() if self._stage == 1 else self.critic_net.parameters()

    @auto_move_data
    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Critic score of normalised cells, shape ``(n,)``."""
        return self.controller.critic(x) if self._stage == 1 else self.critic_net(x)

    def _labeler_scale(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x) if self.labeler_input == "log1p" else x

    def labeler_loss(self, x: torch.Tensor, network: str = "labeler") -> torch.Tensor:
        """MSE of ``network`` (``"labeler"`` or ``"anti_labeler"``) predicting the TFs of normalised cells from their targets."""
        x = self._labeler_scale(x)
        return F.mse_loss(getattr(self, network)(x[:, self.target_positions]), x[:, self.tf_positions])

    # -- generation ------------------------------------------------------------------------------
    def draw_noise(self, n_obs: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Controller noise and per-gene noise (drawn on the CPU when ``generator`` is given: reproducible)."""
        shapes = ((n_obs, self.controller.n_latent), (n_obs, self.n_targets, self.noise_per_gene))
        if generator is not None:
            return tuple(torch.randn(s, generator=generator).to(self.device) for s in shapes)
        return tuple(torch.randn(s, device=self.device) for s in shapes)

    def tf_values(self, z: torch.Tensor) -> torch.Tensor:
        """The controller's TF values (normalised unless ``tf_input="raw"``); no gradient reaches the controller."""
        with torch.no_grad():
            return self.controller.generator(z, normalize=self.tf_input != "raw")[:, self.controller_tf_index]

    def generator_input(self, tf_values: torch.Tensor) -> torch.Tensor:
        """What the target generators read of TF values: ``log1p(value / tf_scale)`` for ``tf_input="log1p"``."""
        return torch.log1p(tf_values / self.tf_scale) if self.tf_input == "log1p" else tf_values

    @torch.no_grad()
    def init_targets(self, x_real: torch.Tensor) -> None:
        """Start each target's output scale (and each TF's ``tf_scale``) at its mean in a batch of real normalised cells."""
        mean = x_real[:, self.target_positions].mean(0)
        floor = x_real.sum(1).mean() / x_real.shape[1] * 1e-3  # a gene absent from the batch still trains
        self.target_generators.output_scale.copy_(mean.clamp_min(floor))
        self.tf_scale.copy_(x_real[:, self.tf_positions].mean(0).clamp_min(floor))
        self.init_targets_pending = False

    def conditional_loss(self, x_real: torch.Tensor) -> torch.Tensor:
        """Energy score of the targets generated from real cells' TFs, against their real targets.

        Per target gene, with two noise draws ``a, b`` and the real value ``y`` (log1p of normalised
        values): ``(|a - y| + |b - y|) / 2 - |a - b| / 2``, averaged over cells and genes. It is a
        strictly proper score of each target's distribution given its regulators, which is exactly
        what a target generator models (targets are independent given the TFs), so it is minimised by
        the true conditional distributions: real (TF, target) pairs teach the causal dependence
        directly, where the critic only sees it through whole cells.
        """
        tfs, real = x_real[:, self.tf_positions], torch.log1p(x_real[:, self.target_positions])
        n = x_real.shape[0]
        noise = torch.randn(2 * n, self.n_targets, self.noise_per_gene, device=x_real.device, dtype=x_real.dtype)
        a, b = torch.log1p(self.target_generators(self.generator_input(tfs).repeat(2, 1), noise)).split(n)
        return ((a - real).abs().mean() + (b - real).abs().mean()) / 2 - (a - b).abs().mean() / 2

    def assemble(self, tf_values: torch.Tensor, gene_noise: torch.Tensor, z: torch.Tensor | None = None) -> CellParts:
        """Run the target generators on given TF values and noise; the cell before normalisation."""
        targets = self.target_generators(self.generator_input(tf_values), gene_noise)
        raw = tf_values.new_zeros(tf_values.shape[0], self.n_genes)
        raw = raw.index_copy(1, self.tf_positions, tf_values).index_copy(1, self.target_positions, targets)
        return CellParts(z=z, gene_noise=gene_noise, tf_values=tf_values, targets=targets, raw=raw)

    def controller_cells(self, z: torch.Tensor) -> CellParts:
        """``target_noise="controller"``: the controller's normalised cells on the model's genes, as cell parts."""
        with torch.no_grad():
            raw = self.controller.generator(z, normalize=True)[:, self.controller_gene_index]
        return CellParts(z=z, gene_noise=None, tf_values=raw[:, self.tf_positions],
                         targets=raw[:, self.target_positions], raw=raw)

    @torch.inference_mode()
    def counterfactual(self, parts: CellParts, tf_values: torch.Tensor, uniforms: torch.Tensor | None = None, *,
                       n_quantiles: int = cq.DEFAULT_N_QUANTILES, chunk: int = 256) -> torch.Tensor:
        """The cells of ``parts`` with their TFs set to ``tf_values``: the whole cell before normalisation (eval mode).

        Independent noise: the target generators rerun on the new TFs with each cell's own noise.
        ``target_noise="controller"``: each target moves from its conditional quantile level given the
        old TFs to the same level given the new ones (:mod:`scsynth.nn._conditional_quantiles`;
        ``uniforms``, ``(n, n_targets)`` in [0, 1), place values tied with several draws, e.g. zeros);
        a target none of whose regulators changed stays exactly as it was.
        """
        if self.target_noise == "independent":
            return self.regenerate(tf_values, parts.gene_noise)
        was_training = self.training
        self.eval()
        try:
            old, new = parts.tf_values.to(self.device), tf_values.to(self.device)
            targets = parts.targets.to(self.device)
            # only targets with a changed regulator move (float noise of a rerun must not leak into the rest)
            moved = ((old != new).float() @ self._regulation().to(old)) > 0
            raw = parts.raw.to(self.device).clone()
            raw[:, self.tf_positions] = new
            if not moved.any():
                return raw.cpu()
            uniforms = torch.full_like(targets, 0.5) if uniforms is None else uniforms.to(targets)
            grid = cq.noise_grid(n_quantiles, self.noise_per_gene)
            # the draws of the targets that move only (a knockout's targets are a few of all): their generators alone
            cols = moved.any(0).nonzero().squeeze(1)
            draw = self.target_generators.subset(cols)
            shifted = []
            for a in range(0, len(old), chunk):
                y = targets[a : a + chunk, cols]
                before, after = (cq.sorted_draws(draw, self.generator_input(t[a : a + chunk]), grid, len(cols))
                                 for t in (old, new))
                levels = cq.quantile_levels(before, y, uniforms[a : a + chunk, cols])
                shift = cq.quantile_at(after, levels) - cq.quantile_at(before, levels)
                shifted.append((y + shift).clamp_min(0))
            shifted = torch.cat(shifted)
            raw[:, self.target_positions[cols]] = torch.where(moved[:, cols], shifted, targets[:, cols])
            return raw.cpu()
        finally:
            self.train(was_training)

    def _regulation(self) -> torch.Tensor:
        """``(n_tfs, n_targets)``: 1 where the TF regulates the target."""
        out = torch.zeros(self.n_tfs, self.n_targets)
        for g, regs in enumerate(self.target_generators.regulators()):
            out[torch.as_tensor(regs, dtype=torch.long), g] = 1.0
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # saved before tf_scale existed: those models read TFs unscaled ("normalized" / "raw"), where it is unused
        state_dict.setdefault(prefix + "tf_scale", torch.ones_like(self.tf_scale))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- scvi BaseModuleClass interface ----------------------------------------------------------
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {"x": tensors[SCSYNTH_KEYS.X_KEY]}

    def _get_generative_input(self, tensors: dict, inference_outputs: dict, **kwargs) -> dict:
        return {"n_obs": inference_outputs["x_real"].shape[0]}

    @auto_move_data
    def inference(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """The model's genes of a batch of real cells, normalised to ``library_size``."""
        x = as_dense(x).float()[:, self.gene_index]
        return {"x_real": self.normalize(x), "labels": None}

    @auto_move_data
    def generative(self, n_obs: int, z: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Generate ``n_obs`` normalised cells (the controller's own cells in stage 1)."""
        if self._stage == 1:
            return self.controller.generative(n_obs, z=z)
        z, gene_noise = self.draw_noise(n_obs) if z is None else (z, self.draw_noise(n_obs)[1])
        parts = self.assemble(self.tf_values(z), gene_noise, z)
        return {"x_fake": self.normalize(parts.raw), "z": z}

    def loss(self, tensors: dict, inference_outputs: dict, generative_outputs: dict) -> LossOutput:
        """Generator loss: stage 1 the controller's; stage 2 :meth:`conditional_loss` or the adversarial one."""
        fake = generative_outputs["x_fake"]
        if self.conditional_stage:
            conditional = self.conditional_loss(inference_outputs["x_real"])
            return LossOutput(loss=conditional, n_obs_minibatch=fake.shape[0],
                              extra_metrics={"generator_conditional": conditional.detach()})
        adversarial = -self.critic(fake).mean()
        if self._stage == 1:
            return LossOutput(loss=adversarial, n_obs_minibatch=fake.shape[0])
        lab, anti = self.labeler_loss(fake, "labeler"), self.labeler_loss(fake, "anti_labeler")
        loss = adversarial + self.labeler_weight * lab + self.antilabeler_weight * anti
        return LossOutput(
            loss=loss, n_obs_minibatch=fake.shape[0],
            extra_metrics={"generator_adversarial": adversarial.detach(), "generator_labeler": lab.detach(),
                           "generator_antilabeler": anti.detach()},
        )

    @torch.inference_mode()
    def sample_parts(
        self, n_obs: int, *, generator: torch.Generator | None = None, batch_size: int = 8192
    ) -> list[CellParts]:
        """Generate ``n_obs`` cells in batches in eval mode (batch-independent), keeping their parts on the CPU."""
        was_training = self.training
        self.eval()
        try:
            out = []
            # all noise drawn up front, so the cells do not depend on batch_size
            z_all, noise_all = self.draw_noise(n_obs, generator)
            for start in range(0, n_obs, batch_size):
                z, gene_noise = z_all[start : start + batch_size], noise_all[start : start + batch_size]
                parts = self.controller_cells(z) if self.target_noise == "controller" else self.assemble(
                    self.tf_values(z), gene_noise, z)
                out.append(CellParts(**{k: None if v is None else v.cpu() for k, v in vars(parts).items()}))
            return out
        finally:
            self.train(was_training)

    @torch.inference_mode()
    def regenerate(self, tf_values: torch.Tensor, gene_noise: torch.Tensor) -> torch.Tensor:
        """Cells before normalisation from given TF values and per-gene noise (eval mode, deterministic)."""
        was_training = self.training
        self.eval()
        try:
            return self.assemble(tf_values.to(self.device), gene_noise.to(self.device)).raw.cpu()
        finally:
            self.train(was_training)
