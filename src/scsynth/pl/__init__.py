"""Plotting: real-vs-generated comparisons, trajectories, perturbations, markers, training and realism curves."""

from __future__ import annotations

from ._history import history
from ._markers import markers
from ._perturbation import perturbation
from ._plot_trajectory import plot_trajectory
from ._real_vs_generated import real_vs_generated
from ._realism_curve import realism_curve

__all__ = ["history", "markers", "perturbation", "plot_trajectory", "real_vs_generated", "realism_curve"]
