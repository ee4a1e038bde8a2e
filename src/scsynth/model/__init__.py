"""User-facing models (scvi-tools ``BaseModelClass`` subclasses)."""

from ._base import GANModelBase, ScsynthModelBase
from ._genesys import GeneSys
from ._groundgan import GRouNdGAN
from ._rnagan import RNAGAN
from ._scgan import ScGAN

__all__ = ["GANModelBase", "GRouNdGAN", "GeneSys", "RNAGAN", "ScGAN", "ScsynthModelBase"]
