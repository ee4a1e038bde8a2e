"""One-call realism report of generated cells against real cells, with a real-vs-real control."""

from __future__ import annotations

from functools import partial

import anndata as ad
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks

from scsynth._settings import settings

from ._checks import check_choice, check_int, check_positive_number
from ._classifier import rf_auroc
from ._gene_stats import centroid_distances, gene_statistics_agreement
from ._lisi import milisi
from ._mmd import mmd
from ._preprocess import SCALES, dense_rows, prepare, to_scale

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


# How each metric's verdict is read against the real-vs-real control, with the "good" and "fair" limits
# (anything beyond "fair" is "poor"); docs/metrics.md explains each choice.
#   "auroc":   excess distance from 0.5 over the control's, |value - 0.5| - |control - 0.5|
#   "ratio":   value / control (distances: the control is the sampling-noise level)
#   "deficit": control - value (a score that the control puts near its best)
VERDICT_RULES: dict[str, tuple[str, float, float]] = {
    "rf_auroc": ("auroc", 0.05, 0.15),
    "mmd": ("ratio", 2.0, 5.0),  # a squared distance: ratios 2 and 5 are ~1.4 and ~2.2 on a distance scale
    "euclidean_centroid": ("ratio", 1.5, 3.0),
    "cosine_centroid": ("ratio", 1.5, 3.0),
    "milisi": ("deficit", 0.1, 0.3),
    "gene_mean_corr": ("deficit", 0.02, 0.08),
    "gene_var_corr": ("deficit", 0.02, 0.08),
    "gene_zero_frac_corr": ("deficit", 0.02, 0.08),
    "gene_corr_corr": ("deficit", 0.05, 0.2),
}
VERDICTS = ("good", "fair", "poor")
NO_VERDICT = "n/a"

# metric -> (what it looks at, {verdict: how it reads}); filled into one sentence per metric by _summary
_PHRASES: dict[str, dict[str, str]] = {
    "rf_auroc": {
        "good": "Generated cells are hard to tell from real ones",
        "fair": "Generated cells can partly be told from real ones",
        "poor": "Generated cells are easy to tell from real ones",
    },
    "mmd": {
        "good": "The distribution of generated cells is as close to the real one as sampling noise allows",
        "fair": "The distribution of generated cells differs somewhat from the real one",
        "poor": "The distribution of generated cells differs clearly from the real one",
    },
    "euclidean_centroid": {
        "good": "The average generated cell is as close to the average real cell as sampling noise allows",
        "fair": "The average generated cell is somewhat off the average real cell",
        "poor": "The average generated cell is far from the average real cell",
    },
    "cosine_centroid": {
        "good": "The average generated expression profile points the same way as the real one",
        "fair": "The average generated expression profile points somewhat away from the real one",
        "poor": "The average generated expression profile points clearly away from the real one",
    },
    "milisi": {
        "good": "Generated and real cells mix well among each other's neighbours",
        "fair": "Generated and real cells mix only partly among each other's neighbours",
        "poor": "Generated and real cells mostly stay apart from each other",
    },
    "gene_mean_corr": {
        "good": "Per-gene mean expression agrees with the real cells",
        "fair": "Per-gene mean expression roughly agrees with the real cells",
        "poor": "Per-gene mean expression departs from the real cells",
    },
    "gene_var_corr": {
        "good": "Per-gene variances agree with the real cells",
        "fair": "Per-gene variances roughly agree with the real cells",
        "poor": "Per-gene variances depart from the real cells",
    },
    "gene_zero_frac_corr": {
        "good": "Per-gene fractions of zeros (dropout) agree with the real cells",
        "fair": "Per-gene fractions of zeros (dropout) roughly agree with the real cells",
        "poor": "Per-gene fractions of zeros (dropout) depart from the real cells",
    },
    "gene_corr_corr": {
        "good": "Gene-gene correlations agree with the real cells",
        "fair": "Gene-gene correlations are partly reproduced",
        "poor": "Gene-gene correlations are poorly reproduced",
    },
}

# how the numbers of each metric are quoted after the phrase
_EVIDENCE = {
    "rf_auroc": "a random forest separates them with AUROC {v:.2f}, where two halves of the real cells "
    "score {c:.2f}",
    "mmd": "MMD {v:.3g} is {r:.1f} times that between two halves of the real cells ({c:.3g})",
    "euclidean_centroid": "the distance between mean profiles is {r:.1f} times that between two halves of "
    "the real cells ({v:.3g} vs {c:.3g})",
    "cosine_centroid": "the cosine distance between mean profiles is {r:.1f} times that between two "
    "halves of the real cells ({v:.3g} vs {c:.3g})",
    "milisi": "miLISI {v:.2f} (2: fully mixed, 1: apart), where two halves of the real cells score {c:.2f}",
    "gene_mean_corr": "r = {v:.3f}, where two halves of the real cells give {c:.3f}",
    "gene_var_corr": "r = {v:.3f}, where two halves of the real cells give {c:.3f}",
    "gene_zero_frac_corr": "r = {v:.3f}, where two halves of the real cells give {c:.3f}",
    "gene_corr_corr": "r = {v:.3f} between the correlation matrices, where two halves of the real cells give "
    "{c:.3f}",
}


