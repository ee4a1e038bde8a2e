"""``tl.perturb``: in-silico TF perturbations of a trained GRN-imposing model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anndata import AnnData


def perturb(
    model: Any,
    *,
    knockout: str | Sequence[str] | None = None,
    overexpress: dict[str, float] | None = None,
    set_to: dict[str, float] | None = None,
    n_obs: int = 1000,
    seed: int | None = None,
    **kwargs: Any,
) -> AnnData:
    """Perturb TFs in silico on paired control / perturbed cells.

    A scanpy-style wrapper over the model's ``perturb`` method (e.g.
    :meth:`GRouNdGAN.perturb <scsynth.model.GRouNdGAN.perturb>`): ``n_obs`` control cells are
    generated, then regenerated from the same noise with the given TFs changed (for GRouNdGAN's
    ``target_noise="controller"``: each target moved to the same conditional quantile), so every perturbed
    cell has a control twin. Only models that impose a causal GRN can do this; TFs (the roots of the
    GRN) are the only genes that can be perturbed, several at once.

    Parameters
    ----------
    model
        A trained model with a ``perturb`` method, such as :class:`~scsynth.model.GRouNdGAN`.
    knockout
        TF or TFs set to 0.
    overexpress
        ``{TF: factor}``: TF values multiplied by ``factor`` (a factor below 1 is a knock-down).
    set_to
        ``{TF: value}``: TF set to ``value`` (normalised units) in every cell.
    n_obs
        Number of cell pairs.
    seed
        Seed; the same seed gives identical output (``scsynth.settings.seed`` when ``None``).
    **kwargs
        Further options of the model's ``perturb``, e.g. ``name=`` (the perturbed condition's name)
        or ``batch_size=``.

    Returns
    -------
    AnnData with ``2 * n_obs`` cells: ``obs["condition"]`` (``"control"`` or the perturbation's
    name), ``obs["pair"]``, layers ``"normalized"`` and ``"pre_lsn"``, ``var["grn_role"]`` and
    ``uns["perturbation"]`` holding the perturbation and its per-gene ``effects`` table (plot it with
    :func:`scsynth.pl.perturbation`, score it with :func:`scsynth.metrics.knockout_recovery`).

    Raises
    ------
    TypeError
        The model cannot perturb (it imposes no GRN, e.g. :class:`~scsynth.model.ScGAN`).

    Examples
    --------
    >>> import scsynth
    >>> ko = scsynth.tl.perturb(model, knockout="SPI1", n_obs=2000, seed=0)  # doctest: +SKIP
    >>> ko.uns["perturbation"]["effects"].sort_values("pval_pre_lsn").head()  # doctest: +SKIP
    >>> fig = scsynth.pl.perturbation(ko)  # doctest: +SKIP
    """
    method = getattr(model, "perturb", None)
    if not callable(method):
        raise TypeError(
            f"{type(model).__name__} cannot perturb TFs: in-silico perturbations need a model that imposes a "
            "causal GRN, such as scsynth.model.GRouNdGAN."
        )
    return method(knockout=knockout, overexpress=overexpress, set_to=set_to, n_obs=n_obs, seed=seed, **kwargs)
