"""Bad inputs to every public entry point fail up front with a clear ValueError / TypeError / KeyError.

The trained models come from the session fixtures of conftest.py; nothing here trains.
"""

from __future__ import annotations

import anndata
import mudata
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import scsynth
from scsynth.model import RNAGAN, GeneSys, GRouNdGAN, ScGAN
from scsynth.model._inputs import check_same_genes, genes_by_name

from .conftest import branching_counts, rnagan_samples

# -- bad versions of a good AnnData ------------------------------------------------------------------


def _dense(adata: anndata.AnnData) -> anndata.AnnData:
    out = adata.copy()
    out.X = out.X.toarray() if sparse.issparse(out.X) else np.array(out.X, dtype=np.float32)
    return out


def _set(value: float):
    def corrupt(adata):
        out = _dense(adata)
        out.X[1, 2] = value
        return out

    return corrupt


def _duplicate_gene(adata):
    out = adata.copy()
    names = list(out.var_names)
    names[3] = names[2]
    out.var_names = names
    return out


#: name -> (corruption, exception, message fragment); ``{name}`` is the argument's name
BAD = {
    "nan": (_set(np.nan), ValueError, r"{name}\.X contains 1 NaN"),
    "inf": (_set(np.inf), ValueError, "NaN or infinite"),
    "negative": (_set(-2.0), ValueError, "negative values"),
    "duplicated_genes": (_duplicate_gene, ValueError, r"duplicated gene names \('g2'\).*make_unique"),
    "no_cells": (lambda a: a[:0].copy(), ValueError, r"`{name}` is empty \(0 cells"),
    "no_genes": (lambda a: a[:, :0].copy(), ValueError, r"`{name}` is empty \(.* x 0 genes"),
    "missing_genes": (lambda a: a[:, 5:].copy(), ValueError,
                      r"5 of the model's 40 genes are not in {name}\.var_names"),
    "ndarray": (lambda a: _dense(a).X, TypeError, "`{name}` must be an AnnData, got ndarray"),
}


def _genesys_cells():
    return branching_counts(n_per_group=4)


def _latent(model, adata):
    return model.get_latent_representation(adata)


def _markers(model, adata):
    return model.markers(adata, groupby="group", group="type 0")


def _tl_markers(model, adata):
    return scsynth.tl.markers(adata, model, groupby="group", group="type 0")


def _stratify_against(model, references):
    return model.stratify(model.adata[:10].copy(), references=references)


#: job -> (fixture, call(model, cells), name of the checked argument)
JOBS = {
    "GeneSys.classify": ("trained_genesys", lambda m, a: m.classify(a), "adata"),
    "GeneSys.get_latent_representation": ("trained_genesys", _latent, "adata"),
    "tl.embed(GeneSys)": ("trained_genesys", lambda m, a: scsynth.tl.embed(a, m), "adata"),
    "RNAGAN.stratify": ("trained_rnagan", lambda m, a: m.stratify(a), "adata"),
    "RNAGAN.stratify(references=)": ("trained_rnagan", _stratify_against, "references"),
    "RNAGAN.get_latent_representation": ("trained_rnagan", _latent, "adata"),
    "RNAGAN.pathway_activities": ("trained_rnagan", lambda m, a: m.pathway_activities(a), "adata"),
    "RNAGAN.markers": ("trained_rnagan", _markers, "adata"),
    "tl.embed(RNAGAN)": ("trained_rnagan", lambda m, a: scsynth.tl.embed(a, m), "adata"),
    "tl.stratify": ("trained_rnagan", lambda m, a: scsynth.tl.stratify(a, m), "adata"),
    "tl.markers": ("trained_rnagan", _tl_markers, "adata"),
}


def _model_and_cells(request, fixture):
    value = request.getfixturevalue(fixture)
    if fixture == "trained_rnagan":
        return value[0], value[1].copy()
    return value, _genesys_cells()


