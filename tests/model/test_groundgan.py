import numpy as np
import pandas as pd
import pytest
import torch

from scsynth.model import GRouNdGAN, ScGAN
from scsynth.nn import TargetGenerators

from ..conftest import SMALL_GG, load_as_saved_before


def test_target_generators_have_exactly_the_per_gene_parameters(trained_groundgan):
    grn = trained_groundgan.grn
    gen = trained_groundgan.module.target_generators
    assert gen.min_hidden == 12  # the default floor
    expected = sum(TargetGenerators.n_parameters_per_gene(len(r), min_hidden=12) for r in grn.regulators)
    assert sum(p.numel() for p in gen.parameters()) == expected
    # never a dense hidden x hidden matrix over all genes: the largest tensor is one group's stacked weights
    widest = max(max(2 * (len(r) + 1), 12) for r in grn.regulators)
    assert max(p.numel() for p in gen.parameters()) <= len(grn.targets) * widest * widest


def test_target_generator_of_a_gene_only_sees_its_regulators():
    regs = [np.array([0, 2]), np.array([1]), np.array([], dtype=np.int64), np.array([2, 1])]
    gen = TargetGenerators(regs, n_tfs=3).eval()
    tf, noise = torch.rand(64, 3) + 0.5, torch.randn(64, 4, 1)
    with torch.no_grad():
        base = gen(tf, noise)
        for j in range(3):
            moved = tf.clone()
            moved[:, j] += 1.0
            changed = (gen(moved, noise) != base).any(0).numpy()
            assert not changed[[g for g, r in enumerate(regs) if j not in r]].any()
    assert [list(r) for r in gen.regulators()] == [list(r) for r in regs]


def test_two_stages_train_with_separate_budgets_and_histories(trained_groundgan):
    assert trained_groundgan.controller_steps_ == 4 and trained_groundgan.n_generator_steps_ == 4
    # the default stage 2 (target_objective="conditional") trains no critic and no labelers
    assert "generator_conditional_train" in trained_groundgan.history_
    assert not {"labeler_real_train", "critic_loss_train"} & set(trained_groundgan.history_)
    assert "critic_loss_train" in trained_groundgan.histories_["controller"]
    assert trained_groundgan.histories_["controller"]["generator_step"].iloc[-1, 0] == 4
    assert trained_groundgan.history_["generator_step"].iloc[-1, 0] == 4
    assert trained_groundgan.history_["lr_generator"].iloc[-1, 0] < 1e-2  # stage-2 generator lr decays (from 1e-2)


