"""GRouNdGAN with ``target_noise="controller"``: the controller's cells, knockouts along conditional quantiles."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scsynth.model import GRouNdGAN, ScGAN

from ..conftest import SMALL_GG


@pytest.fixture(scope="module")
def model(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, target_noise="controller", **SMALL_GG)
    model.train(controller_steps=5, max_steps=20, batch_size=32, enable_progress_bar=False, seed=0)
    return model


def test_cells_are_the_controllers(model):
    module = model.module
    parts = module.sample_parts(40, generator=torch.Generator().manual_seed(0))[0]
    assert parts.gene_noise is None
    with torch.no_grad():
        module.eval()
        cells = module.controller.generator(parts.z, normalize=True)
    np.testing.assert_array_equal(parts.raw.numpy(), cells[:, module.controller_gene_index].numpy())
    np.testing.assert_array_equal(parts.raw[:, module.tf_positions].numpy(), parts.tf_values.numpy())
    generated = model.generate(100, seed=2)
    np.testing.assert_allclose(generated.layers["normalized"].sum(1), 10_000, rtol=1e-4)
    np.testing.assert_array_equal(generated.X.toarray(), model.generate(100, seed=2).X.toarray())


def test_knockout_moves_only_the_targets_of_the_tf(model):
    grn = model.grn
    tf = grn.edges["source"].value_counts().index[0]
    with model.module.marginals.disabled():
        out = model.perturb(knockout=tf, n_obs=100, seed=0)
        # independent of batch_size up to float rounding (the calibration's tables can amplify that, so not after it)
        other = model.perturb(knockout=tf, n_obs=100, seed=0, batch_size=33)
    np.testing.assert_allclose(out.layers["pre_lsn"].toarray(), other.layers["pre_lsn"].toarray(), atol=0.05)
    ctrl = (out.obs["condition"] == "control").to_numpy()
    pre = out.layers["pre_lsn"].toarray()
    downstream = out.var_names.isin(list(grn.edges.loc[grn.edges["source"] == tf, "target"]))
    tf_col = out.var_names == tf
    np.testing.assert_array_equal(pre[ctrl][:, ~downstream & ~tf_col], pre[~ctrl][:, ~downstream & ~tf_col])
    assert (pre[~ctrl][:, tf_col] == 0).all()
    assert (pre[ctrl][:, downstream] != pre[~ctrl][:, downstream]).mean() > 0.05
    assert (pre >= 0).all() and np.isfinite(pre).all()
    # calibrated (the default): the same guarantees, deterministic per seed
    a = model.perturb(knockout=tf, n_obs=60, seed=1)
    np.testing.assert_array_equal(a.X.toarray(), model.perturb(knockout=tf, n_obs=60, seed=1).X.toarray())
    pre, ctrl = a.layers["pre_lsn"].toarray(), (a.obs["condition"] == "control").to_numpy()
    np.testing.assert_array_equal(pre[ctrl][:, ~downstream & ~tf_col], pre[~ctrl][:, ~downstream & ~tf_col])


def test_a_perturbation_that_changes_nothing_leaves_every_cell_as_it_was(model):
    tf = model.grn.tfs[0]
    out = model.perturb(overexpress={tf: 1.0}, n_obs=50, seed=0)
    ctrl = (out.obs["condition"] == "control").to_numpy()
    np.testing.assert_array_equal(out.layers["pre_lsn"][ctrl].toarray(), out.layers["pre_lsn"][~ctrl].toarray())


def test_counterfactual_follows_the_conditional_quantiles(model):
    # a target inside its generator's range moves to the same quantile of its new conditional distribution
    from scsynth.nn import _conditional_quantiles as cq

    module = model.module
    parts = module.sample_parts(64, generator=torch.Generator().manual_seed(3))[0]
    new_tfs = parts.tf_values * 0.25
    uniforms = torch.full((64, module.n_targets), 0.5)
    raw = module.counterfactual(parts, new_tfs, uniforms)
    module.eval()
    with torch.no_grad():
        grid = cq.noise_grid(cq.DEFAULT_N_QUANTILES, module.noise_per_gene)
        before, after = (cq.sorted_draws(module.target_generators, module.generator_input(t), grid, module.n_targets)
                         for t in (parts.tf_values, new_tfs))
    levels = cq.quantile_levels(before, parts.targets, uniforms)
    inside = (parts.targets >= before[..., 0]) & (parts.targets <= before[..., -1])
    regulated = torch.tensor([len(r) > 0 for r in module.target_generators.regulators()])
    check = inside & regulated
    assert check.float().mean() > 0.3
    expected = cq.quantile_at(after, levels).clamp_min(0)
    np.testing.assert_allclose(raw[:, module.target_positions][check].numpy(), expected[check].numpy(),
                               rtol=1e-4, atol=1e-3)


def test_save_load_keeps_the_mode(model, tmp_path):
    model.save(tmp_path / "gg", save_anndata=False)
    loaded = GRouNdGAN.load(tmp_path / "gg", adata=model.adata.copy())
    assert loaded.module.target_noise == "controller"
    tf = model.grn.tfs[0]
    a, b = (m.perturb(knockout=tf, n_obs=40, seed=4) for m in (model, loaded))
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())


def test_clear_errors(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    with pytest.raises(ValueError, match="tf_input='log1p' or 'normalized'"):  # other values: the property test below
        GRouNdGAN(adata, grn=pbmc_grn, target_noise="controller", tf_input="raw", target_objective="adversarial",
                  **SMALL_GG)
    # a pretrained controller that lacks some of the model's genes cannot give whole cells
    tfs = list(pbmc_grn["source"].unique())
    some = _pbmc[:, tfs + [g for g in _pbmc.var_names if g not in tfs][:20]].copy()
    ScGAN.setup_anndata(some, is_count_data=False)
    controller = ScGAN(some, n_latent=16, generator_hidden=(32, 64), critic_hidden=(64, 32))
    controller.train(max_steps=1, batch_size=32, enable_progress_bar=False)
    with pytest.raises(ValueError, match="genes of the model are not the controller ScGAN's"):
        GRouNdGAN(adata, grn=pbmc_grn, controller=controller, target_noise="controller", **SMALL_GG)
    GRouNdGAN(adata, grn=pbmc_grn, controller=controller, **SMALL_GG)  # independent noise needs only the TFs


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=12), st.none(), st.integers(), st.booleans()))
def test_any_other_target_noise_is_refused_by_name(_pbmc, pbmc_grn, value):
    assume(value not in ("independent", "controller"))
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    with pytest.raises(ValueError, match="target_noise must be 'independent' or 'controller'"):
        GRouNdGAN(adata, grn=pbmc_grn, target_noise=value, **SMALL_GG)
