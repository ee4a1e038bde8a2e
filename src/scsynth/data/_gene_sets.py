"""Reading gene sets (pathways) into decoupler's long format: by name, from a GMT file or a DataFrame.

A name (``"hallmark"``) is resolved through decoupler (:func:`decoupler.op.hallmark`, OmniPath) when it
can be reached, else from the versioned MSigDB snapshot bundled with scsynth (``source="auto"``, the
default); ``"bundled"`` and ``"decoupler"`` choose one route. Set names are MSigDB's standard names
whichever route: ``decoupler.op.hallmark`` strips the ``HALLMARK_`` prefix (``G2M_CHECKPOINT``), and it
is put back (``HALLMARK_G2M_CHECKPOINT``, as in MSigDB's own GMT files), so a model's pathway names do
not depend on being online and stay unique next to other collections (``REACTOME_...``).
"""

from __future__ import annotations

import gzip
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from . import _online

#: Bundled MSigDB collections (CC BY 4.0), under ``scsynth/data/resources``: file, collection.
_BUNDLED = {
    "hallmark": ("hallmark_v7.5.1_human.gmt.gz", "MSigDB Hallmark (H)"),
    "reactome_wp_pid": (
        "c2cp_reactome_wp_pid_v7.5.1_human.gmt.gz",
        "MSigDB C2 canonical pathways: Reactome, WikiPathways, PID",
    ),
}
#: Names decoupler serves directly: its function and the MSigDB prefix it strips from set names.
#: (reactome_wp_pid has no such function; ``decoupler.op.resource("MSigDB")`` is all of MSigDB.)
_DECOUPLER = {"hallmark": ("hallmark", "HALLMARK_")}
_MSIGDB_VERSION = "7.5.1"

GeneSetsLike = pd.DataFrame | str | os.PathLike
GeneSetSource = Literal["auto", "bundled", "decoupler"]
SOURCES = ("auto", "bundled", "decoupler")


def _resource(name: str) -> Path:
    return Path(str(resources.files("scsynth.data").joinpath("resources", name)))


def _read_gmt(path: Path) -> pd.DataFrame:
    """GMT: one set per line, tab-separated ``name, description, gene, gene, ...`` (plain or gzip).

    Not ``decoupler.pp.read_gmt``: decoupler 2.2 splits lines on any whitespace (``str.split()``), which
    loses the first gene of a set whose description is empty (Enrichr's GMT files) and splits
    descriptions with spaces into genes; it also opens the file as plain text, so it cannot read gzip.
    """
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    rows: list[tuple[str, str]] = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                fields = line.rstrip("\r\n").split("\t")
                if not line.strip():
                    continue
                if len(fields) < 2 or not fields[0].strip():
                    raise ValueError(
                        f"{path}, line {lineno}: not a GMT line (expected tab-separated name, description, "
                        "genes...)."
                    )
                rows.extend((fields[0], gene) for gene in fields[2:])
    except (UnicodeDecodeError, OSError, EOFError) as err:  # binary, non-UTF-8 or damaged gzip
        raise ValueError(f"{path} could not be read as a UTF-8 GMT text file ({err}).") from err
    return pd.DataFrame(rows, columns=["source", "target"], dtype=object)


