import numpy as np
import pandas as pd
import pytest
import torch

import scsynth
from scsynth.model import GeneSys
from scsynth.module import GeneSysModule

from ..conftest import BRANCHING_BLUEPRINT, SMALL_GS, branching_counts

A_GENES = [f"g{i}" for i in range(10)]
B_GENES = [f"g{i}" for i in range(10, 20)]


# -- inputs and errors ---------------------------------------------------------------------------------
def test_setup_detects_counts_and_fpkm(branching):
    GeneSys.setup_anndata(branching)
    assert GeneSys(branching, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS).module.likelihood == "nb"
    hsmm = scsynth.data.hsmm_myoblast()[:, :50].copy()
    hsmm = hsmm[np.asarray(hsmm.X.sum(1)).ravel() > 0].copy()
    GeneSys.setup_anndata(hsmm)
    table = pd.DataFrame([["State1", "State2", "State2", "State2"]], index=["myotube"])
    model = GeneSys(hsmm, blueprint=table, **SMALL_GS)
    assert model.module.likelihood == "hurdle" and not model.is_count_data
    assert GeneSys(hsmm, blueprint=table, continuous_likelihood="normal", **SMALL_GS).module.likelihood == "normal"


def test_blueprint_label_missing_from_data_is_named(branching):
    GeneSys.setup_anndata(branching)
    bad = BRANCHING_BLUEPRINT.replace("fate B", "fate C")
    with pytest.raises(ValueError, match="fate C"):
        GeneSys(branching, blueprint=bad, **SMALL_GS)


def test_missing_label_time_raises_unless_neighbors(branching):
    GeneSys.setup_anndata(branching)
    table = pd.DataFrame([["Pro genitor", "Pro genitor", "fate_A"]], index=["late"])  # no progenitor at time 2
    with pytest.raises(ValueError, match="neighbors"):
        GeneSys(branching, blueprint=table, **SMALL_GS)
    model = GeneSys(branching, blueprint=table, fallback="neighbors", **SMALL_GS)
    assert model.blueprint_steps_[(0, 2)] == ("Pro genitor", [1])


def test_bad_time_column_raises_before_training(branching):
    branching.obs["time"] = branching.obs["time"] - 1  # starts at 0
    with pytest.raises(ValueError, match="from 1"):
        GeneSys.setup_anndata(branching)
    with pytest.raises(KeyError, match="stage"):
        GeneSys.setup_anndata(branching, time_key="stage")


def test_split_keeps_a_training_and_a_validation_cell_in_every_group():
    adata = branching_counts(n_per_group=2)  # 2 cells per (label, time)
    GeneSys.setup_anndata(adata)
    model = GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    model.train(max_epochs=1, batch_size=4, train_size=0.9, enable_progress_bar=False)
    groups = adata.obs["label"].astype(str) + "@" + adata.obs["time"].astype(str)
    assert groups.iloc[model.train_indices].value_counts().eq(1).all()
    assert groups.iloc[model.validation_indices].value_counts().eq(1).all()
    assert groups.iloc[model.validation_indices].nunique() == groups.nunique()


# -- the module --------------------------------------------------------------------------------------------
def test_belief_never_sees_future_time_steps():
    torch.manual_seed(0)
    module = GeneSysModule(30, 2, 4, n_latent=4, n_hidden=16, n_layers=2).eval()
    x = torch.poisson(torch.full((3, 4, 30), 3.0))
    changed = x.clone()
    changed[:, 3] = torch.poisson(torch.full((3, 30), 9.0))  # only the last time step differs
    with torch.no_grad():
        before, after = module.inference(x), module.inference(changed)
    assert torch.allclose(before["b"][:, :3], after["b"][:, :3])
    assert not torch.allclose(before["b"][:, 3], after["b"][:, 3])
    # the posterior of step t reads e_t and b_{t-1}: earlier steps cannot see the change
    assert torch.allclose(before["qz"].loc[:, :3], after["qz"].loc[:, :3])
    assert not torch.allclose(before["qz"].loc[:, 3], after["qz"].loc[:, 3])


def test_loss_sums_elbo_and_classification():
    torch.manual_seed(0)
    module = GeneSysModule(20, 3, 3, n_latent=4, n_hidden=16, classification_weight=2.0)
    x = torch.poisson(torch.full((5, 3, 20), 2.0))
    tensors = {"X": x, "trajectory": torch.tensor([0, 1, 2, 0, 1]), "library": x.sum(-1)}
    _, _, out = module(tensors, loss_kwargs={"kl_weight": 0.5})
    rec, kl = out.reconstruction_loss["reconstruction_loss"], out.kl_local["kl_local"]
    expected = (rec + 0.5 * kl).mean() + 2.0 * out.extra_metrics["classification_loss"]
    assert torch.allclose(out.loss, expected)
    assert (kl >= 0).all()


