"""One-call realism report of generated cells against real cells, with a real-vs-real control."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks

from scsynth._settings import settings

from ._classifier import rf_auroc
from ._gene_stats import centroid_distances, gene_statistics_agreement
from ._lisi import milisi
from ._mmd import mmd
from ._preprocess import dense_rows, prepare

# metric name -> (ideal value, which direction is better)
METRICS: dict[str, tuple[str, str]] = {
    "rf_auroc": ("0.5", "closer to 0.5"),
    "mmd": ("0", "lower"),
    "euclidean_centroid": ("0", "lower"),
    "cosine_centroid": ("0", "lower"),
    "milisi": ("2", "higher"),
    "gene_mean_corr": ("1", "higher"),
    "gene_var_corr": ("1", "higher"),
    "gene_zero_frac_corr": ("1", "higher"),
    "gene_corr_corr": ("1", "higher"),
}


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _compare(x: np.ndarray, y: np.ndarray, *, seed: int, rf_trees: int, n_jobs: int) -> dict[str, float]:
    """All metrics of ``y`` against the real sample ``x`` (normalised HVG expression)."""
    return {
        "rf_auroc": rf_auroc(x, y, n_estimators=rf_trees, seed=seed, n_jobs=n_jobs),
        "mmd": mmd(x, y),  # bandwidths from the real sample x, identical for metric and control
        **centroid_distances(x, y),
        "milisi": milisi(x, y, seed=seed),
        **gene_statistics_agreement(x, y),
    }


def _summarise(values: list[dict[str, float]]) -> tuple[pd.Series, pd.Series]:
    table = pd.DataFrame(values, columns=list(METRICS))
    sd = table.std(ddof=1) if len(table) > 1 else pd.Series(np.nan, index=table.columns)
    return table.mean(), sd


def realism(
    real: ad.AnnData,
    generated: ad.AnnData,
    *,
    n_obs: int = 1000,
    n_hvg: int = 1000,
    library_size: float = 20000,
    layer: str | None = None,
    n_repeats: int = 5,
    control: bool = True,
    seed: int = 0,
    n_jobs: int = -1,
    rf_trees: int = 1000,
) -> pd.DataFrame:
    """Compare generated cells with real cells on nine realism metrics.

    Follows the scGAN / GRouNdGAN evaluation: every cell is normalised to ``library_size``, the top
    ``n_hvg`` Seurat-flavour highly variable genes of the real data are kept in both sets, and each
    repeat compares ``m = min(n_obs, n_real // 2, n_generated)`` real cells (A) with ``m``
    generated cells (G). The control compares A with ``m`` other real cells (B), so ``ratio`` shows
    how far the generated cells are from the real-vs-real noise level.

    Parameters
    ----------
    real
        Real cells (counts or non-negative normalised expression, dense or sparse).
    generated
        Generated cells; must contain every gene of ``real`` (matched by name, extras ignored).
    n_obs
        Maximum cells per side in each comparison.
    n_hvg
        Highly variable genes chosen on ``real``; all genes when there are fewer.
    library_size
        Total each cell is scaled to.
    layer
        Layer read from both objects; ``None`` reads ``.X``.
    n_repeats
        Independent resamplings averaged in ``value`` / ``control``.
    control
        Also compute each metric between two disjoint halves of the real cells.
    seed
        Seed of the resampling, the PCAs and the random forests; results are deterministic.
    n_jobs
        Parallel jobs of the random forest (``-1``: all cores).
    rf_trees
        Trees of the random forest (fewer is faster and noisier).

    Returns
    -------
    One row per metric with columns ``metric``, ``value``, ``value_sd``, ``control``, ``control_sd``,
    ``ratio`` (value / control), ``ideal``, ``better`` and ``n_cells`` (``m``). The settings are in
    ``df.attrs["params"]``.

    Examples
    --------
    >>> import numpy as np, scanpy as sc
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> real = sc.AnnData(np.expm1(adata.raw.X.toarray()), var=adata.raw.var)
    >>> perm = np.random.default_rng(0).permutation(real.n_obs)
    >>> df = realism(real[perm[:350]], real[perm[350:]], n_obs=100, n_repeats=1, rf_trees=50)
    >>> bool(df.set_index("metric").loc["rf_auroc", "value"] < 0.75)
    True
    """
    n_obs = _check_int("n_obs", n_obs, 1)
    n_hvg = _check_int("n_hvg", n_hvg, 1)
    n_repeats = _check_int("n_repeats", n_repeats, 1)
    rf_trees = _check_int("rf_trees", rf_trees, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(library_size, bool) or not isinstance(library_size, int | float | np.number):
        raise TypeError(f"`library_size` must be a number, got {type(library_size).__name__}.")
    if not np.isfinite(library_size) or library_size <= 0:
        raise ValueError(f"`library_size` must be a positive number, got {library_size!r}.")

    x_real, x_gen, genes = prepare(real, generated, n_hvg=n_hvg, library_size=library_size, layer=layer)
    n_real, n_gen = x_real.shape[0], x_gen.shape[0]
    m = min(n_obs, n_real // 2, n_gen)
    if m < 10:
        raise ValueError(
            f"Too few cells: real has {n_real} and generated {n_gen}, giving {m} cells per side "
            "(min(n_obs, n_real // 2, n_generated)); at least 10 are needed, so provide at least "
            "20 real and 10 generated cells."
        )

    metric_runs: list[dict[str, float]] = []
    control_runs: list[dict[str, float]] = []
    seeds = np.random.SeedSequence(seed).spawn(n_repeats)
    # the matrices are small (2m x n_hvg): threaded BLAS only oversubscribes the cores the forest
    # uses and was several times slower on busy machines
    with threadpool_limits(limits=1, user_api="blas"):
        for seq in tqdm(seeds, desc="realism", disable=not settings.progress):
            rng = np.random.default_rng(seq)
            perm = rng.permutation(n_real)
            a = dense_rows(x_real, perm[:m])
            g = dense_rows(x_gen, rng.choice(n_gen, size=m, replace=False))
            rep_seed = int(rng.integers(2**31 - 1))
            metric_runs.append(_compare(a, g, seed=rep_seed, rf_trees=rf_trees, n_jobs=n_jobs))
            if control:
                b = dense_rows(x_real, perm[m : 2 * m])
                control_runs.append(_compare(a, b, seed=rep_seed, rf_trees=rf_trees, n_jobs=n_jobs))

    value, value_sd = _summarise(metric_runs)
    if control:
        ctrl, ctrl_sd = _summarise(control_runs)
    else:
        ctrl = ctrl_sd = pd.Series(np.nan, index=list(METRICS))
    ratio = value / ctrl.where(ctrl != 0)
    df = pd.DataFrame(
        {
            "metric": list(METRICS),
            "value": value.to_numpy(),
            "value_sd": value_sd.to_numpy(),
            "control": ctrl.to_numpy(),
            "control_sd": ctrl_sd.to_numpy(),
            "ratio": ratio.to_numpy(),
            "ideal": [ideal for ideal, _ in METRICS.values()],
            "better": [better for _, better in METRICS.values()],
            "n_cells": m,
        }
    )
    df.attrs["params"] = {
        "n_obs": n_obs,
        "m": m,
        "n_hvg": n_hvg,
        "n_genes_used": len(genes),
        "library_size": library_size,
        "n_repeats": n_repeats,
        "seed": seed,
        "control": control,
        "rf_trees": rf_trees,
        "layer": layer,
    }
    return df