def _written(adata):
    if not isinstance(adata, anndata.AnnData):
        return None
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns)


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("job", list(JOBS))
def test_jobs_check_their_cells_like_training_data(request, job, kind):
    fixture, call, name = JOBS[job]
    model, cells = _model_and_cells(request, fixture)
    corrupt, exc, fragment = BAD[kind]
    bad = corrupt(cells)
    before = _written(bad)
    with pytest.raises(exc, match=fragment.format(name=name)):
        call(model, bad)
    assert _written(bad) == before  # raised before writing anything


@pytest.mark.parametrize("job", ["GeneSys.classify", "RNAGAN.stratify", "RNAGAN.pathway_activities"])
def test_a_named_layer_must_exist(request, job):
    fixture = JOBS[job][0]
    model, cells = _model_and_cells(request, fixture)
    call = {"GeneSys.classify": lambda: model.classify(cells, layer="nope"),
            "RNAGAN.stratify": lambda: model.get_latent_representation(cells, layer="nope"),
            "RNAGAN.pathway_activities": lambda: model.pathway_activities(cells, layer="nope")}[job]
    with pytest.raises(KeyError, match="'nope' is not in `adata.layers`"):
        call()


def test_duplicated_obs_names_are_fine(trained_genesys, trained_rnagan):
    cells = _genesys_cells()
    cells.obs_names = ["same"] * cells.n_obs
    probs = trained_genesys.classify(cells)
    assert probs.shape == (cells.n_obs, 2) and np.isfinite(probs.to_numpy()).all()
    assert cells.obs["genesys_trajectory"].notna().all()
    model, held_out = trained_rnagan
    held_out = held_out.copy()
    held_out.obs_names = ["same"] * held_out.n_obs
    scores = model.stratify(held_out, n_draws=2, calibrate=False)
    assert np.isfinite(scores.to_numpy()).all() and held_out.obs["rnagan"].notna().all()


def test_stratify_references_must_be_anndata_or_column(trained_rnagan):
    model, held_out = trained_rnagan
    with pytest.raises(TypeError, match="`references` must be an AnnData, got ndarray"):
        model.stratify(held_out.copy(), references=np.ones((3, 40)))


# -- setup_anndata -----------------------------------------------------------------------------------
def _setups():
    return {
        "ScGAN": (lambda: rnagan_samples(n_per_group=5),
                  lambda a: ScGAN.setup_anndata(a, labels_key="group")),
        "GRouNdGAN": (lambda: rnagan_samples(n_per_group=5), lambda a: GRouNdGAN.setup_anndata(a)),
        "GeneSys": (lambda: branching_counts(n_per_group=4), lambda a: GeneSys.setup_anndata(a)),
        "RNAGAN": (lambda: rnagan_samples(n_per_group=5), lambda a: RNAGAN.setup_anndata(a, labels_key="group")),
        "RNAGAN.setup_mudata": (lambda: rnagan_samples(n_per_group=5),
                                lambda a: RNAGAN.setup_mudata(mudata.MuData({"sc": a}), groupby="group")),
    }


