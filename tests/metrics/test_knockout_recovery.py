import numpy as np
import pandas as pd
import pytest

from scsynth.metrics import knockout_recovery


@pytest.fixture(scope="module")
def knockout(trained_groundgan):
    model = trained_groundgan
    tf = model.grn.edges["source"].value_counts().index[0]
    return model.perturb(knockout=tf, n_obs=200, seed=0), model.grn.edges


def _table(scores, targets, perturbed=()) -> pd.DataFrame:
    """An effect table over genes g0.. with the given lfc_pre_lsn, direct targets and perturbed TFs."""
    genes = [f"g{i}" for i in range(len(scores))]
    return pd.DataFrame({"lfc_pre_lsn": scores, "lfc": np.asarray(scores)[::-1],
                         "direct_target": [g in targets for g in genes],
                         "perturbed": [g in perturbed for g in genes]}, index=genes)


def test_perfect_and_reversed_rankings():
    # targets g0..g2 have the largest |effect| (signs do not matter), the perturbed TF g5 the very largest
    table = _table([-3.0, 2.5, 2.0, 0.1, -0.05, -9.0, 0.0], {"g0", "g1", "g2"}, perturbed={"g5"})
    perfect = knockout_recovery(table)
    assert perfect["auroc"] == 1.0 and perfect["auprc"] == 1.0
    assert perfect["n_targets"] == 3 and perfect["n_genes"] == 6  # the perturbed TF is left out
    assert perfect["auprc_ratio"] == pytest.approx(1.0 / (3 / 6))
    # the targets have the smallest |effect|; the lfc column holds the same scores reversed
    table_rev = _table([0.0, 0.05, 0.1, 2.0, -2.5, 3.0], {"g0", "g1", "g2"})
    reversed_ = knockout_recovery(table_rev)
    assert reversed_["auroc"] == 0.0
    assert reversed_["auprc"] == pytest.approx(np.mean([1 / 4, 2 / 5, 3 / 6]))
    assert knockout_recovery(table_rev, effect="lfc")["auroc"] == 1.0
    # keeping the perturbed TF in the universe adds a negative that outranks all 3 targets
    kept = knockout_recovery(table, exclude_perturbed=False)
    assert kept["n_genes"] == 7 and kept["auroc"] == pytest.approx(1 - 3 / (3 * 4))


def test_grn_argument_overrides_the_direct_target_column():
    table = _table([3.0, 2.0, 1.0, 0.5, 0.0, 5.0], set(), perturbed={"g5"})  # no direct_target flagged
    grn = pd.DataFrame({"source": ["g5", "g5", "OTHER"], "target": ["g3", "g4", "g0"]})
    res = knockout_recovery(table, grn)
    assert res["n_targets"] == 2 and res["n_genes"] == 5 and res["auroc"] == 0.0
    # GRNBoost2-style columns and targets outside the table are accepted
    grn2 = pd.DataFrame({"TF": ["g5", "g5", "g5"], "target": ["g0", "g1", "NOT_MEASURED"], "importance": 1.0})
    assert knockout_recovery(table, grn2) == {"auroc": 1.0, "auprc": 1.0, "auprc_ratio": 2.5, "n_targets": 2,
                                              "n_genes": 5}


def test_errors():
    table = _table([1.0, 0.5, 0.0], {"g0"}, perturbed={"g2"})
    with pytest.raises(KeyError, match=r"'lfc_post'.*\['lfc_pre_lsn', 'lfc'\]"):
        knockout_recovery(table, effect="lfc_post")
    with pytest.raises(KeyError, match="not a numeric effect column"):
        knockout_recovery(table, effect="direct_target")
    with pytest.raises(ValueError, match="None of the 2 genes.*direct target"):
        knockout_recovery(_table([1.0, 0.5, 0.0], set(), perturbed={"g2"}))
    with pytest.raises(ValueError, match="All 2 genes.*non-targets"):
        knockout_recovery(_table([1.0, 0.5, 0.0], {"g0", "g1"}, perturbed={"g2"}))
    with pytest.raises(ValueError, match="NaN"):
        knockout_recovery(_table([1.0, np.nan, 0.0], {"g0"}))
    with pytest.raises(KeyError, match="direct_target.*grn="):
        knockout_recovery(table.drop(columns="direct_target"))
    with pytest.raises(KeyError, match=r"uns\['perturbation'\]\['effects'\].*model.perturb"):
        knockout_recovery(__import__("anndata").AnnData(np.ones((2, 3), dtype=np.float32)))
    with pytest.raises(TypeError, match="AnnData returned by model.perturb"):
        knockout_recovery([1.0, 2.0])


def test_a_groundgan_knockout_recovers_its_imposed_targets(knockout):
    out, edges = knockout
    effects = out.uns["perturbation"]["effects"]
    tf = out.uns["perturbation"]["perturbed"][0]
    pre = knockout_recovery(out)
    # before LSN only the knocked-out TF's targets move, so |lfc| separates them from every other gene
    assert pre["auroc"] > 0.8 and pre["auprc_ratio"] > 1.0
    assert pre["n_targets"] == int(effects["direct_target"].sum())
    assert pre["n_genes"] == out.n_vars - 1
    # the same from the DataFrame, from the imposed GRN, and from the GRN as a GRNBoost2-style table
    assert knockout_recovery(effects) == pre
    assert knockout_recovery(out, edges) == pre
    renamed = edges.rename(columns={"source": "TF", "weight": "importance"})
    assert knockout_recovery(out, renamed) == pre
    # after LSN compositional shifts blur the separation a little, but never improve it
    post = knockout_recovery(out, effect="lfc")
    assert 0.5 < post["auroc"] <= pre["auroc"]
    assert post["n_targets"] == pre["n_targets"]
    # genes the knocked-out TF does not regulate are not what its knockout changes
    wrong = effects.index[~effects["direct_target"] & ~effects["perturbed"]][:20]
    assert knockout_recovery(out, pd.DataFrame({"source": tf, "target": wrong}))["auroc"] < 0.5
