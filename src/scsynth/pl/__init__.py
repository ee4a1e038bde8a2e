"""Plotting: real-vs-generated comparisons, developmental trajectories, perturbations and training curves."""

from __future__ import annotations

from ._history import history
from ._perturbation import perturbation
from ._plot_trajectory import plot_trajectory
from ._real_vs_generated import real_vs_generated

__all__ = ["history", "perturbation", "plot_trajectory", "real_vs_generated"]
