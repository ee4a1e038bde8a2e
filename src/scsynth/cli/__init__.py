"""The ``scsynth`` command line: train, generate, perturb, stratify, evaluate and a demo, over the Python API.

One module per concern: ``_flags`` (checked types, shared and renamed flags), ``_parser`` and ``_train_parser``
(argparse), ``_io`` (files in and out), ``_train`` and ``_rnagan`` (training), ``_jobs`` (generate, stratify,
perturb, upgrade), ``_evaluate`` (evaluate, demo), ``_data`` (bundled datasets) and ``_main`` (``main``,
one-line errors and warnings). Heavy libraries (torch, scanpy) are imported inside the commands, so that
``scsynth --help`` answers at once.

Examples
--------
>>> from scsynth.cli import main
>>> main(["generate", "my_model", "-n", "500", "-o", "cells.h5ad"])  # doctest: +SKIP
Wrote 500 generated cells x 765 genes to cells.h5ad
0
"""

from __future__ import annotations

from ._flags import DEBUG_ENV
from ._main import main
from ._parser import build_parser

__all__ = ["DEBUG_ENV", "build_parser", "main"]
