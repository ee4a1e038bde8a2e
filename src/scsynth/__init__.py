"""scsynth: deep generative models for transcriptomes, on scvi-tools, used like scanpy."""

from importlib.metadata import PackageNotFoundError, version

import rich.pretty  # noqa: F401  (scvi-tools 1.4 uses rich.pretty without importing it)

from ._settings import settings
from . import data, metrics, model, pl, tl  # noqa: E402

try:
    __version__ = version("scsynth")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "data", "metrics", "model", "pl", "settings", "tl"]
