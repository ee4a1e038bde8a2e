"""tl.markers keeps its parameters in uns as plain values, so that they survive an h5ad round trip."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import scsynth
from scsynth.pl._markers import markers_params
from scsynth.tl._stratify import h5ad_params

matplotlib.use("Agg")


def test_markers_params_survive_write_h5ad(trained_rnagan, tmp_path):
    model, test = trained_rnagan
    test = test.copy()
    scsynth.tl.markers(test, model, groupby="group", group="type 1", n_draws=2, n_refs=4, seed=3)
    table = test.uns["rnagan_markers"]
    params = test.uns["rnagan_markers_params"]
    assert params == table.attrs["params"]
    assert params == {"groupby": "group", "group": "type 1", "reference": ["type 0", "type 2", "type 3"],
                      "n_draws": 2, "n_refs": 4, "n_steps": 20, "seed": 3}

    test.write_h5ad(tmp_path / "m.h5ad")
    back = ad.read_h5ad(tmp_path / "m.h5ad")
    assert not back.uns["rnagan_markers"].attrs  # what h5ad drops ...
    assert markers_params(back) == params  # ... is read back from uns
    np.testing.assert_array_equal(back.uns["rnagan_markers"]["attribution"], table["attribution"])
    fig = scsynth.pl.markers(back, n_top=4)
    assert [ax.get_title() for ax in fig.axes] == ["top genes of type 1", "top pathways of type 1"]
    assert [len(ax.patches) for ax in fig.axes] == [4, 4]
    plt.close(fig)


def test_markers_key_added_and_copy(trained_rnagan):
    model, test = trained_rnagan
    out = scsynth.tl.markers(test, model, groupby="group", group="type 0", reference="type 2", n_draws=2,
                             n_refs=4, key_added="m_copy", copy=True)
    assert "m_copy" not in test.uns and "m_copy_params" not in test.uns
    assert out.uns["m_copy_params"]["reference"] == ["type 2"]
    assert markers_params(out, key="m_copy")["group"] == "type 0"


@pytest.mark.parametrize(("params", "expected"), [
    ({"a": None, "b": (1, np.int64(2)), "c": np.float32(0.5)}, {"b": [1, 2], "c": 0.5}),
    ({"reference": np.array(["x", "y"]), "flag": True, "what": object},
     {"reference": ["x", "y"], "flag": True, "what": str(object)}),
])
def test_h5ad_params_are_plain(params, expected, tmp_path):
    plain = h5ad_params(params)
    assert plain == expected
    adata = ad.AnnData(np.zeros((1, 1), dtype=np.float32), uns={"p": plain})
    adata.write_h5ad(tmp_path / "p.h5ad")  # writable as is
