"""Gene sets (pathways) in decoupler's long format: reading, and matching them to the data's genes."""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from ._validate import _examples

#: Bundled MSigDB collections (CC BY 4.0), under ``scsynth/data/resources``.
_BUNDLED = {
    "hallmark": ("hallmark_v7.5.1_human.gmt.gz", "MSigDB Hallmark (H)"),
    "reactome_wp_pid": (
        "c2cp_reactome_wp_pid_v7.5.1_human.gmt.gz",
        "MSigDB C2 canonical pathways: Reactome, WikiPathways, PID",
    ),
}
_MSIGDB_VERSION = "7.5.1"
_FORMAT = "scsynth.MatchedGeneSets"
_VERSION = 1

GeneSetsLike = pd.DataFrame | str | os.PathLike


def _resource(name: str) -> Path:
    return Path(str(resources.files("scsynth.data").joinpath("resources", name)))


def _read_gmt(path: Path) -> pd.DataFrame:
    """GMT: one set per line, tab-separated ``name, description, gene, gene, ...`` (plain or gzip).

    Not ``decoupler.pp.read_gmt``: decoupler 2.2 splits on any whitespace, which loses the first gene
    of a set whose description is empty (Enrichr's GMT files) and splits descriptions with spaces;
    it also cannot read gzip.
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


def _from_decoupler(name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    if name != "hallmark":
        raise ValueError(
            f"source='decoupler' only supports 'hallmark', got {name!r}; use source='bundled' for "
            f"{name!r} or pass a DataFrame from `decoupler.op.resource(...)`."
        )
    try:
        import decoupler as dc

        df = dc.op.hallmark(organism="human")
    except Exception as err:  # no network, OmniPath down, decoupler missing or too old
        raise RuntimeError(
            "Could not fetch the Hallmark gene sets through `decoupler.op.hallmark` (it needs the "
            f"internet): {type(err).__name__}: {err}. Use the offline default, the bundled MSigDB "
            f"Hallmark v{_MSIGDB_VERSION}: read_gene_sets('hallmark', source='bundled')."
        ) from err
    info = {"name": "hallmark", "source": "decoupler", "version": f"decoupler {dc.__version__} (OmniPath)"}
    return df, info


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
    source: Literal["bundled", "decoupler"] = "bundled",
    min_size: int = 1,
) -> pd.DataFrame:
    """Read gene sets into decoupler's long format (one row per set member).

    Parameters
    ----------
    gene_sets
        ``"hallmark"`` (MSigDB Hallmark, 50 sets) or ``"reactome_wp_pid"`` (MSigDB C2 canonical pathways
        from Reactome, WikiPathways and PID, about 2,500 sets), both human, MSigDB v7.5.1, bundled;
        a DataFrame with columns ``source`` (set) and ``target`` (gene symbol) (decoupler's
        ``geneset``/``genesymbol`` are renamed); or the path of a ``.gmt`` or ``.gmt.gz`` file.
    source
        For a name: the bundled file (offline), or ``"decoupler"`` to fetch ``"hallmark"`` through
        ``decoupler.op.hallmark`` (needs the internet).
    min_size
        Sets with fewer member genes are left out.

    Returns
    -------
    DataFrame with columns ``source``, ``target`` (and ``weight`` when the input had one), without
    duplicated ``(source, target)`` pairs and with names stripped of spaces. ``df.attrs`` records the
    provenance: ``name``, ``source`` (``"bundled"``, ``"decoupler"``, ``"gmt"`` or ``"dataframe"``),
    ``version`` and ``path``.

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
    >>> hallmark = read_gene_sets("hallmark")
    >>> hallmark["source"].nunique(), hallmark.attrs["version"]
    (50, '7.5.1')
    >>> "CDK1" in set(hallmark.loc[hallmark["source"] == "HALLMARK_G2M_CHECKPOINT", "target"])
    True
    """
    if source not in ("bundled", "decoupler"):
        raise ValueError(f"source must be 'bundled' or 'decoupler', got {source!r}.")
    if isinstance(gene_sets, pd.DataFrame):
        df = gene_sets
        # a DataFrame from an earlier read_gene_sets keeps its provenance
        info = dict(gene_sets.attrs) if "source" in gene_sets.attrs else {"name": None, "source": "dataframe"}
        info.setdefault("version", None)
        info.setdefault("path", None)
    elif isinstance(gene_sets, str) and gene_sets.lower() in _BUNDLED:
        name = gene_sets.lower()
        if source == "decoupler":
            df, info = _from_decoupler(name)
            info["path"] = None
        else:
            fname, collection = _BUNDLED[name]
            df = _read_gmt(_resource(fname))
            info = {"name": name, "source": "bundled", "version": _MSIGDB_VERSION, "path": fname}
            info["collection"] = collection
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
        info = {"name": path.name.split(".gmt")[0], "source": "gmt", "version": None, "path": str(path)}
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


@dataclass(frozen=True, eq=False, repr=False)
class MatchedGeneSets:
    """Gene sets matched to the data's genes: the sparse set x gene membership a pathway layer uses.

    Build it with :func:`match_gene_sets`; store it with a model via :meth:`to_dict` and restore it with
    :meth:`from_dict`. Set ``rows[i]`` contains gene ``genes[cols[i]]``; memberships are sorted by set,
    then by gene position.

    Attributes
    ----------
    sets
        Names of the kept sets (the pathway layer's outputs), in the order of the gene-set input.
    genes
        The data's genes in data order (the model's inputs); not all of them need be in a set.
    rows
        Set index of each membership (int64).
    cols
        Gene position (into ``genes``) of each membership (int64).
    dropped_sets
        Sets left out because fewer than ``min_genes_per_set`` of their genes are in the data.
    matching
        ``"exact"`` or ``"case-insensitive"`` symbol matching.
    provenance
        Where the gene sets came from (name, source, version, path) and the options used.

    Examples
    --------
    >>> gs = pd.DataFrame({"source": ["A", "A", "B", "B"], "target": ["G1", "G3", "G2", "G3"]})
    >>> m = match_gene_sets(gs, ["G1", "G2", "G3"], min_genes_per_set=2)
    >>> m
    MatchedGeneSets(2 sets over 3 genes, 4 memberships, 3 genes matched, exact matching)
    >>> m.membership.toarray()
    array([[1., 0., 1.],
           [0., 1., 1.]], dtype=float32)
    """

    sets: tuple[str, ...]
    genes: tuple[str, ...]
    rows: np.ndarray
    cols: np.ndarray
    dropped_sets: tuple[str, ...] = ()
    matching: str = "exact"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sets(self) -> int:
        """Number of kept sets."""
        return len(self.sets)

    @property
    def n_genes(self) -> int:
        """Number of genes of the data (inputs of the pathway layer)."""
        return len(self.genes)

    @property
    def n_memberships(self) -> int:
        """Number of (set, gene) pairs: the weights of a sparse pathway layer."""
        return len(self.rows)

    @property
    def n_matched_per_set(self) -> np.ndarray:
        """Matched genes per kept set (int64)."""
        return np.bincount(self.rows, minlength=self.n_sets)

    @property
    def matched_genes(self) -> list[str]:
        """Genes of the data in at least one kept set, in data order."""
        return [self.genes[i] for i in np.unique(self.cols)]

    @property
    def membership(self) -> sparse.csr_matrix:
        """Binary set x gene membership, ``(n_sets, n_genes)``, float32 CSR."""
        data = np.ones(self.n_memberships, dtype=np.float32)
        return sparse.csr_matrix((data, (self.rows, self.cols)), shape=(self.n_sets, self.n_genes))

    def summary(self) -> dict[str, Any]:
        """Counts: sets, genes, matched genes, memberships, set sizes, dropped sets, matching, provenance."""
        sizes = self.n_matched_per_set
        return {
            "name": self.provenance.get("name"),
            "version": self.provenance.get("version"),
            "n_sets": self.n_sets,
            "n_genes": self.n_genes,
            "n_matched_genes": len(self.matched_genes),
            "n_memberships": self.n_memberships,
            "set_size_min": int(sizes.min()) if len(sizes) else 0,
            "set_size_median": float(np.median(sizes)) if len(sizes) else 0.0,
            "set_size_max": int(sizes.max()) if len(sizes) else 0,
            "n_dropped_sets": len(self.dropped_sets),
            "matching": self.matching,
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"MatchedGeneSets({s['n_sets']} sets over {s['n_genes']} genes, {s['n_memberships']} memberships, "
            f"{s['n_matched_genes']} genes matched, {s['matching']} matching)"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MatchedGeneSets) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (lists of str and int) that :meth:`from_dict` turns back into this object.

        Examples
        --------
        >>> import json
        >>> gs = pd.DataFrame({"source": ["A", "A"], "target": ["G1", "G2"]})
        >>> m = match_gene_sets(gs, ["G1", "G2"], min_genes_per_set=2)
        >>> MatchedGeneSets.from_dict(json.loads(json.dumps(m.to_dict()))) == m
        True
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "sets": list(self.sets),
            "genes": list(self.genes),
            "rows": self.rows.tolist(),
            "cols": self.cols.tolist(),
            "dropped_sets": list(self.dropped_sets),
            "matching": self.matching,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchedGeneSets:
        """Rebuild a MatchedGeneSets from :meth:`to_dict`'s output (checked for consistency)."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"Not a saved MatchedGeneSets: expected a dict with format={_FORMAT!r}.")
        if data.get("version") != _VERSION:
            raise ValueError(
                f"Saved MatchedGeneSets has version {data.get('version')!r}; this scsynth reads {_VERSION}."
            )
        return _assemble(
            data["sets"],
            data["genes"],
            data["rows"],
            data["cols"],
            data["dropped_sets"],
            data["matching"],
            dict(data["provenance"]),
        )


