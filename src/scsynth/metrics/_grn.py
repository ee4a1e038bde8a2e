"""Recovery of a known GRN by an inferred one: BEELINE's AUPRC ratio and EPR, GRouNdGAN's precision@k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from ..data import read_grn


def _names(values: Sequence[str] | None, default: pd.Series, what: str) -> np.ndarray:
    names = (
        pd.unique(default) if values is None else pd.unique(pd.Series(list(values), dtype=object).astype(str))
    )
    if len(names) == 0:
        raise ValueError(f"The universe has no {what}; pass a non-empty `{what}=`.")
    return np.sort(np.asarray(names, dtype=str))


def _fill(grn: pd.DataFrame, tfs: np.ndarray, targets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A targets x TFs matrix holding ``values`` (max over duplicates) for the edges inside the universe."""
    mat = np.zeros((len(targets), len(tfs)))
    ti = pd.Index(targets).get_indexer(grn["target"])
    si = pd.Index(tfs).get_indexer(grn["source"])
    keep = (ti >= 0) & (si >= 0)
    np.maximum.at(mat, (ti[keep], si[keep]), values[keep])
    return mat


def _early_precision(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Precision of the top-``k`` edges by score, widened to all ties with the k-th; score 0 is no edge."""
    positive = scores[scores > 0]
    if len(positive) == 0:
        return 0.0
    threshold = np.sort(positive)[::-1][min(k, len(positive)) - 1]
    chosen = scores >= threshold
    return float(labels[chosen].mean())


def grn_recovery(
    inferred: Any,
    truth: Any,
    *,
    k: int = 10,
    tfs: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """How well an inferred GRN recovers a ground-truth GRN (BEELINE and GRouNdGAN definitions).

    The universe of candidate edges is every (TF, target) pair with the TF among ``tfs`` (the
    truth's sources by default) and the target among ``targets`` (the truth's targets by default),
    excluding self-pairs. An edge's score is ``|weight|`` of the inferred edge (the maximum over
    duplicates), 0 when the inferred GRN lacks it; inferred edges outside the universe are ignored.

    - ``auprc``: area under the precision-recall curve by the trapezoid rule on
      :func:`~sklearn.metrics.precision_recall_curve` (BEELINE's ``precision_recall_curve`` +
      ``auc``); ``average_precision`` is scikit-learn's step-wise (non-interpolated) version.
    - ``density``: true edges / candidate edges, the AUPRC and precision of random scores.
    - ``auprc_ratio`` = ``auprc / density`` (BEELINE's AUPRC ratio; 1 is random).
    - ``early_precision``: precision of the top ``n_true_edges`` edges by score, widened to all edges
      tied with the last one; only edges with score > 0 count as predicted. ``epr`` = early
      precision / density (BEELINE's EPR; 1 is random, ``1 / density`` is perfect).
    - ``auroc``: :func:`~sklearn.metrics.roc_auc_score` over the universe.
    - ``precision_at_k`` (GRouNdGAN): for every target with at least one true TF, its candidate TFs
      are ranked by score (ties by TF name, zero scores included); the fraction of true TFs among
      the top j is averaged over targets, for j = 1..k. The ``random`` column is the expectation
      for random rankings.

    Parameters
    ----------
    inferred
        The inferred GRN, any input of :func:`scsynth.data.read_grn` (e.g. GRNBoost2's
        ``TF``, ``target``, ``importance``).
    truth
        The ground-truth GRN (e.g. the GRN a GRouNdGAN model imposed); weights are ignored.
    k
        Largest k of precision@k.
    tfs
        Candidate regulators of the universe; the truth's sources when ``None``.
    targets
        Candidate targets of the universe; the truth's targets when ``None``.

    Returns
    -------
    A dict of floats ``auprc``, ``auprc_ratio``, ``average_precision``, ``auroc``,
    ``early_precision``, ``epr``, ``density``, ints ``n_true_edges``, ``n_possible_edges``,
    ``n_tfs``, ``n_targets``, and ``precision_at_k``: a DataFrame with columns ``k``,
    ``precision``, ``random``.

    Examples
    --------
    >>> truth = pd.DataFrame({"source": ["A", "A", "B"], "target": ["X", "Y", "Z"]})
    >>> inferred = pd.DataFrame({"source": ["A", "B", "A"], "target": ["X", "X", "Y"], "weight": [3, 2, 1]})
    >>> res = grn_recovery(inferred, truth, k=1)
    >>> round(res["density"], 3), round(res["epr"], 3)
    (0.5, 1.333)
    >>> res["precision_at_k"]
       k  precision  random
    0  1   0.666667     0.5
    """
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")
    truth = read_grn(truth)
    inferred = read_grn(inferred)
    for name, grn in (("truth", truth), ("inferred", inferred)):
        if len(grn) == 0:
            raise ValueError(f"The {name} GRN has no edges; pass a GRN with source/target rows.")
    tf_names = _names(tfs, truth["source"], "tfs")
    target_names = _names(targets, truth["target"], "targets")

    valid = tf_names[None, :] != target_names[:, None]  # targets x TFs, False on self-pairs
    labels = _fill(truth, tf_names, target_names, np.ones(len(truth))) > 0
    labels &= valid
    n_true, n_possible = int(labels.sum()), int(valid.sum())
    if n_true == 0:
        raise ValueError(
            "No edge of the truth lies in the universe (TFs x targets without self-pairs); check `tfs=` and "
            "`targets=` against the truth's genes."
        )
    scores = _fill(inferred, tf_names, target_names, np.abs(inferred["weight"].to_numpy(np.float64)))
    y, s = labels[valid], scores[valid]
    density = n_true / n_possible
    if n_true < n_possible:
        precision, recall, _ = precision_recall_curve(y, s)
        auprc = float(auc(recall, precision))
        ap = float(average_precision_score(y, s))
        auroc = float(roc_auc_score(y, s))
    else:  # every candidate edge is true: any ranking is perfect
        auprc = ap = auroc = 1.0
    early = _early_precision(s, y, n_true)

    # precision@k: rank each target's candidate TFs by score (stable sort keeps TF-name order on ties)
    has_true = labels.any(axis=1)
    ranked_scores = np.where(valid, scores, -np.inf)[has_true]
    order = np.argsort(-ranked_scores, axis=1, kind="stable")
    hits = np.cumsum(np.take_along_axis(labels[has_true], order, axis=1)[:, :k], axis=1)
    if hits.shape[1] < k:  # k beyond the number of TFs: every candidate is in the top k
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])), mode="edge")
    n_cand = valid[has_true].sum(axis=1)
    j = np.arange(1, k + 1)
    denom = np.minimum(j[None, :], n_cand[:, None])
    frac_true = labels[has_true].sum(axis=1) / n_cand
    p_at_k = pd.DataFrame(
        {
            "k": j,
            "precision": (hits / denom).mean(axis=0),
            "random": np.broadcast_to(frac_true[:, None], hits.shape).mean(axis=0),
        }
    )
    return {
        "auprc": auprc,
        "auprc_ratio": auprc / density,
        "average_precision": ap,
        "auroc": auroc,
        "early_precision": early,
        "epr": early / density,
        "density": density,
        "n_true_edges": n_true,
        "n_possible_edges": n_possible,
        "n_tfs": len(tf_names),
        "n_targets": len(target_names),
        "precision_at_k": p_at_k,
    }
