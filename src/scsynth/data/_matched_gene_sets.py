"""Gene sets matched to the data's genes: the sparse set x gene membership a pathway layer uses."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._gene_sets import GeneSetSource, GeneSetsLike, read_gene_sets
from ._validate import examples

_FORMAT = "scsynth.MatchedGeneSets"
_VERSION = 1
#: Provenance keys copied from :func:`read_gene_sets`' ``attrs``.
_PROVENANCE = ("name", "source", "version", "label", "path", "collection", "requested", "reason")


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
        Where the gene sets came from and the options used: ``name``, ``source`` (the route taken:
        ``"bundled"``, ``"decoupler"``, ``"gmt"``, ``"dataframe"``), ``version``, ``label`` (e.g.
        ``"MSigDB 7.5.1 (bundled)"`` or ``"decoupler 2.2.0 (OmniPath)"``), ``path``, ``collection``,
        ``requested`` and ``reason`` (see :func:`read_gene_sets`), ``min_genes_per_set``,
        ``n_sets_read``. Empty for a set saved by scsynth before it was recorded.

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
        """Provenance and counts of the matched sets.

        Keys: ``name``, ``source`` (the route taken), ``version``, ``label`` (see :attr:`provenance`),
        ``n_sets``, ``n_genes``, ``n_matched_genes``, ``n_memberships``, ``set_size_min``,
        ``set_size_median``, ``set_size_max``, ``n_dropped_sets``, ``matching``.

        Examples
        --------
        >>> m = match_gene_sets("hallmark", ["CDK1", "CCNB2", "MKI67"], min_genes_per_set=3, source="bundled")
        >>> {k: m.summary()[k] for k in ("name", "source", "label", "n_sets")}
        {'name': 'hallmark', 'source': 'bundled', 'label': 'MSigDB 7.5.1 (bundled)', 'n_sets': 2}
        """
        sizes = self.n_matched_per_set
        return {
            "name": self.provenance.get("name"),
            "source": self.provenance.get("source"),
            "version": self.provenance.get("version"),
            "label": self.provenance.get("label"),
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
            dict(data.get("provenance") or {}),  # older saves may lack it
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
        f"The data has {len(var)} genes (e.g. {examples(var[:5])}); the gene sets have {len(targets)} genes "
        f"(e.g. {examples(targets[:5])}). Genes are matched by symbol: "
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
    source: GeneSetSource = "auto",
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
    source
        Where a named collection comes from (``"auto"``: decoupler when reachable, else the bundled
        snapshot; ``"bundled"``; ``"decoupler"``), passed to :func:`read_gene_sets`; the route taken is
        in :attr:`MatchedGeneSets.provenance`.

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
    >>> m = match_gene_sets("hallmark", adata.var_names, min_genes_per_set=5, source="bundled")
    >>> m.n_genes == adata.n_vars, m.matching, m.provenance["label"]
    (True, 'exact', 'MSigDB 7.5.1 (bundled)')
    """
    if min_genes_per_set < 1 or min_sets < 1:
        raise ValueError(
            f"min_genes_per_set and min_sets must be >= 1, got {min_genes_per_set} and {min_sets}."
        )
    var = pd.Index(np.asarray(var_names).astype(str))
    if var.has_duplicates:
        raise ValueError(
            f"var_names has duplicated genes ({examples(var[var.duplicated()].unique())}); make them unique "
            "first, e.g. `adata.var_names_make_unique()`."
        )
    df = read_gene_sets(gene_sets, source=source)
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
    provenance = {k: df.attrs.get(k) for k in _PROVENANCE}
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
