"""Prior knowledge through decoupler when it can be reached: one attempt per resource and process.

The ``source="auto"`` routes of :func:`~scsynth.data.read_gene_sets` and :func:`~scsynth.data.read_grn`
call :func:`fetch`. Its result, or its failure, is remembered for the rest of the process, so a hundred
calls download once, or fail once and then go straight to the bundled snapshot. Which route was taken,
and why, is logged once at INFO. Setting the environment variable ``SCSYNTH_OFFLINE`` (to anything but
``""`` or ``"0"``) skips the attempt: reproducible offline runs, e.g. in CI.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import pandas as pd

logger = logging.getLogger(__name__)

#: Environment variable that keeps the ``source="auto"`` routes on the bundled snapshots.
OFFLINE_ENV = "SCSYNTH_OFFLINE"
#: Seconds an ``auto`` download may take. decoupler's requests have no timeout of their own, so on a
#: network that drops packets (rather than refusing them) the call would otherwise hang for minutes.
AUTO_TIMEOUT_S = 30.0
#: Longest reason kept: requests' errors repeat the URL and the whole chain of causes.
_MAX_REASON = 240

_lock = threading.Lock()
_results: dict[str, pd.DataFrame] = {}
_failures: dict[str, str] = {}
_logged: set[str] = set()


class FetchError(RuntimeError):
    """decoupler could not deliver a resource (no network, timeout, server error, decoupler missing)."""


def decoupler_version() -> str:
    """The installed decoupler's version, or ``"unknown"`` (read from the metadata: no import)."""
    try:
        return version("decoupler")
    except PackageNotFoundError:
        return "unknown"


def offline_requested() -> bool:
    """Whether ``SCSYNTH_OFFLINE`` asks the ``auto`` routes not to try the network."""
    return os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")


def _call(fn: Callable[[], pd.DataFrame], timeout: float | None) -> pd.DataFrame:
    """``fn()``, given up after ``timeout`` seconds (the daemon thread is left to finish on its own)."""
    if timeout is None:
        return fn()
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller below
            box["error"] = err

    thread = threading.Thread(target=run, name="scsynth-decoupler-fetch", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def fetch(
    key: str,
    fn: Callable[[], pd.DataFrame],
    *,
    what: str,
    retry: bool = False,
    timeout: float | None = AUTO_TIMEOUT_S,
) -> pd.DataFrame:
    """Run ``fn`` (a decoupler download) once per ``key`` and process; return a copy of its DataFrame.

    Parameters
    ----------
    key
        Names the resource, e.g. ``"gene_sets:hallmark:human"``; results and failures are kept per key.
    fn
        Returns the resource as a DataFrame (it imports decoupler itself, so a missing decoupler is a
        failure like any other).
    what
        The call, for messages, e.g. ``"decoupler.op.hallmark"``.
    retry
        Try again even after a failure in this process (an explicit ``source="decoupler"``).
    timeout
        Seconds before giving up; ``None`` waits as long as the download takes.

    Raises
    ------
    FetchError
        ``fn`` failed, timed out or returned something else than a DataFrame (now or, without
        ``retry``, earlier in this process); the message says why.

    Examples
    --------
    >>> df = fetch("doc:example", lambda: pd.DataFrame({"source": ["A"], "target": ["G1"]}), what="example")
    >>> df.shape
    (1, 2)
    """
    with _lock:
        if key in _results:
            return _results[key].copy()
        if key in _failures and not retry:
            raise FetchError(_failures[key])
    try:
        df = _call(fn, timeout)
        if not isinstance(df, pd.DataFrame) or df.empty:
            raise TypeError(f"expected a non-empty DataFrame, got {type(df).__name__}")
    except Exception as err:  # no network, OmniPath/Zenodo down, decoupler missing or changed
        reason = f"{what} failed: {type(err).__name__}: {err}"
        reason = reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."
        with _lock:
            _failures[key] = reason
        raise FetchError(reason) from err
    with _lock:
        _results[key] = df
        _failures.pop(key, None)
    return df.copy()


def log_once(key: str, message: str) -> None:
    """Log ``message`` at INFO the first time ``key`` is seen in this process."""
    with _lock:
        if key in _logged:
            return
        _logged.add(key)
    logger.info(message)


def reset() -> None:
    """Forget downloads, failures and logged routes, e.g. once the network is back (and between tests)."""
    with _lock:
        _results.clear()
        _failures.clear()
        _logged.clear()
