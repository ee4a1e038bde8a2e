"""Training curves from the history a model logs during training."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._utils import finish_figure, panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_STEP_KEY = "generator_step"
_SPLITS = ("train", "validation")
_SPLIT_LABELS = {"train": "train", "validation": "validation (held-out cells)"}


def history(
    model_or_history: Any,
    *,
    keys: Sequence[str] | None = None,
    stage: str | None = None,
    figsize: tuple[float, float] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Plot the training curves of a model, one panel per logged quantity.

    ``<name>_train`` and ``<name>_validation`` (GANs' ``wasserstein_train`` / ``wasserstein_validation``),
    and ``train_<name>`` and ``validation_<name>`` (GeneSys' ``train_loss`` / ``validation_loss``), share a
    panel: the validation curve, computed on held-out cells, is drawn dashed next to the training curve,
    so that a training curve that keeps improving while the validation one does not shows overfitting.
    When the history holds ``generator_step`` (GAN training plans log it every epoch), it is the x axis,
    matched to each curve by epoch; otherwise the epoch is. Epochs where a quantity is NaN (not logged) are skipped.
    Quantities that are positive and span more than two decades are drawn on a log scale.

    Parameters
    ----------
    model_or_history
        A trained model (anything with a ``.history`` attribute) or its history: a mapping from key
        to a one-column :class:`~pandas.DataFrame` (or :class:`~pandas.Series`) indexed by epoch, as
        written by scvi-tools' ``SimpleLogger``.
    keys
        History keys to plot, in this order; default all except ``generator_step``.
    stage
        Which training stage of a model to plot (a key of ``model.histories_``, e.g. GRouNdGAN's
        ``"controller"``); the latest stage (``model.history``) when ``None``.
    figsize
        Figure size in inches; chosen from the number of panels when ``None``. Ignored with ``ax``.
    ax
        Draw into these axes instead of a new figure: one per panel, in panel order (a quantity and
        its validation curve share one), e.g. the axes of ``plt.subplots(1, 2)`` for two panels. A wrong number
        raises a :class:`ValueError` that says how many are needed.
    show
        Call :func:`matplotlib.pyplot.show` at the end (``None``: do not).
    save
        Write the figure to this path (``bbox_inches="tight"``; the extension picks the format).

    Returns
    -------
    The figure, with one axes per panel (the figure of ``ax`` when given).

    Examples
    --------
    >>> import scsynth
    >>> model.train(max_epochs=100)
    >>> fig = scsynth.pl.history(model, keys=["wasserstein_train", "wasserstein_validation"])

    Into your own axes, saved to a file:

    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    >>> scsynth.pl.history(model, keys=["wasserstein_train", "generator_loss_train"], ax=axes,
    ...                    save="history.png")
    """
    if stage is not None:
        stages = getattr(model_or_history, "histories_", None)
        if not isinstance(stages, Mapping):
            raise TypeError(f"stage= needs a trained scsynth model (with histories_), got "
                            f"{type(model_or_history).__name__}.")
        if stage not in stages:
            raise KeyError(f"No training stage {stage!r}; the model has {sorted(stages)}.")
        model_or_history = stages[stage]
    hist = getattr(model_or_history, "history", model_or_history)
    if hist is None or (isinstance(hist, Mapping) and len(hist) == 0):
        raise ValueError("The training history is empty; train the model first (`model.train()`).")
    if not isinstance(hist, Mapping):
        raise TypeError(
            "Expected a model with a `.history` or a dict of DataFrames, "
            f"got {type(model_or_history).__name__}."
        )
    series = {str(k): _as_series(v, str(k)) for k, v in hist.items()}
    available = [k for k in series if k != _STEP_KEY]
    if keys is None:
        keys = available
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        unknown = [k for k in keys if k not in series]
        if unknown:
            raise KeyError(f"Unknown history key(s) {unknown}; available keys: {sorted(series)}.")
    if not keys:
        raise ValueError(f"Nothing to plot: the history only holds {sorted(series)}; train the model first.")
    step = series.get(_STEP_KEY)
    groups: dict[str, list[tuple[str, str | None]]] = {}
    for key in keys:
        name, split = _split_key(key)
        groups.setdefault(name, []).append((key, split))

    n = len(groups)

    def make() -> tuple[Figure, list[Axes]]:
        import matplotlib.pyplot as plt

        ncols = min(3, n)
        nrows = int(np.ceil(n / ncols))
        fig, grid = plt.subplots(nrows, ncols, figsize=figsize or (4.6 * ncols, 3.3 * nrows),
                                 squeeze=False, layout="constrained")
        flat = list(grid.ravel())
        for extra in flat[n:]:
            fig.delaxes(extra)
        return fig, flat[:n]

    fig, axes, _ = panel_axes(ax, n, where="pl.history", panels=f"one per quantity: {list(groups)}",
                              make=make)
    xlabel = "generator step" if step is not None else "epoch"
    for panel, (name, members) in zip(axes, groups.items(), strict=True):
        positive, lo, hi = True, np.inf, -np.inf
        for key, split in members:
            y = series[key].dropna()
            x = step.reindex(y.index) if step is not None else pd.Series(y.index, index=y.index, dtype=float)
            ok = x.notna().to_numpy()
            xv, yv = x.to_numpy(dtype=float)[ok], y.to_numpy(dtype=float)[ok]
            if len(yv):
                positive &= bool((yv > 0).all())
                lo, hi = min(lo, yv.min()), max(hi, yv.max())
            val = split == "validation"
            panel.plot(xv, yv, marker="o" if len(yv) <= 25 or val else None, ms=3, lw=1.4,
                       ls="--" if val else "-", label=_SPLIT_LABELS[split] if split is not None else key)
        if positive and np.isfinite(lo) and lo > 0 and hi / lo > 100:
            panel.set_yscale("log")
        else:
            panel.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        panel.set_title(name.replace("_", " "))
        panel.set_xlabel(xlabel)
        panel.set_ylabel(name if len(members) > 1 else members[0][0])
        panel.grid(alpha=0.3)
        if len(members) > 1:
            panel.legend(loc="best", fontsize="small")
    return finish_figure(fig, show=show, save=save)


def _split_key(key: str) -> tuple[str, str | None]:
    """``"wasserstein_train"`` and ``"train_wasserstein"`` -> ``("wasserstein", "train")``; else ``None``."""
    for split in _SPLITS:
        if key.endswith(f"_{split}"):
            return key[: -len(split) - 1], split
        if key.startswith(f"{split}_"):  # scvi-tools' train_loss / validation_loss
            return key[len(split) + 1 :], split
    return key, None


def _as_series(value: Any, key: str) -> pd.Series:
    """The numeric values of one history entry as a Series indexed by epoch."""
    if isinstance(value, pd.DataFrame):
        if value.shape[1] == 0:
            return pd.Series(dtype=float)
        value = value[key] if key in value.columns else value.iloc[:, 0]
    elif not isinstance(value, pd.Series):
        value = pd.Series(np.asarray(value, dtype=float).ravel())
    return pd.to_numeric(value, errors="coerce").astype(float)
