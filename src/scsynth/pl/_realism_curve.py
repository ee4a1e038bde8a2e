"""Realism on held-out cells over a generator's training, as recorded by ``train(monitor_realism=...)``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._constants import REALISM_KEY
from ._utils import finish_figure, panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_LABELS = {"mmd": "MMD² to validation cells (lower is better)",
           "rf_auroc": "RF AUROC vs validation cells (0.5 is best)"}


def realism_curve(
    model: Any,
    *,
    stage: str | None = None,
    figsize: tuple[float, float] = (5.0, 3.4),
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Plot the realism checks of a model's training against the generator step, with the best one marked.

    Draws ``histories_[stage]["realism_validation"]`` (written by ``model.train(monitor_realism=...)``,
    see :class:`~scsynth.train.RealismCheckpoint`; for GeneSys, whose every training step updates its
    decoder, :class:`~scsynth.train.TrajectoryRealismCheckpoint`): one point per check, the check whose generator the
    model kept as a star, and the score of real training cells against the same validation cells
    (the real-vs-real level, the best a generator can hope for) as a dotted line. Steps of successive
    ``train()`` calls follow one another.

    Parameters
    ----------
    model
        A model trained with ``monitor_realism`` (:class:`~scsynth.model.ScGAN`, :class:`~scsynth.model.GRouNdGAN`,
        :class:`~scsynth.model.GeneSys`, :class:`~scsynth.model.RNAGAN`: its adversarial stages ``"sc"``, ``"bulk"``).
    stage
        Training stage (a key of ``model.histories_``, e.g. GRouNdGAN's ``"controller"``); ``None``: the
        latest stage with realism checks.
    figsize
        Figure size in inches. Ignored with ``ax``.
    ax
        Draw into this axes instead of a new figure.
    show
        Call :func:`matplotlib.pyplot.show` at the end (``None``: do not).
    save
        Write the figure to this path (``bbox_inches="tight"``).

    Returns
    -------
    The figure (the figure of ``ax`` when given).

    Raises
    ------
    ValueError
        The model has no realism checks (it was not trained with ``monitor_realism``).

    Examples
    --------
    >>> model.train(max_steps=2000, monitor_realism=100, ema_decay=0.999)  # doctest: +SKIP
    >>> fig = scsynth.pl.realism_curve(model, save="realism.png")  # doctest: +SKIP
    """
    stage, frame = _checks(model, stage)
    steps = _continued_steps(frame["generator_step"].to_numpy(dtype=float))
    values = frame[REALISM_KEY].to_numpy(dtype=float)
    best = (getattr(model, "realism_best_", None) or {}).get(stage, {})
    metric = best.get("metric", "mmd")

    def make() -> tuple[Figure, list[Axes]]:
        import matplotlib.pyplot as plt

        fig, one = plt.subplots(figsize=figsize, layout="constrained")
        return fig, [one]

    fig, (panel,), _ = panel_axes(ax, 1, where="pl.realism_curve", panels="realism vs generator step",
                                  make=make)
    panel.plot(steps, values, marker="o", ms=3, lw=1.4, label="generated vs validation cells")
    if best:
        # the best check is of the latest run: its step counts after the earlier runs' steps
        offset = steps[-1] - float(frame["generator_step"].iloc[-1])
        kept = "kept" if best.get("restored") else "best"
        panel.plot([best["generator_step"] + offset], [best["value"]], marker="*", ms=14, ls="none", color="#e8620c",
                   label=f"{kept}: step {best['generator_step'] + offset:g} ({best['value']:.3g})", zorder=3)
        control = best.get("control", np.nan)
        if np.isfinite(control):
            panel.axhline(control, ls=":", color="grey", lw=1.2, label=f"real training cells ({control:.3g})")
    panel.set_xlabel("generator step")
    panel.set_ylabel(_LABELS.get(metric, REALISM_KEY))
    panel.set_title("Realism on held-out cells" + (f" ({stage})" if stage != model.default_stage else ""))
    panel.grid(alpha=0.3)
    panel.legend(loc="best", fontsize="small")
    return finish_figure(fig, show=show, save=save)


def _checks(model: Any, stage: str | None) -> tuple[str, pd.DataFrame]:
    """The stage and its frame of realism checks."""
    stages = getattr(model, "histories_", None)
    if not isinstance(stages, Mapping):
        raise TypeError(f"pl.realism_curve needs a trained scsynth model, got {type(model).__name__}.")
    if stage is None:
        with_checks = [s for s, h in stages.items() if REALISM_KEY in h]
        latest = next((s for s, h in stages.items() if h is getattr(model, "history_", None)), None)
        stage = latest if latest in with_checks else (with_checks[-1] if with_checks else None)
    elif stage not in stages:
        raise KeyError(f"No training stage {stage!r}; the model has {sorted(stages)}.")
    frame = stages.get(stage, {}).get(REALISM_KEY) if stage is not None else None
    if frame is None or len(frame) == 0:
        raise ValueError("The model has no realism checks; train it with monitor_realism=True (and train_size < 1).")
    return stage, frame


def _continued_steps(steps: np.ndarray) -> np.ndarray:
    """Per-run generator steps made cumulative: a run's steps continue after the previous run's last one."""
    out = steps.copy()
    offset = 0.0
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:  # a new train() call counts from 0 again
            offset = out[i - 1]
        out[i] = steps[i] + offset
    return out
