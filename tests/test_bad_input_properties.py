"""Property-based: generated bad AnnData objects never get through a public entry point.

Every example is broken in one way (NaN / inf / negative / non-integer counts, duplicated gene names,
no cells, no genes, missing genes, a missing obs key or layer, a bad layer, a matrix instead of an
AnnData). Each entry point must answer with a ValueError, TypeError or KeyError carrying a message:
never another exception, never a result. Trained models come from the session fixtures; nothing is
trained inside an example.
"""

from __future__ import annotations

import anndata
import mudata
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import sparse

import scsynth
from scsynth.model import RNAGAN, GeneSys, GRouNdGAN, ScGAN

pytestmark = pytest.mark.filterwarnings("ignore")

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
EXPECTED = (ValueError, TypeError, KeyError)

#: corruptions of the values; the others change names, shape, obs or the call
VALUE_KINDS = ["nan", "inf", "-inf", "negative", "non_integer"]
SHAPE_KINDS = ["duplicated_genes", "no_cells", "no_genes", "missing_genes", "ndarray"]
CALL_KINDS = ["missing_obs_key", "missing_layer", "bad_layer"]


def _base(rng: np.random.Generator, n_obs: int, genes: list[str]) -> anndata.AnnData:
    """Good counts: every cell and gene expressed; obs 'label' / 'group' (3-4 groups) and 'time' (1..3)."""
    x = rng.poisson(3.0, (n_obs, len(genes))).astype(np.float32) + 1
    obs = pd.DataFrame({
        "label": pd.Categorical([f"L{i % 3}" for i in range(n_obs)]),
        "group": pd.Categorical([f"type {i % 4}" for i in range(n_obs)]),
        "time": (np.arange(n_obs) % 3 + 1).astype(np.int64),
    }, index=[f"c{i}" for i in range(n_obs)])
    return anndata.AnnData(x, obs=obs, var=pd.DataFrame(index=genes))


@st.composite
def bad_inputs(draw, *, genes: list[str], kinds: list[str], obs_keys: tuple[str, ...] = ()):
    """``(adata or matrix, kwargs of the call, kind)``: one broken input."""
    kinds = [k for k in kinds if k != "missing_obs_key" or obs_keys]
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n_obs = draw(st.integers(4, 20))
    adata = _base(rng, n_obs, list(genes))
    if draw(st.booleans()):  # genes are matched by name: order does not matter
        adata = adata[:, rng.permutation(adata.n_vars)].copy()
    i, j = draw(st.integers(0, n_obs - 1)), draw(st.integers(0, len(genes) - 1))
    kwargs: dict = {}
    if kind in VALUE_KINDS or kind == "bad_layer":
        value_kind = kind
        if kind == "bad_layer":
            value_kind = draw(st.sampled_from(["nan", "inf", "-inf", "negative"]))
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf,
                 "negative": -draw(st.floats(1e-3, 1e6)),
                 "non_integer": adata.X[i, j] + draw(st.floats(0.01, 0.99))}[value_kind]
        x = adata.X.copy()
        x[i, j] = value
        if kind == "bad_layer":
            adata.layers["counts"] = x
            kwargs["layer"] = "counts"
        else:
            adata.X = x
    elif kind == "duplicated_genes":
        k = draw(st.integers(0, len(genes) - 1).filter(lambda k: k != j))
        names = list(adata.var_names)
        names[k] = names[j]
        adata.var_names = names
    elif kind == "no_cells":
        adata = adata[:0].copy()
    elif kind == "no_genes":
        adata = adata[:, :0].copy()
    elif kind == "missing_genes":
        drop = draw(st.integers(1, len(genes) - 1))
        adata = adata[:, drop:].copy()
    elif kind == "missing_obs_key":
        del adata.obs[draw(st.sampled_from(list(obs_keys)))]
    elif kind == "missing_layer":
        kwargs["layer"] = "counts"
    if draw(st.booleans()) and adata.n_obs and adata.n_vars:
        adata.X = sparse.csr_matrix(adata.X)  # the broken value is stored: it is not zero
        for key in adata.layers:
            adata.layers[key] = sparse.csr_matrix(adata.layers[key])
    if kind == "ndarray":
        return np.asarray(adata.X), kwargs, kind
    return adata, kwargs, kind


