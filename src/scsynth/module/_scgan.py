"""ScGAN module: generator and critic of scGAN / cscGAN (the maths, no AnnData)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn

from .._constants import DEFAULT_LIBRARY_SIZE, SCSYNTH_KEYS
from ..nn import CountNoise, LibrarySizeNormalization, MarginalCalibration, MLPCritic, MLPGenerator


def as_dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.layout != torch.strided else x


class ScGANModule(BaseModuleClass):
    """Wasserstein GAN with a library-size-normalised output (scGAN); conditional when ``n_labels > 1``.

    Real cells are library-size normalised to ``library_size`` inside the module, so the critic
    compares generated and real cells on the same scale. The module exposes the protocol that
    :class:`~scsynth.train.WGANGPTrainingPlan` drives: :meth:`generator_parameters`,
    :meth:`critic_parameters`, :meth:`critic`, ``inference`` (real cells) and ``generative`` (fakes).

    The module also holds a :class:`~scsynth.nn.CountNoise` layer, applied to every generated cell (in
    ``generative`` and :meth:`sample`) once its unit distributions are fitted
    (``ScGAN(output_noise="poisson")`` fits them before training; unfitted it changes nothing). Each
    cell's count unit follows its first latent value (``latent_levels``), so the generator knows it.

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
        Transform of the critic input, ``"none"`` (default, as :class:`~scsynth.model.ScGAN`'s) or ``"log1p"``
        (see :class:`~scsynth.nn.MLPCritic`).
    label_output_bias
        Give a conditional generator a per-label output bias (see :class:`~scsynth.nn.MLPGenerator`).
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
        critic_input: str = "none",
        label_output_bias: bool = False,
    ) -> None:
        super().__init__()
        self.n_input = n_input
        self.n_latent = n_latent
        self.conditional = n_labels > 1
        n_cond = n_labels if self.conditional else 0
        self.normalize = LibrarySizeNormalization(library_size)
        self.generator = MLPGenerator(
            n_latent, n_input, n_hidden=generator_hidden, n_labels=n_cond, library_size=library_size,
            label_output_bias=label_output_bias,
        )
        self.critic_net = MLPCritic(n_input, n_hidden=critic_hidden, n_labels=n_cond, input_transform=critic_input)
        # per-label maps of generated normalised values onto the training cells' (fitted after training)
        self.marginals = MarginalCalibration(n_input, max(n_labels, 1))
        # per-label count units of the training cells (fitted before training with output_noise="poisson")
        self.count_noise = CountNoise(max(n_labels, 1), latent_levels=True)
        # whether training's generated cells get the count noise (scsynth.train.CountNoiseWarmup switches it)
        self.count_noise_in_training = True

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
        labels = labels if self.conditional else None
        x = self.generator(z, labels)
        if self.count_noise_in_training:
            x = self.count_noise(x, labels, latent=z)
        return {"x_fake": x, "z": z}

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
        normalize: bool = True,
        on_batch: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor | None:
        """Generate ``n_obs`` normalised cells on the CPU, in batches, with the module in eval mode.

        ``normalize=False`` gives the generator's ReLU output before the library-size normalisation (with a
        fitted :class:`~scsynth.nn.CountNoise`, the noisy normalised cells: the noise is in their units). With
        ``on_batch``, each batch of cells is handed to ``on_batch(start, cells)`` as it is made (and not
        kept, so no ``n_obs x genes`` tensor exists; ``cells`` is overwritten by the next batch: copy it to
        keep it) and ``None`` is returned. The eval-mode BatchNorm
        statistics are folded into the linear layers: the same function, with fewer passes over memory.
        """
        was_training = self.training
        self.eval()
        net = self.generator
        # eval-mode BatchNorm is affine: fold it into the preceding Linear (W' = W * s, b' = (b - mean) * s + beta)
        folded = []
        for linear, norm in zip(net.linears, net.norms, strict=True):
            bn = norm.bn if self.conditional else norm
            if bn.running_mean is None:  # no running statistics: eval uses batch statistics, cannot fold
                folded = None
                break
            s = torch.rsqrt(bn.running_var + bn.eps)
            shift = -bn.running_mean * s
            if bn.affine:
                s, shift = s * bn.weight, shift * bn.weight + bn.bias
            folded.append(((linear.weight * s[:, None]).t().contiguous(), linear.bias * s + shift, norm))

        # with on_batch, every batch reuses the same activation buffers: fresh large tensors cost page faults
        buffers: dict[int, torch.Tensor] = {}

        def linear(h: torch.Tensor, bias: torch.Tensor, weight: torch.Tensor, layer: int) -> torch.Tensor:
            if on_batch is None:
                return torch.addmm(bias, h, weight)
            if layer not in buffers:
                buffers[layer] = torch.empty(batch_size, weight.shape[1], device=h.device)
            return torch.addmm(bias, h, weight, out=buffers[layer][:len(h)])

        def forward(z: torch.Tensor, lab: torch.Tensor | None) -> torch.Tensor:
            if folded is None:
                return net(z, lab, normalize=normalize)
            h = z
            for layer, (weight, bias, norm) in enumerate(folded):
                h = linear(h, bias, weight, layer)
                if self.conditional:
                    lab = lab.reshape(-1).long()
                    h.mul_(norm.gamma(lab)).add_(norm.beta(lab))
                h.relu_()
            x = linear(h, net.output.bias, net.output.weight.t(), len(folded))
            if net.label_bias is not None:
                x.add_(net.label_bias(lab))
            x.relu_()
            return x.mul_(net.lsn.scale(x)) if normalize and net.lsn is not None else x

        try:
            out = []
            for start in range(0, n_obs, batch_size):
                stop = min(start + batch_size, n_obs)
                z = self.draw_noise(stop - start, generator)
                lab = labels[start:stop].to(self.device) if self.conditional and labels is not None else None
                if self.conditional and lab is None:
                    raise ValueError("This generator is conditional: pass `labels`.")
                cells = forward(z, lab)
                if self.count_noise.is_fitted:
                    cells = cells if normalize else self.normalize(cells)
                    cells = self.count_noise(cells, lab, latent=z, generator=generator)
                cells = cells.cpu()
                if on_batch is None:
                    out.append(cells)
                else:
                    on_batch(start, cells)
            if on_batch is not None:
                return None
            return torch.cat(out) if out else torch.zeros(0, self.n_input)
        finally:
            self.train(was_training)
