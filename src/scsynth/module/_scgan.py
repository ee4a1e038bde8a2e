"""ScGAN module: generator and critic of scGAN / cscGAN (the maths, no AnnData)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from .._constants import DEFAULT_LIBRARY_SIZE, SCSYNTH_KEYS
from ..nn import LibrarySizeNormalization, MLPCritic, MLPGenerator


def as_dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.layout != torch.strided else x


class ScGANModule(BaseModuleClass):
    """Wasserstein GAN with a library-size-normalised output (scGAN); conditional when ``n_labels > 1``.

    Real cells are library-size normalised to ``library_size`` inside the module, so the critic
    compares generated and real cells on the same scale. The module exposes the protocol that
    :class:`~scsynth.train.WGANGPTrainingPlan` drives: :meth:`generator_parameters`,
    :meth:`critic_parameters`, :meth:`critic`, ``inference`` (real cells) and ``generative`` (fakes).

    Parameters
    ----------
    n_input
        Number of genes.
    n_labels
        Number of labels; with more than one the generator uses conditional BatchNorm and the critic
        a projection term (cscGAN).
    n_latent
        Size of the noise vector.
    generator_hidden
        Widths of the generator's hidden blocks.
    critic_hidden
        Widths of the critic's hidden blocks.
    library_size
        Total per cell after normalisation.
    critic_input
        Transform of the critic input, ``"log1p"`` or ``"none"`` (see :class:`~scsynth.nn.MLPCritic`).
    """

    def __init__(
        self,
        n_input: int,
        *,
        n_labels: int = 1,
        n_latent: int = 128,
        generator_hidden: Sequence[int] = (256, 512, 1024),
        critic_hidden: Sequence[int] = (1024, 512, 256),
        library_size: float = DEFAULT_LIBRARY_SIZE,
        critic_input: str = "log1p",
    ) -> None:
        super().__init__()
        self.n_input = n_input
        self.n_latent = n_latent
        self.conditional = n_labels > 1
        n_cond = n_labels if self.conditional else 0
        self.normalize = LibrarySizeNormalization(library_size)
        self.generator = MLPGenerator(
            n_latent, n_input, n_hidden=generator_hidden, n_labels=n_cond, library_size=library_size
        )
        self.critic_net = MLPCritic(n_input, n_hidden=critic_hidden, n_labels=n_cond, input_transform=critic_input)

    # -- protocol used by the WGAN-GP plan -------------------------------------------------------
    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters updated by the generator optimiser."""
        return self.generator.parameters()

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters updated by the critic optimiser."""
        return self.critic_net.parameters()

    @auto_move_data
    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Critic score of normalised cells, shape ``(n,)``."""
        return self.critic_net(x, labels if self.conditional else None)

    def draw_noise(self, n_obs: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard-normal generator input, drawn on the CPU when ``generator`` is given (reproducible)."""
        if generator is not None:
            return torch.randn(n_obs, self.n_latent, generator=generator).to(self.device)
        return torch.randn(n_obs, self.n_latent, device=self.device)

    # -- scvi BaseModuleClass interface ----------------------------------------------------------
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {"x": tensors[SCSYNTH_KEYS.X_KEY], "labels": tensors.get(SCSYNTH_KEYS.LABELS_KEY)}

    def _get_generative_input(self, tensors: dict, inference_outputs: dict, **kwargs) -> dict:
        return {"n_obs": inference_outputs["x_real"].shape[0], "labels": inference_outputs["labels"]}

    @auto_move_data
    def inference(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        """Normalise a batch of real cells to ``library_size``."""
        return {"x_real": self.normalize(as_dense(x).float()), "labels": labels if self.conditional else None}

    @auto_move_data
    def generative(
        self, n_obs: int, labels: torch.Tensor | None = None, z: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Generate ``n_obs`` normalised cells (of ``labels`` when conditional)."""
        if z is None:
            z = self.draw_noise(n_obs)
        return {"x_fake": self.generator(z, labels if self.conditional else None), "z": z}

    def loss(self, tensors: dict, inference_outputs: dict, generative_outputs: dict) -> LossOutput:
        """Generator loss ``-E[critic(G(z))]``."""
        fake = generative_outputs["x_fake"]
        score = self.critic(fake, inference_outputs["labels"])
        return LossOutput(loss=-score.mean(), n_obs_minibatch=fake.shape[0])

    @torch.inference_mode()
    def sample(
        self,
        n_obs: int,
        labels: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        batch_size: int = 8192,
    ) -> torch.Tensor:
        """Generate ``n_obs`` normalised cells on the CPU, in batches, with the module in eval mode."""
        was_training = self.training
        self.eval()
        try:
            out = []
            for start in range(0, n_obs, batch_size):
                stop = min(start + batch_size, n_obs)
                z = self.draw_noise(stop - start, generator)
                lab = labels[start:stop].to(self.device) if labels is not None else None
                out.append(self.generative(stop - start, lab, z=z)["x_fake"].cpu())
            return torch.cat(out) if out else torch.zeros(0, self.n_input)
        finally:
            self.train(was_training)