def _assemble(
    sets: Sequence[str],
    genes: Sequence[str],
    rows: Sequence[int],
    cols: Sequence[int],
    dropped: Sequence[str],
    matching: str,
    provenance: dict[str, Any],
) -> MatchedGeneSets:
    rows_arr, cols_arr = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if rows_arr.shape != cols_arr.shape or rows_arr.ndim != 1:
        raise ValueError("Inconsistent gene-set membership: rows and cols differ in length.")
    if len(rows_arr) and (
        rows_arr.min() < 0
        or rows_arr.max() >= len(sets)
        or cols_arr.min() < 0
        or cols_arr.max() >= len(genes)
    ):
        raise ValueError("Inconsistent gene-set membership: an index is outside the sets or genes.")
    order = np.lexsort((cols_arr, rows_arr))
    rows_arr, cols_arr = rows_arr[order], cols_arr[order]
    if len(rows_arr) > 1 and ((np.diff(rows_arr) == 0) & (np.diff(cols_arr) == 0)).any():
        raise ValueError("Inconsistent gene-set membership: a (set, gene) pair is repeated.")
    for arr in (rows_arr, cols_arr):
        arr.setflags(write=False)
    return MatchedGeneSets(
        tuple(map(str, sets)),
        tuple(map(str, genes)),
        rows_arr,
        cols_arr,
        tuple(map(str, dropped)),
        matching,
        provenance,
    )


