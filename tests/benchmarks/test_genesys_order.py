"""The time-step order measure of benchmarks/genesys.py: composition-matched draws and bootstrap intervals."""

from __future__ import annotations

import sys
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import stats

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing
from genesys import matched, rho_interval


def _cells(labels: list[str], times: list[int]) -> anndata.AnnData:
    adata = anndata.AnnData(np.zeros((len(labels), 2), dtype=np.float32))
    adata.obs["label"], adata.obs["time"] = labels, times
    return adata


def test_matched_draws_factor_times_each_label_time_group():
    generated = _cells(["a"] * 50 + ["b"] * 50, [1] * 25 + [2] * 25 + [1] * 50)
    real = _cells(["a", "a", "a", "b"], [1, 2, 2, 1])
    for factor in (1, 10):
        cells = matched(generated, real, seed=0, factor=factor)
        groups = (cells.obs["label"].astype(str) + "@" + cells.obs["time"].astype(str)).value_counts()
        assert groups.to_dict() == {"a@2": 2 * factor, "a@1": factor, "b@1": factor}


def test_matched_is_reproducible_and_skips_groups_it_cannot_draw():
    generated = _cells(["a"] * 10, [1] * 10)
    real = _cells(["a", "c"], [1, 1])  # no generated c@1
    first, again = matched(generated, real, seed=3, factor=4), matched(generated, real, seed=3, factor=4)
    assert first.n_obs == 4
    assert first.obs_names.tolist() == again.obs_names.tolist()


@pytest.mark.parametrize("noise", [0.5, 3.0])
def test_rho_interval_covers_the_estimate_and_narrows_with_more_cells(noise):
    rng = np.random.default_rng(0)

    def draw(n):
        time = np.repeat(np.arange(1, 5), n // 4).astype(float)
        return time, time + rng.normal(0, noise, len(time))

    small, large = draw(40), draw(4000)
    low, high = rho_interval(*small, seed=0)
    assert low <= stats.spearmanr(*small).statistic <= high
    low_large, high_large = rho_interval(*large, seed=0, n_boot=200)
    assert high_large - low_large < (high - low) / 3
    assert np.array_equal(rho_interval(*small, seed=0), rho_interval(*small, seed=0))
    assert pd.notna(low_large)
