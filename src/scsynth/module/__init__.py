"""scvi-tools modules: the maths of each model, no AnnData here."""

from ._genesys import GeneSysModule
from ._groundgan import CellParts, GRouNdGANModule
from ._scgan import ScGANModule

__all__ = ["CellParts", "GRouNdGANModule", "GeneSysModule", "ScGANModule"]
