"""scanpy-style functions over scsynth models."""

from ._embed import embed
from ._generate import generate
from ._perturb import perturb
from ._stratify import markers, stratify

__all__ = ["embed", "generate", "markers", "perturb", "stratify"]
