"""``tl.stratify`` and ``tl.markers``: RNAGAN's discriminator jobs, scanpy style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from anndata import AnnData

from ..data._validate import check_anndata


def stratify(
    adata: AnnData,
    model: Any,
    *,
    references: AnnData | str | None = None,
    groupby: str | None = None,
    n_draws: int = 20,
    n_refs: int = 5,
    calibrate: bool = True,
    key_added: str = "rnagan",
    seed: int | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Assign each sample to the group whose reference sets it belongs with (:meth:`~scsynth.model.RNAGAN.stratify`).

    Parameters
    ----------
    adata
        Samples to stratify.
    model
        A trained :class:`~scsynth.model.RNAGAN`.
    references, groupby, n_draws, n_refs, calibrate, seed
        See :meth:`~scsynth.model.RNAGAN.stratify`.
    key_added
        ``obs[key_added]``, ``obsm[key_added + "_scores"]``, ``uns[key_added]``.
    copy
        Return a copy instead of writing into ``adata``.

    Examples
    --------
    >>> scsynth.tl.stratify(bulk, model, references="diagnosis")  # doctest: +SKIP
    """
    check_anndata(adata)
    if not hasattr(model, "stratify"):
        raise TypeError(f"{type(model).__name__} cannot stratify; pass a trained RNAGAN.")
    adata = adata.copy() if copy else adata
    model.stratify(adata, references=references, groupby=groupby, n_draws=n_draws, n_refs=n_refs,
                   calibrate=calibrate, key_added=key_added, seed=seed)
    return adata if copy else None


def markers(
    adata: AnnData,
    model: Any,
    *,
    groupby: str,
    group: str,
    reference: str | Sequence[str] | None = None,
    key_added: str | None = None,
    seed: int | None = None,
    copy: bool = False,
    **kwargs: Any,
) -> AnnData | None:
    """Rank the genes and pathways behind a group (:meth:`~scsynth.model.RNAGAN.markers`) into ``uns``.

    Writes ``uns[key_added]``, the tidy table (``feature``, ``kind``, ``attribution``, ``log2fc``,
    ``pval``, ``fdr``; its parameters also in ``DataFrame.attrs["params"]``), and
    ``uns[key_added + "_params"]``: the parameters as plain values (``groupby``, ``group``,
    ``reference`` as a list of the groups contrasted with, ``n_draws``, ``n_refs``, ``n_steps``,
    ``seed``), which, unlike ``attrs``, survive :meth:`~anndata.AnnData.write_h5ad`, so that
    :func:`scsynth.pl.markers` still finds them after a round trip.

    Parameters
    ----------
    adata
        Labelled samples.
    model
        A trained :class:`~scsynth.model.RNAGAN`.
    groupby, group, reference, seed
        See :meth:`~scsynth.model.RNAGAN.markers`.
    key_added
        ``uns`` key of the table (``"rnagan_markers"`` when ``None``); the parameters go to
        ``uns[key_added + "_params"]``.
    copy
        Return a copy instead of writing into ``adata``.
    **kwargs
        ``n_draws``, ``n_refs``, ``n_steps``.

    Examples
    --------
    >>> scsynth.tl.markers(bulk, model, groupby="sex", group="Female")  # doctest: +SKIP
    >>> bulk.uns["rnagan_markers"].head()  # doctest: +SKIP
    >>> bulk.uns["rnagan_markers_params"]["group"]  # doctest: +SKIP
    'Female'
    """
    check_anndata(adata)
    if not hasattr(model, "markers"):
        raise TypeError(f"{type(model).__name__} has no markers; pass a trained RNAGAN.")
    adata = adata.copy() if copy else adata
    key_added = key_added or "rnagan_markers"
    table = model.markers(adata, groupby=groupby, group=group, reference=reference, key_added=key_added,
                          seed=seed, **kwargs)
    params = getattr(table, "attrs", {}).get("params", {})
    # DataFrame.attrs are dropped by write_h5ad: keep the parameters next to the table as plain values
    adata.uns[f"{key_added}_params"] = h5ad_params(params)
    return adata if copy else None


def h5ad_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as values :meth:`~anndata.AnnData.write_h5ad` stores: str, numbers, bools, lists of them.

    ``None`` entries are dropped (h5ad cannot store them), NumPy scalars become Python ones, sequences
    lists (of str unless all numbers), anything else its ``str``.

    Examples
    --------
    >>> h5ad_params({"group": "Female", "reference": ("Male",), "seed": np.int64(0), "layer": None})
    {'group': 'Female', 'reference': ['Male'], 'seed': 0}
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | float | str):
            out[str(key)] = value
        elif isinstance(value, Sequence | np.ndarray):
            items = [v.item() if isinstance(v, np.generic) else v for v in value if v is not None]
            numbers = bool(items) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                          for v in items)
            out[str(key)] = items if numbers else [str(v) for v in items]
        else:
            out[str(key)] = str(value)
    return out
