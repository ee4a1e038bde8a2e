import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import scsynth
from scsynth.model import ScGAN

from ..conftest import SMALL, load_as_saved_before


def _train(adata, steps=3, **setup):
    ScGAN.setup_anndata(adata, **setup)
    model = ScGAN(adata, **SMALL)
    model.train(max_steps=steps, batch_size=32, enable_progress_bar=False)
    return model


def test_unconditional_counts_generate(counts):
    model = _train(counts)
    cells = model.generate(200, seed=3)
    assert cells.shape == (200, counts.n_vars)
    assert list(cells.var_names) == list(counts.var_names)
    x = cells.X.toarray()
    assert (x >= 0).all() and np.array_equal(x, np.round(x))  # integer counts
    assert np.allclose(cells.layers["normalized"].sum(1), 10_000, rtol=1e-3)
    assert np.array_equal(cells.layers["counts"].toarray(), x)
    # library sizes come from training cells and the rounding is unbiased
    train_libs = set(model.train_library_sizes_.tolist())
    assert set(cells.obs["library_size"]) <= train_libs
    assert np.allclose(x.sum(1), cells.obs["library_size"], rtol=0.05, atol=5)
    meta = cells.uns["scsynth"]
    assert meta["model"] == "ScGAN" and meta["seed"] == 3 and meta["params"]["n_obs"] == 200
    assert "group" not in cells.obs


def test_conditional_generation_by_label(trained_conditional):
    model = trained_conditional
    one = model.generate(30, condition="LYZ+")
    assert (one.obs["group"] == "LYZ+").all()
    assert list(one.obs["group"].cat.categories) == ["LYZ+", "LYZ-"]
    mixed = model.generate(4, condition=["LYZ+", "LYZ-", "LYZ-", "LYZ+"])
    assert list(mixed.obs["group"]) == ["LYZ+", "LYZ-", "LYZ-", "LYZ+"]
    freq = model.generate(2000).obs["group"].value_counts(normalize=True)
    train_freq = pd.Series(model.train_label_codes_).value_counts(normalize=True)
    assert abs(freq["LYZ+"] - train_freq[0]) < 0.05
    # a label's library sizes are drawn from that label's training cells
    pool = set(model.train_library_sizes_[model.train_label_codes_ == 1].tolist())
    assert set(model.generate(50, condition="LYZ-").obs["library_size"]) <= pool


def test_generate_errors(trained_conditional, counts):
    model = trained_conditional
    with pytest.raises(ValueError, match="Unknown labels"):
        model.generate(5, condition="B cell")
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n_obs"):
            model.generate(bad)
    with pytest.raises(ValueError, match="n_obs=3"):
        model.generate(3, condition=["LYZ+", "LYZ-"])
    ScGAN.setup_anndata(counts)
    untrained = ScGAN(counts, **SMALL)
    with pytest.raises(RuntimeError, match="train"):
        untrained.generate(5)


def test_unconditional_model_rejects_labels(counts):
    model = _train(counts, steps=1)
    with pytest.raises(ValueError, match="unconditional"):
        model.generate(5, condition="LYZ+")