def _rejects(call, data, kwargs, kind) -> None:
    try:
        result = call(data, **kwargs)
    except EXPECTED as err:
        assert err.args and str(err.args[0]).strip(), f"{type(err).__name__} without a message for {kind}"
        return
    raise AssertionError(f"{kind} input was accepted (returned {type(result).__name__}).")


SETUP_GENES = [f"g{i}" for i in range(12)]
MODEL_GENES = [f"g{i}" for i in range(40)]  # the genes of the GeneSys and RNAGAN fixtures


# -- setup_anndata ------------------------------------------------------------------------------------
def _setup_mudata(adata, **kwargs):
    mdata = mudata.MuData({"sc": adata}) if isinstance(adata, anndata.AnnData) else adata
    return RNAGAN.setup_mudata(mdata, labels_key="label", **kwargs)


SETUPS = {
    # entry point: (call, obs keys it reads, whether non-integer values are an error); every model detects
    # counts by default, so ScGAN and GRouNdGAN are asked for counts here to cover that check too
    "ScGAN": (lambda a, **kw: ScGAN.setup_anndata(a, labels_key="label", is_count_data=True, **kw), ("label",), True),
    "GRouNdGAN": (lambda a, **kw: GRouNdGAN.setup_anndata(a, is_count_data=True, **kw), (), True),
    "GeneSys": (lambda a, **kw: GeneSys.setup_anndata(a, labels_key="label", time_key="time", **kw),
                ("label", "time"), False),
    "RNAGAN": (lambda a, **kw: RNAGAN.setup_anndata(a, labels_key="label", **kw), ("label",), False),
    "RNAGAN.setup_mudata": (_setup_mudata, ("label",), False),
}


@pytest.mark.parametrize("entry", list(SETUPS))
def test_setup_anndata_rejects_bad_data(entry):
    call, keys, counts = SETUPS[entry]
    kinds = [k for k in VALUE_KINDS if counts or k != "non_integer"] + SHAPE_KINDS + CALL_KINDS
    kinds.remove("missing_genes")  # any genes are fine at setup

    @SETTINGS
    @given(bad_inputs(genes=SETUP_GENES, kinds=kinds, obs_keys=keys))
    def check(case):
        _rejects(call, *case)

    check()


# -- jobs of trained models ----------------------------------------------------------------------------
JOB_KINDS = [k for k in VALUE_KINDS if k != "non_integer"] + SHAPE_KINDS
def _latent(model, adata, **kwargs):
    return model.get_latent_representation(adata, **kwargs)


def _stratify_against(model, references, **kwargs):
    return model.stratify(model.adata[:8].copy(), references=references, n_draws=2, **kwargs)


def _markers(model, adata, **kwargs):
    return model.markers(adata, groupby="group", group="type 0", **kwargs)


def _tl_markers(model, adata, **kwargs):
    return scsynth.tl.markers(adata, model, groupby="group", group="type 0", **kwargs)


