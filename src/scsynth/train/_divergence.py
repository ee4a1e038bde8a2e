"""Stop training cleanly when a loss or a weight stops being finite, keeping the last finite weights."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

import lightning
import torch


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss or weight; the model was reset to its last finite weights.

    Attributes
    ----------
    model
        Name of the model (``"ScGAN"``, ...).
    stage
        Training stage (GRouNdGAN's ``"stage 1, causal controller"``, RNAGAN's ``"stage sc_warmup"``, ...)
        or ``None``.
    step
        Training step (batch) of this run at which the non-finite value appeared (1-based).
    epoch
        Epoch of that step (1-based).
    what
        The loss (or ``"weight <name>"``) that went non-finite.
    value
        Its value (``nan`` or ``inf``).
    kept_step
        Steps of this run behind the weights the model was reset to (0: the weights at the start of the run).
    """

    def __init__(self, message: str, *, model: str, stage: str | None, step: int, epoch: int, what: str,
                 value: float, kept_step: int) -> None:
        super().__init__(message)
        self.model, self.stage, self.step, self.epoch = model, stage, step, epoch
        self.what, self.value, self.kept_step = what, value, kept_step


def is_invalid_distribution_parameter(err: BaseException) -> bool:
    """Whether ``err`` is torch.distributions rejecting NaN/inf parameters (what diverged weights produce)."""
    text = str(err)
    return isinstance(err, ValueError) and text.startswith("Expected parameter") and "invalid values" in text


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # CPU copies: no extra accelerator memory, and a later in-place update cannot alias them
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _state_tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    named = chain(module.named_parameters(), module.named_buffers())
    return [(n, t) for n, t in named if t.is_floating_point() and t.numel() > 0]


