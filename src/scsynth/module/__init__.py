"""scvi-tools modules: the maths of each model, no AnnData here."""

from ._genesys import GeneSysModule
from ._groundgan import CellParts, GRouNdGANModule
from ._rnagan import EpisodeDiscriminator, EpisodeFeatures, RNAGANNetworks, SetGenerator
from ._scgan import ScGANModule

__all__ = [
    "CellParts",
    "EpisodeDiscriminator",
    "EpisodeFeatures",
    "GRouNdGANModule",
    "GeneSysModule",
    "RNAGANNetworks",
    "ScGANModule",
    "SetGenerator",
]
