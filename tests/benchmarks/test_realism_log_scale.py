"""The classifier protocols of benchmarks/realism_log_scale.py on tiny data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from realism_log_scale import PROTOCOLS, protocols, report


def _cells(rng, n, means):
    x = rng.poisson(means, (n, len(means))).astype(float) + 1.0
    return x / x.sum(1, keepdims=True) * 1e4


def test_protocols_tell_apart_only_what_differs():
    rng = np.random.default_rng(0)
    means = rng.uniform(1, 20, 30)
    real, same = _cells(rng, 120, means), _cells(rng, 120, means)
    shifted = _cells(rng, 120, means * np.r_[np.full(15, 3.0), np.ones(15)])
    alike = protocols(real, same, repeats=3, fold_repeats=1, seed=0)
    apart = protocols(real, shifted, repeats=3, fold_repeats=1, seed=0)
    assert list(alike) == PROTOCOLS
    assert all(0.3 < alike[p] < 0.7 for p in PROTOCOLS), alike
    assert all(apart[p] > 0.95 for p in PROTOCOLS), apart


def test_report_gives_medians_and_per_seed_values():
    rows = [{"seed": s, "set": name, **dict.fromkeys(PROTOCOLS, v)}
            for s, name, v in [(0, "real vs real", 0.5), (1, "real vs real", 0.52), (0, "ScGAN", 0.9),
                               (1, "ScGAN", 0.8)]]
    text = report(rows)
    assert "0.85 (0.900 / 0.800)" in text and text.index("real vs real") < text.index("ScGAN")


def test_generated_sets_train_once_then_reuse_the_snapshots(split, tmp_path, monkeypatch):
    import realism_log_scale

    import scsynth

    scsynth.settings.seed = 0
    variants = {"ScGAN log1p": ("ScGAN", {"critic_input": "log1p"})}
    sets = realism_log_scale.generated_sets(split, ["ScGAN"], tmp_path, 2, seed=0, variants=variants,
                                            uncalibrated=True)
    assert list(sets) == ["real vs real", "NB copula", "ScGAN", "ScGAN, uncalibrated", "ScGAN log1p",
                          "ScGAN log1p, uncalibrated"]
    assert not np.array_equal(sets["ScGAN"].X.toarray(), sets["ScGAN, uncalibrated"].X.toarray())
    assert all(cells.n_obs == split.held_out.n_obs for cells in sets.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ScGAN_log1p_s0_2.pt", "ScGAN_s0_2.pt"]

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although the snapshot was there")

    monkeypatch.setattr(realism_log_scale, "train_snapshots", no_training)
    again = realism_log_scale.generated_sets(split, ["ScGAN"], tmp_path, 2, seed=0, variants=variants)
    np.testing.assert_array_equal(again["ScGAN log1p"].X.toarray(), sets["ScGAN log1p"].X.toarray())
