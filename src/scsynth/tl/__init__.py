"""scanpy-style functions over scsynth models."""

from ._generate import generate
from ._perturb import perturb

__all__ = ["generate", "perturb"]
