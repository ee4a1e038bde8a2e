"""Input checks shared by every model's ``setup_anndata``: clear errors before any long work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._matrix import CHUNK_ROWS, check_backed, check_values, get_matrix, is_backed, iter_row_chunks


def examples(names, k: int = 5) -> str:
    """``'a', 'b', 'c' and 2 more``: at most ``k`` names as plain strings (never ``np.str_('a')``)."""
    names = list(map(str, names))
    more = f" and {len(names) - k} more" if len(names) > k else ""
    return ", ".join(repr(n) for n in names[:k]) + more


#: How many problems an error message lists before "and N more".
MAX_LISTED = 10


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``2 trajectories`` (with ``plural_form``)."""
    return f"{n} {word}" if n == 1 else f"{n} {plural_form or word + 's'}"


def listing(items: Sequence[str], k: int = MAX_LISTED) -> str:
    """At most ``k`` problems joined by ``; ``, then ``; and N more``."""
    more = f"; and {len(items) - k} more" if len(items) > k else ""
    return "; ".join(items[:k]) + more


def check_anndata(adata: Any, name: str = "adata") -> AnnData:
    """Return ``adata`` after checking it is an AnnData (a TypeError naming the argument otherwise)."""
    if not isinstance(adata, AnnData):
        hint = " (wrap a matrix with anndata.AnnData(X, var=...) and name its genes)" \
            if isinstance(adata, np.ndarray | sparse.spmatrix | sparse.sparray | pd.DataFrame) else ""
        raise TypeError(f"`{name}` must be an AnnData, got {type(adata).__name__}{hint}.")
    return adata


def check_not_empty(adata: AnnData, name: str = "adata") -> None:
    """Raise when ``adata`` has no cells or no genes."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(
            f"`{name}` is empty ({adata.n_obs} cells x {adata.n_vars} genes); pass cells with genes."
        )


def check_unique_var_names(adata: AnnData, name: str = "adata") -> None:
    """Raise on duplicated ``adata.var_names``: genes are matched by name, so a name must mean one gene."""
    names = pd.Index(adata.var_names)
    if not names.is_unique:
        dup = names[names.duplicated()].unique()
        raise ValueError(
            f"`{name}.var_names` has {len(dup)} duplicated gene names ({examples(dup)}); genes are matched "
            f"by name, so make them unique first: `{name}.var_names_make_unique()` (or drop the duplicates)."
        )


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int, after checking it is an integer (not a bool) ``>= minimum`` (else ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        shown = int(value) if isinstance(value, np.integer) else value
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {shown!r}.")
    return int(value)


def check_expression(
    adata: AnnData, *, layer: str | None = None, is_count_data: bool = True, chunk_size: int = CHUNK_ROWS
) -> None:
    """Validate the expression matrix a model will train on.

    Backed data (``read_h5ad(path, backed="r")``, an AnnCollection) is read ``chunk_size`` cells at a
    time, so it is never in memory whole; in-memory data is checked in one pass, as stored.

    Raises
    ------
    ValueError
        For an empty AnnData; duplicated gene names; NaN or infinite values; negative values; non-integer
        values when ``is_count_data``; genes that are zero in every cell; cells that are zero for every gene;
        a view of a backed AnnData.
    KeyError
        ``layer`` is not in ``adata`` (or not in the file behind a backed AnnData).
    """
    where = f"adata.layers[{layer!r}]" if layer is not None else "adata.X"
    check_backed(adata, layer)
    if not is_backed(adata):
        get_matrix(adata, layer)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"The AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes); nothing to train on.")
    check_unique_var_names(adata)
    gene_totals, cell_totals = np.zeros(adata.n_vars), []
    n_bad, low, fraction = 0, np.inf, None
    for _, x in iter_row_chunks(adata, layer, chunk_size=chunk_size):
        values = x.data if sparse.issparse(x) else np.asarray(x)
        if not is_backed(adata):
            check_values(x, where)  # in memory: the one check, exactly as every other input path
        else:  # the same checks, totalled over the chunks
            check_values(values[:0], where)  # the dtype
            n_bad += int((~np.isfinite(values)).sum())
            low = min(low, float(values.min())) if values.size else low
        if fraction is None and is_count_data and not np.array_equal(values, np.round(values)):
            fraction = values.flat[np.flatnonzero(values != np.round(values))[0]]
        gene_totals = gene_totals + np.asarray(x.sum(axis=0)).ravel()
        cell_totals.append(np.asarray(x.sum(axis=1)).ravel())
    if n_bad:
        raise ValueError(f"{where} contains {n_bad} NaN or infinite values; remove or impute them first.")
    if low < 0:
        raise ValueError(f"{where} contains negative values (min {low:.3g}); pass counts or non-negative normalised "
                         "expression, not scaled or centred data.")
    if fraction is not None:
        raise ValueError(
            f"{where} holds non-integer values (e.g. {fraction:.4g}) but is_count_data=True. Pass the raw "
            "counts with `layer=`, or `is_count_data=False` if these are normalised expression values."
        )
    if (gene_totals == 0).any():
        zero = adata.var_names[gene_totals == 0]
        raise ValueError(
            f"{len(zero)} genes are zero in every cell ({examples(zero)}); they carry no signal. Remove them "
            "first, e.g. `sc.pp.filter_genes(adata, min_cells=1)`."
        )
    cell_totals = np.concatenate(cell_totals)
    if (cell_totals == 0).any():
        zero = adata.obs_names[cell_totals == 0]
        raise ValueError(
            f"{len(zero)} cells have no expression at all ({examples(zero)}); remove them first, e.g. "
            "`sc.pp.filter_cells(adata, min_counts=1)`."
        )


def check_obs_key(adata: AnnData, key: str, *, what: str = "labels_key") -> pd.Series:
    """Return ``adata.obs[key]`` after checking it exists and has no missing values."""
    if key not in adata.obs:
        raise KeyError(f"{what}={key!r} is not a column of adata.obs (columns: {examples(adata.obs.columns, 10)}).")
    col = adata.obs[key]
    if col.isna().any():
        raise ValueError(f"adata.obs[{key!r}] has {int(col.isna().sum())} missing values; fill or drop those cells.")
    return col


def check_label_sizes(labels: pd.Series | np.ndarray, *, min_cells: int, key: str) -> None:
    """Raise when a label has fewer than ``min_cells`` cells."""
    counts = pd.Series(np.asarray(labels)).value_counts()
    small = counts[counts < min_cells]
    if len(small):
        listing = ", ".join(f"{k!r} ({v})" for k, v in small.items())
        raise ValueError(
            f"Labels in obs[{key!r}] with fewer than {min_cells} training cells: {listing}. A conditional model "
            "cannot learn them; drop or merge these labels before setup_anndata."
        )
