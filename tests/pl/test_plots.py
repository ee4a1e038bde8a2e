"""Tests of scsynth.pl: real-vs-generated comparison and training-history plots."""

from __future__ import annotations

import re
from types import SimpleNamespace

import anndata as ad
import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from scipy import sparse

from scsynth import pl

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def real() -> ad.AnnData:
    pbmc = sc.datasets.pbmc68k_reduced()
    x = sparse.csr_matrix(np.expm1(pbmc.raw.X.toarray()).astype(np.float32))
    return ad.AnnData(X=x, obs=pbmc.obs[["bulk_labels"]].copy(), var=pd.DataFrame(index=pbmc.raw.var_names))


def _generated(
    real: ad.AnnData, *, dense: bool, seed: int = 1, n_cells: int = 400, depth: float = 2000
) -> ad.AnnData:
    """Poisson counts around resampled real profiles (scaled to ~``depth`` counts), same labels."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(real.n_obs, size=n_cells, replace=True)
    profiles = real.X[rows].toarray()
    depths = rng.lognormal(np.log(depth), 0.3, (n_cells, 1))
    profiles = profiles / profiles.sum(axis=1, keepdims=True) * depths
    counts = rng.poisson(profiles).astype(np.float32)
    x = counts if dense else sparse.csr_matrix(counts)
    obs = pd.DataFrame(
        {"bulk_labels": real.obs["bulk_labels"].to_numpy()[rows]}, index=[f"gen{i}" for i in range(n_cells)]
    )
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=real.var_names.copy()))


def _assert_png(fig: Figure, path) -> None:
    fig.savefig(path, dpi=40)
    assert path.stat().st_size > 1000
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def _axes_with_title(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


@pytest.mark.parametrize("dense", [False, True])
def test_real_vs_generated_pca_layout_and_inputs_untouched(real, tmp_path, dense):
    gen = _generated(real, dense=dense)
    real_x, gen_x = real.X.copy(), gen.X.copy()
    real_obs, gen_obs = real.obs.copy(), gen.obs.copy()
    real_keys = (set(real.obsm), set(real.uns), set(real.layers))

    fig = pl.real_vs_generated(real, gen, n_hvg=300, max_cells=300)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # origin embedding + 4 QC panels
    titles = _axes_with_title(fig)
    assert "Real vs generated" in titles and "Library size per cell" in titles
    assert all(ax.get_title() for ax in fig.axes)
    # origin panel: two scatter collections, 300 real + 300 generated (subsampled) points
    origin = fig.axes[titles.index("Real vs generated")]
    assert [len(c.get_offsets()) for c in origin.collections] == [300, 300]
    assert {t.get_text().split()[0] for t in origin.get_legend().get_texts()} == {"real", "generated"}
    # PCA axes say how much of the variance each component shows
    assert re.fullmatch(r"PC1 \(\d+\.\d% of variance\)", origin.get_xlabel())
    assert re.fullmatch(r"PC2 \(\d+\.\d% of variance\)", origin.get_ylabel())
    pc1, pc2 = (float(re.search(r"\((\d+\.\d)%", ax_label).group(1))
                for ax_label in (origin.get_xlabel(), origin.get_ylabel()))
    assert 0 < pc2 <= pc1 < 100
    # plain-word QC axes: the library size is the total per cell of the values as given (normalised here)
    lib_ax = fig.axes[titles.index("Library size per cell")]
    assert lib_ax.get_xlabel() == "log10 total per cell (values as given)"  # real cells are not counts
    assert fig.axes[titles.index("Mean–variance per gene")].get_xlabel() == (
        "log10 mean per gene (cells scaled to 20,000)")
    _assert_png(fig, tmp_path / "x.png")

    fig = pl.real_vs_generated(real, gen, labels_key="bulk_labels", n_hvg=300, max_cells=300)
    assert len(fig.axes) == 7  # origin + real-by-label + generated-by-label + 4 QC
    legend_labels = {t.get_text() for t in fig.axes[2].get_legend().get_texts()}
    assert legend_labels == set(real.obs["bulk_labels"].astype(str)) | set(gen.obs["bulk_labels"].astype(str))
    # the grey points behind each label panel are the other set's cells, and the panel says so
    for ax, other in ((fig.axes[1], "generated"), (fig.axes[2], "real")):
        notes = [t.get_text() for leg in ax.findobj(Legend) for t in leg.get_texts()]
        assert f"{other} cells (grey, for reference)" in notes
        grey = [c for c in ax.collections if c.get_label() == f"{other} cells (grey, for reference)"]
        assert len(grey) == 1 and len(grey[0].get_offsets()) == 300  # max_cells of the other set
    _assert_png(fig, tmp_path / "y.png")

    for before, after in ((real_x, real.X), (gen_x, gen.X)):
        diff = before - after
        assert (abs(diff).max() if sparse.issparse(diff) else np.abs(diff).max()) == 0
    pd.testing.assert_frame_equal(real.obs, real_obs)
    pd.testing.assert_frame_equal(gen.obs, gen_obs)
    assert (set(real.obsm), set(real.uns), set(real.layers)) == real_keys
    assert not gen.obsm and not gen.uns


def test_real_vs_generated_qc_uses_values_as_given(real):
    gen = _generated(real, dense=False, n_cells=200, depth=8000)
    fig = pl.real_vs_generated(real, gen, max_cells=200, n_hvg=200, library_size=1e6)
    lib_ax = fig.axes[_axes_with_title(fig).index("Library size per cell")]
    medians = {
        t.get_text().split()[0]: float(t.get_text().split("median ")[1].rstrip(")").replace(",", ""))
        for t in lib_ax.get_legend().get_texts()
    }
    # not normalised: real rows sum to ~2,000, generated counts to ~8,000
    real_med = np.median(np.asarray(real.X.sum(axis=1)).ravel())
    assert medians["real"] == pytest.approx(real_med, rel=0.05)
    assert medians["generated"] == pytest.approx(8000, rel=0.1)
    # the histogram itself is on log10 totals
    assert 2.5 < lib_ax.get_xlim()[0] < lib_ax.get_xlim()[1] < 4.5
    mean_var_ax = fig.axes[_axes_with_title(fig).index("Mean–variance per gene")]
    assert mean_var_ax.get_xlabel().endswith("1,000,000)")


def test_real_vs_generated_umap_and_layer(real, tmp_path):
    gen = _generated(real, dense=True, n_cells=200)
    real_l = real.copy()
    real_l.layers["expr"] = real_l.X.copy()
    real_l.X = sparse.csr_matrix(real_l.shape, dtype=np.float32)  # .X must be ignored
    gen.layers["expr"] = gen.X.copy()
    fig = pl.real_vs_generated(real_l, gen, layer="expr", basis="umap", labels_key="bulk_labels",
                               n_hvg=200, max_cells=200, seed=3)
    assert len(fig.axes) == 7
    assert fig.axes[0].get_xlabel() == "UMAP 1"
    offsets = fig.axes[0].collections[0].get_offsets()
    assert np.isfinite(offsets).all() and np.ptp(np.asarray(offsets)[:, 0]) > 0
    assert "X_umap" not in real_l.obsm and "X_umap" not in gen.obsm
    _assert_png(fig, tmp_path / "umap.png")


def test_real_vs_generated_matches_genes_by_name(real):
    gen = _generated(real, dense=True, n_cells=100)
    gen = gen[:, ::-1][:, :400].copy()  # reversed order, subset of genes
    fig = pl.real_vs_generated(real, gen, max_cells=100, n_hvg=100)
    assert len(fig.axes) == 5


def test_real_vs_generated_errors(real):
    gen = _generated(real, dense=False, n_cells=50)
    with pytest.raises(KeyError, match="not_a_key"):
        pl.real_vs_generated(real, gen, labels_key="not_a_key")
    gen_nolab = gen.copy()
    del gen_nolab.obs["bulk_labels"]
    with pytest.raises(KeyError, match="generated.obs"):
        pl.real_vs_generated(real, gen_nolab, labels_key="bulk_labels")
    renamed = gen.copy()
    renamed.var_names = [f"other{i}" for i in range(renamed.n_vars)]
    renamed.var_names.values[0] = real.var_names[0]
    with pytest.raises(ValueError, match=r"share 1 gene.*" + real.var_names[1]):
        pl.real_vs_generated(real, renamed)
    with pytest.raises(KeyError, match="nope"):
        pl.real_vs_generated(real, gen, layer="nope")
    with pytest.raises(ValueError, match="basis"):
        pl.real_vs_generated(real, gen, basis="tsne")  # type: ignore[arg-type]
    logged = gen.copy()
    logged.X = logged.X.toarray() - 1.0
    with pytest.raises(ValueError, match="negative"):
        pl.real_vs_generated(real, logged)


def _history(with_step: bool = True) -> dict[str, pd.DataFrame]:
    epochs = pd.Index(np.arange(6), name="epoch")

    def frame(key: str, values) -> pd.DataFrame:
        return pd.DataFrame({key: np.asarray(values, dtype=float)}, index=epochs)

    hist = {
        "critic_loss_train": frame("critic_loss_train", [-1.0, -2.0, np.nan, -3.0, -3.5, -3.8]),
        "wasserstein_train": frame("wasserstein_train", [1.0, 2.0, 2.5, 3.0, 3.1, 3.2]),
        "wasserstein_validation": frame("wasserstein_validation", [np.nan, 2.2, np.nan, 3.3, np.nan, 3.4]),
        "gradient_penalty_train": frame("gradient_penalty_train", [10.0, 1.0, 0.1, 0.05, 0.02, 0.01]),
        "generator_loss_train": frame("generator_loss_train", [0.5, 0.4, 0.3, 0.2, 0.1, 0.0]),
        "lr_generator": frame("lr_generator", [1e-4] * 6),
    }
    if with_step:
        hist["generator_step"] = frame("generator_step", [20, 40, 60, 80, 100, 120])
    return hist


def test_history_panels_and_x_axis(tmp_path):
    hist = _history()
    fig = pl.history(hist)
    assert isinstance(fig, Figure)
    titles = _axes_with_title(fig)
    # wasserstein train + validation share one panel; generator_step is the x axis, not a panel
    assert titles == ["critic loss", "wasserstein", "gradient penalty", "generator loss", "lr generator"]
    assert all(ax.get_xlabel() == "generator step" for ax in fig.axes)
    w_ax = fig.axes[1]
    train_line, val_line = w_ax.get_lines()
    np.testing.assert_array_equal(train_line.get_xdata(), [20, 40, 60, 80, 100, 120])
    np.testing.assert_array_equal(val_line.get_xdata(), [40, 80, 120])
    np.testing.assert_array_equal(val_line.get_ydata(), [2.2, 3.3, 3.4])
    assert [t.get_text() for t in w_ax.get_legend().get_texts()] == ["train", "validation (held-out cells)"]
    assert train_line.get_linestyle() == "-" and val_line.get_linestyle() == "--"
    critic = fig.axes[0].get_lines()[0]
    np.testing.assert_array_equal(critic.get_xdata(), [20, 40, 80, 100, 120])  # NaN epoch skipped
    assert fig.axes[2].get_yscale() == "log"  # positive, spans three decades
    _assert_png(fig, tmp_path / "history.png")


def test_history_pairs_scvi_style_validation_loss():
    # GeneSys (scvi-tools) logs train_loss / validation_loss: one "loss" panel with both curves
    epochs = pd.Index(np.arange(4), name="epoch")
    hist = {k: pd.DataFrame({k: v}, index=epochs) for k, v in {
        "train_loss": [5.0, 4.0, 3.5, 3.2],
        "validation_loss": [5.5, 4.6, 4.4, 4.5],
        "accuracy_validation": [0.5, 0.6, 0.7, 0.7],
        "lr-AdamW": [1e-3] * 4,
    }.items()}
    fig = pl.history(hist)
    assert _axes_with_title(fig) == ["loss", "accuracy", "lr-AdamW"]
    train_line, val_line = fig.axes[0].get_lines()
    np.testing.assert_array_equal(val_line.get_ydata(), [5.5, 4.6, 4.4, 4.5])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["train", "validation (held-out cells)"]
    assert fig.axes[0].get_xlabel() == "epoch"
    # without a validation key there is one curve and no legend
    fig = pl.history({k: hist[k] for k in ("train_loss",)})
    assert len(fig.axes[0].get_lines()) == 1 and fig.axes[0].get_legend() is None


def test_history_keys_epoch_axis_and_model_object():
    fig = pl.history(SimpleNamespace(history=_history(with_step=False)), keys=["wasserstein_train"])
    assert len(fig.axes) == 1
    assert fig.axes[0].get_xlabel() == "epoch"
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), np.arange(6))
    keys = ["wasserstein_validation", "generator_step", "lr_generator"]
    fig = pl.history(_history(), keys=keys, figsize=(6, 3))
    assert len(fig.axes) == 3
    assert tuple(fig.get_size_inches()) == (6, 3)


def test_history_errors():
    with pytest.raises(KeyError, match="available keys.*wasserstein_train"):
        pl.history(_history(), keys=["wassertein_train"])
    with pytest.raises(ValueError, match="train the model first"):
        pl.history({})
    with pytest.raises(ValueError, match="train the model first"):
        pl.history(SimpleNamespace(history=None))
    with pytest.raises(ValueError, match="train the model first"):
        pl.history(None)


def test_show_only_when_asked(monkeypatch):
    called = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: called.append(1))
    pl.history(_history())
    assert not called
    pl.history(_history(), show=True)
    assert called == [1]


def test_pl_does_not_import_model_code():
    import ast
    from pathlib import Path

    for path in Path(pl.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("scsynth.model", "scsynth.train")), (path.name, name)
                assert not (node.__class__ is ast.ImportFrom and node.level and name.split(".")[0]
                            in ("model", "train", "module", "nn")), (path.name, name)


# -- figure options shared by every plot: ax=, save=, show= --------------------------------------------


def _markers_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n_genes, n_sets = 30, 6
    table = pd.DataFrame({
        "feature": [f"g{i}" for i in range(n_genes)] + [f"SET_{k}" for k in range(n_sets)],
        "kind": pd.Categorical(["gene"] * n_genes + ["pathway"] * n_sets, categories=["gene", "pathway"]),
        "attribution": rng.normal(size=n_genes + n_sets),
        "log2fc": rng.normal(size=n_genes + n_sets),
        "pval": rng.uniform(size=n_genes + n_sets),
    })
    table["fdr"] = np.minimum(1.0, table["pval"] * 2)
    table.attrs["params"] = {"groupby": "group", "group": "type 1", "reference": ["type 0"], "seed": 0}
    return table


def test_history_and_markers_draw_into_the_users_axes(tmp_path):
    keys = ["wasserstein_train", "wasserstein_validation", "generator_loss_train"]
    fig, axes = plt.subplots(1, 2)
    out = pl.history(_history(), keys=keys, ax=axes)
    assert out is fig and len(fig.axes) == 2  # no new figure, no axes added
    assert [len(a.get_lines()) for a in axes] == [2, 1]
    assert [a.get_title() for a in axes] == ["wasserstein", "generator loss"]

    fig, axes = plt.subplots(1, 2)
    n_figs = len(plt.get_fignums())
    out = pl.markers(_markers_table(), ax=axes, n_top=5, save=tmp_path / "markers.png")
    assert out is fig and len(plt.get_fignums()) == n_figs
    assert [len(a.patches) for a in axes] == [5, 5]
    assert axes[0].get_title() == "top genes of type 1"
    assert (tmp_path / "markers.png").stat().st_size > 1000


def test_save_writes_the_figure(tmp_path):
    fig = pl.history(_history(), save=tmp_path / "h.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "h.png").stat().st_size > 1000
    pl.history(_history(), keys=["lr_generator"], save=str(tmp_path / "h.pdf"))
    assert (tmp_path / "h.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(TypeError, match="save"):
        pl.history(_history(), save=1)


def test_a_single_axes_and_wrong_numbers_of_axes():
    fig, ax = plt.subplots()
    assert pl.history(_history(), keys=["lr_generator"], ax=ax) is fig
    assert len(ax.get_lines()) == 1
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"pl.history draws 5 panels.*needs 5 Axes, got 2"):
        pl.history(_history(), ax=axes)
    with pytest.raises(ValueError, match=r"pl.markers draws 2 panels.*'gene', 'pathway'.*got 1"):
        pl.markers(_markers_table(), ax=axes[0])
    genes_only = _markers_table().query("kind == 'gene'")
    with pytest.raises(ValueError, match=r"pl.markers draws 1 panel .*got 2"):
        pl.markers(genes_only, ax=axes)
    with pytest.raises(TypeError, match="Axes"):
        pl.history(_history(), keys=["lr_generator"], ax="left")


def test_markers_params_come_from_uns_without_attrs():
    from scsynth.pl._markers import markers_params

    table = _markers_table()
    adata = ad.AnnData(np.zeros((2, 2), dtype=np.float32))
    adata.uns["m"] = table.copy()
    adata.uns["m"].attrs = {}  # as read back from h5ad
    adata.uns["m_params"] = {"group": "type 1", "reference": np.array(["type 0"], dtype=object),
                             "seed": np.int64(0), "groupby": "group"}
    assert markers_params(adata, key="m") == table.attrs["params"]
    fig = pl.markers(adata, key="m", n_top=3)
    assert fig.axes[0].get_title() == "top genes of type 1"
    del adata.uns["m_params"]
    assert pl.markers(adata, key="m", n_top=3).axes[0].get_title() == "top genes"


def test_real_vs_generated_draws_into_the_users_axes(real, tmp_path):
    gen = _generated(real, dense=False, n_cells=100)
    fig, axes = plt.subplots(1, 5)
    out = pl.real_vs_generated(real, gen, n_hvg=100, max_cells=100, ax=axes, save=tmp_path / "rvg.png")
    assert out is fig and len(fig.axes) == 5
    assert axes[0].get_title() == "Real vs generated" and len(axes[0].collections) == 2
    assert [a.get_title() for a in axes[1:]][0] == "Library size per cell"
    assert all(a.patches or a.collections for a in axes[1:])
    assert (tmp_path / "rvg.png").stat().st_size > 1000
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"pl.real_vs_generated draws 7 panels.*needs 7 Axes, got 2"):
        pl.real_vs_generated(real, gen, labels_key="bulk_labels", ax=axes)
    # axes of a subfigure: the root figure comes back
    root = plt.figure()
    sub = root.subfigures(1, 2)[1]
    out = pl.real_vs_generated(real, gen, n_hvg=100, max_cells=100, ax=sub.subplots(1, 5))
    assert out is root


def test_pl_has_no_private_cross_module_imports():
    import ast
    from pathlib import Path

    for path in Path(pl.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            ours = node.level or (node.module or "").startswith("scsynth")
            if ours and node.module is not None:  # `from . import _module` imports a module: allowed
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, node.module, private)


def test_history_of_a_named_stage(trained_groundgan):
    fig = pl.history(trained_groundgan, stage="controller")
    assert len(fig.axes) >= 1
    with pytest.raises(KeyError, match="'generator'"):
        pl.history(trained_groundgan, stage="critic")
    with pytest.raises(TypeError, match="histories_"):
        pl.history({"a": None}, stage="controller")
