"""Recovery of the known targets of perturbed TFs from the per-gene effect of an in-silico perturbation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from .._uns import perturbation_info
from ..data import read_grn


def _effects_table(perturbed: Any) -> tuple[pd.DataFrame, list[str] | None]:
    """The effects table and, for an AnnData, the perturbed TFs recorded in ``uns["perturbation"]``."""
    if isinstance(perturbed, pd.DataFrame):
        return perturbed, None
    info = perturbation_info(perturbed)
    tfs = info.get("perturbed")
    return info["effects"], None if tfs is None else [str(t) for t in np.atleast_1d(tfs)]


def knockout_recovery(
    perturbed: Any,
    grn: Any = None,
    *,
    effect: str = "lfc_pre_lsn",
    exclude_perturbed: bool = True,
) -> dict[str, float]:
    """How well the size of a perturbation's effect ranks the true targets of the perturbed TFs.

    Every gene of the effect table is scored by ``|effect|``; the positives are the direct targets
    of the perturbed TFs, the negatives every other gene. The perturbed TFs themselves are left out
    of this universe (with ``exclude_perturbed``), as their own change says nothing about the GRN.

    With ``effect="lfc_pre_lsn"`` (before the final library-size normalisation) genes that are not
    downstream of a perturbed TF are exactly unchanged, so a GRouNdGAN model recovers its imposed
    targets almost perfectly (targets whose effect happens to be tiny are the only misses).
    ``effect="lfc"`` is what a sequencer would see: renormalisation shifts every gene a little, so
    the recovery is lower and shows how far compositional effects blur the causal ones.

    Parameters
    ----------
    perturbed
        The AnnData returned by :meth:`GRouNdGAN.perturb <scsynth.model.GRouNdGAN.perturb>` (or
        :func:`scsynth.tl.perturb`), or its ``uns["perturbation"]["effects"]`` DataFrame (indexed by
        gene, with the ``effect`` column, a boolean ``perturbed`` column and, when ``grn`` is
        ``None``, a boolean ``direct_target`` column).
    grn
        The ground-truth GRN (any input of :func:`scsynth.data.read_grn`, e.g. a DataFrame with
        ``source`` and ``target``); the positives are the targets of the perturbed TFs in it.
        ``None`` uses the ``direct_target`` column (the targets in the GRN the model imposed).
    effect
        Column of the effect table scored by its absolute value, e.g. ``"lfc_pre_lsn"`` or ``"lfc"``.
    exclude_perturbed
        Leave the perturbed TFs out of the universe.

    Returns
    -------
    A dict with

    - ``auroc``: :func:`~sklearn.metrics.roc_auc_score` (0.5 is random, 1 perfect);
    - ``auprc``: :func:`~sklearn.metrics.average_precision_score`;
    - ``auprc_ratio``: ``auprc`` divided by the fraction of positives (its random value; 1 is random);
    - ``n_targets``: number of positives in the universe;
    - ``n_genes``: number of genes in the universe.

    Raises
    ------
    KeyError
        No effect table, or ``effect`` / ``perturbed`` / ``direct_target`` is not one of its columns.
    ValueError
        The universe has no positives or no negatives, or the effect holds NaN values.

    Examples
    --------
    >>> import scsynth
    >>> ko = scsynth.tl.perturb(model, knockout="SPI1", n_obs=2000)  # doctest: +SKIP
    >>> scsynth.metrics.knockout_recovery(ko)["auroc"]  # doctest: +SKIP
    >>> scsynth.metrics.knockout_recovery(ko, effect="lfc")  # what a sequencer would see  # doctest: +SKIP
    """
    effects, recorded_tfs = _effects_table(perturbed)
    numeric = [c for c in effects.columns if pd.api.types.is_numeric_dtype(effects[c])
               and not pd.api.types.is_bool_dtype(effects[c])]
    if effect not in effects.columns:
        raise KeyError(f"{effect!r} is not a column of the effect table; choose one of {numeric}.")
    if effect not in numeric:
        raise KeyError(f"{effect!r} is not a numeric effect column; choose one of {numeric}.")
    genes = pd.Index(effects.index.astype(str))
    if "perturbed" in effects.columns:
        is_perturbed = effects["perturbed"].to_numpy(dtype=bool)
    elif recorded_tfs is not None:
        is_perturbed = genes.isin(recorded_tfs)
    else:
        raise KeyError("The effect table has no boolean 'perturbed' column naming the perturbed TFs.")
    if grn is None:
        if "direct_target" not in effects.columns:
            raise KeyError(
                "The effect table has no 'direct_target' column; pass the ground-truth GRN as `grn=`."
            )
        is_target = effects["direct_target"].to_numpy(dtype=bool)
    else:
        edges = read_grn(grn)
        tfs = set(genes[is_perturbed]) | set(recorded_tfs or ())
        if not tfs:
            raise ValueError("No perturbed TF in the effect table, so the GRN gives no targets.")
        is_target = genes.isin(list(edges.loc[edges["source"].isin(list(tfs)), "target"]))
    keep = ~is_perturbed if exclude_perturbed else np.ones(len(genes), dtype=bool)
    scores = np.abs(effects[effect].to_numpy(dtype=np.float64))[keep]
    labels = is_target[keep]
    if np.isnan(scores).any():
        raise ValueError(f"The {effect!r} column holds NaN values for {int(np.isnan(scores).sum())} genes.")
    n_pos, n = int(labels.sum()), int(len(labels))
    if n_pos == 0:
        raise ValueError(
            f"None of the {n} genes in the universe is a direct target of the perturbed TFs; "
            "recovery is undefined (check `grn` and that the perturbed TFs have targets)."
        )
    if n_pos == n:
        raise ValueError(
            f"All {n} genes in the universe are direct targets of the perturbed TFs; recovery needs "
            "non-targets to rank against."
        )
    auprc = float(average_precision_score(labels, scores))
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": auprc,
        "auprc_ratio": auprc / (n_pos / n),
        "n_targets": n_pos,
        "n_genes": n,
    }
