import numpy as np
import pandas as pd
import pytest

import scsynth
from scsynth.model import RNAGAN

from ..conftest import GENE_SETS, SMALL_RG
from ..conftest import rnagan_samples as _samples


def test_setup_errors_are_clear():
    adata = _samples()
    with pytest.raises(ValueError, match="labels_key"):
        RNAGAN.setup_anndata(adata)
    adata.obs["modality"] = np.where(np.arange(adata.n_obs) < 60, "sc", "bulk")
    adata.X = adata.X.astype(np.float32)
    adata.X[60:] = adata.X[60:] * 0.5  # bulk as normalised values
    with pytest.raises(ValueError, match="is_count_data"):
        RNAGAN.setup_anndata(adata, labels_key="group", modality_key="modality")
    RNAGAN.setup_anndata(adata, labels_key="group", modality_key="modality", is_count_data={"sc": True, "bulk": False})
    adata.obs["modality"] = "tissue"
    with pytest.raises(ValueError, match="'sc' or 'bulk'"):
        RNAGAN.setup_anndata(adata, labels_key="group", modality_key="modality")
    with pytest.raises(KeyError, match="data_type"):
        RNAGAN.setup_anndata(adata, labels_key="group", modality_key="data_type")


def test_gene_sets_must_match_the_genes():
    adata = _samples()
    RNAGAN.setup_anndata(adata, labels_key="group")
    with pytest.raises(ValueError, match="gene"):
        RNAGAN(adata, gene_sets="hallmark", **SMALL_RG)  # g0, g1, ... are no gene symbols


def test_training_stages_and_history(trained_rnagan):
    model, _ = trained_rnagan
    assert set(model.steps_) == {"sc_warmup", "sc"} and model.steps_["sc_warmup"] >= 75 and model.steps_["sc"] >= 75
    assert "generator_loss_train" not in model.histories_["sc_warmup"]
    # each stage keeps the weights of its best history row, which is one of its rows
    assert set(model.best_epochs_) == {"sc_warmup", "sc"}
    assert all(0 <= e < len(model.histories_[k]["episode_accuracy_train"]) for k, e in model.best_epochs_.items())
    hist = model.histories_["sc"]
    assert hist["episode_accuracy_train"].iloc[-1, 0] > 0.6 and "generator_loss_train" in hist


def test_stratify_unseen_samples(trained_rnagan):
    model, test = trained_rnagan
    before = set(test.obs.columns)
    probs = model.stratify(test, n_draws=10, seed=0)
    assert probs.shape == (test.n_obs, 4) and np.allclose(probs.sum(1), 1)
    assert (test.obs["rnagan"].astype(str) == test.obs["group"].astype(str)).mean() > 0.9
    assert set(test.obs.columns) - before == {"rnagan"} and "rnagan_scores" in test.obsm
    # a group the model never saw, given as references in the data itself (5 labelled samples each)
    new = _samples(seed=3)
    labels = new.obs["group"].astype(str).to_numpy().astype(object)
    keep = np.zeros(new.n_obs, dtype=bool)
    for g in np.unique(labels):
        keep[np.flatnonzero(labels == g)[:5]] = True
    new.obs["known"] = pd.Series(np.where(keep, labels, None), index=new.obs_names)
    model.stratify(new, references="known", n_refs=4, key_added="strat")
    unlabelled = ~keep
    # chance is 0.25; the tiny fixture's accuracy moves with the CPU's float rounding (0.79 on AMD EPYC, > 0.8 elsewhere)
    assert (new.obs["strat"].astype(str)[unlabelled] == new.obs["group"].astype(str)[unlabelled]).mean() > 0.75
    with pytest.raises(ValueError, match="fewer references"):
        model.stratify(new, references="known", n_refs=6)


def test_embed_generate_and_round_trip(trained_rnagan, tmp_path):
    model, test = trained_rnagan
    scsynth.tl.embed(test, model)
    assert test.obsm["X_rnagan"].shape == (test.n_obs, 16)
    pathways = test.obsm["X_rnagan_pathways"]
    assert list(pathways.columns) == ["SET_0", "SET_1", "SET_2", "SET_3", "learned_0", "learned_1"]
    own = [pathways.loc[test.obs["group"] == f"type {k}", f"SET_{k}"].mean() for k in range(4)]
    other = [pathways.loc[test.obs["group"] != f"type {k}", f"SET_{k}"].mean() for k in range(4)]
    assert all(o > t for o, t in zip(own, other, strict=True))
    cells = model.generate(40, condition="type 2", seed=1)
    x = cells.X.toarray()
    assert cells.shape == (40, 40) and np.array_equal(x, np.round(x)) and (x >= 0).all()
    norm = np.log1p(cells.layers["normalized"].toarray())
    assert norm[:, 10:15].mean() > norm[:, 15:20].mean() + 0.5  # type 2's genes are up
    model.save(tmp_path / "rg", save_anndata=True)
    loaded = RNAGAN.load(tmp_path / "rg")
    assert loaded.gene_sets == model.gene_sets
    again = loaded.generate(40, condition="type 2", seed=1)
    assert (again.X != cells.X).nnz == 0
    with pytest.raises(ValueError, match="Unknown group"):
        model.generate(5, condition="type 9")


def test_markers_find_the_group_programme(trained_rnagan):
    model, test = trained_rnagan
    table = model.markers(test, groupby="group", group="type 2", n_draws=4, n_refs=5)
    assert test.uns["rnagan_markers"] is table
    genes = table[table["kind"] == "gene"]
    assert len(set(genes["feature"].head(5)) & {f"g{i}" for i in range(10, 15)}) >= 3
    pathways = table[table["kind"] == "pathway"]
    assert pathways["feature"].iloc[0] == "SET_2"
    assert table.loc[table["feature"] == "g12", "log2fc"].item() > 1
    assert table.loc[table["feature"] == "g12", "fdr"].item() < 0.05
    assert ((table["fdr"] >= table["pval"] - 1e-12) & (table["fdr"] <= 1)).all()
    with pytest.raises(ValueError, match="not in obs"):
        model.markers(test, groupby="group", group="type 9")