# -- training and jobs -------------------------------------------------------------------------------------
def test_training_learns_the_branching(trained_genesys):
    model = trained_genesys
    hist = model.history_
    assert {"train_loss", "validation_loss", "accuracy_validation", "lr-AdamW"} <= set(hist)
    val = hist["validation_loss"].iloc[:, 0].to_numpy()
    assert val[-5:].mean() < val[:3].mean()
    assert model.best_validation_loss_ == pytest.approx(val.min(), rel=1e-5)
    assert len(model.test_indices) == 0  # train_size + validation_size = 1
    acc = model.trajectory_accuracy(model.validation_indices, seed=0)
    assert acc["accuracy"].iloc[0] < 0.7  # time 1: the shared progenitor, no way to tell
    assert (acc["accuracy"].iloc[1:] >= 0.9).all()  # the fates are distinct from time 2 on
    assert acc.attrs["trajectories"] == ["to_A", "to B"]
    only_b = np.flatnonzero(model.adata.obs["label"].astype(str).isin(["Pro genitor", "fate B"]))
    with pytest.warns(UserWarning, match="to_A"):
        assert model.trajectory_accuracy(only_b, seed=0).attrs["trajectories"] == ["to B"]
    probs = model.classify()
    labels = model.adata.obs["label"].astype(str).to_numpy()
    assert probs.loc[labels == "fate_A", "to_A"].mean() > 0.8
    assert probs.loc[labels == "fate B", "to B"].mean() > 0.8


def test_train_and_validation_cells_are_disjoint(trained_genesys):
    model = trained_genesys
    train, val = set(model.train_indices), set(model.validation_indices)
    assert train and val and not train & val


def test_generate_follows_the_blueprint_and_the_fates(trained_genesys):
    cells = trained_genesys.generate(60, seed=3)
    assert cells.shape == (2 * 60 * 3, 40)
    assert {"trajectory", "time", "label", "trajectory_id"} <= set(cells.obs)
    assert cells.obs.groupby(["trajectory", "time"], observed=True).size().eq(60).all()
    expected = [BRANCHING_BLUEPRINT.loc[r].iloc[t - 1] for r, t in zip(cells.obs["trajectory"], cells.obs["time"], strict=True)]
    assert (cells.obs["label"].astype(str).to_numpy() == np.asarray(expected)).all()
    x = cells.X.toarray()
    assert np.array_equal(x, np.round(x)) and (x >= 0).all()
    norm = np.log1p(cells.layers["normalized"].toarray())
    last_a = ((cells.obs["trajectory"] == "to_A") & (cells.obs["time"] == 3)).to_numpy()
    last_b = ((cells.obs["trajectory"] == "to B") & (cells.obs["time"] == 3)).to_numpy()
    a_idx, b_idx = [cells.var_names.get_loc(g) for g in A_GENES], [cells.var_names.get_loc(g) for g in B_GENES]
    assert norm[last_a][:, a_idx].mean() > norm[last_b][:, a_idx].mean() + 0.3
    assert norm[last_b][:, b_idx].mean() > norm[last_a][:, b_idx].mean() + 0.3


def test_generate_is_seeded_and_selectable(trained_genesys):
    a = trained_genesys.generate(5, seed=1, condition="to B")
    b = trained_genesys.generate(5, seed=1, condition=["to B"])
    c = trained_genesys.generate(5, seed=2, condition="to B")
    assert (a.X != b.X).nnz == 0 and (a.X != c.X).nnz > 0
    assert set(a.obs["trajectory"]) == {"to B"}
    with pytest.raises(ValueError, match="Unknown trajectory"):
        trained_genesys.generate(5, condition="to C")
    via_tl = scsynth.tl.generate(trained_genesys, n_obs=5, seed=1, condition="to B")
    assert (via_tl.X != a.X).nnz == 0
    assert scsynth.tl.generate(trained_genesys, n_obs=2, seed=1).n_obs == 2 * 2 * 3  # n_obs trajectories per row
    with pytest.raises(TypeError, match="n_obs"):
        scsynth.tl.generate(trained_genesys)


