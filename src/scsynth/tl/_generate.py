"""``tl.generate``: simulate cells or samples from any trained scsynth model."""

from __future__ import annotations

from typing import Any

from anndata import AnnData


def generate(model: Any, *, n_obs: int, seed: int | None = None, **kwargs: Any) -> AnnData:
    """Generate a new AnnData from a trained scsynth model.

    Parameters
    ----------
    model
        A trained scsynth model (e.g. :class:`~scsynth.model.ScGAN`).
    n_obs
        Number of cells (or samples) to generate.
    seed
        Seed; the same seed gives identical output (``scsynth.settings.seed`` when ``None``).
    **kwargs
        Model-specific options, e.g. ``labels=`` for a conditional :class:`~scsynth.model.ScGAN`.

    Returns
    -------
    AnnData with generated values in ``.X`` (counts where the model was trained on counts),
    ``layers["normalized"]``, the conditioning columns in ``obs`` and provenance in ``uns["scsynth"]``.

    Examples
    --------
    >>> import scsynth
    >>> cells = scsynth.tl.generate(model, n_obs=1000, labels="CD14+ Monocyte")  # doctest: +SKIP
    """
    if not hasattr(model, "generate"):
        raise TypeError(f"{type(model).__name__} cannot generate; pass a trained scsynth model such as ScGAN.")
    return model.generate(n_obs, seed=seed, **kwargs)
