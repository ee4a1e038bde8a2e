"""``main``: parse, run the command, and turn every failure into one ``error:`` line (``--debug``: traceback)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence

from .._deprecation import warn_renamed
from ._flags import DEBUG_ENV, RENAMED_DEST, parse_args
from ._parser import build_parser

__all__ = ["EXPECTED_ERRORS", "error_message", "format_warning", "main"]

# the errors scsynth raises on purpose, with a message that says what to do; anything else is a bug or an
# environment failure, reported with its type and how to see the traceback
EXPECTED_ERRORS = (ValueError, KeyError, TypeError, OSError, RuntimeError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scsynth`` console script: the exit status of the command.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    scsynth 0.2.0
    0
    """
    parser = build_parser()
    args = parse_args(parser, argv)
    if args.version:
        from .. import __version__

        print(f"scsynth {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    # scsynth's own messages at INFO; other libraries' (anndata's "... storing 'x' as categorical") only from WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("scsynth").setLevel(logging.INFO)
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    formatted = warnings.formatwarning
    if not debug:
        warnings.formatwarning = format_warning
    try:
        _warn_renamed_flags(args)
        args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a command line reports every failure as one line
        if debug:
            raise
        hint = not isinstance(err, EXPECTED_ERRORS)
        print(f"error: {error_message(err, debug_hint=hint)}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = formatted
    return 0


def _warn_renamed_flags(args: argparse.Namespace) -> None:
    """One FutureWarning per deprecated flag the command line used (recorded while parsing)."""
    for old, new, prog in dict.fromkeys(getattr(args, RENAMED_DEST, ())):
        warn_renamed(old, new, where=prog)


def format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one ``warning: ...`` line, without the source path and line that Python prints.

    Examples
    --------
    >>> format_warning("Dropping 4 genes\\n and 0 cells.", UserWarning, "x.py", 1)
    'warning: Dropping 4 genes and 0 cells.\\n'
    """
    return f"warning: {' '.join(str(message).split())}\n"


def error_message(err: BaseException, *, debug_hint: bool) -> str:
    """One line for ``err``: KeyError's quotes dropped, numpy string reprs shown as plain strings.

    Examples
    --------
    >>> error_message(KeyError("No gene 'GATA2'"), debug_hint=False)
    "No gene 'GATA2'"
    """
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    text = re.sub(r"np\.str_\((['\"])(.*?)\1\)", r"'\2'", str(text))  # np.str_('GATA2') -> 'GATA2'
    text = " ".join(text.split()) or type(err).__name__
    if debug_hint:
        hint = f"pass --debug or set {DEBUG_ENV}=1 for the traceback"
        text = f"unexpected {type(err).__name__}: {text} ({hint})"
    return text
