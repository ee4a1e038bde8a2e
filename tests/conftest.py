"""Small real fixtures shared by the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import anndata
import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

# the suite runs on the bundled gene sets and CollecTRI, online or not (tests of the decoupler route unset it)
os.environ.setdefault("SCSYNTH_OFFLINE", "1")

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"

#: Tiny architecture so model tests train in seconds; the maths is the same as the default one.
SMALL = {"n_latent": 16, "generator_hidden": (32, 64), "critic_hidden": (64, 32)}


@pytest.fixture(autouse=True)
def _seed():
    import scsynth

    scsynth.settings.seed = 0
    yield


@pytest.fixture(scope="session")
def _immune() -> anndata.AnnData:
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    lyz = np.asarray(adata[:, "LYZ"].X.todense()).ravel()
    adata.obs["group"] = np.where(lyz > 0, "LYZ+", "LYZ-")
    adata.obs["group"] = adata.obs["group"].astype("category")
    return adata


@pytest.fixture
def counts(_immune) -> anndata.AnnData:
    """559 real immune cells x 300 genes, raw UMI counts (sparse), with a data-derived obs['group']."""
    return _immune.copy()


@pytest.fixture(scope="session")
def _pbmc() -> anndata.AnnData:
    import scsynth

    return scsynth.data.pbmc68k_normalized()


@pytest.fixture
def pbmc(_pbmc) -> anndata.AnnData:
    """700 PBMCs x 765 genes, normalised (non-integer) expression with obs['bulk_labels']."""
    return _pbmc.copy()


@pytest.fixture(scope="session")
def trained_conditional(_immune):
    """A conditional ScGAN trained a few steps on real counts (shared by read-only tests)."""
    import scsynth

    adata = _immune.copy()
    scsynth.model.ScGAN.setup_anndata(adata, labels_key="group")
    model = scsynth.model.ScGAN(adata, **SMALL)
    model.train(max_steps=5, batch_size=32, enable_progress_bar=False)
    return model


#: Tiny GRouNdGAN architecture for tests.
SMALL_GG = {"n_latent": 16, "controller_hidden": (32, 64), "critic_hidden": (64, 32), "labeler_hidden": (32, 32)}


def correlation_grn(adata: anndata.AnnData, k: int = 5):
    """A small data-derived GRN: each non-TF gene regulated by its k most correlated TFs (Lambert list)."""
    import pandas as pd

    import scsynth

    tfs = [g for g in adata.var_names if g in set(scsynth.data.tf_list("human"))]
    x = np.log1p(np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X))
    corr = np.corrcoef(x.T)
    idx = {g: i for i, g in enumerate(adata.var_names)}
    rows = []
    for gene in adata.var_names:
        if gene in tfs:
            continue
        ranked = sorted(tfs, key=lambda t: -abs(corr[idx[gene], idx[t]]))[:k]
        rows += [(t, gene, float(corr[idx[gene], idx[t]])) for t in ranked]
    return pd.DataFrame(rows, columns=["source", "target", "weight"])


@pytest.fixture(scope="session")
def pbmc_grn(_pbmc):
    """A top-5 correlation GRN over pbmc68k_reduced's 33 Lambert TFs."""
    return correlation_grn(_pbmc)


@pytest.fixture(scope="session")
def trained_groundgan(_pbmc, pbmc_grn):
    """A GRouNdGAN trained 4 + 4 steps on pbmc68k_reduced (shared by read-only tests)."""
    import scsynth

    adata = _pbmc.copy()
    scsynth.model.GRouNdGAN.setup_anndata(adata, is_count_data=False)
    scsynth.settings.seed = 0
    model = scsynth.model.GRouNdGAN(adata, grn=pbmc_grn, **SMALL_GG)
    model.train(controller_steps=4, max_steps=4, batch_size=32, enable_progress_bar=False)
    return model


# -- GeneSys ------------------------------------------------------------------------------------------
SMALL_GS = {"n_latent": 8, "n_hidden": 32, "n_layers": 1}
#: Two fates branching from a shared progenitor; labels with a space and an underscore on purpose.
BRANCHING_BLUEPRINT = pd.DataFrame(
    [["Pro genitor", "fate_A", "fate_A"], ["Pro genitor", "fate B", "fate B"]], index=["to_A", "to B"]
)