def _max_abs(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One value per tensor: max |x| (NaN if it has a NaN); one fused kernel where torch offers it."""
    tensors = [t.detach() for t in tensors]
    try:
        return torch.stack(torch._foreach_norm(tensors, math.inf)).float()
    except (AttributeError, RuntimeError, TypeError):
        return torch.stack([t.abs().amax().float() for t in tensors])


class DivergenceGuard(lightning.Callback):
    """Check every training step for non-finite losses and weights; on one, restore finite weights and stop.

    After each training batch the losses the plan's ``training_step`` returned (a tensor or a mapping of
    names to tensors) and every floating-point parameter and buffer of ``plan.module`` are checked in one
    device synchronisation. Every ``snapshot_every`` finite steps a CPU copy of the module's state is
    taken; a copy is trusted once ``snapshot_every`` more steps stayed finite (weights that blow up often
    stay finite for a step or two before the losses overflow), and the state at the start of training is
    always trusted. On a non-finite value the trusted copy is loaded back, training stops (like early
    stopping, so the model's usual end-of-training bookkeeping runs) and :attr:`error` holds a
    :class:`TrainingDivergedError`; the model's ``train`` raises it with :meth:`raise_if_diverged`.

    Parameters
    ----------
    model
        Model name used in the error.
    stage
        Training stage used in the error, or ``None``.
    hint
        What the user should change, appended to the error (e.g. how to lower the learning rate).
    snapshot_every
        Steps between copies of the weights.
    """

    def __init__(
        self, model: str, stage: str | None = None, *, hint: str = "", snapshot_every: int = 50
    ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}.")
        self.model, self.stage, self.hint, self.snapshot_every = model, stage, hint, int(snapshot_every)
        self.error: TrainingDivergedError | None = None
        self.steps = 0
        self._trusted: tuple[int, int | None, dict[str, torch.Tensor]] | None = None
        self._candidate: tuple[int, int | None, dict[str, torch.Tensor]] | None = None

    # -- state -------------------------------------------------------------------------------------
    @property
    def diverged(self) -> bool:
        """Whether training stopped on a non-finite value."""
        return self.error is not None

    @property
    def kept_step(self) -> int:
        """Steps of this run behind the weights the model holds (all of them when it did not diverge)."""
        return self.steps if self._trusted is None or not self.diverged else self._trusted[0]

    def kept_generator_steps(self, done: int) -> int:
        """Generator steps behind the weights the model holds; ``done`` when training did not diverge."""
        if not self.diverged or self._trusted is None or self._trusted[1] is None:
            return done
        return self._trusted[1]

    def raise_if_diverged(self) -> None:
        """Raise the :class:`TrainingDivergedError` of this run, if any."""
        if self.error is not None:
            raise self.error

    # -- hooks -------------------------------------------------------------------------------------
    @staticmethod
    def _module(plan: lightning.LightningModule) -> torch.nn.Module:
        return plan.module

    def _take(self, plan: lightning.LightningModule) -> tuple[int, int | None, dict[str, torch.Tensor]]:
        generator_steps = getattr(plan, "generator_steps", None)
        return self.steps, generator_steps, _snapshot(self._module(plan))

    def on_train_start(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> None:
        self.error, self.steps, self._candidate = None, 0, None
        self._trusted = self._take(plan)

    def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx) -> None:
        if self.error is not None:
            return
        self.steps += 1
        losses = _named_losses(outputs)
        state = _state_tensors(self._module(plan))
        parts = [_max_abs([t for _, t in group]) for group in (losses, state) if group]
        values = torch.cat([p.to(parts[0].device) for p in parts]) if parts else torch.zeros(0)
        bad = not bool(torch.isfinite(values).all())  # the one device synchronisation per step
        bad = trainer.strategy.reduce_boolean_decision(bad, all=False)  # all DDP ranks stop together
        if bad:
            self._diverge(trainer, plan, losses, state)
        elif self.steps % self.snapshot_every == 0:
            # the previous copy has now survived snapshot_every finite steps
            self._trusted = self._candidate or self._trusted
            self._candidate = self._take(plan)

    def _diverge(self, trainer, plan, losses, state) -> None:
        what, value = "a loss or weight on another process", math.nan
        for prefix, group in (("", losses), ("weight ", state)):
            found = next(((name, v) for name, t in group if (v := _first_nonfinite(t)) is not None), None)
            if found is not None:
                what, value = prefix + found[0], found[1]
                break
        kept, kept_g, snapshot = self._trusted
        self._module(plan).load_state_dict(snapshot)
        trainer.should_stop = True
        # a user's min_epochs / min_steps would otherwise keep training with the learning rate that diverged
        trainer.fit_loop.min_epochs = None
        trainer.fit_loop.epoch_loop.min_steps = None
        epoch = trainer.current_epoch + 1
        g = getattr(plan, "generator_steps", None)
        where = f"step {self.steps} (epoch {epoch}" + (")" if g is None else f", after {g} generator steps)")
        restored = "its weights from the start of this run" if kept == 0 else f"its weights after step {kept}"
        if kept and kept_g is not None:
            restored += f" ({kept_g} generator steps)"
        stage = f" ({self.stage})" if self.stage else ""
        message = (f"{self.model} training{stage} diverged at {where}: {what} became {value}. Training stopped "
                   f"and the model was reset to {restored}, the last finite ones. {self.hint}").strip()
        self.error = TrainingDivergedError(message, model=self.model, stage=self.stage, step=self.steps,
                                           epoch=epoch, what=what, value=value, kept_step=kept)


def _first_nonfinite(t: torch.Tensor) -> float | None:
    flat = t.detach().reshape(-1)
    bad = ~torch.isfinite(flat)
    return float(flat[bad][0]) if bool(bad.any()) else None


def _named_losses(outputs: Any) -> list[tuple[str, torch.Tensor]]:
    """The floating-point tensors of a ``training_step`` output, with their names."""
    if isinstance(outputs, torch.Tensor):
        items: Iterable = [("loss", outputs)]
    elif isinstance(outputs, Mapping):
        items = outputs.items()
    else:
        return []
    return [(str(k), v.detach()) for k, v in items
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() > 0]
