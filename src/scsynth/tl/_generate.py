"""``tl.generate``: simulate cells or samples from any trained scsynth model."""

from __future__ import annotations

from typing import Any

from anndata import AnnData

from .._deprecation import renamed_kwarg


def generate(
    model: Any, *, n_obs: int | None = None, condition: Any = None, seed: int | None = None, **kwargs: Any
) -> AnnData:
    """Generate a new AnnData from a trained scsynth model.

    The same call for every model: ``condition`` says what to generate (ScGAN: label(s); RNAGAN: the
    group; GeneSys: trajectory name(s); GRouNdGAN takes none).

    Parameters
    ----------
    model
        A trained scsynth model whose ``jobs`` include ``"generate"`` (all four models).
    n_obs
        How much to generate: cells (ScGAN, GRouNdGAN), samples (RNAGAN) or, for
        :class:`~scsynth.model.GeneSys`, whole trajectories per blueprint row (one cell per time step).
    condition
        What to generate, as above; ``None`` where the model allows it draws from the training data.
    seed
        Seed; the same seed gives identical output (``scsynth.settings.seed`` when ``None``).
    **kwargs
        Model-specific options of ``model.generate`` (``batch_size``, RNAGAN's ``modality`` and ``n_refs``).
        The former ``labels=``, ``group=``, ``trajectories=`` and ``n_per_trajectory=`` still work with a
        ``FutureWarning``.

    Returns
    -------
    AnnData with generated values in ``.X`` (counts where the model was trained on counts),
    ``layers["normalized"]`` (each cell summing to 1e4), the conditioning columns in ``obs`` and
    provenance in ``uns["scsynth"]``.

    Examples
    --------
    >>> import scsynth
    >>> cells = scsynth.tl.generate(model, n_obs=1000, condition="CD14+ Monocyte")  # doctest: +SKIP
    >>> paths = scsynth.tl.generate(genesys_model, n_obs=100)  # 100 trajectories per row  # doctest: +SKIP
    """
    if "generate" not in getattr(model, "jobs", ()):
        raise TypeError(f"{type(model).__name__} cannot generate; pass a trained scsynth model such as ScGAN.")
    n_obs = renamed_kwarg(kwargs, "n_per_trajectory", "n_obs", where="tl.generate", current=n_obs)
    if n_obs is None:
        raise TypeError("Say how much to generate: n_obs=.")
    if condition is not None:
        kwargs["condition"] = condition
    return model.generate(n_obs, seed=seed, **kwargs)
