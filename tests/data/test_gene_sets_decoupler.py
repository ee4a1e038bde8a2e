"""Gene sets through decoupler (``source="auto"`` / ``"decoupler"``) without the internet: decoupler's
download functions are replaced by small frames in its format, or left real (and offline)."""

from __future__ import annotations

import json
import logging
import time

import pandas as pd
import pytest

from scsynth.data import MatchedGeneSets, _online, match_gene_sets, read_gene_sets

#: What ``decoupler.op.hallmark`` returns (2.2): columns source/target, MSigDB names without HALLMARK_.
DECOUPLER_HALLMARK = pd.DataFrame(
    {
        "source": ["G2M_CHECKPOINT"] * 5 + ["INTERFERON_GAMMA_RESPONSE"] * 4 + ["HALLMARK_HYPOXIA"] * 3,
        "target": ["CDK1", "CCNB2", "MKI67", "TOP2A", "CDK1", "STAT1", "IRF1", "CXCL10", "GBP1", "VEGFA",
                   "PGK1", "LDHA"],
    }
)
GENES = ["CDK1", "CCNB2", "MKI67", "TOP2A", "STAT1", "IRF1", "CXCL10", "GBP1", "ACTB"]
LOGGER = "scsynth.data._online"


pytestmark = pytest.mark.usefixtures("fresh_online")


@pytest.fixture
def fake_hallmark(monkeypatch):
    import decoupler as dc

    calls = []

    def hallmark(organism="human", **kwargs):
        calls.append(organism)
        return DECOUPLER_HALLMARK.copy()

    monkeypatch.setattr(dc.op, "hallmark", hallmark)
    return calls


@pytest.fixture
def offline_hallmark(monkeypatch):
    import decoupler as dc

    calls = []

    def hallmark(*args, **kwargs):
        calls.append(1)
        raise ConnectionError("no network")

    monkeypatch.setattr(dc.op, "hallmark", hallmark)
    return calls


def test_auto_uses_decoupler_with_msigdb_names_once(fake_hallmark, caplog):
    import decoupler as dc

    with caplog.at_level(logging.INFO, logger="scsynth"):
        df = read_gene_sets("hallmark")
        again = read_gene_sets("hallmark")
    assert fake_hallmark == ["human"]  # downloaded once, then cached for the process
    assert df.equals(again)
    assert df.attrs["source"] == "decoupler" and df.attrs["requested"] == "auto"
    assert df.attrs["version"] == df.attrs["label"] == f"decoupler {dc.__version__} (OmniPath)"
    assert "decoupler.op.hallmark" in df.attrs["reason"]
    # decoupler's G2M_CHECKPOINT is MSigDB's (and the bundled file's) HALLMARK_G2M_CHECKPOINT
    names = set(df["source"])
    assert names == {"HALLMARK_G2M_CHECKPOINT", "HALLMARK_INTERFERON_GAMMA_RESPONSE", "HALLMARK_HYPOXIA"}
    assert names <= set(read_gene_sets("hallmark", source="bundled")["source"])
    assert df.groupby("source").size().to_dict()["HALLMARK_G2M_CHECKPOINT"] == 4  # duplicate CDK1 dropped
    routes = [r for r in caplog.records if r.name == LOGGER]
    assert len(routes) == 1 and routes[0].levelno == logging.INFO and "decoupler" in routes[0].getMessage()


def test_matched_sets_record_the_decoupler_route(fake_hallmark):
    m = match_gene_sets("hallmark", GENES, min_genes_per_set=3)
    assert m.sets == ("HALLMARK_G2M_CHECKPOINT", "HALLMARK_INTERFERON_GAMMA_RESPONSE")
    assert m.provenance["source"] == m.summary()["source"] == "decoupler"
    assert m.summary()["label"].startswith("decoupler ") and m.provenance["name"] == "hallmark"
    back = MatchedGeneSets.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m and back.provenance == m.provenance
    # same names, whichever route: a model matched offline has the same pathway names
    offline = match_gene_sets("hallmark", GENES, min_genes_per_set=3, source="bundled")
    assert set(m.sets) <= set(offline.sets) | set(offline.dropped_sets)


