"""Reusable torch layers."""

from ._conditional_batchnorm import ConditionalBatchNorm1d
from ._count_noise import CountNoise
from ._critic import MLPCritic
from ._generator import MLPGenerator
from ._labeler import MLPRegressor
from ._lsn import LibrarySizeNormalization
from ._marginal_calibration import MarginalCalibration
from ._output_init import init_output_at_data
from ._pathway_linear import PathwayLinear
from ._set_pooling import SetPooling
from ._target_generators import TargetGenerators

__all__ = [
    "ConditionalBatchNorm1d",
    "CountNoise",
    "LibrarySizeNormalization",
    "MarginalCalibration",
    "MLPCritic",
    "MLPGenerator",
    "MLPRegressor",
    "PathwayLinear",
    "SetPooling",
    "TargetGenerators",
    "init_output_at_data",
]
