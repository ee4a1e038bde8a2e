"""``tl.embed``: a model's per-cell latent representation in ``obsm``."""

from __future__ import annotations

from typing import Any

from anndata import AnnData

from ..data._validate import check_anndata


def embed(
    adata: AnnData,
    model: Any,
    *,
    layer: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Write each cell's latent representation under a trained model to ``obsm``.

    Parameters
    ----------
    adata
        Cells with the model's genes (matched by name), on the scale the model was trained on.
    model
        A trained scsynth model with ``get_latent_representation`` (e.g. :class:`~scsynth.model.GeneSys`).
    layer
        Layer of ``adata`` holding the values (the model's training layer when present, else ``.X``).
    key_added
        Key of ``obsm``; ``"X_<model name in lower case>"`` (e.g. ``"X_genesys"``) when ``None``.
    copy
        Return a copy with the result instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy with ``copy=True``); sets ``obsm[key_added]`` (cells x latent),
    ``uns[key_added]["params"]`` and, for :class:`~scsynth.model.RNAGAN`, ``obsm[key_added + "_pathways"]``
    (pathway activities, one column per pathway).

    Examples
    --------
    >>> import scsynth
    >>> scsynth.tl.embed(adata, model)  # doctest: +SKIP
    >>> sc.pp.neighbors(adata, use_rep="X_genesys")  # doctest: +SKIP
    """
    check_anndata(adata)
    if "embed" not in getattr(model, "jobs", ()):
        raise TypeError(f"{type(model).__name__} has no latent representation; pass e.g. a trained GeneSys.")
    key_added = key_added or f"X_{type(model).__name__.lower()}"
    latent = model.get_latent_representation(adata, layer=layer)
    adata = adata.copy() if copy else adata
    adata.obsm[key_added] = latent
    if hasattr(model, "pathway_activities"):  # RNAGAN: pathway activities next to the vector
        adata.obsm[f"{key_added}_pathways"] = model.pathway_activities(adata, layer=layer)
    adata.uns[key_added] = {"params": {"model": type(model).__name__, "layer": layer or "", "n_latent": latent.shape[1]}}
    return adata if copy else None