def test_embed_writes_obsm_only(trained_genesys, branching):
    before = (set(branching.obsm), set(branching.obs.columns), branching.X.copy())
    scsynth.tl.embed(branching, trained_genesys)
    assert branching.obsm["X_genesys"].shape == (branching.n_obs, SMALL_GS["n_latent"])
    assert set(branching.obs.columns) == before[1] and (branching.X != before[2]).nnz == 0
    out = scsynth.tl.embed(branching[:, ::-1], trained_genesys, key_added="z", copy=True)  # genes matched by name
    assert np.allclose(out.obsm["z"], branching.obsm["X_genesys"], atol=1e-5)
    with pytest.raises(ValueError, match="not in adata.var_names"):
        trained_genesys.get_latent_representation(branching[:, :10])


def test_rank_genes_finds_the_fate_programmes(trained_genesys, branching):
    table = trained_genesys.rank_genes(branching, n_samples=100, seed=0)
    assert list(table.columns) == ["trajectory", "kind", "time_from", "time_to", "gene", "score", "rank"]
    assert branching.uns["genesys_rank_genes"] is table
    step = table.query("trajectory == 'to_A' and kind == 'transition' and time_from == 1").set_index("gene")["score"]
    assert len(set(step.nlargest(10).index) & set(A_GENES)) >= 8  # fate A's programme rises...
    assert step[A_GENES].mean() > 0.4 > step[B_GENES].mean()  # ...fate B's falls in relative terms
    top = table.query("trajectory == 'to B' and kind == 'trajectory' and rank <= 10")
    assert len(set(top["gene"]) & set(A_GENES + B_GENES)) >= 7
    assert len(trained_genesys.rank_genes(n_samples=20, n_top=3)) == 2 * 3 * 3


def test_save_load_round_trip(trained_genesys, tmp_path):
    trained_genesys.save(tmp_path / "gs")
    loaded = GeneSys.load(tmp_path / "gs")  # without data
    assert loaded.blueprint == trained_genesys.blueprint
    a, b = trained_genesys.generate(10, seed=4), loaded.generate(10, seed=4)
    assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs)
    assert loaded.history_["validation_loss"].equals(trained_genesys.history_["validation_loss"])
    with pytest.raises(ValueError, match="loaded without data"):
        loaded.train(max_epochs=1)


def test_training_is_reproducible_and_continues(branching):
    def fit(epochs):
        adata = branching.copy()
        GeneSys.setup_anndata(adata)
        model = GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
        model.train(max_epochs=epochs, batch_size=16, seed=5, enable_progress_bar=False)
        return model

    a, b = fit(2), fit(2)
    for (name, pa), pb in zip(a.module.state_dict().items(), b.module.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    a.train(max_epochs=2, batch_size=16, seed=5, early_stopping=False, enable_progress_bar=False)
    assert a.n_epochs_trained_ == 4 and len(a.history_["train_loss"]) == 4


def test_cycles_restart_from_the_best_weights(branching):
    GeneSys.setup_anndata(branching)
    model = GeneSys(branching, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    model.train(max_epochs=3, max_cycles=3, batch_size=16, seed=0, enable_progress_bar=False)
    val = model.history_["validation_loss"].iloc[:, 0].to_numpy()
    assert 3 < model.n_epochs_trained_ <= 9 and len(val) == model.n_epochs_trained_
    assert model.best_validation_loss_ == pytest.approx(val.min(), rel=1e-5)


def test_fpkm_model_generates_non_negative_values():
    hsmm = scsynth.data.hsmm_myoblast()[:, :200].copy()
    hsmm = hsmm[np.asarray(hsmm.X.sum(1)).ravel() > 0].copy()
    GeneSys.setup_anndata(hsmm)
    table = pd.DataFrame([["State1", "State2", "State2", "State2"], ["State1", "State3", "State3", "State3"]],
                         index=["myotube", "mesenchymal"])
    model = GeneSys(hsmm, blueprint=table, fallback="neighbors", **SMALL_GS)
    model.train(max_epochs=3, batch_size=16, enable_progress_bar=False)
    cells = model.generate(4, seed=0)
    x = cells.X.toarray()
    assert cells.shape == (2 * 4 * 4, 200) and (x >= 0).all() and np.isfinite(x).all()
    assert "counts" not in cells.layers and not np.array_equal(x, np.round(x))


def test_training_without_validation_cells_follows_the_training_loss(branching):
    GeneSys.setup_anndata(branching)
    model = GeneSys(branching, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    model.train(max_epochs=3, batch_size=16, train_size=1.0, enable_progress_bar=False)
    assert "validation_loss" not in model.history_ and model.n_epochs_trained_ == 3
    with pytest.raises(ValueError, match="early_stopping needs validation"):
        model.train(max_epochs=1, batch_size=16, train_size=1.0, early_stopping=True)