def test_tl_wrappers_write_the_documented_keys(trained_rnagan):
    model, test = trained_rnagan
    out = scsynth.tl.stratify(test, model, n_draws=5, key_added="copied", copy=True)
    assert "copied" in out.obs and "copied" not in test.obs and "copied_scores" in out.obsm
    scsynth.tl.markers(test, model, groupby="group", group="type 0", n_draws=2, n_refs=4, key_added="m0")
    assert test.uns["m0"]["kind"].isin(["gene", "pathway"]).all()
    with pytest.raises(TypeError, match="RNAGAN"):
        scsynth.tl.stratify(test, object())


def test_markers_plot(trained_rnagan):
    import matplotlib.pyplot as plt

    model, test = trained_rnagan
    table = model.markers(test, groupby="group", group="type 1", n_draws=2, n_refs=4, key_added="m1")
    fig = scsynth.pl.markers(test, key="m1", n_top=5)
    genes_ax, pathways_ax = fig.axes[:2]
    assert len(genes_ax.patches) == 5 and len(pathways_ax.patches) == 5
    top_gene = table[table["kind"] == "gene"]["feature"].iloc[0]
    assert genes_ax.get_yticklabels()[-1].get_text() == top_gene  # largest bar on top
    plt.close(fig)
    with pytest.raises(KeyError, match="tl.markers"):
        scsynth.pl.markers(test, key="missing")


def test_stratify_calibration_keeps_the_winner_and_fits_the_probabilities(trained_rnagan):
    model, test = trained_rnagan
    raw = model.stratify(test, n_draws=8, seed=0, calibrate=False, key_added="raw")
    cal = model.stratify(test, n_draws=8, seed=0, key_added="cal")
    assert test.uns["raw"]["params"]["temperature"] == 1.0
    temperature = test.uns["cal"]["params"]["temperature"]
    assert 0 < temperature != 1.0
    assert (test.obs["raw"] == test.obs["cal"]).all()  # same draws, same logits: same winner
    truth = np.searchsorted(list(cal.columns), test.obs["group"].astype(str))

    def nll(p):
        return -np.log(np.clip(p.to_numpy()[np.arange(test.n_obs), truth], 1e-12, None)).mean()

    # fitted on the training references, it must also suit held-out samples better than the raw logits
    assert nll(cal) < nll(raw)


def test_setup_mudata_stacks_the_shared_genes(tmp_path):
    import mudata

    mudata.set_options(pull_on_update=False)
    cells, bulk = _samples(seed=0), _samples(n_per_group=8, seed=1)[:, 3:].copy()
    bulk.var_names = [*bulk.var_names[:-1], "only_in_bulk"]
    mdata = mudata.MuData({"rna": cells, "tissue": bulk})
    with pytest.raises(ValueError, match="say which is which"):
        RNAGAN.setup_mudata(mdata, labels_key="group")
    with pytest.raises(KeyError, match="'nope'"):
        RNAGAN.setup_mudata(mdata, labels_key="group", modalities={"sc": "nope"})
    with pytest.raises(ValueError, match="different MuData modality"):
        RNAGAN.setup_mudata(mdata, labels_key="group", modalities={"sc": "rna", "bulk": "rna"})
    with pytest.warns(FutureWarning, match="direction"):  # the 0.2 direction, MuData modality -> kind
        old = RNAGAN.setup_mudata(mdata.copy(), labels_key="group", modalities={"rna": "sc", "tissue": "bulk"})
    with pytest.raises(KeyError, match="celltype"):
        RNAGAN.setup_mudata(mdata, labels_key="celltype", modalities={"sc": "rna", "bulk": "tissue"})
    with pytest.raises(ValueError, match="setup_mudata"):
        RNAGAN(mudata.MuData({"sc": cells.copy()}), gene_sets=GENE_SETS, **SMALL_RG)
    combined = RNAGAN.setup_mudata(mdata, labels_key="group", modalities={"sc": "rna", "bulk": "tissue"})
    assert (combined.X != old.X).nnz == 0
    assert mdata.uns["_scsynth_rnagan_setup"]["modalities"] == {"sc": "rna", "bulk": "tissue"}
    assert combined.n_obs == cells.n_obs + bulk.n_obs and list(combined.var_names) == [f"g{i}" for i in range(3, 39)]
    assert combined.uns["rnagan_input"]["n_shared_genes"] == 36
    assert (combined.obs["modality"] == "bulk").sum() == bulk.n_obs
    assert "modality" not in cells.obs and list(cells.var_names)[0] == "g0"  # the MuData is left alone
    model = RNAGAN(mdata, gene_sets=GENE_SETS, **SMALL_RG)
    model.train(max_steps={"sc": 20, "bulk": 10}, batch_size=8, n_refs=(3, 5))
    assert set(model.steps_) == {"sc_warmup", "sc", "bulk"}
    assert model.input_summary_["n_genes"] == {"rna": 40, "tissue": 37}
    bulk_samples = model.generate(6, condition="type 1", modality="bulk", seed=0)
    assert bulk_samples.n_vars == 36 and (bulk_samples.obs["modality"] == "bulk").all()
    model.save(tmp_path / "mu", save_anndata=True)
    loaded = RNAGAN.load(tmp_path / "mu")
    assert loaded.input_summary_ == model.input_summary_
    assert (loaded.generate(6, condition="type 1", modality="bulk", seed=0).X != bulk_samples.X).nnz == 0
