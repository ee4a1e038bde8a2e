"""RNAGAN's marginal calibration: pseudo-samples mapped gene by gene onto their group's training samples."""

import json

import numpy as np
import pytest
from scipy import stats

import scsynth
from scsynth.model import RNAGAN
from scsynth.model._rnagan_marginals import calibration_group, is_calibrated

from ..conftest import GENE_SETS, SMALL_RG
from ..conftest import rnagan_samples as _samples


def _normalized(adata):
    x = adata.layers["normalized"] if "normalized" in adata.layers else adata.X
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    return x / x.sum(1, keepdims=True) * 1e4 if "normalized" not in adata.layers else x


def _ks(a, b):
    """Mean over genes of the two-sample Kolmogorov-Smirnov distance."""
    return float(np.mean([stats.ks_2samp(a[:, j], b[:, j]).statistic for j in range(a.shape[1])]))


def test_pseudo_samples_take_their_groups_marginals(trained_rnagan):
    model = trained_rnagan[0]
    marginals = model.module.marginals
    assert marginals.n_groups == 2 * 4  # (sc, bulk) x 4 groups
    # trained on single cells only: the sc rows are fitted (20 training samples a group), the bulk rows not
    assert all(is_calibrated(model, "sc", f"type {k}") for k in range(4))
    assert not any(is_calibrated(model, "bulk", f"type {k}") for k in range(4))
    real = _normalized(model.adata[model.adata.obs["group"] == "type 1"])
    cells = model.generate(300, condition="type 1", seed=3)
    assert cells.uns["scsynth"]["params"]["calibrated"] is True
    with marginals.disabled():
        raw = model.generate(300, condition="type 1", seed=3)
    assert raw.uns["scsynth"]["params"]["calibrated"] is False
    calibrated, uncalibrated = _ks(_normalized(cells), real), _ks(_normalized(raw), real)
    assert calibrated < 0.8 * uncalibrated and calibrated < 0.25
    # the map is monotone per gene: the pseudo-samples' order within each gene is the generator's
    rho = [stats.spearmanr(_normalized(cells)[:, j], _normalized(raw)[:, j]).statistic for j in range(40)]
    assert np.median(rho) > 0.8
    # library sizes and the rounding's stream are untouched by the calibration
    assert np.array_equal(cells.obs["library_size"], raw.obs["library_size"])


def test_calibration_is_reproducible_and_survives_save_load(trained_rnagan, tmp_path):
    model = trained_rnagan[0]
    a, b = (model.generate(30, condition="type 0", seed=5) for _ in range(2))
    assert (a.X != b.X).nnz == 0
    model.save(tmp_path / "m", save_anndata=True)
    loaded = RNAGAN.load(tmp_path / "m")
    for name, buffer in model.module.marginals.named_buffers():
        assert np.array_equal(buffer.numpy(), getattr(loaded.module.marginals, name).numpy()), name
    assert (loaded.generate(30, condition="type 0", seed=5).X != a.X).nnz == 0


def test_a_model_saved_before_the_calibration_loads_uncalibrated(trained_rnagan, tmp_path):
    from safetensors.torch import load_file, save_file

    model = trained_rnagan[0]
    model.save(tmp_path / "m", save_anndata=True)
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    assert any(k.startswith("marginals.") for k in state)  # the edit below provably removes something
    save_file({k: v for k, v in state.items() if not k.startswith("marginals.")}, weights)
    assert json.loads((tmp_path / "m" / "scsynth.json").read_text())["model"] == "RNAGAN"
    loaded = RNAGAN.load(tmp_path / "m")
    assert not loaded.module.marginals.is_fitted
    with model.module.marginals.disabled():
        expected = model.generate(20, condition="type 2", seed=1)
    got = loaded.generate(20, condition="type 2", seed=1)
    assert got.uns["scsynth"]["params"]["calibrated"] is False and (got.X != expected.X).nnz == 0


def test_small_groups_stay_as_generated_and_false_removes_the_calibration():
    scsynth.settings.seed = 0
    adata = _samples(n_per_group=30)
    # type 3 keeps 8 samples: too few for quantiles (MIN_CALIBRATION_SAMPLES = 10)
    keep = (adata.obs["group"] != "type 3").to_numpy() | (np.cumsum(adata.obs["group"] == "type 3") <= 8)
    adata = adata[keep].copy()
    RNAGAN.setup_anndata(adata, labels_key="group", modality="bulk")
    model = RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)
    model.train(max_steps={"bulk": 6}, batch_size=16, n_refs=(3, 5), seed=0, enable_progress_bar=False)
    assert [is_calibrated(model, "bulk", f"type {k}") for k in range(4)] == [True, True, True, False]
    assert calibration_group(model, "bulk", "type 2") == 4 + 2 and calibration_group(model, "bulk", "nope") is None
    assert model.generate(5, condition="type 3", seed=0).uns["scsynth"]["params"]["calibrated"] is False
    # held-out samples are not part of the fit: with train_size=0.5, 15 training samples a group remain
    model.train(max_steps={"bulk": 4}, batch_size=8, n_refs=(3, 5), seed=0, train_size=0.5, enable_progress_bar=False)
    assert [is_calibrated(model, "bulk", f"type {k}") for k in range(4)] == [True, True, True, False]
    model.train(max_steps={"bulk": 2}, batch_size=16, n_refs=(3, 5), seed=0, calibrate_marginals=False,
                enable_progress_bar=False)
    assert not model.module.marginals.is_fitted
    with pytest.raises(TypeError, match="calibrate_marginals must be True or False"):
        model.train(max_steps={"bulk": 2}, calibrate_marginals="yes", enable_progress_bar=False)