def test_explicit_decoupler_route(offline_hallmark):
    with pytest.raises(RuntimeError, match="source='bundled'"):
        read_gene_sets("hallmark", source="decoupler")
    with pytest.raises(ValueError, match="only supports 'hallmark'"):
        read_gene_sets("reactome_wp_pid", source="decoupler")
    assert len(offline_hallmark) == 1


def test_explicit_decoupler_retries_after_a_failure(monkeypatch, offline_hallmark):
    import decoupler as dc

    assert read_gene_sets("hallmark").attrs["source"] == "bundled"  # auto: fails, remembered
    monkeypatch.setattr(dc.op, "hallmark", lambda organism="human": DECOUPLER_HALLMARK.copy())
    assert read_gene_sets("hallmark").attrs["source"] == "bundled"  # auto does not retry
    df = read_gene_sets("hallmark", source="decoupler")  # an explicit request does
    assert df.attrs["source"] == "decoupler" and df.attrs["requested"] == "decoupler"
    assert read_gene_sets("hallmark").attrs["source"] == "decoupler"  # and auto now has it


def test_auto_falls_back_once_and_says_why(offline_hallmark, caplog):
    with caplog.at_level(logging.INFO, logger="scsynth"):
        frames = [read_gene_sets("hallmark") for _ in range(100)]
    assert len(offline_hallmark) == 1  # one attempt per process
    assert all(f.attrs["source"] == "bundled" and f.attrs["requested"] == "auto" for f in frames)
    assert frames[0].attrs["reason"] == "decoupler.op.hallmark failed: ConnectionError: no network"
    assert frames[0].equals(read_gene_sets("hallmark", source="bundled"))
    routes = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(routes) == 1 and "bundled" in routes[0] and "ConnectionError" in routes[0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    m = match_gene_sets("hallmark", GENES, min_genes_per_set=3)
    assert m.provenance["source"] == "bundled" and "ConnectionError" in m.provenance["reason"]


def test_auto_with_the_real_decoupler_offline_is_fast():
    start = time.perf_counter()
    df = read_gene_sets("hallmark")
    seconds = time.perf_counter() - start
    if df.attrs["source"] == "decoupler":
        pytest.skip("decoupler reached OmniPath: this machine is online")
    assert df.attrs["source"] == "bundled" and df["source"].nunique() == 50
    assert df.attrs["reason"].startswith("decoupler.op.hallmark failed: ")
    assert seconds < 10  # a refused connection fails in milliseconds; the bound is AUTO_TIMEOUT_S
    start = time.perf_counter()
    for _ in range(20):
        read_gene_sets("hallmark")
    assert time.perf_counter() - start < 5  # no retry


def test_auto_gives_up_on_a_hanging_download(monkeypatch):
    import decoupler as dc

    monkeypatch.setattr(_online, "AUTO_TIMEOUT_S", 0.2)
    monkeypatch.setattr(dc.op, "hallmark", lambda organism="human": time.sleep(3) or DECOUPLER_HALLMARK)
    start = time.perf_counter()
    df = read_gene_sets("hallmark")
    assert time.perf_counter() - start < 2
    assert df.attrs["source"] == "bundled" and "TimeoutError" in df.attrs["reason"]


def test_offline_env_and_collections_without_decoupler(monkeypatch):
    import decoupler as dc

    def never(*args, **kwargs):
        raise AssertionError("decoupler must not be called")

    monkeypatch.setattr(dc.op, "hallmark", never)
    reactome = read_gene_sets("reactome_wp_pid")
    assert reactome.attrs["source"] == "bundled" and "no function" in reactome.attrs["reason"]
    monkeypatch.setenv(_online.OFFLINE_ENV, "1")
    df = read_gene_sets("hallmark")
    assert df.attrs["source"] == "bundled" and df.attrs["reason"] == "SCSYNTH_OFFLINE is set"


def test_a_malformed_decoupler_frame_falls_back(monkeypatch):
    import decoupler as dc

    malformed = pd.DataFrame({"set": ["A"], "gene": ["G"]})
    monkeypatch.setattr(dc.op, "hallmark", lambda organism="human": malformed)
    df = read_gene_sets("hallmark")
    assert df.attrs["source"] == "bundled" and "not source/target" in df.attrs["reason"]