@pytest.mark.filterwarnings("ignore:.*var_names are not unique:UserWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("model", list(_setups()))
def test_setup_rejects_duplicated_gene_names(model):
    make, setup = _setups()[model]
    with pytest.raises(ValueError, match=r"duplicated gene names \('g2'\).*var_names_make_unique\(\)"):
        setup(_duplicate_gene(make()))


@pytest.mark.parametrize("model", ["ScGAN", "GRouNdGAN", "GeneSys", "RNAGAN"])
def test_setup_rejects_a_matrix(model):
    make, setup = _setups()[model]
    with pytest.raises(TypeError, match="`adata` must be an AnnData, got ndarray"):
        setup(_dense(make()).X)


def test_setup_mudata_rejects_an_anndata():
    with pytest.raises(TypeError, match="`mdata` must be a MuData, got AnnData"):
        RNAGAN.setup_mudata(rnagan_samples(n_per_group=5), groupby="group")


# -- numbers -----------------------------------------------------------------------------------------
def _number_calls():
    def gg_tf(m):
        return str(m.grn.tfs[0])

    return {
        "ScGAN.train(batch_size=0)": ("trained_conditional", lambda m: m.train(max_steps=1, batch_size=0)),
        "ScGAN.generate(n_obs=0)": ("trained_conditional", lambda m: m.generate(0)),
        "ScGAN.generate(batch_size=0)": ("trained_conditional", lambda m: m.generate(5, batch_size=0)),
        "GRouNdGAN.train(batch_size=-1)": (
            "trained_groundgan", lambda m: m.train(max_steps=1, batch_size=-1)),
        "GRouNdGAN.train(controller_batch_size=0)": (
            "trained_groundgan", lambda m: m.train(max_steps=1, controller_batch_size=0)),
        "GRouNdGAN.generate(n_obs=0)": ("trained_groundgan", lambda m: m.generate(0)),
        "GRouNdGAN.generate(batch_size=0)": ("trained_groundgan", lambda m: m.generate(5, batch_size=0)),
        "GRouNdGAN.perturb(n_obs=0)": ("trained_groundgan", lambda m: m.perturb(knockout=gg_tf(m), n_obs=0)),
        "GRouNdGAN.perturb(batch_size=0)": (
            "trained_groundgan", lambda m: m.perturb(knockout=gg_tf(m), n_obs=5, batch_size=0)),
        "tl.generate(n_obs=0)": ("trained_groundgan", lambda m: scsynth.tl.generate(m, n_obs=0)),
        "tl.perturb(n_obs=-3)": (
            "trained_groundgan", lambda m: scsynth.tl.perturb(m, knockout=gg_tf(m), n_obs=-3)),
        "GeneSys.train(batch_size=0)": ("trained_genesys", lambda m: m.train(max_epochs=1, batch_size=0)),
        "GeneSys.classify(batch_size=0)": ("trained_genesys", lambda m: m.classify(batch_size=0)),
        "GeneSys.get_latent_representation(batch_size=0)": (
            "trained_genesys", lambda m: m.get_latent_representation(batch_size=0)),
        "GeneSys.generate(n_obs=0)": ("trained_genesys", lambda m: m.generate(0)),
        "GeneSys.rank_genes(n_top=0)": ("trained_genesys", lambda m: m.rank_genes(n_top=0)),
        "GeneSys.rank_genes(n_samples=0)": ("trained_genesys", lambda m: m.rank_genes(n_samples=0)),
        "GeneSys.trajectory_accuracy(n_trajectories=0)": (
            "trained_genesys", lambda m: m.trajectory_accuracy(n_trajectories=0)),
        "RNAGAN.train(batch_size=0)": ("trained_rnagan", lambda m: m.train(max_steps={"sc": 1}, batch_size=0)),
        "RNAGAN.generate(n_obs=0)": ("trained_rnagan", lambda m: m.generate(0, condition="type 0")),
        "RNAGAN.generate(n_refs=0)": ("trained_rnagan", lambda m: m.generate(3, condition="type 0", n_refs=0)),
        "RNAGAN.stratify(n_draws=0)": ("trained_rnagan", lambda m: m.stratify(m.adata, n_draws=0)),
        "RNAGAN.stratify(n_refs=0)": ("trained_rnagan", lambda m: m.stratify(m.adata, n_refs=0)),
        "RNAGAN.stratify(batch_size=0)": ("trained_rnagan", lambda m: m.stratify(m.adata, batch_size=0)),
        "RNAGAN.get_latent_representation(n_refs=0)": (
            "trained_rnagan", lambda m: m.get_latent_representation(n_refs=0)),
        "RNAGAN.markers(n_steps=0)": (
            "trained_rnagan", lambda m: m.markers(m.adata, groupby="group", group="type 0", n_steps=0)),
        "tl.stratify(n_draws=-1)": ("trained_rnagan", lambda m: scsynth.tl.stratify(m.adata, m, n_draws=-1)),
    }


@pytest.mark.parametrize("call", list(_number_calls()))
def test_numbers_are_checked_up_front(request, call):
    fixture, fn = _number_calls()[call]
    model = request.getfixturevalue(fixture)
    model = model[0] if fixture == "trained_rnagan" else model
    name = call.split("(")[1].split("=")[0]
    steps = int(getattr(model, "n_generator_steps_", 0))
    with pytest.raises(ValueError, match=rf"`?{name}`? must be a"):
        fn(model)
    assert int(getattr(model, "n_generator_steps_", 0)) == steps  # nothing trained


# -- labels, groups and perturbations ----------------------------------------------------------------
@pytest.mark.parametrize(("labels", "exc", "match"), [
    ("B cell", ValueError, r"Unknown labels 'B cell'"),
    (["LYZ+", "nope", "nope2"], ValueError, r"Unknown labels 'nope', 'nope2'"),
    (["LYZ+", "LYZ-"], ValueError, "2 labels but n_obs=3"),
    (5, TypeError, "condition must be a label name or a sequence"),
    ({"LYZ+": 3}, TypeError, "got dict"),
])
def test_scgan_generate_labels(trained_conditional, labels, exc, match):
    with pytest.raises(exc, match=match):
        trained_conditional.generate(3, condition=labels)


def test_groundgan_generate_takes_no_labels(trained_groundgan):
    with pytest.raises(TypeError, match="without a condition"):
        scsynth.tl.generate(trained_groundgan, n_obs=3, condition="B cell")


def test_rnagan_generate_group(trained_rnagan):
    model = trained_rnagan[0]
    with pytest.raises(ValueError, match=r"Unknown group 'nope' for sc; known: 'type 0', 'type 1'"):
        model.generate(3, condition="nope")
    with pytest.raises(TypeError, match="condition must be the name of one group"):
        model.generate(3, condition=["type 0"])


def _perturb_cases():
    return [
        ({"knockout": "NOPE"}, ValueError, r"'NOPE' is not a gene of the model\. The model's TFs include '"),
        ({"knockout": "{target}"}, ValueError, "target gene of the GRN"),
        ({"knockout": 3}, TypeError, "knockout must be a TF name or a list"),
        ({"overexpress": {"{tf}": np.nan}}, ValueError, "finite and >= 0"),
        ({"overexpress": {"{tf}": -1.0}}, ValueError, "finite and >= 0"),
        ({"set_to": {"{tf}": np.inf}}, ValueError, "finite and >= 0"),
        ({"overexpress": ["{tf}"]}, TypeError, r"overexpress must be a dict \{TF: factor\}"),
        ({"set_to": {"{tf}": "high"}}, TypeError, "must be a number"),
        ({}, ValueError, "Nothing to perturb"),
    ]


@pytest.mark.parametrize(("kwargs", "exc", "match"), _perturb_cases())
def test_perturb_requests_are_checked(trained_groundgan, kwargs, exc, match):
    grn = trained_groundgan.grn
    tf, target = str(grn.tfs[0]), str(grn.targets[0])

    def fill(v):
        if isinstance(v, str):
            return v.format(tf=tf, target=target)
        if isinstance(v, dict):
            return {fill(k): x for k, x in v.items()}
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v

    with pytest.raises(exc, match=match) as err:
        scsynth.tl.perturb(trained_groundgan, n_obs=5, **{k: fill(v) for k, v in kwargs.items()})
    assert "np.str_" not in str(err.value)


# -- messages ----------------------------------------------------------------------------------------
def test_gene_names_print_as_plain_strings():
    adata = anndata.AnnData(np.ones((2, 3)), var=pd.DataFrame(index=["A", "B", "C"]))
    model_genes = np.asarray(["A", "GATA2", "SPI1"], dtype=str)
    with pytest.raises(ValueError, match=r"2 model genes are missing \('GATA2', 'SPI1'\)") as err:
        check_same_genes(adata, model_genes)
    assert "np.str_" not in str(err.value)
    with pytest.raises(ValueError, match=r"\('GATA2', 'SPI1'\)") as err:
        genes_by_name(adata, model_genes, None)
    assert "np.str_" not in str(err.value)


# -- metrics -----------------------------------------------------------------------------------------
def _good_pair():
    rng = np.random.default_rng(0)
    return rng.poisson(2.0, (30, 8)).astype(float), rng.poisson(2.0, (30, 8)).astype(float)


METRIC_FNS = {
    "rf_auroc": lambda x, y: scsynth.metrics.rf_auroc(x, y, n_estimators=5, n_jobs=1),
    "centroid_distances": scsynth.metrics.centroid_distances,
    "gene_statistics_agreement": scsynth.metrics.gene_statistics_agreement,
    "mmd": scsynth.metrics.mmd,
    "milisi": scsynth.metrics.milisi,
}
BAD_MATRICES = {
    "no_cells": (lambda x: x[:0], ValueError, r"is empty \(0 cells"),
    "no_genes": (lambda x: x[:, :0], ValueError, r"is empty \(30 cells x 0 genes"),
    "other_genes": (lambda x: x[:, :5], ValueError, "same genes"),
    "nan": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x), ValueError, "NaN"),
    "1-D": (lambda x: x[0], ValueError, "2-D"),
    "anndata": (lambda x: anndata.AnnData(x), TypeError, "got an AnnData"),
}


