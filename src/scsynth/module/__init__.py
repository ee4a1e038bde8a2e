"""scvi-tools modules: the maths of each model, no AnnData here."""

from ._scgan import ScGANModule

__all__ = ["ScGANModule"]