def _is_nan(x: object) -> bool:
    return x is None or (isinstance(x, float | np.floating) and bool(np.isnan(x)))


def verdict(metric: str, value: float, control: float) -> str:
    """``"good"``, ``"fair"`` or ``"poor"`` for one metric against its real-vs-real control.

    The rules and limits are in :data:`VERDICT_RULES` (documented in docs/metrics.md); ``"n/a"`` when
    the value or the control is missing (NaN, e.g. ``control=False``) or the metric is unknown.

    Examples
    --------
    >>> verdict("rf_auroc", 0.92, 0.52), verdict("mmd", 0.011, 0.01), verdict("milisi", 1.7, 1.9)
    ('poor', 'good', 'fair')
    """
    if metric not in VERDICT_RULES or _is_nan(value) or _is_nan(control):
        return NO_VERDICT
    kind, good, fair = VERDICT_RULES[metric]
    if kind == "auroc":
        gap = abs(value - 0.5) - abs(control - 0.5)
    elif kind == "ratio":
        if control <= 0:  # identical real halves (degenerate data): only an equally perfect value is good
            return "good" if value <= 0 else "poor"
        gap = value / control
    else:
        gap = control - value
    return "good" if gap <= good else "fair" if gap <= fair else "poor"


def _summary(metric: str, value: float, control: float, ratio: float, level: str) -> str:
    """One plain-language sentence for one row of the realism table."""
    if _is_nan(value):
        return f"{metric} could not be computed (e.g. genes constant in one set)."
    if level == NO_VERDICT:
        return (f"{metric} = {value:.3g}; no real-vs-real control was computed, so there is no verdict "
                "(run with control=True).")
    if _is_nan(ratio) and "{r" in _EVIDENCE[metric]:  # a zero control: no ratio to quote
        return (f"{_PHRASES[metric][level]}: {value:.3g}, where two halves of the real cells give "
                f"{control:.3g}.")
    return f"{_PHRASES[metric][level]}: {_EVIDENCE[metric].format(v=value, c=control, r=ratio)}."