def _bundled(name: str, requested: str, reason: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    fname, collection = _BUNDLED[name]
    info = {
        "name": name,
        "source": "bundled",
        "version": _MSIGDB_VERSION,
        "path": fname,
        "collection": collection,
        "label": f"MSigDB {_MSIGDB_VERSION} (bundled)",
        "requested": requested,
        "reason": reason,
    }
    return _read_gmt(_resource(fname)), info


def _decoupler_fetch(name: str) -> pd.DataFrame:
    import decoupler as dc

    return getattr(dc.op, _DECOUPLER[name][0])(organism="human")


def _from_decoupler(name: str, requested: str, *, retry: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fetch through decoupler (or its cached copy) and give the sets MSigDB's names; FetchError if not."""
    func, prefix = _DECOUPLER[name]
    what = f"decoupler.op.{func}"
    raw = _online.fetch(
        f"gene_sets:{name}:human",
        lambda: _decoupler_fetch(name),
        what=what,
        retry=retry,
        timeout=None if retry else _online.AUTO_TIMEOUT_S,
    )
    df = raw.rename(columns={"geneset": "source", "genesymbol": "target"})
    if not {"source", "target"} <= set(df.columns):  # decoupler changed its format: use the snapshot
        raise _online.FetchError(f"{what} returned columns {list(raw.columns)}, not source/target")
    names = df["source"].astype(str).str.strip()
    df = df.assign(source=names.where(names.str.startswith(prefix), prefix + names))
    version = f"decoupler {_online.decoupler_version()} (OmniPath)"
    info = {
        "name": name,
        "source": "decoupler",
        "version": version,
        "path": None,
        "collection": _BUNDLED[name][1],
        "label": version,
        "requested": requested,
        "reason": f"fetched with {what}(organism='human')",
    }
    return df, info


def _read_named(name: str, source: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    if source == "bundled":
        return _bundled(name, source, "requested")
    if source == "decoupler":
        if name not in _DECOUPLER:
            raise ValueError(
                f"source='decoupler' only supports {', '.join(map(repr, _DECOUPLER))}, got {name!r}; use "
                f"source='bundled' for {name!r} or pass a DataFrame from `decoupler.op.resource(...)`."
            )
        try:
            return _from_decoupler(name, source, retry=True)
        except _online.FetchError as err:
            raise RuntimeError(
                f"Could not fetch {name!r} through decoupler (it needs the internet): {err}. Use the bundled "
                f"MSigDB v{_MSIGDB_VERSION} snapshot: read_gene_sets({name!r}, source='bundled'), or "
                "source='auto' (the default) to fall back to it when decoupler cannot be reached."
            ) from err
    # auto: decoupler when reachable (tried once per process), else the bundled snapshot
    hint = ""
    if name not in _DECOUPLER:
        reason = f"decoupler has no function for {name!r}"
    elif _online.offline_requested():
        reason = f"{_online.OFFLINE_ENV} is set"
    else:
        try:
            df, info = _from_decoupler(name, source, retry=False)
        except _online.FetchError as err:
            reason, hint = str(err), " Pass source='bundled' to skip decoupler."
        else:
            _online.log_once(f"gene_sets:{name}", f"Gene sets {name!r}: {info['label']} ({info['reason']}).")
            return df, info
    message = f"Gene sets {name!r}: the bundled MSigDB {_MSIGDB_VERSION} snapshot ({reason}).{hint}"
    _online.log_once(f"gene_sets:{name}", message)
    return _bundled(name, source, reason)


def _standardize(df: pd.DataFrame, min_size: int) -> pd.DataFrame:
    df = df.rename(columns={"geneset": "source", "genesymbol": "target"})
    missing = [c for c in ("source", "target") if c not in df.columns]
    if missing:
        raise ValueError(
            f"Gene sets need columns 'source' (set name) and 'target' (gene symbol), as decoupler's long "
            f"format; missing {missing} in columns {list(df.columns)}."
        )
    cols = ["source", "target"] + (["weight"] if "weight" in df.columns else [])
    df = df[cols].dropna(subset=["source", "target"])
    df = df.assign(source=df["source"].astype(str).str.strip(), target=df["target"].astype(str).str.strip())
    df = df[(df["source"] != "") & (df["target"] != "")]
    df = df.drop_duplicates(["source", "target"])
    if min_size > 1:
        sizes = df.groupby("source", sort=False)["target"].transform("size")
        df = df[sizes >= min_size]
    return df.reset_index(drop=True)


def read_gene_sets(
    gene_sets: GeneSetsLike = "hallmark",
    *,
    source: GeneSetSource = "auto",
    min_size: int = 1,
) -> pd.DataFrame:
    """Read gene sets into decoupler's long format (one row per set member).

    Parameters
    ----------
    gene_sets
        ``"hallmark"`` (MSigDB Hallmark, 50 sets) or ``"reactome_wp_pid"`` (MSigDB C2 canonical pathways
        from Reactome, WikiPathways and PID, about 2,500 sets), both human; a DataFrame with columns
        ``source`` (set) and ``target`` (gene symbol) (decoupler's ``geneset``/``genesymbol`` are
        renamed); or the path of a ``.gmt`` or ``.gmt.gz`` file.
    source
        Where a name comes from. ``"auto"``: through decoupler (``decoupler.op.hallmark``, OmniPath)
        when it can be reached, else the MSigDB v7.5.1 snapshot bundled with scsynth; decoupler is tried
        once per process (a failure is remembered, a download cached) and the route is logged once at
        INFO. ``"reactome_wp_pid"`` is always bundled (decoupler has no function for it), and so is
        everything when the environment variable ``SCSYNTH_OFFLINE`` is set. ``"bundled"``: the
        snapshot (offline, reproducible). ``"decoupler"``: decoupler or an error.
    min_size
        Sets with fewer member genes are left out.

    Returns
    -------
    DataFrame with columns ``source``, ``target`` (and ``weight`` when the input had one), without
    duplicated ``(source, target)`` pairs and with names stripped of spaces. Set names of a named
    collection are MSigDB's (``HALLMARK_G2M_CHECKPOINT``) on both routes. ``df.attrs`` records the
    provenance: ``name``, ``source`` (the route taken: ``"bundled"``, ``"decoupler"``, ``"gmt"`` or
    ``"dataframe"``), ``version`` (``"7.5.1"``, or ``"decoupler 2.2.0 (OmniPath)"``), ``label``
    (``"MSigDB 7.5.1 (bundled)"``), ``path``, and for a name ``collection``, ``requested`` (the
    ``source`` asked for) and ``reason`` (why that route).

    Raises
    ------
    ValueError
        Unknown name or option, a file that is not GMT, missing columns, no set left.
    FileNotFoundError
        A path that does not exist.
    RuntimeError
        ``source="decoupler"`` and the download fails.

    Examples
    --------
    >>> hallmark = read_gene_sets("hallmark", source="bundled")
    >>> hallmark["source"].nunique(), hallmark.attrs["version"], hallmark.attrs["label"]
    (50, '7.5.1', 'MSigDB 7.5.1 (bundled)')
    >>> "CDK1" in set(hallmark.loc[hallmark["source"] == "HALLMARK_G2M_CHECKPOINT", "target"])
    True
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}.")
    if isinstance(gene_sets, pd.DataFrame):
        df = gene_sets
        # a DataFrame from an earlier read_gene_sets keeps its provenance
        if "source" in gene_sets.attrs:
            info = dict(gene_sets.attrs)
        else:
            info = {"name": None, "source": "dataframe", "label": "DataFrame"}
        info.setdefault("version", None)
        info.setdefault("path", None)
    elif isinstance(gene_sets, str) and gene_sets.lower() in _BUNDLED:
        df, info = _read_named(gene_sets.lower(), source)
    elif isinstance(gene_sets, str | os.PathLike):
        path = Path(gene_sets)
        if not path.exists():
            raise FileNotFoundError(
                f"Gene-set file {str(path)!r} not found; pass a .gmt path, a DataFrame or one of the bundled "
                f"names {sorted(_BUNDLED)}."
            )
        if ".gmt" not in [s.lower() for s in path.suffixes]:
            raise ValueError(
                f"{str(path)!r} is not a .gmt or .gmt.gz file; read other tables with pandas and pass a "
                "DataFrame with columns 'source' and 'target'."
            )
        df = _read_gmt(path)
        info = {
            "name": path.name.split(".gmt")[0],
            "source": "gmt",
            "version": None,
            "path": str(path),
            "label": f"GMT file {path.name}",
        }
    else:
        raise TypeError(
            f"gene_sets must be a name, a DataFrame or a .gmt path, got {type(gene_sets).__name__}."
        )
    out = _standardize(df, min_size)
    if out.empty:
        raise ValueError(
            f"No gene set with at least {min_size} genes in {info.get('path') or info['name']!r}."
        )
    out.attrs = info
    return out
