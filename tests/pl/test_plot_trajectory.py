"""Tests of scsynth.pl.plot_trajectory: centroid paths in an embedding and gene trends over time."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from scipy import sparse

from scsynth import pl

matplotlib.use("Agg")

N_GENES = 50
TRAJECTORIES = ["erythroid", "myeloid"]
TIMES = [1, 2, 3]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _make(seed: int, *, n_per: int = 30, trajectory_key: str | None = "trajectory", dense: bool = False):
    """2 trajectories x 3 time steps x ``n_per`` cells of Poisson counts whose means move with both."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.5, N_GENES)
    blocks, obs = [], []
    for k, traj in enumerate(TRAJECTORIES):
        for t in TIMES:
            mean = base.copy()
            mean[k * 10 : k * 10 + 10] *= 1.0 + 1.5 * (t - 1)  # trajectory-specific genes rise over time
            mean[40:] *= 1.0 + 0.5 * (t - 1)  # shared genes rise over time
            blocks.append(rng.poisson(mean, (n_per, N_GENES)))
            obs += [{"time": t, "label": f"{traj}_{t}", "traj": traj}] * n_per
    x = np.vstack(blocks).astype(np.float32)
    obs = pd.DataFrame(obs, index=[f"c{seed}_{i}" for i in range(len(x))])
    if trajectory_key is not None:
        obs[trajectory_key] = pd.Categorical(obs["traj"], categories=TRAJECTORIES)
    obs = obs.drop(columns="traj")
    obs["label"] = obs["label"].astype("category")
    var = pd.DataFrame(index=[f"g{i}" for i in range(N_GENES)])
    return ad.AnnData(X=x if dense else sparse.csr_matrix(x), obs=obs, var=var)


@pytest.fixture
def gen() -> ad.AnnData:
    a = _make(0)
    a.obs["trajectory_id"] = a.obs["trajectory"].cat.codes.astype(int)
    return a


@pytest.fixture
def real() -> ad.AnnData:
    return _make(1, n_per=20, trajectory_key="genesys_trajectory", dense=True)


def _ax(fig: Figure, label: str):
    (ax,) = [a for a in fig.axes if a.get_label() == label]
    return ax


def _paths(fig: Figure) -> list[str]:
    return [ln.get_gid() for ln in _ax(fig, "embedding").lines if (ln.get_gid() or "").startswith("path:")]


def _gene_axes(fig: Figure) -> list:
    return [a for a in fig.axes if a.get_label().startswith("gene:")]


def _snapshot(a: ad.AnnData):
    x = a.X.toarray() if sparse.issparse(a.X) else np.array(a.X)
    return (
        list(a.obs.columns),
        a.obs.copy(),
        list(a.obsm.keys()),
        list(a.uns.keys()),
        list(a.layers.keys()),
        x,
    )


def _assert_same(a: ad.AnnData, snap) -> None:
    cols, obs, obsm, uns, layers, x = snap
    assert list(a.obs.columns) == cols
    pd.testing.assert_frame_equal(a.obs, obs)
    assert list(a.obsm.keys()) == obsm and list(a.uns.keys()) == uns and list(a.layers.keys()) == layers
    np.testing.assert_array_equal(a.X.toarray() if sparse.issparse(a.X) else a.X, x)


def test_pca_with_reference_and_genes(gen, real, tmp_path):
    snaps = _snapshot(gen), _snapshot(real)
    genes = ["g0", "g15", "g45"]
    real.obs["trajectory"] = real.obs["genesys_trajectory"]  # reference trends per trajectory
    fig = pl.plot_trajectory(gen, basis="pca", reference=real, genes=genes, n_hvg=30)
    assert isinstance(fig, Figure)
    assert _paths(fig) == [f"path:{t}" for t in TRAJECTORIES]
    emb = _ax(fig, "embedding")
    # the path markers sit at the per-time-step centroids, in ascending time
    for line in emb.lines:
        assert len(line.get_xdata()) == len(TIMES)
    texts = [t.get_text() for t in emb.texts if (t.get_gid() or "").startswith("time:")]
    assert sorted(texts) == sorted([str(t) for t in TIMES] * len(TRAJECTORIES))
    arrows = [t for t in emb.texts if (t.get_gid() or "").startswith("arrow:")]
    assert len(arrows) == len(TRAJECTORIES) * (len(TIMES) - 1)
    gaxes = _gene_axes(fig)
    assert [a.get_title() for a in gaxes] == genes
    for ax in gaxes:
        gids = [ln.get_gid() for ln in ax.lines]
        assert sum(g.startswith("gene:") for g in gids) == len(TRAJECTORIES)
        assert sum(g.startswith("reference:") for g in gids) == len(TRAJECTORIES)
        assert len(ax.collections) == 2 * len(TRAJECTORIES)  # shaded standard errors, adata and reference
    # trajectory-specific gene of the first trajectory rises over time there, not in the second
    g0 = {ln.get_gid(): np.asarray(ln.get_ydata()) for ln in gaxes[0].lines}
    assert np.all(np.diff(g0["gene:g0:erythroid"]) > 0)
    assert g0["gene:g0:erythroid"][-1] > g0["gene:g0:myeloid"][-1] + 0.3
    real.obs.drop(columns="trajectory", inplace=True)
    _assert_same(gen, snaps[0])
    _assert_same(real, snaps[1])
    fig.savefig(tmp_path / "traj.png", dpi=40)
    assert (tmp_path / "traj.png").stat().st_size > 1000