def test_same_seed_same_cells_and_reproducible_training(counts):
    a = _train(counts.copy(), steps=3, labels_key="group")
    b = _train(counts.copy(), steps=3, labels_key="group")
    for (name, pa), pb in zip(a.module.state_dict().items(), b.module.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    g1, g2, g3 = a.generate(100, seed=7), a.generate(100, seed=7), a.generate(100, seed=8)
    assert (g1.X != g2.X).nnz == 0 and g1.obs.equals(g2.obs)
    assert (g1.X != g3.X).nnz > 0


def test_dense_and_sparse_inputs_train_alike(counts):
    dense = counts.copy()
    dense.X = counts.X.toarray()
    m_sparse, m_dense = _train(counts.copy()), _train(dense)
    assert np.allclose(m_sparse.generate(20).X.toarray(), m_dense.generate(20).X.toarray())
    csr_array = counts.copy()
    csr_array.X = sparse.csr_array(counts.X)
    assert _train(csr_array, steps=1).is_trained


def test_normalised_input_generates_on_the_input_scale(pbmc):
    model = _train(pbmc, steps=2, labels_key="bulk_labels", is_count_data=False)
    cells = model.generate(50)
    assert "counts" not in cells.layers
    totals = np.asarray(cells.X.sum(1)).ravel()
    assert np.allclose(totals, cells.obs["library_size"], rtol=1e-3)
    assert not np.array_equal(cells.X.data, np.round(cells.X.data))


def test_input_anndata_unchanged_except_scvi_keys(counts):
    before = counts.copy()
    _train(counts, steps=1, labels_key="group")
    assert (counts.X != before.X).nnz == 0
    assert set(counts.obs.columns) - set(before.obs.columns) == {"_scvi_labels"}
    assert set(counts.uns) - set(before.uns) <= {"_scvi_uuid", "_scvi_manager_uuid"}
    assert counts.obs["group"].equals(before.obs["group"])


def test_save_load_roundtrip_identical_generation(trained_conditional, counts, tmp_path):
    model = trained_conditional
    model.save(tmp_path / "m")
    expected = model.generate(64, seed=11)
    loaded = ScGAN.load(tmp_path / "m")  # no data needed to generate
    assert loaded.adata is None and loaded.is_trained
    got = loaded.generate(64, seed=11)
    assert (got.X != expected.X).nnz == 0 and got.obs.equals(expected.obs)
    assert loaded.n_generator_steps_ == model.n_generator_steps_
    for key, value in model.module.state_dict().items():
        assert torch.equal(value, loaded.module.state_dict()[key])
    with pytest.raises(ValueError, match="loaded without data"):
        loaded.train(max_steps=1)
    # with its data the loaded model can continue training
    with_data = ScGAN.load(tmp_path / "m", adata=counts)
    with_data.train(max_steps=1, batch_size=32, enable_progress_bar=False)
    assert with_data.n_generator_steps_ == model.n_generator_steps_ + 1


def test_save_is_atomic_and_refuses_to_overwrite(trained_conditional, tmp_path):
    model = trained_conditional
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True, save_anndata=True)
    assert (tmp_path / "m" / "adata.h5ad").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary leftovers
    assert ScGAN.load(tmp_path / "m").adata is not None


