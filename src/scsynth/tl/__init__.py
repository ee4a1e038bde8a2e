"""scanpy-style functions over scsynth models."""

from ._embed import embed
from ._generate import generate
from ._perturb import perturb

__all__ = ["embed", "generate", "perturb"]