def branching_counts(n_per_group: int = 30, n_genes: int = 40, seed: int = 0) -> anndata.AnnData:
    """Negative binomial counts of a progenitor (time 1) that splits into two fates (times 2, 3).

    Genes 0-9 rise along fate A, genes 10-19 along fate B, the rest stay flat; the fate programmes
    strengthen from time 2 to time 3.
    """
    rng = np.random.default_rng(seed)
    groups = [("Pro genitor", 1, 0.0, 0.0), ("fate_A", 2, 1.0, 0.0), ("fate_A", 3, 2.0, 0.0),
              ("fate B", 2, 0.0, 1.0), ("fate B", 3, 0.0, 2.0)]
    base = rng.gamma(2.0, 2.0, size=n_genes)
    xs, labels, times = [], [], []
    for label, time, a, b in groups:
        mean = base.copy()
        mean[:10] *= np.exp(a)
        mean[10:20] *= np.exp(b)
        depth = rng.lognormal(0, 0.3, size=(n_per_group, 1))
        xs.append(rng.poisson(rng.gamma(5.0, mean * depth / 5.0)))
        labels += [label] * n_per_group
        times += [time] * n_per_group
    obs = pd.DataFrame({"label": pd.Categorical(labels), "time": np.asarray(times, dtype=np.int64)},
                       index=[f"cell-{i}" for i in range(len(labels))])
    var = pd.DataFrame(index=[f"g{i}" for i in range(n_genes)])
    return anndata.AnnData(sparse.csr_matrix(np.vstack(xs).astype(np.float32)), obs=obs, var=var)


@pytest.fixture
def branching() -> anndata.AnnData:
    return branching_counts()


@pytest.fixture(scope="session")
def trained_genesys():
    import scsynth

    adata = branching_counts()
    scsynth.model.GeneSys.setup_anndata(adata)
    model = scsynth.model.GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    model.train(max_epochs=30, batch_size=16, seed=0)
    return model


# -- RNAGAN -------------------------------------------------------------------------------------------
SMALL_RG = {"hidden": (64, 16), "n_latent": 8, "n_noise": 4, "n_learned": 2, "dropout": 0.0}
#: pathway k = the 5 genes that group k raises (so pathway activities should separate the groups)
GENE_SETS = pd.DataFrame({"source": [f"SET_{k}" for k in range(4) for _ in range(5)],
                          "target": [f"g{i}" for i in range(20)]})


def rnagan_samples(n_per_group=30, n_genes=40, seed=0, modality=None):
    """Poisson counts of 4 groups ("type 0".."type 3") in obs['group']; group k raises genes 5k..5k+4."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 3.0, size=n_genes)
    xs, labels = [], []
    for g in range(4):
        mean = base.copy()
        mean[5 * g: 5 * g + 5] *= 4
        xs.append(rng.poisson(mean * rng.lognormal(0, 0.2, size=(n_per_group, 1)) * 10))
        labels += [f"type {g}"] * n_per_group
    obs = pd.DataFrame({"group": pd.Categorical(labels)}, index=[f"s{i}" for i in range(len(labels))])
    if modality is not None:
        obs["modality"] = modality
    return anndata.AnnData(sparse.csr_matrix(np.vstack(xs).astype(np.float32)), obs=obs,
                           var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


@pytest.fixture(scope="session")
def trained_rnagan():
    """An RNAGAN trained 150 steps on 80 of 120 samples; returns (model, the 40 held-out samples)."""
    import scsynth
    from scsynth.model import RNAGAN

    scsynth.settings.seed = 0
    adata = rnagan_samples()
    train = adata[np.arange(adata.n_obs) % 3 != 0].copy()
    RNAGAN.setup_anndata(train, labels_key="group")
    model = RNAGAN(train, gene_sets=GENE_SETS, **SMALL_RG)
    model.train(max_steps={"sc": 150}, batch_size=32, n_refs=(3, 10), seed=0,
                plan_kwargs={"lr_discriminator": 2e-3, "lr_generator": 1e-3})
    return model, adata[np.arange(adata.n_obs) % 3 == 0].copy()


@pytest.fixture
def fresh_online(monkeypatch):
    """The decoupler route as on a fresh process: no download, failure or log message remembered, not offline."""
    from scsynth.data import _online

    monkeypatch.delenv(_online.OFFLINE_ENV, raising=False)
    _online.reset()
    yield
    _online.reset()


def load_as_saved_before(model, path, option: str, adata):
    """Save ``model``, drop ``option`` from its saved init params (as a model saved before the option) and load it.

    First checks that a renamed option fails the rebuild, so the edit provably reaches it.
    """
    import json

    model.save(path, save_anndata=False)
    attributes = path / "attributes.json"
    text = attributes.read_text()
    assert f'"{option}"' in text
    attributes.write_text(text.replace(f'"{option}"', '"_dropped_option"'))
    with pytest.raises(TypeError, match="_dropped_option"):
        type(model).load(path, adata=adata.copy())

    def drop(node):  # remove the option wherever the init params hold it
        if isinstance(node, dict):
            node.pop(option, None)
            for value in node.values():
                drop(value)
        elif isinstance(node, list):
            for value in node:
                drop(value)

    data = json.loads(text)
    drop(data)
    attributes.write_text(json.dumps(data))
    return type(model).load(path, adata=adata.copy())
