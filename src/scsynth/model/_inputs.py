"""The model's inputs: the train/validation/test split, count detection and gene matching of new data."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

from ..data._matrix import check_backed, check_values, get_matrix, is_backed, iter_row_chunks
from ..data._validate import check_anndata, check_not_empty, check_unique_var_names, examples

__all__ = ["check_same_genes", "detect_count_data", "genes_by_name", "resolve_is_count_data", "split_indices"]


def split_indices(
    n_obs: int, train_size: float, validation_size: float | None, seed: int, strata: np.ndarray | None = None
) -> list[np.ndarray]:
    """Train / validation / test indices; stratified by ``strata`` so that rare labels keep training cells."""
    if not 0 < train_size <= 1:
        raise ValueError(f"train_size must be in (0, 1], got {train_size}.")
    validation_size = 1 - train_size if validation_size is None else validation_size
    if validation_size < 0 or train_size + validation_size > 1 + 1e-9:
        raise ValueError(f"train_size + validation_size must be <= 1, got {train_size} + {validation_size}.")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n_obs)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for members in groups:
        perm = rng.permutation(members)
        n_train = int(np.ceil(train_size * len(perm)))
        n_val = min(int(np.floor(validation_size * len(perm))), len(perm) - n_train)
        for part, chunk in zip(parts, (perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]),
                               strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(part)).astype(np.int64) for part in parts]


def detect_count_data(x) -> bool:
    """The one count-detection rule of every model: all values are whole numbers (negatives are refused later)."""
    values = x.data if sparse.issparse(x) else np.asarray(x)
    return bool(np.array_equal(values, np.round(values)))


def resolve_is_count_data(adata: AnnData, layer: str | None, is_count_data: bool | None) -> bool:
    """``is_count_data`` as given, or detected (``None``) with :func:`detect_count_data` (chunk by chunk if backed)."""
    if is_count_data is None:
        check_backed(adata, layer)
        if is_backed(adata):  # read_h5ad(path, backed="r") or an AnnCollection: never whole in memory
            return all(detect_count_data(rows) for _, rows in iter_row_chunks(adata, layer))
        return detect_count_data(get_matrix(adata, layer))
    if not isinstance(is_count_data, bool | np.bool_):
        raise TypeError(f"is_count_data must be True, False or None (detect), got {is_count_data!r}.")
    return bool(is_count_data)


def check_same_genes(adata: AnnData, var_names: np.ndarray) -> None:
    """Raise when ``adata`` does not have exactly the model's genes in the model's order."""
    names = np.asarray(adata.var_names, dtype=str)
    if len(names) == len(var_names) and (names == var_names).all():
        return
    have, want = set(names), set(var_names)
    missing = [g for g in var_names if g not in have]
    extra = [g for g in names if g not in want]
    if not missing and not extra:
        raise ValueError("The AnnData has the model's genes in a different order; use adata[:, model.var_names_].")
    raise ValueError(
        f"The AnnData's genes differ from the model's: {len(missing)} model genes are missing "
        f"({examples(missing) or 'none'}) and {len(extra)} are extra ({examples(extra) or 'none'}). Subset "
        "it with adata[:, model.var_names_] if it has all of them, or pass the data the model was trained on."
    )


def genes_by_name(
    adata: AnnData,
    var_names: np.ndarray,
    layer: str | None,
    *,
    what: str = "cells",
    name: str = "adata",
    strict_layer: bool = False,
):
    """``adata``'s values of the model's genes, in the model's order (from ``layer`` when ``adata`` has it).

    The one input path of every job that reads cells (embed, classify, stratify, markers, ...): it
    checks them like training data, before any work, so jobs can take data with extra or reordered
    genes but never silently score NaN, negative or misnamed values. A ``layer`` that ``adata`` lacks
    falls back to ``.X`` (the training layer is optional in new data) unless ``strict_layer`` (a
    layer the user asked for).

    Raises
    ------
    TypeError
        ``adata`` is not an AnnData, or its values are not real numbers.
    KeyError
        ``strict_layer`` and ``layer`` is not in ``adata.layers``.
    ValueError
        ``adata`` has no cells or no genes, duplicated gene names, lacks model genes, or its values
        (over the model's genes) hold NaN, infinite or negative numbers.
    """
    check_anndata(adata, name)
    check_not_empty(adata, name)
    check_unique_var_names(adata, name)
    have = set(adata.var_names)
    missing = [g for g in var_names if g not in have]
    if missing:
        raise ValueError(f"{len(missing)} of the model's {len(var_names)} genes are not in {name}.var_names "
                         f"({examples(missing)}); pass {what} measured on the training genes.")
    if layer is not None and layer not in adata.layers:
        if strict_layer:
            get_matrix(adata, layer, name=name)  # the KeyError naming the available layers
        layer = None
    x = get_matrix(adata[:, var_names], layer, name=name)
    check_values(x, f"{name}.layers[{layer!r}]" if layer is not None else f"{name}.X")
    return x
