"""benchmarks/groundgan_grn.py's correlation baseline: Spearman's rho of a TF with every gene."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from groundgan_grn import correlation_baseline


def test_correlation_baseline_is_spearman_and_survives_constant_genes():
    rng = np.random.default_rng(0)
    tf = rng.poisson(3, 300).astype(float)
    targets = [tf + rng.normal(0, s, 300) for s in (0.5, 1.0)]
    others = [rng.poisson(3, 300).astype(float) for _ in range(3)]
    x = np.column_stack([tf, *targets, *others, np.zeros(300)])  # the last gene is never expressed
    genes = pd.Index(["TF", "T1", "T2", "O1", "O2", "O3", "EMPTY"])
    out = correlation_baseline(x, genes, "TF", {"T1", "T2"})
    assert out["auroc"] == 1.0 and out["auprc"] == 1.0
    # a noisy target that ranks below one unrelated gene: the same score as from scipy's Spearman rho
    x[:, 2] = tf + rng.normal(0, 50, 300)
    rho = np.abs(stats.spearmanr(x[:, :6]).statistic[0, 1:])
    truth = np.array([True, True, False, False, False])
    out = correlation_baseline(x[:, :6], genes[:6], "TF", {"T1", "T2"})
    assert out["auroc"] == roc_auc_score(truth, rho) < 1.0
