"""Training plans (Lightning): the WGAN-GP plans of the GANs and GeneSys's VAE plan, RNAGAN's episode plan, their batch
samplers, the divergence guard all four models train under, and the GANs' weight average and realism checkpoint."""

from ._count_noise_warmup import CountNoiseWarmup
from ._divergence import DivergenceGuard, TrainingDivergedError
from ._ema import GeneratorEMA
from ._episodes import EpisodeBatches
from ._genesys_plan import BestStateTracker, GeneSysTrainingPlan
from ._groundgan_plan import GROUNDGAN_HISTORY_KEYS, GRouNdGANTrainingPlan
from ._progress import EpochProgressBar, GeneratorStepProgressBar
from ._realism_checkpoint import REALISM_KEY, RealismCheckpoint
from ._rnagan_plan import RNAGAN_HISTORY_KEYS, RNAGANTrainingPlan
from ._sample_realism import SampleRealismCheckpoint
from ._trajectory_data import TrajectoryBatches, TrajectoryDataModule
from ._trajectory_realism import TrajectoryRealismCheckpoint
from ._wgan_gp import HISTORY_KEYS, WGANGPTrainingPlan

__all__ = [
    "BestStateTracker",
    "CountNoiseWarmup",
    "DivergenceGuard",
    "EpisodeBatches",
    "EpochProgressBar",
    "GROUNDGAN_HISTORY_KEYS",
    "GRouNdGANTrainingPlan",
    "GeneSysTrainingPlan",
    "GeneratorEMA",
    "HISTORY_KEYS",
    "REALISM_KEY",
    "RealismCheckpoint",
    "RNAGANTrainingPlan",
    "RNAGAN_HISTORY_KEYS",
    "GeneratorStepProgressBar",
    "SampleRealismCheckpoint",
    "TrajectoryBatches",
    "TrainingDivergedError",
    "TrajectoryDataModule",
    "TrajectoryRealismCheckpoint",
    "WGANGPTrainingPlan",
]
