"""``tl.generate``: simulate cells or samples from any trained scsynth model."""

from __future__ import annotations

from typing import Any

from anndata import AnnData


def generate(model: Any, *, n_obs: int | None = None, seed: int | None = None, **kwargs: Any) -> AnnData:
    """Generate a new AnnData from a trained scsynth model.

    Parameters
    ----------
    model
        A trained scsynth model (e.g. :class:`~scsynth.model.ScGAN`).
    n_obs
        Number of cells (or samples) to generate. :class:`~scsynth.model.GeneSys` generates whole
        trajectories instead: pass ``n_per_trajectory=``.
    seed
        Seed; the same seed gives identical output (``scsynth.settings.seed`` when ``None``).
    **kwargs
        Model-specific options, e.g. ``labels=`` for a conditional :class:`~scsynth.model.ScGAN`,
        ``n_per_trajectory=`` and ``trajectories=`` for :class:`~scsynth.model.GeneSys`.

    Returns
    -------
    AnnData with generated values in ``.X`` (counts where the model was trained on counts),
    ``layers["normalized"]``, the conditioning columns in ``obs`` and provenance in ``uns["scsynth"]``.

    Examples
    --------
    >>> import scsynth
    >>> cells = scsynth.tl.generate(model, n_obs=1000, labels="CD14+ Monocyte")  # doctest: +SKIP
    >>> paths = scsynth.tl.generate(genesys_model, n_per_trajectory=100)  # doctest: +SKIP
    """
    if not hasattr(model, "generate"):
        raise TypeError(f"{type(model).__name__} cannot generate; pass a trained scsynth model such as ScGAN.")
    if "n_per_trajectory" in kwargs:
        if n_obs is not None:
            raise TypeError("Pass either n_obs (cells) or n_per_trajectory (trajectories), not both.")
        return model.generate(kwargs.pop("n_per_trajectory"), seed=seed, **kwargs)
    if n_obs is None:
        hint = " (GeneSys: n_per_trajectory=)" if type(model).__name__ == "GeneSys" else ""
        raise TypeError(f"Say how much to generate: n_obs={hint}.")
    if type(model).__name__ == "GeneSys":
        raise TypeError("GeneSys generates whole trajectories: pass n_per_trajectory= instead of n_obs.")
    return model.generate(n_obs, seed=seed, **kwargs)