def test_centroids_match_embedding(gen):
    rng = np.random.default_rng(3)
    umap = rng.normal(size=(gen.n_obs, 3))
    gen.obsm["X_umap"] = umap
    fig = pl.plot_trajectory(gen)
    emb = _ax(fig, "embedding")
    assert emb.get_xlabel() == "UMAP 1"
    lines = {ln.get_gid(): ln for ln in emb.lines}
    assert set(lines) == {f"path:{t}" for t in TRAJECTORIES}
    for traj in TRAJECTORIES:
        mask = (gen.obs["trajectory"] == traj).to_numpy()
        expected = [umap[mask & (gen.obs["time"] == t).to_numpy(), :2].mean(axis=0) for t in TIMES]
        xy = np.column_stack([lines[f"path:{traj}"].get_xdata(), lines[f"path:{traj}"].get_ydata()])
        np.testing.assert_allclose(xy, np.array(expected))
    assert [t.get_text() for t in emb.get_legend().get_texts()] == TRAJECTORIES
    assert not _gene_axes(fig)
    assert list(gen.obsm.keys()) == ["X_umap"] and gen.obsm["X_umap"] is umap


def test_computed_umap(gen, real):
    snap = _snapshot(gen)
    real_snap = _snapshot(real)
    fig = pl.plot_trajectory(
        gen, reference=real, trajectory_key="trajectory", genes="g3", n_hvg=20, max_cells=150
    )
    assert _paths(fig) == [f"path:{t}" for t in TRAJECTORIES]
    emb = _ax(fig, "embedding")
    assert emb.get_xlabel() == "UMAP 1" and "UMAP" in emb.get_title()
    # reference cells in grey behind (<= max_cells) and the generated cells
    assert sum(len(c.get_offsets()) for c in emb.collections) == 150 + 120
    (gax,) = _gene_axes(fig)
    gids = [ln.get_gid() for ln in gax.lines]
    # `real` has no "trajectory" column: one overall dashed reference trend
    assert gids.count("reference:g3:all cells") == 1
    assert "X_umap" not in gen.obsm and "X_pca" not in gen.obsm and "neighbors" not in gen.uns
    _assert_same(gen, snap)
    _assert_same(real, real_snap)


def test_single_path_without_trajectory_column(real):
    fig = pl.plot_trajectory(real, basis="pca", genes=["g1", "g2"])  # default key absent: one path
    assert _paths(fig) == ["path:all cells"]
    assert len(_gene_axes(fig)) == 2
    fig = pl.plot_trajectory(real, basis="pca", trajectory_key=None)
    assert _paths(fig) == ["path:all cells"]
    fig = pl.plot_trajectory(real, basis="pca", trajectory_key="genesys_trajectory", color_key="label")
    assert len(_paths(fig)) == len(TRAJECTORIES)
    legends = [c for c in _ax(fig, "embedding").get_children() if isinstance(c, Legend)]
    assert {lg.get_title().get_text() for lg in legends} == {"genesys_trajectory", "label"}


def test_layer_and_categorical_time(gen):
    g = gen.copy()
    g.layers["counts"] = g.X.copy()
    g.X = None
    g.obs["time"] = g.obs["time"].astype(str).astype("category")
    g.obs.loc[g.obs_names[:5], "trajectory"] = np.nan  # unassigned cells leave the paths alone
    fig = pl.plot_trajectory(g, basis="pca", layer="counts", genes=["g0"])
    assert _paths(fig) == [f"path:{t}" for t in TRAJECTORIES]
    (gax,) = _gene_axes(fig)
    np.testing.assert_array_equal(gax.lines[0].get_xdata(), TIMES)