JOBS = {
    # entry point: (fixture, call(model, adata, **kw), takes layer=, obs keys it reads)
    "GeneSys.classify": ("trained_genesys", lambda m, a, **kw: m.classify(a, **kw), True, ()),
    "GeneSys.get_latent_representation": ("trained_genesys", _latent, True, ()),
    "tl.embed(GeneSys)": ("trained_genesys", lambda m, a, **kw: scsynth.tl.embed(a, m, **kw), True, ()),
    "RNAGAN.stratify": ("trained_rnagan", lambda m, a, **kw: m.stratify(a, n_draws=2, **kw), False, ()),
    "RNAGAN.stratify(references=)": ("trained_rnagan", _stratify_against, False, ("group",)),
    "RNAGAN.get_latent_representation": ("trained_rnagan", _latent, True, ()),
    "RNAGAN.pathway_activities": ("trained_rnagan", lambda m, a, **kw: m.pathway_activities(a, **kw), True,
                                  ()),
    "RNAGAN.markers": ("trained_rnagan", _markers, False, ("group",)),
    "tl.embed(RNAGAN)": ("trained_rnagan", lambda m, a, **kw: scsynth.tl.embed(a, m, **kw), True, ()),
    "tl.stratify": ("trained_rnagan", lambda m, a, **kw: scsynth.tl.stratify(a, m, n_draws=2, **kw), False,
                    ()),
    "tl.markers": ("trained_rnagan", _tl_markers, False, ("group",)),
}


@pytest.mark.parametrize("entry", list(JOBS))
def test_trained_model_jobs_reject_bad_data(request, entry):
    fixture, call, takes_layer, keys = JOBS[entry]
    model = request.getfixturevalue(fixture)
    model = model[0] if fixture == "trained_rnagan" else model
    kinds = JOB_KINDS + (["missing_layer", "bad_layer"] if takes_layer else []) + (
        ["missing_obs_key"] if keys else [])

    @SETTINGS
    @given(bad_inputs(genes=MODEL_GENES, kinds=kinds, obs_keys=keys))
    def check(case):
        _rejects(lambda a, **kw: call(model, a, **kw), *case)

    check()


BAD_NUMBERS = st.one_of(st.integers(-5, 0), st.floats(allow_nan=True), st.text(max_size=3), st.none(),
                        st.booleans())


def _tf(model):
    return str(model.grn.tfs[0])


NUMBER_CALLS = {
    # entry point: (fixture, call(model, bad value))
    "ScGAN.generate(n_obs)": ("trained_conditional", lambda m, v: m.generate(v)),
    "ScGAN.generate(batch_size)": ("trained_conditional", lambda m, v: m.generate(5, batch_size=v)),
    "GRouNdGAN.generate(n_obs)": ("trained_groundgan", lambda m, v: m.generate(v)),
    "tl.perturb(n_obs)": ("trained_groundgan", lambda m, v: scsynth.tl.perturb(m, knockout=_tf(m), n_obs=v)),
    "GRouNdGAN.perturb(batch_size)": ("trained_groundgan",
                                      lambda m, v: m.perturb(knockout=_tf(m), n_obs=5, batch_size=v)),
    "GeneSys.generate(n_obs)": ("trained_genesys", lambda m, v: m.generate(v)),
    "GeneSys.classify(batch_size)": ("trained_genesys", lambda m, v: m.classify(batch_size=v)),
    "GeneSys.rank_genes(n_top)": ("trained_genesys", lambda m, v: m.rank_genes(n_top=v, n_samples=2)),
    "RNAGAN.generate(n_obs)": ("trained_rnagan", lambda m, v: m.generate(v, condition="type 0")),
    "RNAGAN.generate(n_refs)": ("trained_rnagan", lambda m, v: m.generate(3, condition="type 0", n_refs=v)),
    "RNAGAN.stratify(n_draws)": ("trained_rnagan", lambda m, v: m.stratify(m.adata, n_draws=v)),
    "RNAGAN.get_latent_representation(n_refs)": ("trained_rnagan",
                                                 lambda m, v: m.get_latent_representation(n_refs=v)),
}


@pytest.mark.parametrize("entry", list(NUMBER_CALLS))
def test_jobs_reject_bad_numbers(request, entry):
    fixture, call = NUMBER_CALLS[entry]
    model = request.getfixturevalue(fixture)
    model = model[0] if fixture == "trained_rnagan" else model
    # n_top=None means all genes
    bad = BAD_NUMBERS.filter(lambda v: v is not None) if entry.endswith("(n_top)") else BAD_NUMBERS

    @SETTINGS
    @given(bad)
    def check(value):
        _rejects(lambda v: call(model, v), value, {}, f"{entry} = {value!r}")

    check()