def overall_verdict(verdicts: list[str]) -> str:
    """The middle verdict of ``verdicts`` (ties toward the worse one), never "good" when one is "poor".

    Examples
    --------
    >>> overall_verdict(["good"] * 8 + ["poor"]), overall_verdict(["poor"] * 5 + ["good"] * 4)
    ('fair', 'poor')
    """
    ranks = sorted(VERDICTS.index(v) for v in verdicts if v in VERDICTS)
    if not ranks:
        return NO_VERDICT
    level = VERDICTS[ranks[len(ranks) // 2]]  # upper middle of the ranks = the worse of two middle ones
    return "fair" if level == "good" and ranks[-1] == VERDICTS.index("poor") else level


def summarize_realism(table: pd.DataFrame) -> str:
    """Plain-language verdict lines of a :func:`realism` table: one overall line, then one per metric.

    Each metric is "good", "fair" or "poor" relative to the real-vs-real control (limits in
    docs/metrics.md, "Verdicts"); the overall verdict is the middle one of the metrics' verdicts, and
    never "good" when any metric is "poor". Works on a table read back from ``realism.csv`` as well.

    Parameters
    ----------
    table
        The table returned by :func:`realism` (columns ``metric``, ``value``, ``control``, ``ratio``).

    Returns
    -------
    The lines, joined by newlines.

    Examples
    --------
    >>> print(scsynth.metrics.summarize_realism(table))  # doctest: +SKIP
    Overall: fair (4 of 9 metrics good, 3 fair, 2 poor, relative to two halves of the real cells).
    - rf_auroc (poor): Generated cells are easy to tell from real ones: a random forest separates them ...
    """
    missing = [c for c in ("metric", "value", "control") if c not in table.columns]
    if missing:
        raise KeyError(f"The table lacks column(s) {missing}; pass the table returned by "
                       "scsynth.metrics.realism.")
    rows = verdict_rows(table)
    levels = [level for level, _ in rows]
    overall = overall_verdict(levels)
    counts = ", ".join(f"{levels.count(v)} {v}" for v in VERDICTS)
    if overall == NO_VERDICT:
        head = "Overall: no verdict (no real-vs-real control was computed; run with control=True)."
    else:
        head = (f"Overall: {overall} ({counts} of {len(levels)} metrics, relative to two halves of the "
                "real cells).")
    lines = [head]
    lines += [f"- {m} ({level}): {text}" for m, (level, text) in zip(table["metric"], rows, strict=True)]
    return "\n".join(lines)


def verdict_rows(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(verdict, summary) of every row of a realism table."""
    out = []
    for row in table.itertuples(index=False):
        value, control = float(row.value), float(row.control)
        ratio = float(getattr(row, "ratio", np.nan))
        if _is_nan(ratio) and not _is_nan(control) and control != 0:
            ratio = value / control
        level = verdict(str(row.metric), value, control)
        text = _summary(str(row.metric), value, control, ratio, level) if row.metric in _PHRASES else ""
        out.append((level, text))
    return out


class RealismTable(pd.DataFrame):
    """The :func:`realism` table: a :class:`~pandas.DataFrame` whose printed form ends with the verdicts.

    ``print(table)`` and a notebook's display show the usual table followed by the lines of
    :func:`summarize_realism`; everything else (columns, indexing, ``to_csv``) is the DataFrame's, and
    derived frames (``table.set_index(...)``, slices, copies) are plain DataFrames.
    """

    def _verdict_text(self) -> str:
        try:
            return summarize_realism(self)
        except (KeyError, AttributeError, TypeError, ValueError):  # columns edited in place: plain table
            return ""

    def __repr__(self) -> str:
        text = self._verdict_text()
        return super().__repr__() + (f"\n\n{text}" if text else "")

    def _repr_html_(self) -> str | None:
        html = super()._repr_html_()
        text = self._verdict_text()
        if html is None or not text:
            return html
        import html as _html

        head, *items = text.split("\n")
        lis = "".join(f"<li>{_html.escape(line[2:])}</li>" for line in items)
        return f"{html}<p><b>{_html.escape(head)}</b></p><ul>{lis}</ul>"


def _compare(
    x: np.ndarray, y: np.ndarray, *, seed: int, rf_trees: int, n_jobs: int, scale: str
) -> dict[str, float]:
    """All metrics of ``y`` against the real sample ``x`` on ``scale`` (miLISI, gene stats: own log1p)."""
    sx, sy = to_scale(x, scale), to_scale(y, scale)
    return {
        "rf_auroc": rf_auroc(sx, sy, n_estimators=rf_trees, seed=seed, n_jobs=n_jobs),
        "mmd": mmd(sx, sy),  # bandwidths from the real sample x, identical for metric and control
        **centroid_distances(sx, sy),
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
    scale: str = "normalized",
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
    scale
        What the forest, the MMD and the centroid distances see: ``"normalized"`` values (the published
        protocol) or their ``"log1p"`` (a usual analysis' scale, stricter on lowly expressed genes; ScGAN
        docs, "What the forest sees on a log scale"). miLISI and gene statistics always use ``log1p``.

    Returns
    -------
    One row per metric with columns ``metric``, ``value``, ``value_sd``, ``control``, ``control_sd``,
    ``ratio`` (value / control), ``ideal``, ``better``, ``n_cells`` (``m``), ``verdict`` (``"good"``,
    ``"fair"`` or ``"poor"`` relative to the control, ``"n/a"`` without one; limits in docs/metrics.md)
    and ``summary`` (one plain-language sentence). :func:`summarize_realism` turns the table into
    readable lines with an overall verdict. The settings are in ``df.attrs["params"]``: ``n_hvg`` is
    the number requested, ``n_genes_used`` the number compared (fewer when the data have fewer genes).

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
    n_obs, n_hvg = check_int("n_obs", n_obs, 1), check_int("n_hvg", n_hvg, 1)
    n_repeats, rf_trees = check_int("n_repeats", n_repeats, 1), check_int("rf_trees", rf_trees, 1)
    seed = check_int("seed", seed, 0)
    check_positive_number("library_size", library_size)
    scale = check_choice("scale", scale, SCALES)

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
    compare = partial(_compare, rf_trees=rf_trees, n_jobs=n_jobs, scale=scale)
    # the matrices are small (2m x n_hvg): threaded BLAS only oversubscribes the cores the forest
    # uses and was several times slower on busy machines
    with threadpool_limits(limits=1, user_api="blas"):
        for seq in tqdm(seeds, desc="realism", disable=not settings.progress):
            rng = np.random.default_rng(seq)
            perm = rng.permutation(n_real)
            a = dense_rows(x_real, perm[:m])
            g = dense_rows(x_gen, rng.choice(n_gen, size=m, replace=False))
            rep_seed = int(rng.integers(2**31 - 1))
            metric_runs.append(compare(a, g, seed=rep_seed))
            if control:
                control_runs.append(compare(a, dense_rows(x_real, perm[m : 2 * m]), seed=rep_seed))

    value, value_sd = _summarise(metric_runs)
    if control:
        ctrl, ctrl_sd = _summarise(control_runs)
    else:
        ctrl = ctrl_sd = pd.Series(np.nan, index=list(METRICS))
    ratio = value / ctrl.where(ctrl != 0)
    df = RealismTable(
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
    df[["verdict", "summary"]] = pd.DataFrame(verdict_rows(df), index=df.index)
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
        "scale": scale,
    }
    return df
