"""GeneSys module: a causal temporal VAE over lineage trajectories with a trajectory classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scvi.distributions import NegativeBinomial
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from scvi.nn import DecoderSCVI, Encoder, FCLayers
from torch import nn
from torch.distributions import Normal, kl_divergence

#: Batch keys of the trajectory data loader.
X_KEY, TRAJECTORY_KEY, LIBRARY_KEY = "X", "trajectory", "library"
#: Counts are log-normalised to this total before the encoder (the encoder input only).
ENCODER_LIBRARY_SIZE = 1e4
LIKELIHOODS = ("nb", "hurdle", "normal")
SQRT_HALF = 0.5**0.5
#: quantiles per gene of the marginal calibration of continuous values (:meth:`GeneSysModule.calibrate`)
N_QUANTILES = 101


class _GaussianHead(nn.Module):
    """Input -> hidden -> (mean, scale) of a diagonal Gaussian; the scale is bounded away from 0."""

    def __init__(self, n_input: int, n_output: int, n_hidden: int, *, residual: bool = False) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(n_input, n_hidden), nn.LayerNorm(n_hidden), nn.ReLU())
        self.mean = nn.Linear(n_hidden, n_output)
        self.scale = nn.Linear(n_hidden, n_output)
        self.residual = residual

    def forward(self, x: torch.Tensor, base: torch.Tensor | None = None) -> Normal:
        h = self.hidden(x)
        mean = self.mean(h) + (base if self.residual and base is not None else 0)
        return Normal(mean, F.softplus(self.scale(h)) + 1e-4)


class GeneSysModule(BaseModuleClass):
    """Temporal VAE over trajectories of ``n_times`` cells, conditioned on the trajectory (blueprint row).

    Per time step ``t`` a cell ``x_t`` is encoded to ``e_t``; a forward (causal) LSTM gives the belief
    ``b_t`` from ``e_1..e_t`` only. The approximate posterior is ``q(z_t | e_t, b_{t-1})``, the prior
    ``p(z_1 | r)`` and the transition ``p(z_t | z_{t-1}, r, t)`` depend on the trajectory ``r``, and a
    decoder gives ``p(x_t | z_t)`` (negative binomial with the cell's library size for counts; for
    continuous values a hurdle: ``P(x = 0)`` per gene and cell, and ``log1p(x) | x > 0`` a Gaussian
    truncated to positive values; or a plain Gaussian on ``log1p`` values). A classifier predicts ``r`` from the belief at every time
    step and from each cell alone. The loss is ``-ELBO`` (KL weighted for warm-up) plus
    ``classification_weight`` times the classification cross-entropy.

    Parameters
    ----------
    n_input
        Number of genes.
    n_trajectories
        Number of blueprint rows.
    n_times
        Time steps per trajectory.
    n_latent
        Size of ``z``.
    n_hidden
        Width of the encoder, belief LSTM, heads and decoder.
    n_layers
        Layers of the belief LSTM.
    dropout_rate
        Dropout of the encoder and between LSTM layers.
    likelihood
        ``"nb"`` (counts), ``"hurdle"`` (zeros and positive ``log1p`` values of normalised data such
        as FPKM) or ``"normal"`` (a Gaussian on ``log1p`` values: it cannot make exact zeros, so its
        cells have far too few of them and too low totals on data with many zeros).
    classification_weight
        Weight of the classification loss relative to the per-trajectory ELBO.
    context_dropout
        Probability of hiding ``b_{t-1}`` from the posterior in training, so that a cell can also be
        embedded on its own (:meth:`embed`).
    """

    def __init__(
        self,
        n_input: int,
        n_trajectories: int,
        n_times: int,
        *,
        n_latent: int = 32,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.2,
        likelihood: str = "nb",
        classification_weight: float = 50.0,
        context_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        self.n_input, self.n_trajectories, self.n_times = n_input, n_trajectories, n_times
        self.n_latent, self.n_hidden = n_latent, n_hidden
        self.likelihood = likelihood
        self.classification_weight = classification_weight
        self.context_dropout = context_dropout
        norm = {"use_batch_norm": False, "use_layer_norm": True}
        self.encoder = FCLayers(n_input, n_hidden, n_layers=1, n_hidden=n_hidden, dropout_rate=dropout_rate, **norm)
        self.belief = nn.LSTM(n_hidden, n_hidden, num_layers=n_layers, batch_first=True,
                              dropout=dropout_rate if n_layers > 1 else 0.0)
        self.posterior = Encoder(2 * n_hidden, n_latent, n_layers=1, n_hidden=n_hidden, dropout_rate=0.0,
                                 return_dist=True, **norm)
        n_embed = min(16, n_trajectories)
        self.trajectory_embedding = nn.Embedding(n_trajectories, n_embed)
        self.initial_prior = nn.Embedding(n_trajectories, 2 * n_latent)
        nn.init.zeros_(self.initial_prior.weight)  # start at N(0, I), as in a plain VAE
        self.transition = _GaussianHead(n_latent + n_embed + n_times, n_latent, n_hidden, residual=True)
        self.classifier = nn.Sequential(nn.Linear(n_hidden, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_trajectories))
        if likelihood == "nb":
            self.decoder = DecoderSCVI(n_latent, n_input, n_layers=1, n_hidden=n_hidden, **norm)
            self.px_r = nn.Parameter(torch.randn(n_input))
        else:
            self.decoder = nn.Sequential(
                FCLayers(n_latent, n_hidden, n_layers=1, n_hidden=n_hidden, dropout_rate=0.0, **norm),
                nn.Linear(n_hidden, n_input),
            )
            self.px_log_scale = nn.Parameter(torch.zeros(n_input))
            if likelihood == "hurdle":
                self.px_zero = nn.Linear(n_hidden, n_input)  # logit of P(x = 0), from the decoder's hidden layer
        # quantiles of each gene's positive values: generated (model) and training cells' (data); zeros: not calibrated
        self.register_buffer("marginal_model", torch.zeros(n_input, N_QUANTILES))
        self.register_buffer("marginal_data", torch.zeros(n_input, N_QUANTILES))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As :meth:`torch.nn.Module.load_state_dict`; weights saved before the hurdle likelihood existed
        (no zero head) turn a hurdle module into the plain Gaussian it was trained as."""
        if self.likelihood == "hurdle" and not any(k.startswith("px_zero.") for k in state_dict):
            self.likelihood, self.px_zero = "normal", None
        state_dict = dict(state_dict)
        for key in ("marginal_model", "marginal_data"):  # saved before the calibration existed: uncalibrated
            state_dict.setdefault(key, torch.zeros_like(getattr(self, key)))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def is_calibrated(self) -> bool:
        """Whether :meth:`calibrate` maps values (after :meth:`set_calibration`)."""
        return bool((self.marginal_model[:, -1] > 0).all())  # a fitted table tops out above 0 for every gene

    @torch.no_grad()
    def set_calibration(self, model_quantiles: torch.Tensor, data_quantiles: torch.Tensor) -> None:
        """Store each gene's positive-value quantiles of generated and of real cells (genes x ``N_QUANTILES``)."""
        for name, q in (("marginal_model", model_quantiles), ("marginal_data", data_quantiles)):
            q = torch.as_tensor(q, dtype=torch.float32)
            if q.shape != self.marginal_model.shape or not torch.isfinite(q).all() or not (q[:, -1] > 0).all():
                raise ValueError(f"{name} must be finite, end above 0 for every gene and be of shape {tuple(self.marginal_model.shape)}; got "
                                 f"{tuple(q.shape)}.")
            getattr(self, name).copy_(torch.cummax(q, -1).values)  # non-decreasing

    def calibrate(self, values: torch.Tensor) -> torch.Tensor:
        """Map positive values gene by gene from the generated cells' distribution onto the training cells'.

        Each positive value ``v`` of gene ``g`` becomes ``Q_data(F_model(v))``, with ``F_model`` and
        ``Q_data`` interpolated linearly between the stored quantiles; zeros stay zeros, and within a gene
        the order of values (hence trends and correlations in rank) is kept. Uncalibrated: ``values``.
        """
        if not self.is_calibrated:
            return values
        flat = values.reshape(-1, self.n_input).T.contiguous()  # genes x cells
        model_q, data_q = self.marginal_model.to(flat.device), self.marginal_data.to(flat.device)
        hi = torch.searchsorted(model_q, flat).clamp(1, N_QUANTILES - 1)
        lo = hi - 1
        q_lo, q_hi = model_q.gather(1, lo), model_q.gather(1, hi)
        w = ((flat - q_lo) / (q_hi - q_lo).clamp_min(1e-12)).clamp(0, 1)
        mapped = torch.lerp(data_q.gather(1, lo), data_q.gather(1, hi), w)
        mapped = torch.where(flat > 0, mapped, torch.zeros_like(flat))
        return mapped.T.reshape(values.shape)

    @torch.no_grad()
    def init_decoder(self, mean: torch.Tensor, scale: torch.Tensor, p_zero: torch.Tensor | None = None) -> None:
        """Start the continuous decoder at the data's per-gene distribution.

        ``mean`` and ``scale``: per-gene mean and standard deviation of ``log1p`` values (of the
        positive values for ``"hurdle"``), ``p_zero``: the fraction of zeros. The output biases and the
        noise scale start there, so that the decoder does not spend its first hundreds of steps (a
        short budget on small data) learning the marginals, and the noise starts at the cells' spread.
        """
        if self.likelihood == "nb":
            return
        sd = torch.as_tensor(scale, dtype=torch.float32).clamp(0.05, 5.0) - 1e-3
        self.decoder[1].bias.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.px_log_scale.copy_(sd + torch.log(-torch.expm1(-sd)))  # softplus^-1
        if self.likelihood == "hurdle" and p_zero is not None:
            p = torch.as_tensor(p_zero, dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
            self.px_zero.bias.copy_(torch.log(p) - torch.log1p(-p))

    # -- pieces ----------------------------------------------------------------------------------
    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """log1p of library-normalised counts, or log1p of the values for continuous data."""
        if self.likelihood == "nb":
            total = x.sum(-1, keepdim=True).clamp_min(1.0)
            x = x / total * ENCODER_LIBRARY_SIZE
        return torch.log1p(x)

    def encode_cells(self, x: torch.Tensor) -> torch.Tensor:
        """Per-cell features ``e`` for cells of any leading shape (..., genes)."""
        lead = x.shape[:-1]
        e = self.encoder(self.encoder_input(x).reshape(-1, self.n_input))
        return e.reshape(*lead, self.n_hidden)

    def beliefs(self, e: torch.Tensor) -> torch.Tensor:
        """Causal belief ``b_t`` from ``e_1..e_t`` (batch, time, hidden)."""
        return self.belief(e)[0]

    def cell_beliefs(self, e: torch.Tensor) -> torch.Tensor:
        """Belief of each cell seen alone (a one-step trajectory), for any leading shape."""
        lead = e.shape[:-1]
        return self.belief(e.reshape(-1, 1, self.n_hidden))[0][:, 0].reshape(*lead, self.n_hidden)

    def posterior_dist(self, e: torch.Tensor, context: torch.Tensor) -> tuple[Normal, torch.Tensor]:
        lead = e.shape[:-1]
        qz, z = self.posterior(torch.cat([e, context], -1).reshape(-1, 2 * self.n_hidden))
        qz = Normal(qz.loc.reshape(*lead, -1), qz.scale.reshape(*lead, -1))
        return qz, z.reshape(*lead, -1)

    def prior_initial(self, trajectory: torch.Tensor) -> Normal:
        mean, raw = self.initial_prior(trajectory).chunk(2, -1)
        return Normal(mean, F.softplus(raw + 0.5413) + 1e-4)  # softplus(0.5413) = 1: unit scale at init

    def prior_transition(self, z_prev: torch.Tensor, trajectory: torch.Tensor, t: int) -> Normal:
        """``p(z_t | z_{t-1}, r, t)`` for a 0-based step ``t >= 1``."""
        step = F.one_hot(torch.full_like(trajectory, t), self.n_times).to(z_prev.dtype)
        inputs = torch.cat([z_prev, self.trajectory_embedding(trajectory), step], -1)
        return self.transition(inputs, base=z_prev)

    def decode(self, z: torch.Tensor, library: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Likelihood parameters: NB mean/dispersion with ``library`` (totals) or Gaussian on log1p."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.n_latent)
        if self.likelihood == "nb":
            lib = torch.ones(flat.shape[0], 1, device=z.device) if library is None else library.reshape(-1, 1)
            scale, _, rate, _ = self.decoder("gene", flat, torch.log(lib.clamp_min(1.0)))
            return {"scale": scale.reshape(*lead, -1), "rate": rate.reshape(*lead, -1), "theta": self.px_r.exp()}
        hidden = self.decoder[0](flat)
        params = {"mean": self.decoder[1](hidden).reshape(*lead, -1), "scale": F.softplus(self.px_log_scale) + 1e-3}
        if self.likelihood == "hurdle":
            params["zero_logits"] = self.px_zero(hidden).reshape(*lead, -1)
        return params

    def log_likelihood(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """``log p(x | z)`` summed over genes."""
        if self.likelihood == "nb":
            return NegativeBinomial(mu=params["rate"], theta=params["theta"]).log_prob(x).sum(-1)
        y = torch.log1p(x)
        if self.likelihood == "normal":
            return Normal(params["mean"], params["scale"]).log_prob(y).sum(-1)
        mean, scale, logits = params["mean"], params["scale"], params["zero_logits"]
        # density of the positive part: a Gaussian truncated to y > 0 (log1p of a positive value)
        positive = (F.logsigmoid(-logits) + Normal(mean, scale).log_prob(y)
                    - torch.special.log_ndtr(mean / scale))
        return torch.where(x > 0, positive, F.logsigmoid(logits)).sum(-1)

    def sample_values(self, params: dict[str, torch.Tensor], *, generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous values drawn from ``p(x | z)`` and their expectation ``E[x | z]``, both on the input scale.

        ``"normal"``: ``expm1(mean + scale * noise)`` clipped at 0 and ``expm1(mean)``; ``"hurdle"``: 0 with
        probability ``sigmoid(zero_logits)``, otherwise ``expm1`` of a positive truncated-Gaussian draw.
        """
        mean, scale = params["mean"], params["scale"].expand_as(params["mean"])
        if self.likelihood == "normal":
            noise = torch.randn(mean.shape, generator=generator).to(mean.device)
            return (mean + scale * noise).expm1().clamp_min(0), mean.expm1().clamp_min(0)
        # one uniform per entry: below P(0) a zero, above it (rescaled to (0, 1)) the inverse CDF of the
        # Gaussian truncated to y > 0; erf / erfinv rather than ndtr / ndtri, several times faster on CPU
        u = torch.rand(mean.shape, generator=generator).to(mean.device)
        p_zero = torch.sigmoid(params["zero_logits"])
        v = ((u - p_zero) / (1 - p_zero)).clamp(0, 1)
        a = (mean / scale).clamp_min(-8.0)  # beyond 8 sd below 0 the positive part sits at 0 anyway
        low = 0.5 * torch.erfc(a * SQRT_HALF)  # Phi(-mean / scale)
        q = (low + v * (1 - low)).clamp(1e-7, 1 - 1e-7)
        y = (mean + scale * torch.erfinv(2 * q - 1) / SQRT_HALF).clamp_min(0)
        values = torch.where(u < p_zero, torch.zeros_like(y), y.expm1())
        # E[e^Y] of the truncated Gaussian: exp(m + s^2 / 2) Phi((m + s^2) / s) / Phi(m / s)
        ratio = torch.erfc(-(a + scale) * SQRT_HALF) / torch.erfc(-a * SQRT_HALF)
        expected = (1 - p_zero) * ((mean + scale**2 / 2).clamp(max=30).exp() * ratio - 1).clamp_min(0)
        return values, expected

    # -- scvi-tools module protocol --------------------------------------------------------------
    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": tensors[X_KEY]}

    def _get_generative_input(self, tensors, inference_outputs) -> dict[str, torch.Tensor]:
        return {"z": inference_outputs["z"], "library": tensors[LIBRARY_KEY], "trajectory": tensors[TRAJECTORY_KEY]}

    @auto_move_data
    def inference(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode trajectories ``x`` (batch, time, genes) to beliefs and posterior samples."""
        e = self.encode_cells(x)
        b = self.beliefs(e)
        context = torch.cat([torch.zeros_like(b[:, :1]), b[:, :-1]], 1)  # b_{t-1}: never b_t or later
        if self.training and self.context_dropout > 0:
            keep = torch.rand(context.shape[:2] + (1,), device=context.device) >= self.context_dropout
            context = context * keep
        qz, z = self.posterior_dist(e, context)
        return {"e": e, "b": b, "qz": qz, "z": z}

    @auto_move_data
    def generative(self, z: torch.Tensor, library: torch.Tensor, trajectory: torch.Tensor) -> dict:
        """Priors along the sampled path and the likelihood parameters of every cell."""
        priors = [self.prior_initial(trajectory)]
        priors += [self.prior_transition(z[:, t - 1], trajectory, t) for t in range(1, z.shape[1])]
        return {"priors": priors, "px": self.decode(z, library)}

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0) -> LossOutput:
        x, trajectory = tensors[X_KEY], tensors[TRAJECTORY_KEY]
        qz = inference_outputs["qz"]
        reconstruction = -self.log_likelihood(x, generative_outputs["px"]).sum(1)
        kl = torch.stack([
            kl_divergence(Normal(qz.loc[:, t], qz.scale[:, t]), prior).sum(-1)
            for t, prior in enumerate(generative_outputs["priors"])
        ], 1).sum(1)
        logits_path = self.classifier(inference_outputs["b"])
        logits_cell = self.classifier(self.cell_beliefs(inference_outputs["e"]))
        target = trajectory.unsqueeze(1).expand(-1, x.shape[1])
        classification = 0.5 * (F.cross_entropy(logits_path.flatten(0, 1), target.flatten())
                                + F.cross_entropy(logits_cell.flatten(0, 1), target.flatten()))
        loss = torch.mean(reconstruction + kl_weight * kl) + self.classification_weight * classification
        accuracy = (logits_path[:, -1].argmax(-1) == trajectory).float().mean()
        return LossOutput(
            loss=loss,
            reconstruction_loss=reconstruction,
            kl_local=kl,
            extra_metrics={"classification_loss": classification.detach(), "accuracy": accuracy},
        )

    # -- jobs --------------------------------------------------------------------------------------
    @torch.inference_mode()
    def rollout(self, trajectory: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample latent paths from the prior: ``z_1 ~ p(z | r)``, ``z_t ~ p(z_t | z_{t-1}, r, t)``."""
        device = self.initial_prior.weight.device
        trajectory = trajectory.to(device)

        def draw(dist: Normal) -> torch.Tensor:
            noise = torch.randn(dist.loc.shape, generator=generator).to(device)
            return dist.loc + dist.scale * noise

        path = [draw(self.prior_initial(trajectory))]
        for t in range(1, self.n_times):
            path.append(draw(self.prior_transition(path[-1], trajectory, t)))
        return torch.stack(path, 1)

    @torch.inference_mode()
    def states_at(self, rows, times) -> torch.Tensor:
        """Latent state at step ``times[i]`` (0-based) of a trajectory of blueprint row ``rows[i]``, one
        :meth:`rollout` per entry (noise from the global torch generator)."""
        z = self.rollout(torch.as_tensor(rows))
        return z[torch.arange(len(z), device=z.device), torch.as_tensor(times, device=z.device)]

    @torch.inference_mode()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean of each cell seen alone (no trajectory context)."""
        e = self.encode_cells(x)
        return self.posterior_dist(e, torch.zeros_like(e))[0].loc

    @torch.inference_mode()
    def classify_cells(self, x: torch.Tensor) -> torch.Tensor:
        """Trajectory probabilities of each cell seen alone."""
        return torch.softmax(self.classifier(self.cell_beliefs(self.encode_cells(x))), -1)

    @torch.inference_mode()
    def classify_paths(self, x: torch.Tensor) -> torch.Tensor:
        """Trajectory probabilities after each time step of whole trajectories (batch, time, R)."""
        return torch.softmax(self.classifier(self.beliefs(self.encode_cells(x))), -1)
