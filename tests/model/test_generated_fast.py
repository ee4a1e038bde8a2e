"""The batch-by-batch sparse assembly of generated cells equals the plain dense computation."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import scsynth
from scsynth.model import _generated as gen_mod
from scsynth.model._generated import GeneratedCells, generated_anndata, normalized_profiles


def _profiles(rng: np.random.Generator, n: int, g: int, zero: float = 0.5) -> np.ndarray:
    a = rng.gamma(0.5, 1.0, size=(n, g)).astype(np.float32)
    a[rng.random((n, g)) < zero] = 0
    a[3] = 0  # an all-zero cell stays all-zero
    return a


def _dense_counts(a: np.ndarray, library: np.ndarray, u_rng: np.random.Generator, batch: int) -> np.ndarray:
    """The straightforward stochastic rounding: one uniform per positive entry, in row-major order."""
    out = np.zeros_like(a)
    for start in range(0, len(a), batch):
        p = a[start:start + batch]
        total = p.astype(np.float64).sum(1)
        safe = np.where(total > 0, total, 1.0)
        scale = (library[start:start + batch] / safe).astype(np.float32)
        mask = p > 0
        u = np.zeros(p.shape, np.float32)
        u[mask] = u_rng.random(int(mask.sum()), dtype=np.float32)
        out[start:start + batch] = np.where(mask, np.floor(p * scale[:, None] + u), 0)
    return out


@pytest.mark.parametrize("batch", [7, 64, 1000])
def test_profiles_equal_dense_reference(batch):
    rng = np.random.default_rng(0)
    a = _profiles(rng, 150, 37)
    library = rng.uniform(100, 5000, size=len(a))
    cells = GeneratedCells(len(a), a.shape[1], counts=True, model_name="M")
    u_rng = np.random.default_rng(1)
    for start in range(0, len(a), batch):
        cells.add_profiles(torch.as_tensor(a[start:start + batch]), library[start:start + batch], rng=u_rng)
    out = cells.anndata(var_names=np.arange(a.shape[1]).astype(str), obs=pd.DataFrame(index=map(str, range(150))),
                        uns={})
    expected = _dense_counts(a, library, np.random.default_rng(1), batch)
    np.testing.assert_array_equal(out.X.toarray(), expected)
    np.testing.assert_array_equal(out.layers["counts"].toarray(), expected)
    np.testing.assert_allclose(out.layers["normalized"].toarray(), normalized_profiles(a), rtol=1e-6, atol=1e-6)
    # same sparsity as scipy's own conversion, canonical CSR, float32, independent copies
    for key, ref in (("X", expected), ("normalized", normalized_profiles(a))):
        x = out.X if key == "X" else out.layers[key]
        assert x.nnz == sparse.csr_matrix(ref).nnz and x.has_canonical_format and x.dtype == np.float32
    assert not np.shares_memory(out.X.data, out.layers["counts"].data)
    assert not np.shares_memory(out.X.indices, out.layers["counts"].indices)
    out.X.data[:] = -1  # in-place changes of X (normalize_total, log1p) leave the counts layer alone
    np.testing.assert_array_equal(out.layers["counts"].toarray(), expected)


def test_profiles_without_counts_scale_to_library():
    rng = np.random.default_rng(2)
    a = _profiles(rng, 40, 11)
    library = rng.uniform(10, 100, size=len(a))
    cells = GeneratedCells(len(a), a.shape[1], counts=False, model_name="M")
    cells.add_profiles(a[:25], library[:25])
    cells.add_profiles(a[25:], library[25:])
    x = cells.x.to_csr()[0].toarray()
    total = a.astype(np.float64).sum(1, keepdims=True)
    np.testing.assert_allclose(x, a / np.where(total > 0, total, 1) * library[:, None], rtol=1e-5)


def test_rounding_is_unbiased():
    profile = np.array([[0.3, 1.7, 0.0, 2.5, 5.5]], np.float32)
    n = 20000
    a = np.repeat(profile, n, axis=0)
    library = np.full(n, 2.0)  # expected counts 0.6, 3.4, 0, 5, 11 (profile / 10 * 2)
    cells = GeneratedCells(n, 5, counts=True, model_name="M")
    cells.add_profiles(a, library, rng=np.random.default_rng(3))
    x = cells.x.to_csr()[0].toarray()
    np.testing.assert_allclose(x.mean(0), profile[0] / profile.sum() * 2, atol=0.01)
    assert set(np.unique(x[:, 0])) == {0.0, 1.0}  # floor(x + u): only the two neighbours


@pytest.mark.parametrize("positive", [False, True])
def test_values_equal_dense_reference(positive):
    rng = np.random.default_rng(4)
    values = rng.standard_normal((90, 23)).astype(np.float32)
    values[rng.random(values.shape) < 0.3] = 0
    normalized = np.abs(rng.standard_normal((90, 23))).astype(np.float32) - 0.2
    normalized[5] = 0
    cells = GeneratedCells(90, 23, counts=False, model_name="M")
    totals = np.concatenate([cells.add_values(values[s:s + 32], normalized[s:s + 32], positive=positive)
                             for s in range(0, 90, 32)])
    x, norm = cells.x.to_csr()[0], cells.normalized.to_csr()[0]
    v = np.clip(values, 0, None) if positive else values
    b = np.clip(normalized, 0, None) if positive else normalized
    np.testing.assert_array_equal(x.toarray(), v)
    assert x.nnz == np.count_nonzero(v)
    np.testing.assert_allclose(norm.toarray(), normalized_profiles(b), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(totals, v.astype(np.float64).sum(1), rtol=1e-6)


def test_generated_anndata_matches_plain_path():
    rng = np.random.default_rng(5)
    values = np.floor(rng.gamma(0.3, 3.0, size=(60, 17))).astype(np.float32)
    normalized = torch.as_tensor(rng.random((60, 17)).astype(np.float32))
    out = generated_anndata(torch.as_tensor(values), normalized, var_names=np.arange(17).astype(str),
                            obs=pd.DataFrame(index=[f"c{i}" for i in range(60)]), counts=True, uns={"model": "M"},
                            layers={"extra": torch.ones(60, 17)})
    np.testing.assert_array_equal(out.X.toarray(), values)
    np.testing.assert_array_equal(out.layers["counts"].toarray(), values)
    assert out.X.nnz == sparse.csr_matrix(values).nnz
    np.testing.assert_allclose(out.layers["normalized"].toarray(), normalized_profiles(normalized), rtol=1e-6)
    np.testing.assert_array_equal(out.layers["extra"].toarray(), np.ones((60, 17)))
    assert out.uns["scsynth"] == {"model": "M"}


def test_non_finite_values_raise():
    values = np.ones((4, 3), np.float32)
    values[2, 1] = np.nan
    with pytest.raises(RuntimeError, match="1 NaN or infinite"):
        generated_anndata(values, values, var_names=np.array(list("abc")), obs=pd.DataFrame(index=list("wxyz")),
                          counts=False, uns={"model": "M"})
    cells = GeneratedCells(4, 3, counts=True, model_name="ScGAN")
    with pytest.raises(RuntimeError, match="This ScGAN generated 1 NaN"):
        cells.add_profiles(values, np.ones(4), rng=np.random.default_rng(0))


def test_sparse_rows_grow_when_later_batches_are_denser():
    rng = np.random.default_rng(6)
    cells = GeneratedCells(300, 50, counts=False, model_name="M")
    parts = []
    for zero in [0.99, 0.9, 0.5, 0.0, 0.0, 0.0]:
        a = _profiles(rng, 50, 50, zero=zero)
        parts.append(a)
        cells.add_values(a, a)
    x = cells.x.to_csr()[0]
    np.testing.assert_array_equal(x.toarray(), np.concatenate(parts))
    assert len(x.data) == x.nnz


# -- the models ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def counts_adata():
    rng = np.random.default_rng(0)
    x = rng.poisson(rng.gamma(0.5, 2.0, size=(120, 40))).astype(np.float32)
    x[:, 0] += 1
    adata = anndata.AnnData(x)
    adata.obs["group"] = pd.Categorical(np.where(np.arange(120) % 2, "a", "b"))
    return adata


@pytest.mark.parametrize(("labels_key", "calibrate"), [(None, False), ("group", False), (None, True), ("group", True)])
def test_scgan_generate_equals_dense_reference(counts_adata, labels_key, calibrate):
    adata = counts_adata.copy()
    scsynth.model.ScGAN.setup_anndata(adata, labels_key=labels_key)
    # the generator's own values (the count draw, output_noise="poisson", is tested in test_scgan_count_noise)
    model = scsynth.model.ScGAN(adata, generator_hidden=(16, 32), critic_hidden=(32, 16), output_noise="none")
    model.train(max_steps=3, batch_size=32, enable_progress_bar=False, calibrate_marginals=calibrate)
    assert model.module.marginals.is_fitted == calibrate
    module = model.module
    for norm in module.generator.norms:  # non-trivial running statistics, so that folding them matters
        bn = norm.bn if module.conditional else norm
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
    cells = model.generate(150, seed=4, batch_size=64)
    # the reference: the module's plain forward (BatchNorm not folded) and a dense rounding
    rng = np.random.default_rng(4)
    codes, library = model._resolve_labels(150, None, rng)
    gen = torch.Generator().manual_seed(4)
    module.eval()
    with torch.inference_mode():
        raw = torch.cat([
            module.generator(module.draw_noise(len(idx), gen),
                             torch.as_tensor(codes[idx]) if module.conditional else None, normalize=False)
            for idx in np.array_split(np.arange(150), [64, 128])
        ]).numpy()
    folded = module.sample(150, torch.as_tensor(codes), generator=torch.Generator().manual_seed(4), batch_size=64,
                           normalize=False).numpy()
    np.testing.assert_allclose(folded, raw, rtol=1e-5, atol=1e-5 * raw.max())
    if calibrate:  # normalised, then mapped gene by gene with uniforms of the calibration's own stream
        lib = module.normalize.library_size
        normalized = folded * (lib / np.maximum(folded.sum(1, keepdims=True), 1e-30))
        uniforms = np.random.default_rng([4, 1]).random(folded.shape, dtype=np.float32)
        folded = raw = module.marginals(torch.as_tensor(normalized), torch.as_tensor(codes),
                                        uniforms=torch.as_tensor(uniforms)).numpy()
    expected = _dense_counts(folded, library, rng, 64)
    np.testing.assert_array_equal(cells.X.toarray(), expected)
    np.testing.assert_allclose(cells.layers["normalized"].toarray(), normalized_profiles(raw), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(cells.obs["library_size"], library)
    again = model.generate(150, seed=4, batch_size=64)
    np.testing.assert_array_equal(again.X.toarray(), cells.X.toarray())
    np.testing.assert_array_equal(again.layers["normalized"].toarray(), cells.layers["normalized"].toarray())
    assert (model.generate(150, seed=5, batch_size=64).X != cells.X).nnz > 0


def test_scgan_sample_on_batch_matches_tensor(counts_adata):
    adata = counts_adata.copy()
    scsynth.model.ScGAN.setup_anndata(adata)
    # the generator's own values (the count draw, output_noise="poisson", is tested in test_scgan_count_noise)
    model = scsynth.model.ScGAN(adata, generator_hidden=(16, 32), critic_hidden=(32, 16), output_noise="none")
    model.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    whole = model.module.sample(70, generator=torch.Generator().manual_seed(0), batch_size=32)
    parts = []
    model.module.sample(70, generator=torch.Generator().manual_seed(0), batch_size=32,
                        on_batch=lambda start, x: parts.append((start, x.clone())))
    assert [s for s, _ in parts] == [0, 32, 64]
    torch.testing.assert_close(torch.cat([x for _, x in parts]), whole)
    lib = model.module.normalize.library_size
    torch.testing.assert_close(whole.sum(1), torch.full((70,), lib), rtol=1e-5, atol=1e-3 * lib)


@pytest.mark.parametrize("likelihood", ["hurdle", "normal"])
def test_genesys_generate_equals_dense_reference(likelihood):
    rng = np.random.default_rng(0)
    n, g = 160, 30
    x = np.expm1(rng.gamma(1.0, 1.0, size=(n, g))).astype(np.float32)  # FPKM-like, not counts
    adata = anndata.AnnData(x)
    adata.obs["label"] = np.where(np.arange(n) // 2 % 2, "A", "B")
    adata.obs["time"] = np.arange(n) % 2 + 1
    blueprint = pd.DataFrame([["B", "A"], ["B", "B"]], index=["r1", "r2"])
    scsynth.model.GeneSys.setup_anndata(adata, is_count_data=False)
    model = scsynth.model.GeneSys(adata, blueprint=blueprint, n_hidden=16, n_latent=4, n_layers=1,
                                  continuous_likelihood=likelihood)
    model.train(max_epochs=1, batch_size=16, enable_progress_bar=False)
    cells = model.generate(40, seed=3)
    module = model.module
    assert module.is_calibrated  # continuous values: generate maps them onto the training marginals
    gen = torch.Generator().manual_seed(3)
    z = module.rollout(torch.as_tensor(np.repeat([0, 1], 40)), generator=gen)
    with torch.inference_mode():
        params = module.decode(z.reshape(-1, module.n_latent), None)
        if likelihood == "normal":  # written out: expm1 of a Gaussian draw, clipped at 0
            noise = torch.randn(params["mean"].shape, generator=gen)  # one batch: 160 cells < the generation batch
            values = torch.clamp(torch.expm1(params["mean"] + params["scale"] * noise), min=0)
            expected = torch.clamp(torch.expm1(params["mean"]), min=0)
        else:  # the hurdle's sampler is checked against its density in tests/model/test_genesys_realism.py
            values, expected = module.sample_values(params, generator=gen)
        values, expected = module.calibrate(values), module.calibrate(expected)
        values, expected_norm = values.numpy(), normalized_profiles(expected)
    np.testing.assert_allclose(cells.X.toarray(), values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cells.layers["normalized"].toarray(), expected_norm, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(cells.obs["library_size"], values.sum(1), rtol=1e-5)
    again = model.generate(40, seed=3)
    np.testing.assert_array_equal(again.X.toarray(), cells.X.toarray())


def test_kernels_are_loaded_lazily():
    assert callable(gen_mod._kernels().values_to_csr)
