"""Package-wide settings: seed, verbosity and default accelerator, in one place."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("scsynth")


class ScsynthConfig:
    """Global configuration of scsynth.

    Attributes
    ----------
    seed
        Seed used by every stochastic job that is not given its own ``seed=``. Setting it also seeds
        torch, numpy and Python through Lightning.
    verbosity
        Logging level of the ``scsynth`` logger. Below ``logging.INFO`` nothing is printed and the
        progress bars of long loops (other than training) are silenced.
    accelerator
        Default ``accelerator`` passed to Lightning by ``model.train``.

    Examples
    --------
    >>> import scsynth
    >>> scsynth.settings.seed = 0
    >>> scsynth.settings.verbosity = "warning"
    """

    def __init__(self) -> None:
        self._seed = 0
        self._verbosity = logging.INFO
        self.accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
        logger.setLevel(self._verbosity)

    @property
    def seed(self) -> int:
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"scsynth.settings.seed must be a non-negative int, got {value!r}.")
        self._seed = value
        import lightning  # here, not at import: `scsynth --help` must not wait for torch

        lightning.seed_everything(value, verbose=False)

    @property
    def verbosity(self) -> int:
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int | str) -> None:
        if isinstance(value, str):
            level = logging.getLevelName(value.upper())
            if not isinstance(level, int):
                raise ValueError(f"Unknown verbosity {value!r}; use 'debug', 'info', 'warning' or 'error'.")
            value = level
        self._verbosity = int(value)
        logger.setLevel(self._verbosity)

    @property
    def progress(self) -> bool:
        """Whether long loops show a progress bar."""
        return self._verbosity <= logging.INFO

    def default_device(self) -> torch.device:
        """The torch device jobs outside training run on by default."""
        import torch

        if self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")


settings = ScsynthConfig()
