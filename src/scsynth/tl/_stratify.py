"""``tl.stratify`` and ``tl.markers``: RNAGAN's discriminator jobs, scanpy style."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

    Parameters
    ----------
    adata
        Labelled samples.
    model
        A trained :class:`~scsynth.model.RNAGAN`.
    groupby, group, reference, seed
        See :meth:`~scsynth.model.RNAGAN.markers`.
    key_added
        ``uns`` key of the table (``"rnagan_markers"`` when ``None``).
    copy
        Return a copy instead of writing into ``adata``.
    **kwargs
        ``n_draws``, ``n_refs``, ``n_steps``.

    Examples
    --------
    >>> scsynth.tl.markers(bulk, model, groupby="sex", group="Female")  # doctest: +SKIP
    >>> bulk.uns["rnagan_markers"].head()  # doctest: +SKIP
    """
    check_anndata(adata)
    if not hasattr(model, "markers"):
        raise TypeError(f"{type(model).__name__} has no markers; pass a trained RNAGAN.")
    adata = adata.copy() if copy else adata
    model.markers(adata, groupby=groupby, group=group, reference=reference, key_added=key_added, seed=seed, **kwargs)
    return adata if copy else None
