"""Training plans (Lightning): the WGAN-GP plans of the GANs and GeneSys's VAE plan with its trajectory batches."""

from ._genesys_plan import BestStateTracker, GeneSysTrainingPlan
from ._groundgan_plan import GROUNDGAN_HISTORY_KEYS, GRouNdGANTrainingPlan
from ._progress import EpochProgressBar, GeneratorStepProgressBar
from ._trajectory_data import TrajectoryBatches, TrajectoryDataModule
from ._wgan_gp import HISTORY_KEYS, WGANGPTrainingPlan

__all__ = [
    "BestStateTracker",
    "EpochProgressBar",
    "GROUNDGAN_HISTORY_KEYS",
    "GRouNdGANTrainingPlan",
    "GeneSysTrainingPlan",
    "HISTORY_KEYS",
    "GeneratorStepProgressBar",
    "TrajectoryBatches",
    "TrajectoryDataModule",
    "WGANGPTrainingPlan",
]
