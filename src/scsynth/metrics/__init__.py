"""Realism metrics of generated single-cell expression against real data."""

from __future__ import annotations

from ._classifier import rf_auroc
from ._gene_stats import centroid_distances, gene_statistics_agreement
from ._grn import grn_recovery
from ._knockout import knockout_recovery
from ._lisi import lisi, milisi
from ._mmd import mmd
from ._realism import realism, summarize_realism

__all__ = [
    "centroid_distances",
    "gene_statistics_agreement",
    "grn_recovery",
    "knockout_recovery",
    "lisi",
    "milisi",
    "mmd",
    "realism",
    "rf_auroc",
    "summarize_realism",
]