def _no_match_hint(var: pd.Index, targets: Sequence[str]) -> str:
    hint = (
        f"The data has {len(var)} genes (e.g. {_examples(var[:5])}); the gene sets have {len(targets)} genes "
        f"(e.g. {_examples(targets[:5])}). Genes are matched by symbol: "
    )
    if np.mean([str(g).upper().startswith("ENS") for g in var[:1000]]) > 0.5:
        hint += "var_names look like Ensembl IDs; "
    return hint + (
        "set `adata.var_names` to gene symbols first (e.g. `adata.var_names = adata.var['gene_symbols']`, "
        "then `adata.var_names_make_unique()`), and do not subset to a few highly variable genes."
    )


def match_gene_sets(
    gene_sets: GeneSetsLike,
    var_names: Sequence[str],
    *,
    min_genes_per_set: int = 5,
    min_sets: int = 1,
) -> MatchedGeneSets:
    """Match gene sets to the data's genes by symbol and build the set x gene membership.

    Symbols are matched exactly first. If that finds fewer than half the genes a case-insensitive match
    finds (e.g. mouse ``Cdk1`` against human ``CDK1``), matching falls back to case-insensitive, with a
    warning; ``matching`` records which was used. Sets with fewer than ``min_genes_per_set`` genes in
    the data are dropped (``dropped_sets``). Set weights, if any, are ignored: membership is binary.

    Parameters
    ----------
    gene_sets
        Anything :func:`read_gene_sets` accepts.
    var_names
        The data's genes, e.g. ``adata.var_names``; their order is the model's gene order.
    min_genes_per_set
        Smallest number of matched genes for a set to be kept.
    min_sets
        Smallest number of kept sets; fewer is an error.

    Returns
    -------
    A :class:`MatchedGeneSets`.

    Raises
    ------
    ValueError
        Duplicated ``var_names``, no gene of the data in any set, or fewer than ``min_sets`` sets kept.

    Examples
    --------
    >>> import scanpy as sc
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> m = match_gene_sets("hallmark", adata.var_names, min_genes_per_set=5)
    >>> m.n_genes == adata.n_vars, m.matching
    (True, 'exact')
    """
    if min_genes_per_set < 1 or min_sets < 1:
        raise ValueError(
            f"min_genes_per_set and min_sets must be >= 1, got {min_genes_per_set} and {min_sets}."
        )
    var = pd.Index(np.asarray(var_names).astype(str))
    if var.has_duplicates:
        raise ValueError(
            f"var_names has duplicated genes ({_examples(var[var.duplicated()].unique())}); make them unique "
            "first, e.g. `adata.var_names_make_unique()`."
        )
    df = read_gene_sets(gene_sets)
    targets = pd.unique(df["target"])

    exact = {g: i for i, g in enumerate(var)}
    folded: dict[str, int] = {}
    for i, g in enumerate(var):
        folded.setdefault(g.upper(), i)  # first in data order wins among case variants
    n_exact = sum(t in exact for t in targets)
    n_folded = sum(t.upper() in folded for t in targets)
    if n_exact >= 0.5 * n_folded:
        matching, pos = "exact", df["target"].map(exact)
    else:
        # an exact match still wins over another case variant of the same symbol
        fold = {t: exact.get(t, folded.get(t.upper())) for t in targets}
        matching, pos = "case-insensitive", df["target"].map(fold)
        warnings.warn(
            f"Only {n_exact} of the gene sets' genes match the data's symbols exactly, {n_folded} ignoring "
            "case; matching case-insensitively (check the organism: the bundled gene sets are human).",
            stacklevel=2,
        )
    if n_folded == 0:
        raise ValueError("No gene of the gene sets is in the data. " + _no_match_hint(var, list(targets)))

    hit = df.assign(pos=pos).dropna(subset=["pos"])
    hit = hit.drop_duplicates(["source", "pos"])  # case variants of one gene count once
    counts = hit.groupby("source", sort=False).size()
    all_sets = pd.unique(df["source"])
    kept = [s for s in all_sets if counts.get(s, 0) >= min_genes_per_set]
    dropped = [s for s in all_sets if counts.get(s, 0) < min_genes_per_set]
    if len(kept) < min_sets:
        n_hit = hit["pos"].nunique()
        raise ValueError(
            f"Only {len(kept)} of {len(all_sets)} gene sets have at least {min_genes_per_set} genes in the data "
            f"(min_sets={min_sets}); {n_hit} of the data's {len(var)} genes are in a set, the largest overlap is "
            f"{int(counts.max()) if len(counts) else 0} genes. Lower min_genes_per_set, keep more genes, or use a "
            "larger collection. " + _no_match_hint(var, list(targets))
        )
    set_index = {s: i for i, s in enumerate(kept)}
    hit = hit[hit["source"].isin(set_index)]
    provenance = {k: df.attrs.get(k) for k in ("name", "source", "version", "path", "collection")}
    provenance.update(min_genes_per_set=min_genes_per_set, n_sets_read=len(all_sets))
    return _assemble(
        kept,
        list(var),
        hit["source"].map(set_index).to_numpy(),
        hit["pos"].to_numpy().astype(np.int64),
        dropped,
        matching,
        provenance,
    )