@pytest.mark.parametrize("kind", list(BAD_MATRICES))
@pytest.mark.parametrize("metric", list(METRIC_FNS))
def test_matrix_metrics_reject_bad_matrices(metric, kind):
    x, y = _good_pair()
    corrupt, exc, match = BAD_MATRICES[kind]
    with pytest.raises(exc, match=match):
        METRIC_FNS[metric](x, corrupt(y))


@pytest.mark.parametrize("metric", ["gene_statistics_agreement", "milisi"])
def test_log_metrics_reject_negative_values(metric):
    x, y = _good_pair()
    with pytest.raises(ValueError, match="negative"):
        METRIC_FNS[metric](x, y - 5)


def test_lisi_needs_a_dimension():
    with pytest.raises(ValueError, match="at least one"):
        scsynth.metrics.lisi(np.ones((5, 0)), np.zeros(5))


@pytest.mark.parametrize("kind", ["nan", "negative", "duplicated_genes", "no_cells", "no_genes", "ndarray"])
def test_realism_checks_both_sides(kind):
    real = rnagan_samples(n_per_group=10)
    corrupt, exc, _ = BAD[kind]
    with pytest.raises(exc, match="generated|`real`|real"):
        scsynth.metrics.realism(real, corrupt(real))


def test_knockout_recovery_rejects_a_matrix():
    with pytest.raises(TypeError, match="AnnData returned by model.perturb"):
        scsynth.metrics.knockout_recovery(np.ones((3, 3)))


# -- plots -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("call", "match"), [
    (lambda a: scsynth.pl.real_vs_generated(a.X, a), "`real` must be an AnnData"),
    (lambda a: scsynth.pl.real_vs_generated(a, a.X), "`generated` must be an AnnData"),
    (lambda a: scsynth.pl.plot_trajectory(a.X), "`adata` must be an AnnData"),
    (lambda a: scsynth.pl.plot_trajectory(a, reference=a.X), "`reference` must be an AnnData"),
    (lambda a: scsynth.pl.markers(a.X), "`adata_or_table` must be an AnnData or the markers DataFrame"),
    (lambda a: scsynth.pl.perturbation(a.X), "AnnData returned by model.perturb"),
])
def test_plots_reject_a_matrix(call, match):
    with pytest.raises(TypeError, match=match):
        call(_dense(_genesys_cells()))
