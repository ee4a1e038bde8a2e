import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import scsynth
from scsynth.model._perturbation import perturbation_effects

N_GENES, N_TARGETS = 60, 15


def _knockout(seed: int = 0, name: str = "KO(TF0)") -> ad.AnnData:
    """Paired cells of a hand-made knockout of TF0 (targets g0..g14), effects from the real effect table."""
    rng = np.random.default_rng(seed)
    genes = ["TF0", "TF1"] + [f"g{i}" for i in range(N_GENES - 2)]
    edges = pd.DataFrame({"source": ["TF0"] * N_TARGETS + ["TF1"] * 5,
                          "target": [f"g{i}" for i in range(N_TARGETS)] + [f"g{i}" for i in range(20, 25)]})
    control = rng.gamma(2.0, 5.0, size=(200, N_GENES)).astype(np.float32)
    control *= 1000 / control.sum(1, keepdims=True)
    pre_lsn = control.copy()
    pre_lsn[:, 0] = 0.0
    factors = np.linspace(0.2, 1.8, N_TARGETS)  # g7 has a factor of 1: no effect at all
    pre_lsn[:, 2:2 + N_TARGETS] *= factors
    perturbed = pre_lsn * (1000 / pre_lsn.sum(1, keepdims=True))
    effects = perturbation_effects(control, perturbed, pre_lsn, genes=genes, edges=edges,
                                   perturbed_tfs=["TF0"])
    out = ad.AnnData(np.vstack([control, perturbed]), var=pd.DataFrame(index=genes))
    out.obs["condition"] = pd.Categorical(["control"] * 200 + [name] * 200)
    out.uns["perturbation"] = {"name": name, "perturbed": ["TF0"], "knockout": ["TF0"], "overexpress": {},
                               "set_to": {}, "n_pairs": 200, "seed": seed, "effects": effects}
    return out


@pytest.fixture
def ko():
    return _knockout()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_perturbation_plot_has_a_volcano_and_a_targets_panel(ko):
    fig = scsynth.pl.perturbation(ko, n_top=5)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    volcano, box = fig.axes
    assert fig._suptitle.get_text() == "KO(TF0)"
    # the volcano shows every gene once: targets, other genes and the perturbed TF
    assert sum(len(c.get_offsets()) for c in volcano.collections) == N_GENES
    legend = [t.get_text() for t in volcano.get_legend().get_texts()]
    assert f"direct targets ({N_TARGETS})" in legend and f"other genes ({N_GENES - 1 - N_TARGETS})" in legend
    assert "perturbed TF" in legend and "FDR = 0.05" in legend
    # labels: the top 5 genes by |effect| (all direct targets here) and the perturbed TF
    effects = ko.uns["perturbation"]["effects"]
    top = effects.drop(index="TF0")["lfc_pre_lsn"].abs().sort_values(ascending=False).index[:5]
    labels = {t.get_text() for t in volcano.texts}
    assert labels == {*top, "TF0"}
    assert set(top) <= set(effects.index[effects["direct_target"]])
    # the second panel compares pre- and post-LSN |lfc|: non-targets are exactly 0 only before LSN
    assert [t.get_text() for t in box.get_xticklabels()] == ["pre-LSN\n(causal)", "post-LSN\n(observed)"]
    shares = [t.get_text() for t in box.texts]
    assert shares[1] == "100% zero" and shares[3] == "0% zero"
    assert shares[0] == f"{1 / N_TARGETS:.0%} zero"  # g7 (factor 1) is a target left unchanged
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders with the Agg backend


def test_perturbation_plot_options(ko):
    fig = scsynth.pl.perturbation(ko, effect="lfc", n_top=0, fdr=0.01, title="my knockout", figsize=(8, 3))
    volcano = fig.axes[0]
    assert fig._suptitle.get_text() == "my knockout"
    assert np.allclose(fig.get_size_inches(), (8, 3))
    assert {t.get_text() for t in volcano.texts} == {"TF0"}
    assert "after library-size" in volcano.get_xlabel()
    assert "FDR = 0.01" in [t.get_text() for t in volcano.get_legend().get_texts()]
    # the x values of the volcano are the post-LSN fold changes
    xs = np.concatenate([c.get_offsets()[:, 0] for c in volcano.collections])
    np.testing.assert_allclose(np.sort(xs), np.sort(ko.uns["perturbation"]["effects"]["lfc"].to_numpy()))


def test_perturbation_plot_leaves_the_input_unchanged(ko):
    before = ko.uns["perturbation"]["effects"].copy()
    scsynth.pl.perturbation(ko)
    pd.testing.assert_frame_equal(ko.uns["perturbation"]["effects"], before)


def test_perturbation_plot_errors(ko):
    plain = ad.AnnData(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(KeyError, match=r"uns\['perturbation'\]\['effects'\].*model.perturb.*tl.perturb"):
        scsynth.pl.perturbation(plain)
    with pytest.raises(KeyError, match=r"Unknown effect 'pval'.*\['lfc', 'lfc_pre_lsn'\]"):
        scsynth.pl.perturbation(ko, effect="pval")
    broken = ko.copy()
    info = broken.uns["perturbation"]
    info["effects"] = info["effects"].drop(columns="direct_target")
    with pytest.raises(KeyError, match="direct_target"):
        scsynth.pl.perturbation(broken)
    with pytest.raises(ValueError, match="n_top"):
        scsynth.pl.perturbation(ko, n_top=-1)
    with pytest.raises(ValueError, match="fdr"):
        scsynth.pl.perturbation(ko, fdr=0)
    with pytest.raises(TypeError, match="model.perturb"):
        scsynth.pl.perturbation(ko.uns["perturbation"]["effects"])


def test_perturbation_plot_draws_into_the_users_axes(ko, tmp_path):
    fig, axes = plt.subplots(1, 2)
    out = scsynth.pl.perturbation(ko, ax=axes, save=tmp_path / "ko.png")
    assert out is fig and len(fig.axes) == 2
    volcano, box = axes
    assert sum(len(c.get_offsets()) for c in volcano.collections) == N_GENES
    assert box.patches or box.collections
    # the title goes on the volcano panel, not over the user's figure
    assert fig._suptitle is None and volcano.get_title() == "KO(TF0)"
    assert (tmp_path / "ko.png").stat().st_size > 1000
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"pl.perturbation draws 2 panels.*volcano.*got 1"):
        scsynth.pl.perturbation(ko, ax=ax)
    with pytest.raises(ValueError, match="got 3"):
        scsynth.pl.perturbation(ko, ax=plt.subplots(1, 3)[1])
