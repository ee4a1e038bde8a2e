"""Fixtures of the benchmark tests."""

from __future__ import annotations

import sys
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # appended: shadows nothing


@pytest.fixture
def split():
    """200 Poisson cells of two labels, 40 held out: a ``realism.Split`` to train on in seconds."""
    from realism import Split

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], 100)
    means = np.where(labels[:, None] == "a", 2.0, 6.0) * rng.uniform(0.5, 1.5, 30)
    genes = pd.DataFrame(index=[f"g{i}" for i in range(30)])
    adata = anndata.AnnData(rng.poisson(means).astype(np.float32), var=genes)
    adata.obs["cell_type"] = pd.Categorical(labels)
    held = rng.permutation(200)[:40]
    test = np.isin(np.arange(200), held)
    return Split(adata[~test].copy(), adata[test].copy(), "cell_type", True)
