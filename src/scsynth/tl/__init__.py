"""scanpy-style functions over scsynth models."""

from ._generate import generate

__all__ = ["generate"]