def test_errors(gen, real):
    with pytest.raises(KeyError, match=r"g999.*var_names"):
        pl.plot_trajectory(gen, basis="pca", genes=["g1", "g999"])
    with pytest.raises(KeyError, match=r"`trajectory_key` 'lineage'.*available columns.*time"):
        pl.plot_trajectory(gen, basis="pca", trajectory_key="lineage")
    with pytest.raises(KeyError, match=r"`time_key` 'pseudotime'.*available columns"):
        pl.plot_trajectory(gen, basis="pca", time_key="pseudotime")
    with pytest.raises(KeyError, match="color_key"):
        pl.plot_trajectory(gen, basis="pca", color_key="nope")
    with pytest.raises(ValueError, match="numeric"):
        pl.plot_trajectory(gen, basis="pca", time_key="label")
    with pytest.raises(ValueError, match="only 'umap' or 'pca'"):
        pl.plot_trajectory(gen, basis="tsne")
    gen.obsm["X_umap"] = np.zeros((gen.n_obs, 2))
    with pytest.warns(UserWarning, match="joint embedding"):
        pl.plot_trajectory(gen, reference=real, n_hvg=20)


def _blueprint_case(gen, real):
    """Blueprint with a progenitor shared at time 1; ``real`` has labels but no trajectory column."""
    table = pd.DataFrame(
        [["progenitor"] + [f"{t}_{k}" for k in TIMES[1:]] for t in TRAJECTORIES],
        index=TRAJECTORIES,
        columns=[str(k) for k in TIMES],
    )
    gen.uns["blueprint"] = table  # as GeneSys' generate stores it
    gen.uns["scsynth"] = {"model": "GeneSys"}
    real = real.copy()
    real.obs = real.obs.drop(columns="genesys_trajectory")
    label = real.obs["label"].astype(str)
    label[real.obs["time"] == 1] = "progenitor"
    real.obs["label"] = pd.Categorical(label)
    rng = np.random.default_rng(5)
    gen.obsm["X_umap"] = rng.normal(size=(gen.n_obs, 2))
    real.obsm["X_umap"] = rng.normal(size=(real.n_obs, 2))
    return gen, real, table


def _legend_texts(ax) -> list[str]:
    return [t.get_text() for c in ax.get_children() if isinstance(c, Legend) for t in c.get_texts()]


def test_reference_per_fate_from_blueprint(gen, real):
    gen, real, _ = _blueprint_case(gen, real)
    snap = _snapshot(real)
    fig = pl.plot_trajectory(gen, reference=real, genes=["g0", "g45"], max_cells=10_000)
    emb = _ax(fig, "embedding")
    paths = {ln.get_gid(): ln for ln in emb.lines}
    umap, obs = real.obsm["X_umap"], real.obs
    for traj in TRAJECTORIES:
        ref, own = paths[f"reference-path:{traj}"], paths[f"path:{traj}"]
        assert ref.get_color() == own.get_color() and ref.get_linestyle() == "--" and own.get_linestyle() == "-"
        # time 1: the shared progenitor counts for every fate; later steps: the fate's own label
        masks = [(obs["time"] == 1).to_numpy()] + [(obs["label"] == f"{traj}_{k}").to_numpy() for k in TIMES[1:]]
        expected = np.array([umap[m].mean(axis=0) for m in masks])
        np.testing.assert_allclose(np.column_stack([ref.get_xdata(), ref.get_ydata()]), expected)
    assert sum(g.startswith("reference-path:") for g in paths) == len(TRAJECTORIES)
    texts = _legend_texts(emb)
    assert texts[: len(TRAJECTORIES)] == TRAJECTORIES
    assert "generated (solid)" in texts and "real (dashed)" in texts
    assert f"real cells ({real.n_obs:,})" in texts
    for gax in _gene_axes(fig):
        gene = gax.get_title()
        lines = {ln.get_gid(): ln for ln in gax.lines}
        assert sum(g.startswith("reference:") for g in lines) == len(TRAJECTORIES)
        for traj in TRAJECTORIES:
            ref, own = lines[f"reference:{gene}:{traj}"], lines[f"gene:{gene}:{traj}"]
            assert ref.get_color() == own.get_color() and ref.get_linestyle() == "--"
            np.testing.assert_array_equal(ref.get_xdata(), TIMES)
        # the progenitor's mean is the same real cells for both fates
        first = [lines[f"reference:{gene}:{t}"].get_ydata()[0] for t in TRAJECTORIES]
        assert first[0] == pytest.approx(first[1])
        bands = [c.get_gid() for c in gax.collections if (c.get_gid() or "").startswith("reference-band:")]
        assert len(bands) == len(TRAJECTORIES)
    g0 = {ln.get_gid(): np.asarray(ln.get_ydata()) for ln in _ax(fig, "gene:g0").lines}
    # g0 belongs to the first fate's programme: its real trend rises there, not in the second
    assert g0["reference:g0:erythroid"][-1] > g0["reference:g0:myeloid"][-1] + 0.3
    assert any("real (dashed), mean ± s.e.\nper trajectory, from the blueprint" == t for t in _legend_texts(_ax(fig, "gene:g0")))
    _assert_same(real, snap)


