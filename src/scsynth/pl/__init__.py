"""Plotting: real-vs-generated comparisons and training curves."""

from __future__ import annotations

from ._history import history
from ._perturbation import perturbation
from ._real_vs_generated import real_vs_generated

__all__ = ["history", "perturbation", "real_vs_generated"]
