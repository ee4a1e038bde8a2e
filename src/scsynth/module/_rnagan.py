"""RNAGAN networks: an episode discriminator and a reference-set generator sharing one pathway layer.

An *episode* is a target profile and a reference set of profiles of one group. The discriminator
scores whether the target belongs with the references; the generator makes a new profile of the
references' group from the references and noise. Profiles are ``log1p`` of expression normalised to
a fixed total; both networks see them next to their pathway activities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from scvi.module.base import BaseModuleClass, LossOutput
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .._constants import EPISODE_MASK, EPISODE_REFS
from ..nn import MarginalCalibration, PathwayLinear, SetPooling


def _mlp(widths: Sequence[int], *, dropout: float, spectral: bool) -> nn.Sequential:
    """Linear -> LayerNorm-free SiLU blocks; spectral norm on every linear map of the discriminator."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        linear = nn.Linear(a, b)
        layers.append(spectral_norm(linear) if spectral else linear)
        layers.append(nn.SiLU())
        if dropout > 0 and i == 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class EpisodeFeatures(nn.Module):
    """Gene profiles -> ``[genes, pathway activities]`` (the features both networks see)."""

    def __init__(self, pathways: PathwayLinear) -> None:
        super().__init__()
        self.pathways = pathways

    @property
    def n_features(self) -> int:
        return self.pathways.n_genes + self.pathways.n_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        return torch.cat([flat, self.pathways(flat)], -1).reshape(*lead, -1)