def test_stage_two_options_are_checked_before_training(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    with pytest.raises(ValueError, match="target_objective must be 'conditional' or 'adversarial'"):
        GRouNdGAN(adata, grn=pbmc_grn, target_objective="gan", **SMALL_GG)
    with pytest.raises(ValueError, match="tf_input must be"):
        GRouNdGAN(adata, grn=pbmc_grn, tf_input="log", **SMALL_GG)
    with pytest.raises(ValueError, match="needs tf_input='log1p' or 'normalized'"):
        GRouNdGAN(adata, grn=pbmc_grn, tf_input="raw", **SMALL_GG)  # the conditional default reads real cells' TFs
    GRouNdGAN(adata, grn=pbmc_grn, tf_input="raw", target_objective="adversarial", **SMALL_GG)  # the original


def test_adversarial_stage_two_trains_critic_and_labelers(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, target_objective="adversarial", **SMALL_GG)
    model.train(controller_steps=2, max_steps=2, batch_size=32, enable_progress_bar=False,
                plan_kwargs={"n_critic": 2})
    history = model.history_
    expected = {"labeler_real_train", "antilabeler_train", "critic_loss_train", "generator_adversarial_train"}
    assert expected <= set(history)
    assert "generator_conditional_train" not in history and model.n_generator_steps_ == 2


def test_conditional_stage_two_starts_at_the_data_and_lowers_its_score(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    model.train(controller_steps=2, max_steps=0, batch_size=32, enable_progress_bar=False)
    assert torch.all(model.module.target_generators.output_scale == 1)
    model.train(max_steps=40, batch_size=32, train_size=0.8, validate_every=10, enable_progress_bar=False,
                plan_kwargs={"lr": 3e-3, "lr_decay_to": 1.0})
    module = model.module
    dense = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    x = module.inference(torch.as_tensor(dense, dtype=torch.float32))["x_real"]
    real_means = x[:, module.target_positions].mean(0)
    scale = module.target_generators.output_scale
    # the output scales started at the targets' means in the first batch (up to the floor for absent genes)
    assert torch.corrcoef(torch.stack([scale, real_means]))[0, 1] > 0.9
    score = model.history_["generator_conditional_train"].iloc[:, 0]
    assert score.iloc[-1] < score.iloc[0]
    assert "generator_conditional_validation" in model.history_ and "wasserstein_validation" not in model.history_


def test_early_stopping_watches_each_stages_validation_loss(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    # min_delta so large that only the first check counts as an improvement: each stage stops after
    # patience + 1 checks, which needs the monitored key (the critic-free stage 2 logs no wasserstein_validation)
    stop = {"early_stopping": True, "early_stopping_patience": 1, "early_stopping_min_delta": 1e9}
    model.train(controller_steps=200, max_steps=200, batch_size=32, train_size=0.8, validate_every=5, seed=0,
                enable_progress_bar=False, **stop)
    assert 0 < model.controller_steps_ < 200 and 0 < model.n_generator_steps_ < 200
    assert "wasserstein_validation" in model.histories_["controller"]
    assert "generator_conditional_validation" in model.histories_["generator"]


def test_stage_two_freezes_the_controller_weights_and_batchnorm(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    model.train(controller_steps=3, max_steps=0, batch_size=32, enable_progress_bar=False)
    before = {k: v.clone() for k, v in model.module.controller.generator.state_dict().items()}
    model.train(max_steps=3, batch_size=32, enable_progress_bar=False)
    after = model.module.controller.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm running stats
    assert model.controller_steps_ == 3 and model.n_generator_steps_ == 3


def test_generate_is_reproducible_and_batch_independent(trained_groundgan):
    a = trained_groundgan.generate(60, seed=3)
    assert np.array_equal(a.X.toarray(), trained_groundgan.generate(60, seed=3).X.toarray())
    b = trained_groundgan.generate(60, seed=3, batch_size=7)  # same cells up to float rounding of the matrix products
    np.testing.assert_allclose(a.layers["normalized"].toarray(), b.layers["normalized"].toarray(), rtol=1e-4, atol=1e-3)
    assert a.shape == (60, len(trained_groundgan.var_names_))
    assert list(a.var_names) == list(trained_groundgan.var_names_)
    assert set(a.var["grn_role"]) <= {"TF", "target", "noise-only"}
    np.testing.assert_allclose(a.layers["normalized"].sum(1), 10_000, rtol=1e-4)
    assert not np.array_equal(a.X.toarray(), trained_groundgan.generate(60, seed=4).X.toarray())


def test_knockout_leaves_non_targets_exactly_unchanged_before_normalisation(trained_groundgan):
    grn = trained_groundgan.grn
    tf = grn.edges["source"].value_counts().index[0]  # the TF with most targets
    out = trained_groundgan.perturb(knockout=tf, n_obs=300, seed=0, batch_size=128)
    assert out.n_obs == 600 and set(out.obs["condition"]) == {"control", f"KO({tf})"}
    ctrl, pert = out.obs["condition"] == "control", out.obs["condition"] != "control"
    assert (out.obs["pair"][ctrl].to_numpy() == out.obs["pair"][pert].to_numpy()).all()
    pre = out.layers["pre_lsn"].toarray()
    effects = out.uns["perturbation"]["effects"]
    targets = set(grn.edges.loc[grn.edges["source"] == tf, "target"])
    downstream = out.var_names.isin(list(targets)) | (out.var_names == tf)
    np.testing.assert_array_equal(pre[ctrl.to_numpy()][:, ~downstream], pre[pert.to_numpy()][:, ~downstream])
    assert (effects.loc[~downstream, "lfc_pre_lsn"] == 0).all() and (effects.loc[~downstream, "pval_pre_lsn"] == 1).all()
    assert (pre[pert.to_numpy()][:, out.var_names.get_loc(tf)] == 0).all()
    assert effects["direct_target"].sum() == len(targets) and effects.loc[tf, "perturbed"]
    # after renormalisation every gene may move (compositional), which the post-LSN columns show
    assert (effects.loc[~downstream, "lfc"] != 0).any()
    # knocking out the hub changes many of its direct targets
    assert (effects.loc[list(targets), "fdr_pre_lsn"] < 0.05).mean() > 0.5
    # more cells than one batch: no duplicated cells
    control = out.layers["normalized"][ctrl.to_numpy()].toarray()
    assert len(np.unique(control.round(3), axis=0)) == 300


def test_overexpress_and_set_to(trained_groundgan):
    tfs = list(trained_groundgan.grn.tfs)
    out = trained_groundgan.perturb(overexpress={tfs[0]: 2.0}, set_to={tfs[1]: 50.0}, n_obs=50, seed=1)
    pre = out.layers["pre_lsn"].toarray()
    ctrl = (out.obs["condition"] == "control").to_numpy()
    i0, i1 = out.var_names.get_loc(tfs[0]), out.var_names.get_loc(tfs[1])
    np.testing.assert_allclose(pre[~ctrl, i0], 2 * pre[ctrl, i0], rtol=1e-5)
    np.testing.assert_allclose(pre[~ctrl, i1], 50.0, rtol=1e-4)
    assert out.uns["perturbation"]["name"] == f"x2({tfs[0]})+set({tfs[1]}=50)"
    same = trained_groundgan.perturb(overexpress={tfs[0]: 2.0}, set_to={tfs[1]: 50.0}, n_obs=50, seed=1)
    assert np.array_equal(out.X.toarray(), same.X.toarray())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "Nothing to perturb"),
        ({"knockout": ["NOT_A_GENE"]}, "not a gene of the model"),
        ({"knockout": ["TARGET"]}, "target gene of the GRN"),
        ({"knockout": ["TF"], "overexpress": {"TF": 2.0}}, "more than once"),
        ({"overexpress": {"TF": -1.0}}, "must be finite and >= 0"),
    ],
)
def test_perturb_rejects_bad_requests(trained_groundgan, kwargs, match):
    tf, target = trained_groundgan.grn.tfs[0], trained_groundgan.grn.targets[0]
    swap = {"TF": tf, "TARGET": target}

    def fix(v):
        if isinstance(v, list):
            return [swap.get(x, x) for x in v]
        return {swap.get(k, k): x for k, x in v.items()}

    with pytest.raises(ValueError, match=match):
        trained_groundgan.perturb(n_obs=10, **{k: fix(v) for k, v in kwargs.items()})


def test_save_load_round_trip_and_continue_training(trained_groundgan, tmp_path, _pbmc):
    trained_groundgan.save(tmp_path / "gg")
    loaded = GRouNdGAN.load(tmp_path / "gg")
    assert loaded.grn == trained_groundgan.grn
    np.testing.assert_array_equal(trained_groundgan.generate(40, seed=2).X.toarray(), loaded.generate(40, seed=2).X.toarray())
    tf = trained_groundgan.grn.tfs[0]
    a = trained_groundgan.perturb(knockout=tf, n_obs=30, seed=5)
    b = loaded.perturb(knockout=tf, n_obs=30, seed=5)
    pd.testing.assert_frame_equal(a.uns["perturbation"]["effects"], b.uns["perturbation"]["effects"])
    adata = _pbmc.copy()
    resumed = GRouNdGAN.load(tmp_path / "gg", adata=adata)
    resumed.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    assert resumed.controller_steps_ == 4 and resumed.n_generator_steps_ == 6
    assert len(resumed.history_["generator_step"]) == len(trained_groundgan.history_["generator_step"]) + 1


def test_pretrained_scgan_controller_skips_stage_one(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    ScGAN.setup_anndata(adata, is_count_data=False)
    scgan = ScGAN(adata, n_latent=16, generator_hidden=(32, 64), critic_hidden=(64, 32))
    scgan.train(max_steps=3, batch_size=32, enable_progress_bar=False)
    gg_data = _pbmc.copy()
    GRouNdGAN.setup_anndata(gg_data, is_count_data=False)
    model = GRouNdGAN(gg_data, grn=pbmc_grn, controller=scgan, critic_hidden=(64, 32), labeler_hidden=(32,))
    for k, v in scgan.module.generator.state_dict().items():
        assert torch.equal(v, model.module.controller.generator.state_dict()[k])
    model.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    assert model.controller_steps_ == 3 and "controller" not in model.histories_
    with pytest.raises(ValueError, match="pretrained ScGAN"):
        model.train(controller_steps=2, max_steps=1, batch_size=32)


def test_clear_errors_before_training(_pbmc, pbmc_grn):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    with pytest.raises(ValueError, match="needs a GRN"):
        GRouNdGAN(adata)
    bad = pd.concat([pbmc_grn, pd.DataFrame({"source": ["SPI1"], "target": ["NOT_A_GENE"], "weight": [1.0]})])
    with pytest.raises(ValueError, match="not in the data"):
        GRouNdGAN(adata, grn=bad)
    model = GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    with pytest.raises(ValueError, match="training cells for controller_batch_size"):
        model.train(controller_steps=1, max_steps=1, batch_size=5000)
    with pytest.raises(RuntimeError, match="not trained"):
        model.generate(10)


def test_collectri_with_noise_only_genes(_pbmc):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    with pytest.warns(UserWarning):
        model = GRouNdGAN(adata, grn="collectri", unregulated="noise", **SMALL_GG)
    assert len(model.var_names_) == adata.n_vars
    assert (np.array([len(r) for r in model.grn.regulators]) == 0).sum() > 0
    model.train(controller_steps=2, max_steps=2, batch_size=32, enable_progress_bar=False)
    cells = model.generate(20, seed=0)
    assert (cells.var["grn_role"] == "noise-only").sum() > 0


def test_models_saved_before_the_hidden_unit_floor_load_as_built(_pbmc, pbmc_grn, tmp_path):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = GRouNdGAN(adata, grn=pbmc_grn, min_hidden_per_gene=0, **SMALL_GG)
    model.train(controller_steps=2, max_steps=2, batch_size=32, enable_progress_bar=False)
    loaded = load_as_saved_before(model, tmp_path / "old", "min_hidden_per_gene", adata)
    assert loaded.module.target_generators.min_hidden == 0  # GRouNdGAN's rule, not today's default floor
    for key, value in model.module.state_dict().items():
        assert torch.equal(value, loaded.module.state_dict()[key]), key


def test_stage_two_reads_tfs_on_a_log_scale_in_units_of_their_mean(trained_groundgan):
    import copy

    module = trained_groundgan.module
    assert module.tf_input == "log1p"
    # set from real cells at the start of stage 2: every TF's own unit, none left at the placeholder 1
    assert (module.tf_scale > 0).all() and not torch.isclose(module.tf_scale, torch.ones(1)).any()
    tfs = torch.rand(5, module.n_tfs) * module.tf_scale * 3
    torch.testing.assert_close(module.generator_input(tfs), torch.log1p(tfs / module.tf_scale))
    assert not module.generator_input(torch.zeros(1, module.n_tfs)).any()  # a knocked-out TF reads 0
    # state dicts saved before tf_scale existed (their models read TFs unscaled) load with scale 1
    older = copy.deepcopy(module)
    older.load_state_dict({k: v for k, v in module.state_dict().items() if k != "tf_scale"})
    assert torch.equal(older.tf_scale, torch.ones_like(module.tf_scale))


def test_new_controller_starts_at_the_training_cells_once_a_pretrained_one_never(_pbmc, pbmc_grn, monkeypatch):
    import scsynth.model._groundgan_stages as stages

    seen = []
    real_init = stages.init_output_at_data
    monkeypatch.setattr(stages, "init_output_at_data", lambda out, mean, frac: seen.append(mean) or real_init(out, mean, frac))
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    grn = pbmc_grn[~pbmc_grn["target"].isin(adata.var_names[-100:])]
    with pytest.warns(UserWarning, match="not in the GRN"):  # unregulated genes are dropped
        model = GRouNdGAN(adata, grn=grn, **SMALL_GG)
    assert model.controller_output_init == "data" and len(model.var_names_) < adata.n_vars  # the GRN's genes only
    model.train(controller_steps=2, max_steps=2, batch_size=32, train_size=0.8, seed=0, enable_progress_bar=False)
    model.train(controller_steps=2, max_steps=2, batch_size=32, train_size=0.8, seed=0, enable_progress_bar=False)
    assert len(seen) == 1  # continued training keeps the weights
    # the model's genes over the training cells, each cell normalised over those genes (as the controller sees it)
    x = adata[model.train_indices, model.var_names_].X
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    expected = (x / x.sum(1, keepdims=True) * model.module.normalize.library_size).mean(0)
    np.testing.assert_allclose(seen[0], expected, rtol=1e-6)
    scgan_data = _pbmc.copy()
    ScGAN.setup_anndata(scgan_data, is_count_data=False)
    controller = ScGAN(scgan_data, n_latent=16, generator_hidden=(32, 64), critic_hidden=(64, 32))
    controller.train(max_steps=1, batch_size=32, enable_progress_bar=False)
    pretrained = GRouNdGAN(adata, grn=pbmc_grn, controller=controller, **SMALL_GG)
    pretrained.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    assert len(seen) == 1  # a pretrained controller is never touched
    with pytest.raises(ValueError, match="controller_output_init must be 'data' or 'random'"):
        GRouNdGAN(adata, grn=pbmc_grn, controller_output_init="zeros", **SMALL_GG)


def test_models_saved_before_the_controller_data_start_load_with_a_random_one(trained_groundgan, _pbmc, tmp_path):
    adata = _pbmc.copy()
    GRouNdGAN.setup_anndata(adata, is_count_data=False)
    loaded = load_as_saved_before(trained_groundgan, tmp_path / "old", "controller_output_init", adata)
    assert loaded.controller_output_init == "random"
    for key, value in trained_groundgan.module.state_dict().items():
        assert torch.equal(value, loaded.module.state_dict()[key]), key
