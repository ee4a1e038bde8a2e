"""Training plans (Lightning, manual optimisation)."""

from ._progress import GeneratorStepProgressBar
from ._wgan_gp import HISTORY_KEYS, WGANGPTrainingPlan

__all__ = ["HISTORY_KEYS", "GeneratorStepProgressBar", "WGANGPTrainingPlan"]
