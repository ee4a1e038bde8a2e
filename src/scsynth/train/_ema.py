"""An exponential moving average of a GAN's generator weights, used for generation after training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import lightning
import torch
from torch import nn


def generator_tensors(module: nn.Module) -> tuple[list[nn.Parameter], list[torch.Tensor]]:
    """The generator's parameters (``module.generator_parameters()``) and the buffers of the modules owning them.

    A submodule belongs to the generator when all its parameters are generator parameters; the buffers of
    the largest such submodules (BatchNorm running statistics and counters) are the generator's. This is
    the training-plan protocol, so it finds ScGAN's ``generator``, GRouNdGAN's controller in stage 1 and
    its target generators in stage 2 without knowing their names.

    Examples
    --------
    >>> from scsynth.module import ScGANModule
    >>> params, buffers = generator_tensors(ScGANModule(20, generator_hidden=(8,), critic_hidden=(8,)))
    >>> len(params), len(buffers)  # Linear, BatchNorm affine, output Linear; BatchNorm's mean, var, count
    (6, 3)
    """
    params = list(module.generator_parameters())
    ids = {id(p) for p in params}
    owned: list[str] = []
    buffers: list[torch.Tensor] = []
    for name, sub in module.named_modules():
        if any(name.startswith(f"{top}.") for top in owned):
            continue
        own = list(sub.parameters())
        if own and all(id(p) in ids for p in own):
            owned.append(name)
            buffers.extend(sub.buffers())
    return params, buffers


def generator_state(module: nn.Module) -> list[torch.Tensor]:
    """CPU copies of the generator's parameters and buffers (:func:`generator_tensors`), in that order."""
    params, buffers = generator_tensors(module)
    return [t.detach().to("cpu", copy=True) for t in (*params, *buffers)]


@torch.no_grad()
def load_generator_state(module: nn.Module, state: list[torch.Tensor]) -> None:
    """Write a :func:`generator_state` back into ``module``'s generator."""
    params, buffers = generator_tensors(module)
    targets = [*params, *buffers]
    if len(targets) != len(state):
        raise ValueError(f"The saved generator state has {len(state)} tensors, the generator {len(targets)}.")
    for target, value in zip(targets, state, strict=True):
        target.copy_(value)


def ema_decay_at(decay: float, t: int) -> float:
    """Decay of the ``t``-th update (0-based), with warm-up: ``min(decay, (1 + t) / (10 + t))``.

    Examples
    --------
    >>> ema_decay_at(0.999, 0), ema_decay_at(0.999, 90), ema_decay_at(0.9, 10_000)
    (0.1, 0.91, 0.9)
    """
    return min(decay, (1 + t) / (10 + t))


class GeneratorEMA(lightning.Callback):
    """Keep an exponential moving average of the generator's weights; they become the generator at the end.

    After each generator step of a :class:`~scsynth.train.WGANGPTrainingPlan` (``plan.generator_steps`` went
    up) the shadow weights are updated, ``shadow = d_t * shadow + (1 - d_t) * w`` with
    ``d_t = min(decay, (1 + t) / (10 + t))`` for the ``t``-th update, so that early weights, far from the
    trained ones, are forgotten fast. The shadow starts from the weights at the start of training (a
    second ``train()`` starts from the averaged weights of the first). The generator's BatchNorm running
    statistics are not averaged: the live ones are kept. At the end of training the averaged weights are
    copied into the generator, so ``generate``, ``save`` and ``load`` use them; not after a run that
    diverged (:class:`~scsynth.train.DivergenceGuard`), which keeps the guard's last finite weights.

    Parameters
    ----------
    decay
        Decay ``d`` of the average, in ``(0, 1)``; ``0.999`` averages over about the last 1000 steps.

    Examples
    --------
    >>> model.train(max_steps=2000, ema_decay=0.999)  # doctest: +SKIP
    """

    def __init__(self, decay: float = 0.999) -> None:
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay < 1:
            raise ValueError(f"ema_decay must be a number in (0, 1), got {decay!r}.")
        self.decay = float(decay)
        self.shadow: list[torch.Tensor] = []
        self.updates = 0
        self._seen_steps = 0
        self._finished = False

    # -- the average -------------------------------------------------------------------------------
    def start(self, module: nn.Module) -> None:
        """Start the average from ``module``'s current generator weights."""
        params, _ = generator_tensors(module)
        self.shadow = [p.detach().clone() for p in params]
        self.updates, self._finished = 0, False

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """One update of the average with ``module``'s generator weights."""
        params, _ = generator_tensors(module)
        weight = 1.0 - ema_decay_at(self.decay, self.updates)
        for shadow, p in zip(self.shadow, params, strict=True):
            shadow.lerp_(p.detach(), weight)  # shadow + w (p - shadow) = d shadow + (1 - d) p
        self.updates += 1

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """Within the block the generator holds the averaged weights; its own weights come back after."""
        params, _ = generator_tensors(module)
        if not self.shadow or self._finished:  # nothing averaged yet, or already the generator's weights
            yield
            return
        with torch.no_grad():
            saved = [p.detach().clone() for p in params]
            for p, shadow in zip(params, self.shadow, strict=True):
                p.copy_(shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, own in zip(params, saved, strict=True):
                    p.copy_(own)

    @torch.no_grad()
    def finish(self, module: nn.Module) -> None:
        """Copy the averaged weights into the generator (once; later calls do nothing)."""
        if self._finished or not self.shadow:
            return
        params, _ = generator_tensors(module)
        for p, shadow in zip(params, self.shadow, strict=True):
            p.copy_(shadow)
        self._finished = True

    # -- Lightning hooks ---------------------------------------------------------------------------
    def on_train_start(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> None:
        self.start(plan.module)
        self._seen_steps = int(getattr(plan, "generator_steps", 0))

    def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx) -> None:
        steps = int(getattr(plan, "generator_steps", 0))
        if steps > self._seen_steps and not diverged(trainer):
            self.update(plan.module)
        self._seen_steps = steps

    def on_train_end(self, trainer: lightning.Trainer, plan: lightning.LightningModule) -> None:
        if not diverged(trainer):
            self.finish(plan.module)


def diverged(trainer: lightning.Trainer) -> bool:
    """Whether a :class:`~scsynth.train.DivergenceGuard` of ``trainer`` stopped training on a non-finite value."""
    return any(bool(getattr(cb, "diverged", False)) for cb in trainer.callbacks)
