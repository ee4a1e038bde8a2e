"""Keep Lightning's start-up chatter out of a biologist's notebook."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

from .._settings import settings

_NOISY_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning")
_NOISY_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*number of training batches .* is smaller than the logging interval.*",
    r".*does not have many workers.*",
    r".*Found \d+ module\(s\) in eval mode.*",
    r".*Your `IterableDataset` has `__len__` defined.*",  # one process draws all GeneSys batches
    r".*You passed in a `val_dataloader` but have no `validation_step`.*",  # RNAGAN trains without validation
)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info banners and known harmless warnings, unless verbosity is DEBUG."""
    if settings.verbosity <= logging.DEBUG:
        yield
        return
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _NOISY_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
