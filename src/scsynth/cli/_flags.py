"""Shared argparse pieces: range-checked types, the flags every subcommand spells the same, renamed flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "DEBUG_ENV",
    "RENAMED_DEST",
    "RenamedFlag",
    "add_batch_size",
    "add_layer",
    "add_normalized",
    "add_overwrite",
    "add_renamed",
    "add_seed",
    "comma_list",
    "fraction",
    "half_open_fraction",
    "non_negative_float",
    "non_negative_int",
    "number",
    "open_fraction",
    "parse_args",
    "positive_float",
    "positive_int",
    "require",
]

#: Environment variable that makes every command show tracebacks (as ``--debug`` does).
DEBUG_ENV = "SCSYNTH_DEBUG"
#: Namespace attribute listing the deprecated flags a command line used: ``(old, new, prog)`` each.
RENAMED_DEST = "renamed_flags"


def number(kind: type, test: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type=`` that also checks the range, so a bad flag fails before any work.

    Examples
    --------
    >>> number(int, lambda v: v > 0, "a positive integer")("3")
    3
    """

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not test(value):  # NaN fails every test
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = number(int, lambda v: v > 0, "a positive integer")
non_negative_int = number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = number(float, lambda v: 0 < v < float("inf"), "a positive number")
non_negative_float = number(float, lambda v: 0 <= v < float("inf"), "a non-negative number")
fraction = number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")
open_fraction = number(float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")
half_open_fraction = number(float, lambda v: 0 <= v < 1, "a number from 0 up to (not including) 1")


def comma_list(text: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``: the values of a comma-separated flag (spaces inside a value are kept).

    Examples
    --------
    >>> comma_list("to_A, to B")
    ['to_A', 'to B']
    """
    values = [v.strip() for v in text.split(",")]
    if not all(values):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-empty values, got {text!r}")
    return values


class RenamedFlag(argparse.Action):
    """A deprecated spelling of a flag: hidden from ``--help``, it fills the new flag's ``dest``.

    The use is recorded on the namespace (not warned at once) so that ``main`` says it in its one-line
    warning format, set up only after parsing. ``extend=True`` adds the value to a list flag (as
    ``action="extend"`` does) instead of replacing it.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, extend: bool = False,
                 **kwargs: Any) -> None:
        kwargs.update(help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.extend = new, extend

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if self.extend:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)
        used = [*getattr(namespace, RENAMED_DEST, []), (option_string, self.new, parser.prog)]
        setattr(namespace, RENAMED_DEST, used)


def add_renamed(parser: argparse.ArgumentParser, old: str, new: str, *, dest: str, extend: bool = False,
                **kwargs: Any) -> None:
    """Keep ``old`` working as a hidden alias of ``new`` (whose ``dest`` is ``dest``), with a FutureWarning.

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--labels-key")
    >>> add_renamed(p, "--groupby", "--labels-key", dest="labels_key")
    >>> p.parse_args(["--groupby", "g"]).labels_key
    'g'
    """
    parser.add_argument(old, dest=dest, action=RenamedFlag, new=new, extend=extend, **kwargs)


def require(parser: argparse.ArgumentParser, dest: str, flag: str) -> None:
    """Make ``flag`` required although a renamed alias may give it (argparse's ``required=`` would refuse it)."""
    required = parser.get_default("required_flags") or ()
    parser.set_defaults(required_flags=(*required, (dest, flag)), command_parser=parser)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` plus the :func:`require` checks, failing as argparse does (exit 2)."""
    args = parser.parse_args(argv)
    for dest, flag in getattr(args, "required_flags", ()):
        if getattr(args, dest, None) is None:
            args.command_parser.error(f"the following arguments are required: {flag}")
    return args


# --- the flags many subcommands share: one spelling, one wording ----------------------------------------------

def add_seed(parser: argparse.ArgumentParser, *, what: str = "random seed") -> None:
    """``--seed N`` (default 0)."""
    parser.add_argument("--seed", type=non_negative_int, default=0, help=f"{what} (default: 0)")


def add_overwrite(parser: argparse.ArgumentParser, *, target: str) -> None:
    """``--overwrite``: replace ``target`` (e.g. "an existing -o/--output file") instead of failing."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {target} instead of failing")


def add_no_calibration(parser: argparse.ArgumentParser) -> None:
    """``--no-calibration``: ``train(calibrate_marginals=False)``."""
    parser.add_argument("--no-calibration", dest="calibrate_marginals", action="store_false",
                        help="keep the generator's own values: no map onto the training data's per-gene "
                             "distributions after training (default: calibrated)")


def add_layer(parser: argparse.ArgumentParser, *, where: str = "the input") -> None:
    """``--layer NAME``: the layer with the values (default ``.X``)."""
    parser.add_argument("--layer", help=f"layer of {where} with the values (default: .X)")


def add_normalized(parser: argparse.ArgumentParser, *, detected: bool) -> None:
    """``--normalized``: the values are not counts; ``detected`` says whether the default is auto-detection."""
    default = "detected: non-negative integers are counts" if detected else "counts, checked to be integers"
    parser.add_argument("--normalized", action="store_true",
                        help=f"the values are normalised (log-normalised, FPKM...), not counts (default: {default})")


def add_batch_size(parser: argparse.ArgumentParser, *, default: int, unit: str, note: str = "") -> None:
    """``--batch-size N``: ``unit`` (cells, trajectories, episodes) per training batch."""
    parser.add_argument("--batch-size", type=positive_int, default=default,
                        help=f"{unit} per training batch{note} (default: {default})")