class EpisodeDiscriminator(nn.Module):
    """Does the target belong with the reference set? A set-conditioned relation network.

    The reference set is pooled (mean, max, std per feature, ignoring padding); the relation input is
    ``[target, pooled, target - mean]``. An MLP with spectral-normalised layers (no BatchNorm, so a
    sample's score does not depend on the rest of the batch) gives an ``n_embedding``-wide embedding
    (the per-sample vector of :meth:`embed`) and a logit.
    """

    def __init__(self, features: EpisodeFeatures, *, hidden: Sequence[int] = (256, 64), dropout: float = 0.1):
        super().__init__()
        self.features = features
        self.pool = SetPooling()
        n = features.n_features
        self.body = _mlp([n + self.pool.n_outputs(n) + n, *hidden], dropout=dropout, spectral=True)
        self.head = spectral_norm(nn.Linear(hidden[-1], 1))
        self.n_embedding = hidden[-1]

    def embed(self, target: torch.Tensor, refs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Relation embedding of ``target`` (batch, genes) against ``refs`` (batch, n, genes)."""
        return self.embed_features(self.features(target), self.features(refs), mask)

    def embed_features(self, t: torch.Tensor, r: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`embed` from the target's and references' ``[genes, pathways]`` features (for attribution)."""
        pooled = self.pool(r, mask)
        mean = pooled[:, : t.shape[-1]]
        return self.body(torch.cat([t, pooled, t - mean], -1))

    def forward(self, target: torch.Tensor, refs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Membership logit, shape (batch,)."""
        return self.head(self.embed(target, refs, mask)).squeeze(-1)

    # -- the same function factorised for scoring many targets against shared reference sets (eval only) ---
    def first_layer_parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The body's first layer split by what it sees: ``(W_target, W_set, bias)``, eval mode only.

        ``W [t, pooled, t - mean] + b = (W_t + W_m) t + (W_pooled pooled - W_m mean) + b``: a target's
        term and a set's term can each be computed once and only their sum goes on per pair. The
        spectral norm is applied once here (in eval mode it does no power iteration, so nothing changes).
        """
        if self.training:
            raise RuntimeError("first_layer_parts is for inference: call .eval() first.")
        linear = self.body[0]
        weight, n = linear.weight, self.features.n_features
        w_t, w_set, w_m = weight[:, :n], weight[:, n:-n].clone(), weight[:, -n:]
        w_set[:, :n] -= w_m  # the pooled vector starts with the mean (as in embed_features)
        return w_t + w_m, w_set, linear.bias

    def target_codes(self, target: torch.Tensor, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Target term (bias included) of the first layer, (batch, hidden[0]).

        ``parts`` from :meth:`first_layer_parts`.
        """
        return torch.addmm(parts[2], self.features(target), parts[0].T)

    def set_codes(self, refs: torch.Tensor, parts: tuple[torch.Tensor, ...],
                  mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reference-set term of the first layer, (batch, hidden[0])."""
        return self.pool(self.features(refs), mask) @ parts[1].T

    def embed_codes(self, target_code: torch.Tensor, set_code: torch.Tensor) -> torch.Tensor:
        """:meth:`embed` of (target, set) pairs from their codes (broadcast against each other)."""
        h = target_code + set_code
        for layer in self.body[1:]:  # in place where it can: the pairs are the bulk of the memory traffic
            fresh = isinstance(layer, nn.SiLU) and not torch.is_grad_enabled()
            h = F.silu(h, inplace=True) if fresh else layer(h)
        return h

    def logit_codes(self, target_code: torch.Tensor, set_code: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of (target, set) pairs from their codes."""
        return self.head(self.embed_codes(target_code, set_code)).squeeze(-1)


class SetGenerator(nn.Module):
    """A new profile of the references' group: the reference mean times a learned, noise-driven fold change.

    The pooled reference set is encoded to ``n_latent`` dimensions, joined with ``n_noise`` Gaussian
    noise (so one reference set gives many different samples, unlike the original's deterministic
    map), and decoded to a per-gene log fold change on the reference mean. The last layer starts at
    zero, so an untrained generator returns the reference mean.
    """

    def __init__(
        self,
        features: EpisodeFeatures,
        *,
        hidden: Sequence[int] = (256, 64),
        n_latent: int = 16,
        n_noise: int = 16,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.features = features
        self.pool = SetPooling()
        n = features.n_features
        self.encoder = _mlp([self.pool.n_outputs(n), *hidden, n_latent], dropout=dropout, spectral=False)
        self.decoder = _mlp([n_latent + n_noise, *reversed(hidden)], dropout=0.0, spectral=False)
        self.fold_change = nn.Linear(hidden[0], features.pathways.n_genes)
        nn.init.zeros_(self.fold_change.weight)
        nn.init.zeros_(self.fold_change.bias)
        self.n_latent, self.n_noise = n_latent, n_noise

    def encode(self, refs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Group vector of each reference set, shape (batch, n_latent)."""
        return self.encoder(self.pool(self.features(refs), mask))

    def forward(
        self,
        refs: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One generated ``log1p`` profile per reference set, shape (batch, genes)."""
        if noise is None:
            noise = torch.randn(refs.shape[0], self.n_noise, generator=generator).to(refs.device)
        log_fc = self.fold_change(self.decoder(torch.cat([self.encode(refs, mask), noise], -1)))
        weight = torch.ones(refs.shape[:2], device=refs.device) if mask is None else mask.to(refs.dtype)
        ref_mean = (torch.expm1(refs) * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True)
        # log1p(mean * exp(log_fc)), computed stably on the log scale
        return torch.logaddexp(torch.log(ref_mean.clamp_min(0)) + log_fc, torch.zeros_like(log_fc))


class RNAGANNetworks(BaseModuleClass):
    """The discriminator and generator of RNAGAN, sharing (tying) one pathway layer.

    Sharing the pathway layer means one set of pathway activities for every job (the pathway
    features that ``markers`` ranks are the ones ``embed`` reports) and that the learned pathways
    are learned once, from both networks' gradients, then frozen together for bulk fine-tuning.

    Parameters
    ----------
    pathways
        The gene -> pathway layer (known MSigDB sets and learned pathways).
    hidden
        Hidden widths of both networks (the original: 256, 64).
    n_latent, n_noise
        Generator bottleneck (16 in the original) and noise sizes.
    dropout
        Dropout after the first hidden layer.
    n_groups
        Groups with their own marginal calibration (``marginals``, a
        :class:`~scsynth.nn.MarginalCalibration` fitted after training: one per modality and label).
    """

    def __init__(
        self,
        pathways: PathwayLinear,
        *,
        hidden: Sequence[int] = (256, 64),
        n_latent: int = 16,
        n_noise: int = 16,
        dropout: float = 0.1,
        n_groups: int = 1,
    ) -> None:
        super().__init__()
        self.features = EpisodeFeatures(pathways)
        self.discriminator = EpisodeDiscriminator(self.features, hidden=hidden, dropout=dropout)
        self.generator = SetGenerator(self.features, hidden=hidden, n_latent=n_latent, n_noise=n_noise,
                                      dropout=dropout)
        # buffers only (no weights): generated profiles mapped gene by gene onto the training samples' marginals
        self.marginals = MarginalCalibration(pathways.n_genes, max(1, int(n_groups)))

    # -- scvi BaseModuleClass interface: the generator's pass over a batch of episodes ---------------------
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {"refs": tensors[EPISODE_REFS], "mask": tensors.get(EPISODE_MASK)}

    def _get_generative_input(self, tensors: dict, inference_outputs: dict, **kwargs) -> dict:
        return {"refs": inference_outputs["refs"], "mask": inference_outputs["mask"]}

    def inference(self, refs: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        """The reference sets and their mask (the generator encodes them itself, in :meth:`generative`)."""
        return {"refs": refs, "mask": mask}

    def generative(
        self, refs: torch.Tensor, mask: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """One generated ``log1p`` profile per reference set."""
        return {"x_fake": self.generator(refs, mask, generator=generator)}

    def loss(self, tensors: dict, inference_outputs: dict, generative_outputs: dict) -> LossOutput:
        """The generator's non-saturating loss ``-log sigmoid(D(G(refs), refs))``."""
        refs, mask = inference_outputs["refs"], inference_outputs["mask"]
        fake = generative_outputs["x_fake"]
        return LossOutput(loss=F.softplus(-self.discriminator(fake, refs, mask)).mean(),
                          n_obs_minibatch=fake.shape[0])

    @torch.inference_mode()
    def sample(
        self, refs: torch.Tensor, mask: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Generated ``log1p`` profiles of the reference sets, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self.generative(refs, mask, generator=generator)["x_fake"]
        finally:
            self.train(was_training)

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """The discriminator's own weights plus the shared pathway layer."""
        return [*self.discriminator.body.parameters(), *self.discriminator.head.parameters(),
                *self.features.parameters()]

    def generator_parameters(self) -> list[nn.Parameter]:
        """The generator's own weights (the pathway layer is trained through the discriminator)."""
        return [*self.generator.encoder.parameters(), *self.generator.decoder.parameters(),
                *self.generator.fold_change.parameters()]
