"""Reusable torch layers."""

from ._conditional_batchnorm import ConditionalBatchNorm1d
from ._critic import MLPCritic
from ._generator import MLPGenerator
from ._lsn import LibrarySizeNormalization

__all__ = ["ConditionalBatchNorm1d", "LibrarySizeNormalization", "MLPCritic", "MLPGenerator"]