def test_perturb_rejects_bad_factors(trained_groundgan):
    tf = str(trained_groundgan.grn.tfs[0])
    bad = st.one_of(st.floats(max_value=-1e-9), st.just(np.nan), st.just(np.inf), st.text(max_size=3),
                    st.none())

    @SETTINGS
    @given(st.sampled_from(["overexpress", "set_to"]), bad)
    def check(which, value):
        _rejects(lambda _, **kw: scsynth.tl.perturb(trained_groundgan, n_obs=4, **kw), None,
                 {which: {tf: value}}, f"{which}={value!r}")

    check()


# -- metrics ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["real", "generated"])
def test_realism_rejects_bad_data(side):
    good = _base(np.random.default_rng(0), 20, SETUP_GENES)
    kinds = [k for k in VALUE_KINDS if k != "non_integer"] + SHAPE_KINDS + ["missing_layer", "bad_layer"]
    if side == "real":
        kinds.remove("missing_genes")  # real decides the genes; fewer of them is fine

    @SETTINGS
    @given(bad_inputs(genes=SETUP_GENES, kinds=kinds))
    def check(case):
        data, kwargs, kind = case
        if "layer" in kwargs:
            good.layers["counts"] = good.X.copy()
        pair = (data, good) if side == "real" else (good, data)
        _rejects(lambda _, **kw: scsynth.metrics.realism(*pair, n_repeats=1, rf_trees=5, n_jobs=1, **kw),
                 None, kwargs, kind)

    check()


@SETTINGS
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans()))
def test_realism_rejects_an_unknown_scale(scale):
    assume(scale not in ("normalized", "log1p"))
    good = _base(np.random.default_rng(0), 20, SETUP_GENES)
    with pytest.raises(ValueError, match="`scale` must be one of"):
        scsynth.metrics.realism(good, good, scale=scale, n_repeats=1, rf_trees=5, n_jobs=1)


MATRIX_METRICS = {
    "rf_auroc": lambda x, y: scsynth.metrics.rf_auroc(x, y, n_estimators=5, n_jobs=1),
    "centroid_distances": scsynth.metrics.centroid_distances,
    "gene_statistics_agreement": scsynth.metrics.gene_statistics_agreement,
    "mmd": scsynth.metrics.mmd,
    "milisi": scsynth.metrics.milisi,
}


@pytest.mark.parametrize("metric", list(MATRIX_METRICS))
def test_matrix_metrics_reject_bad_matrices(metric):
    kinds = ["nan", "inf", "-inf", "no_cells", "no_genes", "missing_genes", "anndata", "1-D"]
    if metric in ("gene_statistics_agreement", "milisi"):  # they take log1p of expression
        kinds.append("negative")
    good = _base(np.random.default_rng(1), 20, SETUP_GENES).X

    @SETTINGS
    @given(bad_inputs(genes=SETUP_GENES, kinds=[k for k in kinds if k in VALUE_KINDS + SHAPE_KINDS]),
           st.sampled_from(kinds), st.booleans())
    def check(case, kind, swap):
        data = case[0]
        if kind in ("anndata", "1-D"):
            x = anndata.AnnData(good) if kind == "anndata" else good[0]
        else:
            x = data.X if isinstance(data, anndata.AnnData) else data
            kind = case[2]
        pair = (x, good) if swap else (good, x)
        _rejects(lambda _: MATRIX_METRICS[metric](*pair), None, {}, kind)

    check()


