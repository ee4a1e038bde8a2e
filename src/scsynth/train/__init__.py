"""Training plans (Lightning, manual optimisation)."""

from ._groundgan_plan import GROUNDGAN_HISTORY_KEYS, GRouNdGANTrainingPlan
from ._progress import GeneratorStepProgressBar
from ._wgan_gp import HISTORY_KEYS, WGANGPTrainingPlan

__all__ = [
    "GROUNDGAN_HISTORY_KEYS",
    "GRouNdGANTrainingPlan",
    "HISTORY_KEYS",
    "GeneratorStepProgressBar",
    "WGANGPTrainingPlan",
]
