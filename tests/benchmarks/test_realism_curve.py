"""The snapshot machinery of benchmarks/realism_curve.py on tiny labelled data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from realism_curve import figure, load_snapshots, report, train_snapshots

import scsynth


def test_snapshots_are_the_weights_at_each_step_and_round_trip(split, tmp_path):
    scsynth.settings.seed = 0
    model, weights = train_snapshots(split, "cscGAN", 6, [2, 4, 6], seed=0)
    assert sorted(weights) == [2, 4, 6]
    key = "generator.output.weight"
    assert not torch.equal(weights[2][key], weights[6][key])  # copies, not references to the live weights
    assert torch.equal(weights[6][key], model.module.state_dict()[key])  # the last one is the trained model
    path = tmp_path / "cscGAN_s0_6.pt"
    torch.save(weights, path)
    rebuilt, loaded = load_snapshots(split, "cscGAN", path, seed=0)
    assert rebuilt.module.conditional and sorted(loaded) == [2, 4, 6]
    assert torch.equal(loaded[4][key], weights[4][key])
    np.testing.assert_array_equal(np.asarray(rebuilt.train_indices), np.asarray(model.train_indices))
    with pytest.raises(FileNotFoundError, match="--save-snapshots"):
        load_snapshots(split, "cscGAN", tmp_path / "missing.pt", seed=0)


def test_report_pairs_the_models_by_seed_and_step():
    runs = [{"model": m, "seed": s, "step": 800, "budget_steps": 2000, "repeats": 5, "rf_auroc": v,
             "rf_auroc_control": 0.52, "mmd/ctrl": 1.0, "marker_lfc_ratio": 0.9}
            for m, s, v in [("ScGAN", 0, 0.60), ("cscGAN", 0, 0.55), ("ScGAN", 1, 0.50), ("cscGAN", 1, 0.53)]]
    info = {"processor": "x86_64", "cpus": 2, "torch": "2"}
    text = report(runs, info)
    assert "-0.050 / +0.030" in text and "1 of 2" in text
    assert "0.55 (0.52)" in text  # ScGAN's median RF AUROC next to the control


@pytest.mark.parametrize("steps", [[2000], [400, 2000]])
def test_figure_draws_one_step_per_seed_and_several_steps_as_curves(steps, tmp_path):
    runs = [{"model": m, "seed": s, "step": t, "rf_auroc": 0.5 + 0.01 * s, "rf_auroc_control": 0.52}
            for m in ("ScGAN", "cscGAN") for s in range(3) for t in steps]
    fig = figure(runs, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    expected = "seed (split and training)" if len(steps) == 1 else "generator step (of one training)"
    assert ax.get_xlabel() == expected
    ax_labels = ax.get_legend_handles_labels()[1]
    assert "ScGAN (median)" in ax_labels and "real vs real" in ax_labels
    assert ("ScGAN" in ax_labels) == (len(steps) == 1)  # per-seed points: labelled when one step is scored
    if len(steps) == 1:
        assert list(ax.get_xticks()) == [0, 1, 2]  # whole seeds on the axis


def test_variant_snapshots_rebuild_the_variant(split, tmp_path):
    # --variant: a model built with other ScGAN options, its snapshots loaded into the same variant
    scsynth.settings.seed = 0
    model, weights = train_snapshots(split, "ScGAN", 3, [3], seed=0, output_noise="poisson")
    assert model.output_noise == "poisson" and model.module.count_noise.is_fitted
    path = tmp_path / "ScGAN,_Poisson_output_s0_3.pt"
    torch.save(weights, path)
    rebuilt, loaded = load_snapshots(split, "ScGAN", path, seed=0, output_noise="poisson")
    rebuilt.module.load_state_dict(loaded[3])
    assert rebuilt.output_noise == "poisson"
    assert torch.equal(rebuilt.module.count_noise.units, model.module.count_noise.units)
