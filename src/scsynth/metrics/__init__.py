"""Realism metrics of generated single-cell expression against real data."""

from __future__ import annotations

from ._classifier import rf_auroc
from ._distribution import label_lfc_agreement, library_size_distance
from ._gene_stats import centroid_distances, gene_statistics_agreement
from ._grn import grn_recovery
from ._knockout import knockout_recovery
from ._lisi import lisi, milisi
from ._mmd import mmd
from ._realism import realism, summarize_realism
from ._scorer import RealismScorer

__all__ = [
    "RealismScorer",
    "centroid_distances",
    "gene_statistics_agreement",
    "grn_recovery",
    "knockout_recovery",
    "label_lfc_agreement",
    "library_size_distance",
    "lisi",
    "milisi",
    "mmd",
    "realism",
    "rf_auroc",
    "summarize_realism",
]