def test_reference_pooled_without_blueprint(gen, real):
    gen, real, table = _blueprint_case(gen, real)
    del gen.uns["blueprint"]
    fig = pl.plot_trajectory(gen, reference=real, genes="g0")
    emb = _ax(fig, "embedding")
    assert not [ln for ln in emb.lines if (ln.get_gid() or "").startswith("reference-path:")]
    assert any("not split by trajectory: no blueprint" in t for t in _legend_texts(emb))
    (gax,) = _gene_axes(fig)
    gids = [ln.get_gid() for ln in gax.lines]
    assert gids.count("reference:g0:all cells") == 1 and len(gids) == len(TRAJECTORIES) + 1
    assert any("all cells pooled (no blueprint)" in t for t in _legend_texts(gax))
    # the blueprint passed explicitly (a Blueprint, e.g. model.blueprint) splits them again
    from scsynth.data import read_blueprint

    fig = pl.plot_trajectory(gen, reference=real, genes="g0", blueprint=read_blueprint(table))
    gids = [ln.get_gid() for ln in _gene_axes(fig)[0].lines]
    assert {g for g in gids if g.startswith("reference:")} == {f"reference:g0:{t}" for t in TRAJECTORIES}


def test_reference_blueprint_unusable_warns_and_pools(gen, real):
    gen, real, _ = _blueprint_case(gen, real)
    with pytest.warns(UserWarning, match=r"pooled.*no 'cell_type' column.*label_key"):
        fig = pl.plot_trajectory(gen, reference=real, genes="g0", label_key="cell_type")
    assert "reference:g0:all cells" in [ln.get_gid() for ln in _gene_axes(fig)[0].lines]
    real.obs["label"] = "other"
    with pytest.warns(UserWarning, match="no reference cell has a blueprint label"):
        pl.plot_trajectory(gen, reference=real)
    with pytest.raises(TypeError, match="blueprint"):
        pl.plot_trajectory(gen, reference=real, blueprint=[["a", "b"]])


def test_draws_into_the_users_axes(gen, tmp_path):
    gen.obsm["X_umap"] = np.random.default_rng(0).normal(size=(gen.n_obs, 2))
    fig, axes = plt.subplots(1, 2)
    n_figs = len(plt.get_fignums())
    out = pl.plot_trajectory(gen, genes="g0", ax=axes, save=tmp_path / "traj.png")
    assert out is fig and len(plt.get_fignums()) == n_figs
    emb, gax = axes
    assert emb.get_label() == "embedding" and gax.get_label() == "gene:g0"
    assert _paths(fig) == [f"path:{t}" for t in TRAJECTORIES]
    assert emb.collections and len(gax.lines) == len(TRAJECTORIES) and gax.collections
    assert gax.get_ylabel() == "mean log1p(norm.)"
    assert (tmp_path / "traj.png").stat().st_size > 1000
    # without genes one Axes is enough
    fig, ax = plt.subplots()
    assert pl.plot_trajectory(gen, ax=ax) is fig and ax.get_label() == "embedding"


def test_wrong_number_of_axes(gen):
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"pl.plot_trajectory draws 3 panels.*\['g0', 'g1'\].*got 2"):
        pl.plot_trajectory(gen, basis="pca", genes=["g0", "g1"], ax=axes)
    with pytest.raises(ValueError, match=r"draws 1 panel .*got 2"):
        pl.plot_trajectory(gen, basis="pca", ax=axes)
