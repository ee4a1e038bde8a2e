"""pl.realism_curve: realism checks against the generator step, the kept one marked."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import scsynth
from scsynth.model import ScGAN

from ..conftest import SMALL


@pytest.fixture(scope="module")
def monitored(_immune):
    adata = _immune.copy()
    ScGAN.setup_anndata(adata)
    model = ScGAN(adata, **SMALL)
    model.train(max_steps=4, batch_size=32, train_size=0.8, monitor_realism=2, enable_progress_bar=False)
    model.train(max_steps=2, batch_size=32, train_size=0.8, monitor_realism=2, enable_progress_bar=False)
    return model


def test_curve_plots_every_check_and_marks_the_kept_one(monitored, tmp_path):
    fig = scsynth.pl.realism_curve(monitored, save=tmp_path / "curve.png")
    assert isinstance(fig, Figure) and (tmp_path / "curve.png").is_file()
    (ax,) = fig.axes
    curve, star = ax.lines[0], ax.lines[1]
    np.testing.assert_array_equal(curve.get_xdata(), [2, 4, 6])  # the second train() continues the steps
    frame = monitored.histories_["train"]["realism_validation"]
    np.testing.assert_allclose(curve.get_ydata(), frame["realism_validation"])
    best = monitored.realism_best_["train"]
    assert star.get_xdata()[0] == best["generator_step"] + 4 and star.get_ydata()[0] == best["value"]
    assert ax.get_xlabel() == "generator step" and "MMD" in ax.get_ylabel()
    plt.close(fig)


def test_curve_draws_into_given_axes_and_explains_missing_checks(monitored, counts):
    fig, ax = plt.subplots()
    assert scsynth.pl.realism_curve(monitored, ax=ax, stage="train") is fig and len(ax.lines) >= 2
    plt.close(fig)
    with pytest.raises(KeyError, match="stage"):
        scsynth.pl.realism_curve(monitored, stage="controller")
    ScGAN.setup_anndata(counts)
    plain = ScGAN(counts, **SMALL)
    plain.train(max_steps=2, batch_size=32, enable_progress_bar=False)
    with pytest.raises(ValueError, match="monitor_realism"):
        scsynth.pl.realism_curve(plain)