def test_perturbation_readers_reject_bad_data():
    @SETTINGS
    @given(bad_inputs(genes=SETUP_GENES, kinds=VALUE_KINDS + SHAPE_KINDS))
    def check(case):
        data = case[0]
        _rejects(lambda a: scsynth.metrics.knockout_recovery(a), data, {}, case[2])
        _rejects(lambda a: scsynth.pl.perturbation(a), data, {}, case[2])
        _rejects(lambda a: scsynth.pl.markers(a), data, {}, case[2])

    check()


GRNS = st.sampled_from([
    pd.DataFrame({"source": [], "target": []}),
    pd.DataFrame({"source": ["A"]}),
    pd.DataFrame({"source": ["A", None], "target": ["B", "C"]}),
    pd.DataFrame({"source": ["A", "A"], "target": ["B", "C"], "weight": [1.0, np.nan]}),
    pd.DataFrame({"source": ["A", "A"], "target": ["B", ""], "weight": [1.0, 2.0]}),
    np.array([["A", "B"]]),
    None,
])


def test_grn_recovery_rejects_bad_grns():
    good = pd.DataFrame({"source": ["A", "A", "B"], "target": ["X", "Y", "Z"]})

    @SETTINGS
    @given(GRNS, st.booleans())
    def check(grn, as_truth):
        pair = (good, grn) if as_truth else (grn, good)
        _rejects(lambda _: scsynth.metrics.grn_recovery(*pair), None, {}, repr(grn))

    check()


# -- plots --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["real_vs_generated(real)", "real_vs_generated(generated)",
                                   "plot_trajectory", "plot_trajectory(reference)"])
def test_plots_reject_bad_data(entry):
    import matplotlib.pyplot as plt

    good = _base(np.random.default_rng(2), 20, SETUP_GENES)
    kinds = [k for k in VALUE_KINDS if k != "non_integer"] + SHAPE_KINDS + ["missing_layer", "bad_layer"]
    kinds.remove("missing_genes")  # the plots use the genes both data sets share
    if entry == "plot_trajectory":
        kinds.append("missing_obs_key")
    calls = {
        "real_vs_generated(real)": lambda a, **kw: scsynth.pl.real_vs_generated(a, good, n_hvg=5, **kw),
        "real_vs_generated(generated)": lambda a, **kw: scsynth.pl.real_vs_generated(good, a, n_hvg=5, **kw),
        "plot_trajectory": lambda a, **kw: scsynth.pl.plot_trajectory(a, basis="pca", n_hvg=5, **kw),
        "plot_trajectory(reference)": lambda a, **kw: scsynth.pl.plot_trajectory(
            good, reference=a, basis="pca", n_hvg=5, **kw),
    }

    @SETTINGS
    @given(bad_inputs(genes=SETUP_GENES, kinds=kinds, obs_keys=("time",)))
    def check(case):
        if "layer" in case[1]:
            good.layers["counts"] = good.X.copy()
        try:
            _rejects(calls[entry], *case)
        finally:
            plt.close("all")

    check()


TRAIN_OPTIONS = {
    # RNAGAN.train option: bad values (all rejected before any training step)
    "train_size": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.000001), st.just(np.nan),
                            st.text(max_size=3), st.none(), st.booleans()),
    "monitor_realism": st.one_of(st.integers(-5, -1), st.floats(allow_nan=True), st.text(min_size=1, max_size=3)),
    "calibrate_marginals": st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=3)),
}


@pytest.mark.parametrize("option", list(TRAIN_OPTIONS))
def test_rnagan_train_rejects_bad_realism_options(trained_rnagan, option):
    model = trained_rnagan[0]
    steps = dict(model.steps_)

    @SETTINGS
    @given(TRAIN_OPTIONS[option])
    def check(value):
        kwargs = {option: value, **({"train_size": 0.8} if option == "monitor_realism" else {})}
        _rejects(lambda v: model.train(max_steps=2, enable_progress_bar=False, **kwargs), value, {},
                 f"RNAGAN.train({option}={value!r})")

    check()
    assert model.steps_ == steps  # nothing trained
