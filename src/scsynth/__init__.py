"""scsynth: deep generative models for transcriptomes, on scvi-tools, used like scanpy.

The subpackages (``data``, ``metrics``, ``model``, ``pl``, ``tl``, ...) are imported on first use, so that
``import scsynth`` and the ``scsynth`` command's ``--help`` do not wait for torch and scvi-tools.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

import rich.pretty  # noqa: F401  (scvi-tools 1.4 uses rich.pretty without importing it)

from ._settings import settings

try:
    __version__ = version("scsynth")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_SUBPACKAGES = ("data", "metrics", "model", "module", "nn", "pl", "tl", "train")
__all__ = ["__version__", "data", "metrics", "model", "pl", "settings", "tl"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return import_module(f"{__name__}.{name}")  # import_module also sets it as an attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES})
