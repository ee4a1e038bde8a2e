"""Monitor the realism of a GAN's generated cells on held-out cells during training; keep the best generator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import lightning
import numpy as np
import pandas as pd
import torch

from .._constants import REALISM_KEY  # the history key of the checks (re-exported by scsynth.train)
from ..metrics import RealismScorer
from ._ema import GeneratorEMA, diverged, generator_state, load_generator_state


@contextmanager
def seeded_eval(module: torch.nn.Module, seed: int) -> Iterator[None]:
    """``module`` in eval mode with the torch random stream seeded by ``seed``, on a forked RNG: draws inside
    are the same on every call and training's own random stream is left alone."""
    device = next(module.parameters()).device
    was = module.training
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        module.eval()
        try:
            yield
        finally:
            module.train(was)


class RealismCheckpoint(lightning.Callback):
    """Every ``every`` generator steps, score generated cells against fixed validation cells; keep the best.

    At the start of training the real cells go through the module's ``inference`` (the model's genes,
    library-size normalised as the critic sees them) and a :class:`~scsynth.metrics.RealismScorer` is
    fitted on the validation and reference cells. Each check generates as many cells as there are
    validation cells (with their labels, for a conditional generator) through the module's
    ``generative`` in eval mode, with the averaged weights of ``ema`` when given, and scores them. The
    noise is drawn from a generator seeded with ``seed`` inside :func:`torch.random.fork_rng`: every check
    sees the same noise, re-runs are identical and training's own random draws are not disturbed.

    A CPU copy of the generator's weights and buffers at the best check is kept; at the end of training
    (after one last check of the final weights when the last step was not checked) it is loaded back
    into the generator with ``restore_best``. A run that diverged (:class:`~scsynth.train.DivergenceGuard`)
    is left to the guard.

    Parameters
    ----------
    validation
        The validation cells as one batch of the model's data loader (registry key -> tensor, all cells).
    reference
        More real cells (e.g. training cells) in the same form: with the validation cells they choose
        the genes and fit the PCA of the scorer, and ``control_`` scores as many of them as generated
        cells (the real-vs-real level of the score). ``None``: the validation cells alone, no control.
    every
        Generator steps between checks.
    metric
        ``"mmd"`` (default, lower is better) or ``"rf_auroc"`` (closer to 0.5 is better); see
        :class:`~scsynth.metrics.RealismScorer`.
    ema
        The :class:`~scsynth.train.GeneratorEMA` of the same run: checks score its averaged weights, and the
        best copy holds them.
    seed
        Seed of the checks' noise and of the scorer.
    restore_best
        Load the best generator back at the end of training.
    scorer_kwargs
        More options of :class:`~scsynth.metrics.RealismScorer` (``n_hvg``, ``n_components``, ``library_size``,
        ``rf_trees``).

    Attributes
    ----------
    records
        ``(epoch, generator step, score)`` of every check, in order.
    best_step, best_value
        Generator step and score of the best check (``None`` before any).
    control_
        Score of real reference cells (``nan`` without enough of them).
    restored
        Whether the best generator was loaded back at the end of training.

    Examples
    --------
    ``model.train(monitor_realism=True)`` builds one; a history then holds the checks:

    >>> model.train(max_steps=2000, train_size=0.9, monitor_realism=200)  # doctest: +SKIP
    >>> model.histories_["train"]["realism_validation"]  # doctest: +SKIP
    """

    def __init__(
        self,
        validation: Mapping[str, torch.Tensor],
        *,
        reference: Mapping[str, torch.Tensor] | None = None,
        every: int = 100,
        metric: str = "mmd",
        ema: GeneratorEMA | None = None,
        seed: int = 0,
        restore_best: bool = True,
        scorer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValueError(f"monitor_realism must be True, False or a positive number of steps, got {every!r}.")
        self.validation, self.reference = dict(validation), None if reference is None else dict(reference)
        self.every, self.metric, self.ema, self.seed = int(every), metric, ema, int(seed)
        self.restore_best = bool(restore_best)
        self.scorer_kwargs = dict(scorer_kwargs or {})
        if metric not in ("mmd", "rf_auroc"):
            raise ValueError(f"metric must be 'mmd' or 'rf_auroc', got {metric!r}.")
        self.scorer: RealismScorer | None = None
        self.records: list[tuple[int, int, float]] = []
        self.best_step: int | None = None
        self.best_value: float | None = None
        self.best_state: list[torch.Tensor] | None = None
        self.control_ = float("nan")
        self.restored = False
        self._inputs: tuple[dict, dict] | None = None
        self._epoch = 0

    # -- the checks --------------------------------------------------------------------------------
    @torch.no_grad()
    def _real(self, module: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> tuple[dict, np.ndarray]:
        was = module.training
        module.eval()
        try:
            outputs = module.inference(**module._get_inference_input(tensors))
        finally:
            module.train(was)
        return outputs, outputs["x_real"].detach().float().cpu().numpy()

    def setup_scorer(self, module: torch.nn.Module) -> None:
        """Fit the scorer on the real cells and score the control (done once, at the start of training)."""
        outputs, x_val = self._real(module, self.validation)
        x_ref = None if self.reference is None else self._real(module, self.reference)[1]
        self._inputs = (self.validation, outputs)
        self.fit_scorer(x_val, x_ref)
        self.reference = None  # only needed to fit the scorer: free its memory for the rest of training

    def fit_scorer(self, x_val: np.ndarray, x_ref: np.ndarray | None) -> None:
        """Fit the scorer on validation (and reference) cells; score as many reference cells as the control."""
        self.scorer = RealismScorer(x_val, reference=x_ref, metric=self.metric, seed=self.seed, **self.scorer_kwargs)
        if x_ref is not None and len(x_ref) >= 10:
            # a random subset: the cells of an AnnData are often sorted by label
            pick = np.random.default_rng(self.seed).permutation(len(x_ref))[: len(x_val)]
            self.control_ = float(self.scorer(x_ref[pick]))

    @torch.no_grad()
    def generate(self, module: torch.nn.Module) -> np.ndarray:
        """The check's generated cells (normalised, the model's genes), with the seeded noise."""
        tensors, outputs = self._inputs
        with seeded_eval(module, self.seed):
            fake = module.generative(**module._get_generative_input(tensors, outputs))["x_fake"]
        fake = fake.detach().float().cpu().numpy()
        if fake.shape != (len(self.scorer.real_), self.scorer.n_genes):
            raise ValueError(f"The generator made cells of shape {fake.shape}; the validation cells are "
                             f"{(len(self.scorer.real_), self.scorer.n_genes)}.")
        return fake

    def check(self, module: torch.nn.Module, step: int, epoch: int = 0) -> float:
        """Score the generator (its averaged weights with ``ema``) once; keep a copy if it is the best so far."""
        if self.scorer is None:
            self.setup_scorer(module)
        with self.ema.applied(module) if self.ema is not None else nullcontext():
            value = float(self.scorer(self.generate(module)))
            if self.best_value is None or self.scorer.gap(value) < self.scorer.gap(self.best_value):
                self.best_step, self.best_value, self.best_state = step, value, self._snapshot(module)
        self.records.append((int(epoch), int(step), value))
        return value

    def _steps(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> int:
        """Generator steps so far (what ``every`` counts)."""
        return int(getattr(plan, "generator_steps", 0))

    #: whether a check keeps the whole module's weights (a VAE, or a generator sharing layers) or the generator's
    whole_module = False

    def _snapshot(self, module: torch.nn.Module) -> Any:
        """CPU copy of the weights a check keeps (the generator's, or the whole module's)."""
        if self.whole_module:
            return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        return generator_state(module)

    def _restore(self, module: torch.nn.Module, state: Any) -> None:
        module.load_state_dict(state) if self.whole_module else load_generator_state(module, state)

    def frame(self) -> pd.DataFrame:
        """The checks as a history entry: ``realism_validation`` and ``generator_step``, indexed by epoch."""
        epochs, steps, values = (list(c) for c in zip(*self.records, strict=True)) if self.records else ([], [], [])
        frame = pd.DataFrame({REALISM_KEY: np.asarray(values, dtype=float),
                              "generator_step": np.asarray(steps, dtype=float)},
                             index=pd.Index(np.asarray(epochs, dtype=np.int64), name="epoch"))
        return frame

    def progress_postfix(self) -> dict[str, str]:
        """What the progress bar shows: the latest score and the best one with its step."""
        if not self.records:
            return {}
        return {"realism": f"{self.records[-1][2]:.3g}", "best": f"{self.best_value:.3g}@{self.best_step}"}

    # -- Lightning hooks ---------------------------------------------------------------------------
    def on_train_start(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> None:
        if self.scorer is None:
            self.setup_scorer(plan.module)

    def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx) -> None:
        self._epoch = int(trainer.current_epoch)
        steps = self._steps(trainer, plan)
        last = self.records[-1][1] if self.records else 0
        if steps > last and steps % self.every == 0 and not diverged(trainer):
            self.check(plan.module, steps, self._epoch)

    def on_train_end(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> None:
        if diverged(trainer):
            return
        if self.ema is not None:
            self.ema.finish(plan.module)  # the final weights are the averaged ones from here on
        steps = self._steps(trainer, plan)
        if steps > 0 and (not self.records or self.records[-1][1] != steps):
            self.check(plan.module, steps, self._epoch)
        if self.restore_best and self.best_state is not None:
            self._restore(plan.module, self.best_state)
            self.restored = True
