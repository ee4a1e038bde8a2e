import numpy as np
import pandas as pd
import pytest

import scsynth
from scsynth.model import ScGAN


def _hub(model) -> str:
    return model.grn.edges["source"].value_counts().index[0]


def test_perturb_matches_the_model_method(trained_groundgan):
    tf = _hub(trained_groundgan)
    via_tl = scsynth.tl.perturb(trained_groundgan, knockout=tf, n_obs=50, seed=7)
    direct = trained_groundgan.perturb(knockout=tf, n_obs=50, seed=7)
    assert via_tl.shape == direct.shape == (100, trained_groundgan.adata.n_vars)
    np.testing.assert_array_equal(via_tl.X.toarray(), direct.X.toarray())
    np.testing.assert_array_equal(via_tl.layers["pre_lsn"].toarray(), direct.layers["pre_lsn"].toarray())
    pd.testing.assert_frame_equal(via_tl.obs, direct.obs)
    pd.testing.assert_frame_equal(via_tl.uns["perturbation"]["effects"],
                                  direct.uns["perturbation"]["effects"])
    assert via_tl.uns["perturbation"]["name"] == f"KO({tf})"
    assert via_tl.uns["perturbation"]["seed"] == 7


def test_perturb_forwards_every_option(trained_groundgan):
    tfs = list(trained_groundgan.grn.edges["source"].value_counts().index[:3])
    out = scsynth.tl.perturb(trained_groundgan, knockout=tfs[0], overexpress={tfs[1]: 2.0}, set_to={tfs[2]: 0.5},
                             n_obs=20, seed=1, name="combo", batch_size=8)
    info = out.uns["perturbation"]
    assert info["name"] == "combo" and set(out.obs["condition"]) == {"control", "combo"}
    assert info["knockout"] == [tfs[0]] and info["overexpress"] == {tfs[1]: 2.0}
    assert info["set_to"] == {tfs[2]: 0.5} and info["n_pairs"] == 20
    assert sorted(info["perturbed"]) == sorted(tfs)
    # the seed is honoured: another seed gives other cells
    other = scsynth.tl.perturb(trained_groundgan, knockout=tfs[0], n_obs=20, seed=2)
    same = scsynth.tl.perturb(trained_groundgan, knockout=tfs[0], n_obs=20, seed=1)
    assert not np.array_equal(other.X.toarray(), same.X.toarray())


def test_perturb_passes_the_model_errors_through(trained_groundgan):
    with pytest.raises(ValueError, match="Nothing to perturb"):
        scsynth.tl.perturb(trained_groundgan, n_obs=10)
    with pytest.raises(ValueError, match="not a gene of the model"):
        scsynth.tl.perturb(trained_groundgan, knockout="NOT_A_GENE", n_obs=10)


def test_perturb_rejects_a_model_without_a_grn(counts):
    ScGAN.setup_anndata(counts)
    model = ScGAN(counts, n_latent=8, generator_hidden=(16,), critic_hidden=(16,))
    with pytest.raises(TypeError, match="ScGAN cannot perturb.*GRouNdGAN"):
        scsynth.tl.perturb(model, knockout="SPI1")
    with pytest.raises(TypeError, match="object cannot perturb"):
        scsynth.tl.perturb(object(), knockout="SPI1")
