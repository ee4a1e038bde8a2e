"""grn_recovery: BEELINE AUPRC ratio / EPR and GRouNdGAN precision@k."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scsynth.data import read_grn
from scsynth.metrics import grn_recovery

KEYS = {
    "auprc", "auprc_ratio", "average_precision", "auroc", "early_precision", "epr", "density",
    "n_true_edges", "n_possible_edges", "n_tfs", "n_targets", "precision_at_k",
}  # fmt: skip


def _grn(edges: str) -> pd.DataFrame:
    rows = [e.replace(">", ":").split(":") for e in edges.split()]
    return pd.DataFrame({"source": [r[0] for r in rows], "target": [r[1] for r in rows],
                         "weight": [float(r[2]) if len(r) > 2 else 1.0 for r in rows]})  # fmt: skip


@pytest.fixture(scope="module")
def random_truth() -> pd.DataFrame:
    """20 TFs x 300 targets, each target with 3 random TFs."""
    rng = np.random.default_rng(0)
    tfs = np.array([f"TF{i}" for i in range(20)])
    return pd.DataFrame(
        [(tf, f"G{g}") for g in range(300) for tf in rng.choice(tfs, 3, replace=False)],
        columns=["source", "target"],
    )


def test_perfect_prediction(random_truth):
    res = grn_recovery(
        random_truth.assign(weight=-2.0), random_truth, k=5
    )  # signed weights: |w| is the score
    assert set(res) == KEYS
    assert res["n_tfs"] == 20 and res["n_targets"] == 300
    assert res["n_true_edges"] == 900 and res["n_possible_edges"] == 6000
    assert res["density"] == pytest.approx(0.15)
    assert res["auprc"] == pytest.approx(1.0)
    assert res["average_precision"] == pytest.approx(1.0)
    assert res["auroc"] == pytest.approx(1.0)
    assert res["early_precision"] == 1.0
    assert res["epr"] == pytest.approx(1 / 0.15)
    assert res["auprc_ratio"] == pytest.approx(1 / 0.15)
    p = res["precision_at_k"]
    assert p["k"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(p["precision"], [1, 1, 1, 3 / 4, 3 / 5])
    np.testing.assert_allclose(p["random"], 0.15)


def test_random_scores_match_density(random_truth):
    rng = np.random.default_rng(1)
    tfs, targets = random_truth["source"].unique(), random_truth["target"].unique()
    pairs = pd.MultiIndex.from_product([tfs, targets], names=["source", "target"]).to_frame(index=False)
    inferred = pairs.assign(weight=rng.random(len(pairs)))
    res = grn_recovery(inferred, random_truth)
    assert res["auprc"] == pytest.approx(res["density"], abs=0.03)
    assert res["auprc_ratio"] == pytest.approx(1.0, abs=0.2)
    assert res["auroc"] == pytest.approx(0.5, abs=0.05)
    assert res["epr"] == pytest.approx(1.0, abs=0.2)
    assert np.allclose(res["precision_at_k"]["precision"], 0.15, atol=0.06)


def test_hand_computed_precision_at_k_and_epr_ties():
    truth = _grn("A>X B>X")
    # universe: TFs A, B, C x targets X, Y = 6 pairs, 2 true: density 1/3
    inferred = _grn("A>X:5 C>X:3 B>Y:3 B>X:1")
    res = grn_recovery(inferred, truth, k=4, tfs=["A", "B", "C"], targets=["X", "Y"])
    assert res["n_possible_edges"] == 6 and res["density"] == pytest.approx(1 / 3)
    # top-2 by score, widened to the tie at 3: A>X, C>X, B>Y -> 1 true of 3
    assert res["early_precision"] == pytest.approx(1 / 3)
    assert res["epr"] == pytest.approx(1.0)
    # only X has true TFs: ranked A (5), C (3), B (1) -> hits 1, 0, 1; k = 4 > 3 candidates stays 2/3
    p = res["precision_at_k"]
    np.testing.assert_allclose(p["precision"], [1, 1 / 2, 2 / 3, 2 / 3])
    np.testing.assert_allclose(p["random"], 2 / 3)
    # fewer predicted edges than true ones: only the scored edges count as predicted
    only_one = grn_recovery(_grn("A>X:5"), truth, tfs=["A", "B", "C"], targets=["X", "Y"])
    assert only_one["early_precision"] == 1.0 and only_one["epr"] == pytest.approx(3.0)
    nothing = grn_recovery(_grn("C>Y:1"), truth, tfs=["A", "B", "C"], targets=["X", "Y"])
    assert nothing["early_precision"] == 0.0 and nothing["epr"] == 0.0


def test_auprc_is_beeline_trapezoid():
    from sklearn.metrics import auc, precision_recall_curve

    truth = _grn("A>X B>Y A>Z")
    inferred = _grn("A>X:0.9 B>X:0.8 B>Y:0.7 A>Y:0.2 B>Z:0.1")
    res = grn_recovery(inferred, truth)
    # universe (sorted): targets X, Y, Z x TFs A, B
    y = np.array([1, 0, 0, 1, 1, 0])
    s = np.array([0.9, 0.8, 0.2, 0.7, 0.0, 0.1])
    precision, recall, _ = precision_recall_curve(y, s)
    assert res["auprc"] == pytest.approx(auc(recall, precision))
    assert res["auprc_ratio"] == pytest.approx(auc(recall, precision) / 0.5)


def test_universe_rules():
    # self-pairs are excluded; duplicates keep the max |weight|; edges outside the universe are ignored
    truth = _grn("A>B B>C A>C")
    res = grn_recovery(_grn("A>B:0.1 A>B:-4 B>C:1 Q>C:9 A>A:7"), truth, k=1)
    assert res["n_tfs"] == 2 and res["n_targets"] == 2  # TFs A, B; targets B, C; B>B excluded
    assert res["n_possible_edges"] == 3 and res["n_true_edges"] == 3
    assert res["auprc"] == 1.0 and res["epr"] == pytest.approx(1.0)
    dup = grn_recovery(_grn("A>B:0.1 A>B:-4 B>C:1"), _grn("A>B"), tfs=["A", "B"], targets=["B", "C"])
    assert dup["n_possible_edges"] == 3 and dup["n_true_edges"] == 1
    assert dup["early_precision"] == 1.0  # A>B scores 4 (max |w|), ranked above B>C (1)


def test_grnboost2_columns_and_tf_target_options(tmp_path):
    truth = _grn("A>X B>Y")
    inferred = pd.DataFrame({"TF": ["A", "B"], "target": ["X", "Y"], "importance": [2.0, 1.0]})
    path = tmp_path / "inferred.tsv"
    inferred.to_csv(path, sep="\t", index=False)
    res = grn_recovery(path, truth, tfs=["A", "B", "C", "D"], targets=["X", "Y", "Z"])
    assert res["n_possible_edges"] == 12 and res["density"] == pytest.approx(2 / 12)
    assert res["epr"] == pytest.approx(6.0)


def test_real_collectri_against_itself_and_shuffled():
    truth = read_grn("collectri")
    truth = truth[truth["target"].isin(truth["target"].unique()[:200])]
    perfect = grn_recovery(truth, truth)
    assert perfect["auprc"] == pytest.approx(1.0) and perfect["epr"] == pytest.approx(1 / perfect["density"])
    # shuffled regulators keep the TFs' degrees (hubs still hit true edges) but lose most of the signal
    shuffled = truth.assign(source=truth["source"].sample(frac=1.0, random_state=0).to_numpy())
    res = grn_recovery(shuffled, truth)
    assert 1.0 < res["epr"] < 0.3 * perfect["epr"]
    assert res["auprc"] < 0.3 * perfect["auprc"]


def test_errors():
    truth = _grn("A>X")
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        grn_recovery(truth, truth, k=0)
    with pytest.raises(ValueError, match="No edge of the truth lies in the universe"):
        grn_recovery(truth, truth, tfs=["B"])
    with pytest.raises(ValueError, match="universe has no tfs"):
        grn_recovery(truth, truth, tfs=[])
    with pytest.raises(ValueError, match="lacks the column"):
        grn_recovery(pd.DataFrame({"a": [1]}), truth)
