from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scsynth.data import MatchedGeneSets, match_gene_sets, read_gene_sets


@pytest.fixture(scope="module")
def pbmc_genes() -> list[str]:
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced().var_names.tolist()


def test_bundled_hallmark_has_50_sets_with_the_expected_genes():
    df = read_gene_sets("hallmark", source="bundled")
    assert list(df.columns) == ["source", "target"]
    assert df["source"].nunique() == 50
    assert df["target"].nunique() == 4383
    assert not df.duplicated(["source", "target"]).any()
    g2m = set(df.loc[df["source"] == "HALLMARK_G2M_CHECKPOINT", "target"])
    assert {"CDK1", "CCNB2", "MKI67"} <= g2m
    assert df.attrs["name"] == "hallmark" and df.attrs["version"] == "7.5.1"
    assert df.attrs["source"] == "bundled" and df.attrs["label"] == "MSigDB 7.5.1 (bundled)"


def test_bundled_reactome_wp_pid_and_min_size():
    df = read_gene_sets("reactome_wp_pid")
    assert df["source"].str.startswith(("REACTOME_", "WP_", "PID_")).all()
    assert df["source"].nunique() > 2000
    big = read_gene_sets("reactome_wp_pid", min_size=200)
    assert big.groupby("source").size().min() >= 200
    assert big["source"].nunique() < df["source"].nunique()


@pytest.mark.parametrize("suffix", [".gmt", ".gmt.gz"])
def test_gmt_round_trip(tmp_path, suffix):
    # empty description and a description with spaces: both trip whitespace-splitting parsers
    text = "SET_A\t\tG1\tG2\tG2\nSET_B\tsome words here\tG3\t G4 \tG1\n\n"
    path = tmp_path / f"tiny{suffix}"
    if suffix.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    df = read_gene_sets(path)
    got = df.groupby("source")["target"].agg(list).to_dict()
    assert got == {"SET_A": ["G1", "G2"], "SET_B": ["G3", "G4", "G1"]}
    assert df.attrs["source"] == "gmt" and df.attrs["path"] == str(path) and df.attrs["name"] == "tiny"
    assert read_gene_sets(str(path), min_size=3)["source"].unique().tolist() == ["SET_B"]


def test_bad_paths_and_types(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled names"):
        read_gene_sets(tmp_path / "missing.gmt")
    (tmp_path / "sets.csv").write_text("source,target\nA,G1\n")
    with pytest.raises(ValueError, match="not a .gmt"):
        read_gene_sets(tmp_path / "sets.csv")
    with pytest.raises(TypeError):
        read_gene_sets(42)
    with pytest.raises(ValueError, match="source must be"):
        read_gene_sets("hallmark", source="web")


def test_dataframe_input_renames_strips_and_deduplicates():
    raw = pd.DataFrame(
        {"geneset": ["A", "A", "A ", "B", None], "genesymbol": ["G1", " G2", "G1", "G3", "G4"]}
    )
    df = read_gene_sets(raw)
    assert df[["source", "target"]].values.tolist() == [["A", "G1"], ["A", "G2"], ["B", "G3"]]
    assert df.attrs["source"] == "dataframe"
    with pytest.raises(ValueError, match="missing"):
        read_gene_sets(pd.DataFrame({"set": ["A"], "gene": ["G1"]}))
    # provenance survives a second pass
    assert read_gene_sets(read_gene_sets("hallmark", source="bundled")).attrs["version"] == "7.5.1"


def test_match_hallmark_to_pbmc(pbmc_genes):
    m = match_gene_sets("hallmark", pbmc_genes, min_genes_per_set=5, source="bundled")
    assert m.genes == tuple(pbmc_genes) and m.matching == "exact"
    assert 20 <= m.n_sets <= 50 and m.n_sets + len(m.dropped_sets) == 50
    assert (m.n_matched_per_set >= 5).all()
    assert m.membership.shape == (m.n_sets, len(pbmc_genes)) and m.membership.nnz == m.n_memberships
    # every membership is a real (set, gene) pair of the bundled file
    pairs = set(read_gene_sets("hallmark", source="bundled").itertuples(index=False, name=None))
    assert all((m.sets[r], m.genes[c]) in pairs for r, c in zip(m.rows, m.cols, strict=True))
    assert set(m.matched_genes) == {m.genes[c] for c in m.cols}
    assert m.summary()["n_sets"] == m.n_sets and m.provenance["version"] == "7.5.1"
    assert m.summary()["source"] == m.provenance["source"] == "bundled"
    assert m.provenance["label"] == "MSigDB 7.5.1 (bundled)" and m.provenance["requested"] == "bundled"
    assert "HALLMARK_INTERFERON_GAMMA_RESPONSE" in m.sets


def test_ensembl_ids_give_a_clear_error(pbmc_genes):
    ids = [f"ENSG{i:011d}" for i in range(len(pbmc_genes))]
    with pytest.raises(ValueError, match="Ensembl IDs") as err:
        match_gene_sets("hallmark", ids)
    assert "765 genes" in str(err.value) and "var_names" in str(err.value)


def test_too_few_sets_and_duplicated_genes(pbmc_genes):
    with pytest.raises(ValueError, match="min_sets=1000"):
        match_gene_sets("hallmark", pbmc_genes, min_sets=1000)
    with pytest.raises(ValueError, match="Lower min_genes_per_set"):
        match_gene_sets("hallmark", pbmc_genes[:20], min_genes_per_set=50)
    with pytest.raises(ValueError, match="duplicated"):
        match_gene_sets("hallmark", ["CDK1", "CDK1"])


def test_case_insensitive_fallback_warns():
    gs = pd.DataFrame({"source": ["A"] * 3 + ["B"] * 2, "target": ["CDK1", "MKI67", "TOP2A", "CD3E", "CD4"]})
    with pytest.warns(UserWarning, match="case-insensitive"):
        m = match_gene_sets(gs, ["Cdk1", "Mki67", "Top2a", "Cd3e", "Cd4", "Actb"], min_genes_per_set=2)
    assert m.matching == "case-insensitive"
    assert m.membership.toarray().tolist() == [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an exact majority matches silently
        assert match_gene_sets(gs, ["CDK1", "MKI67", "TOP2A", "Cd3e", "cd4"], min_genes_per_set=2).n_sets == 1


def test_to_dict_round_trip_and_equality(pbmc_genes):
    m = match_gene_sets("hallmark", pbmc_genes)
    data = json.loads(json.dumps(m.to_dict()))
    back = MatchedGeneSets.from_dict(data)
    assert back == m and back is not m
    assert np.array_equal(back.rows, m.rows) and back.dropped_sets == m.dropped_sets
    assert back.provenance == m.provenance and back.provenance["source"] in ("bundled", "decoupler")
    assert m != match_gene_sets("hallmark", pbmc_genes, min_genes_per_set=10)
    with pytest.raises(ValueError, match="format"):
        MatchedGeneSets.from_dict({"sets": []})
    # a set saved before the provenance was recorded still loads
    old = {k: v for k, v in data.items() if k != "provenance"}
    assert MatchedGeneSets.from_dict(old).provenance == {}
    assert MatchedGeneSets.from_dict(old).summary()["name"] is None
    data["rows"][0] = 10_000
    with pytest.raises(ValueError, match="outside"):
        MatchedGeneSets.from_dict(data)