def test_load_errors(trained_conditional, counts, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="model.safetensors is missing"):
        ScGAN.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        ScGAN.load(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.pt").write_text("not a model")
    with pytest.raises(ValueError, match="could not be read"):
        ScGAN.load(tmp_path / "junk")
    trained_conditional.save(tmp_path / "m")
    with pytest.raises(ValueError, match="genes differ"):
        ScGAN.load(tmp_path / "m", adata=counts[:, :-5].copy())
    with pytest.raises(ValueError, match="different order"):
        ScGAN.load(tmp_path / "m", adata=counts[:, ::-1].copy())


def test_count_data_is_detected(counts, pbmc):
    ScGAN.setup_anndata(counts)
    assert ScGAN(counts).is_count_data
    ScGAN.setup_anndata(pbmc)  # normalised values: detected, not refused
    assert not ScGAN(pbmc).is_count_data
    with pytest.raises(TypeError, match="is_count_data"):
        ScGAN.setup_anndata(counts, is_count_data="yes")


def test_bad_input_errors(counts, pbmc):
    with pytest.raises(ValueError, match="non-integer"):
        ScGAN.setup_anndata(pbmc, is_count_data=True)
    neg = counts.copy()
    neg.X = neg.X.copy()
    neg.X.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        ScGAN.setup_anndata(neg)
    nan = counts.copy()
    nan.X = nan.X.toarray()
    nan.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ScGAN.setup_anndata(nan)
    with pytest.raises(KeyError, match="cell_type"):
        ScGAN.setup_anndata(counts, labels_key="cell_type")
    with pytest.raises(KeyError, match="raw_counts"):
        ScGAN.setup_anndata(counts, layer="raw_counts")
    with pytest.raises(ValueError, match="empty"):
        ScGAN.setup_anndata(counts[:0].copy())
    zero = counts.copy()
    zero.X = zero.X.toarray()
    zero.X[:, 3] = 0
    with pytest.raises(ValueError, match="zero in every cell.*filter_genes"):
        ScGAN.setup_anndata(zero)


def test_too_few_cells_rejected_before_training(counts):
    small = counts.copy()
    small.obs["group"] = small.obs["group"].cat.add_categories("rare")
    small.obs.iloc[:3, small.obs.columns.get_loc("group")] = "rare"
    ScGAN.setup_anndata(small, labels_key="group")
    model = ScGAN(small, **SMALL)
    with pytest.raises(ValueError, match="'rare'"):
        model.train(max_steps=1, batch_size=32)
    assert not model.is_trained
    with pytest.raises(ValueError, match="batch_size"):
        model.train(max_steps=1, batch_size=10_000)


def test_tl_generate(trained_conditional):
    cells = scsynth.tl.generate(trained_conditional, n_obs=12, condition="LYZ-", seed=1)
    assert cells.n_obs == 12 and (cells.obs["group"] == "LYZ-").all()
    with pytest.raises(TypeError, match="cannot generate"):
        scsynth.tl.generate(object(), n_obs=3)


def test_repr_and_view_setup(trained_conditional, capsys):
    repr(trained_conditional)  # scvi-tools prints the summary
    assert "cscGAN" in capsys.readouterr().out
    trained_conditional.view_anndata_setup()  # scvi-tools 1.4 crashes here without `import rich.pretty`
    assert "labels" in capsys.readouterr().out


def test_conditional_split_is_stratified_by_label(pbmc):
    ScGAN.setup_anndata(pbmc, labels_key="bulk_labels", is_count_data=False)
    model = ScGAN(pbmc, **SMALL)
    model.train(max_steps=1, batch_size=32, train_size=0.7, enable_progress_bar=False)
    train = pbmc.obs["bulk_labels"].iloc[model.train_indices].value_counts()
    total = pbmc.obs["bulk_labels"].value_counts()
    assert ((train - np.ceil(0.7 * total)).abs() == 0).all()  # every label keeps its share, rare ones too
    assert len(set(model.train_indices) & set(model.validation_indices)) == 0


def test_output_starts_at_the_training_cells_profile_once(counts, monkeypatch):
    import scsynth.model._scgan as scgan_module

    calls = []
    real_init = scgan_module.init_output_at_data
    monkeypatch.setattr(scgan_module, "init_output_at_data", lambda *a, **k: calls.append(1) or real_init(*a, **k))
    adata = counts.copy()
    ScGAN.setup_anndata(adata, labels_key="group")
    model = ScGAN(adata, **SMALL)
    assert model.output_init == "data" and model.module.generator.label_bias is not None
    assert not model.module.generator.label_bias.weight.any()  # zeros until the first training
    model.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    model.train(max_steps=2, batch_size=32, enable_progress_bar=False)  # continues: no second initialisation
    assert len(calls) == 1
    # the per-label bias starts each label at its own profile: LYZ defines the labels
    bias = model.module.generator.label_bias.weight.detach()
    lyz = list(adata.var_names).index("LYZ")
    plus, minus = model.label_categories.index("LYZ+"), model.label_categories.index("LYZ-")
    assert bias[plus, lyz] > bias[minus, lyz] + 0.5

    calls.clear()
    unconditional = _train(counts.copy(), steps=2)
    assert unconditional.module.generator.label_bias is None and unconditional.output_init == "data"
    assert len(calls) == 1
    ScGAN.setup_anndata(adata, labels_key="group")
    legacy = ScGAN(adata, output_init="random", **SMALL)
    legacy.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    assert legacy.module.generator.label_bias is None and len(calls) == 1
    with pytest.raises(ValueError, match="output_init must be 'data' or 'random'"):
        ScGAN(adata, output_init="zeros", **SMALL)


def test_profile_stats_of_backed_cells_equal_in_memory(counts, tmp_path):
    import anndata

    from scsynth.model._profile_stats import profile_stats

    path = tmp_path / "cells.h5ad"
    counts.write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    idx = np.arange(0, counts.n_obs, 2)
    codes = (np.arange(counts.n_obs) % 3).astype(np.int64)
    mem = profile_stats(counts, None, idx, 1e4, codes, 4)
    disk = profile_stats(backed, None, idx, 1e4, codes, 4)
    for a, b in zip(mem, disk, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    x = counts.X.toarray()[idx].astype(np.float64)
    x = x / x.sum(1, keepdims=True) * 1e4
    np.testing.assert_allclose(mem[0], x.mean(0), rtol=1e-10)
    np.testing.assert_allclose(mem[1], (x > 0).mean(0))
    np.testing.assert_allclose(mem[2][1], x[codes[idx] == 1].mean(0), rtol=1e-10)
    np.testing.assert_allclose(mem[2][3], x.mean(0), rtol=1e-10)  # no cells of label 3: the overall mean


def test_models_saved_before_output_init_load_with_a_random_output(counts, tmp_path):
    adata = counts.copy()
    ScGAN.setup_anndata(adata, labels_key="group")
    trained = ScGAN(adata, output_init="random", **SMALL)
    trained.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    loaded = load_as_saved_before(trained, tmp_path / "old", "output_init", counts)
    assert loaded.output_init == "random" and loaded.module.generator.label_bias is None
    for key, value in trained.module.state_dict().items():
        assert torch.equal(value, loaded.module.state_dict()[key]), key
