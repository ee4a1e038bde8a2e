"""Realism per CPU-minute: every generator against held-out real cells, a strong non-deep peer and scVI.

Usage::

    python benchmarks/realism.py                                  # everything: 240 s and 1200 s, seeds 0 1 2
    python benchmarks/realism.py --budgets 240 --seeds 0 --models ScGAN NB-copula --datasets pbmc68k_reduced
    python benchmarks/realism.py --quick                          # 20 s budgets, one seed: checks the script
    python benchmarks/realism.py --summarize                      # tables and figure from the stored runs
    python benchmarks/realism.py --merge part_a part_b --out both --summarize   # runs of several files in one

Datasets (each with a held-out split the models never see):

- ``pbmc68k_reduced``: 700 cells, 765 genes, normalised values (no counts ship), 10 cell types
  (``bulk_labels``); 30% held out.
- ``immune_559``: the bundled 559 immune cells, raw counts, 1000 HVGs chosen on the training cells; 30%
  held out; no labels.
- ``myoblast``: the HSMM myoblast time course (FPKM, 2000 genes, 4 time points); 40% of each (label, time)
  group held out, as ``benchmarks/genesys.py``.
- ``geuvadis``: 85 GEUVADIS lymphoblastoid bulk samples (counts), the 2000 most variable genes of the
  training samples; 30% of each sex held out.

Models: ``ScGAN`` (unconditional), ``cscGAN`` (conditional on the labels), ``GRouNdGAN`` (GRN inferred from
the training cells), ``GeneSys`` (myoblast blueprint), ``RNAGAN`` (pseudo-samples of each held-out
sample's group), the **NB-copula** peer (``_nb_copula.py``: scDesign2's recipe, per label where there are
labels, else per k-means cluster of the training cells, 8 clusters; fitting is not budgeted, its seconds are reported), ``scVI prior`` and ``scVI posterior predictive``
(a reference: samples of the training cells' posteriors). Each trains for the same wall-clock budget
(Lightning ``max_time``) on the same training cells and generates as many cells as are held out
(conditional models with the held-out labels). ``--steps`` instead trains every GAN for a number of
generator steps (ScGAN and cscGAN; the copula needs none): a slower machine can then reproduce a faster one's
budget in steps (on the 2-core machine of the stored 240-s rows, 240 s are about 1200 ScGAN steps); these rows
are keyed ``budget_s = 0`` with ``budget_steps``, tabled as "<n> steps" and written to ``realism_steps.*``
unless ``--out`` says otherwise. ``--variant`` adds a model with other training options, for
ablations (e.g. ``--variant "ScGAN no EMA" ScGAN '{"ema_decay": null}'``).

Scores (:func:`scsynth.metrics.realism`, control = two halves of the held-out cells; plus
:func:`scsynth.metrics.library_size_distance` and, with labels, :func:`scsynth.metrics.label_lfc_agreement`
of the top-20 markers per label). Runs accumulate in ``benchmarks/results/realism.json`` keyed by
(dataset, model, budget, seed), so subsets can be run separately; ``realism.md`` holds the medians over
seeds (a headline table, then every column), ``realism_<dataset>.md`` the headline table of one dataset (for the
model pages) and ``realism.png`` plots RF AUROC against training seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import scanpy as sc
import torch
from scipy import sparse, stats

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, immune_counts, machine, markdown_table, update_runs, write_markdown  # noqa: E402

import scsynth  # noqa: E402

METRICS = ["rf_auroc", "mmd", "milisi", "cosine_centroid", "gene_mean_corr", "gene_var_corr", "gene_zero_frac_corr",
           "gene_corr_corr"]


@dataclass
class Split:
    train: anndata.AnnData
    held_out: anndata.AnnData
    labels_key: str | None
    counts: bool


# -- data ----------------------------------------------------------------------------------------------------------
def _held_out_mask(n: int, rng: np.random.Generator, fraction: float = 0.3, strata=None) -> np.ndarray:
    test = np.zeros(n, dtype=bool)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for members in groups:
        test[rng.choice(members, size=int(round(fraction * len(members))), replace=False)] = True
    return test


def _hvg_on_train(train, held_out, n_top):
    hvg = sc.pp.highly_variable_genes(train, flavor="seurat_v3", n_top_genes=n_top, inplace=False)
    genes = train.var_names[hvg["highly_variable"].to_numpy()]
    train, held_out = train[:, genes].copy(), held_out[:, genes].copy()
    return train[np.asarray(train.X.sum(1)).ravel() > 0].copy(), held_out


def datasets(seed: int) -> dict[str, tuple[anndata.AnnData, anndata.AnnData, str | None, bool]]:
    """pbmc68k_reduced and immune_559 as (train, held_out, labels_key, is_count_data), 30% held out."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, adata, key, counts in (("pbmc68k_reduced", scsynth.data.pbmc68k_normalized(), "bulk_labels", False),
                                     ("immune_559", immune_counts(n_genes=None), None, True)):
        test = _held_out_mask(adata.n_obs, rng)
        train, held_out = adata[~test].copy(), adata[test].copy()
        if adata.n_vars > 1000:  # HVGs chosen on the training cells only
            train, held_out = _hvg_on_train(train, held_out, 1000)
        out[name] = (train, held_out, key, counts)
    return out


def myoblast(seed: int) -> Split:
    from genesys import BLUEPRINT, split

    adata = scsynth.data.hsmm_myoblast()
    train_idx, val_idx, test_idx = split(adata, seed)
    train = adata[np.sort(np.concatenate([train_idx, val_idx]))].copy()
    held_out = adata[test_idx].copy()
    in_blueprint = {(lab, t + 1) for _, row in BLUEPRINT.iterrows() for t, lab in enumerate(row)}
    keep = [(lab, t) in in_blueprint for lab, t in zip(held_out.obs["label"].astype(str), held_out.obs["time"],
                                                       strict=True)]
    held_out = held_out[np.asarray(keep)].copy()
    for a in (train, held_out):
        a.obs["label_time"] = a.obs["label"].astype(str) + "@" + a.obs["time"].astype(str)
    return Split(train, held_out, "label_time", False)


def geuvadis(seed: int) -> Split:
    adata = scsynth.data.geuvadis_lcl()
    test = _held_out_mask(adata.n_obs, np.random.default_rng(seed), strata=adata.obs["sex"].to_numpy())
    train, held_out = _hvg_on_train(adata[~test].copy(), adata[test].copy(), 2000)
    return Split(train, held_out, "sex", True)


def load_splits(names: list[str], seed: int) -> dict[str, Split]:
    out = {}
    if {"pbmc68k_reduced", "immune_559"} & set(names):
        out.update({k: Split(*v) for k, v in datasets(seed).items() if k in names})
    if "myoblast" in names:
        out["myoblast"] = myoblast(seed)
    if "geuvadis" in names:
        out["geuvadis"] = geuvadis(seed)
    return out


# -- models --------------------------------------------------------------------------------------------------------
_SCGAN_CACHE: dict = {}


def scgan(train, held_out, key, counts, budget, seed, conditional, *, steps=None, calibrated=True, **train_kwargs):
    """ScGAN (cscGAN when ``conditional``) for ``budget`` seconds, or exactly ``steps`` generator steps.

    ``calibrated=False`` generates from the same trained model (cached per data, budget, seed and options)
    without its marginal calibration: a paired comparison.
    """
    cache_key = (id(train), budget, seed, conditional, steps, json.dumps(train_kwargs, sort_keys=True))
    if cache_key not in _SCGAN_CACHE:
        _SCGAN_CACHE.clear()
        adata = train.copy()
        scsynth.model.ScGAN.setup_anndata(adata, labels_key=key if conditional else None, is_count_data=counts)
        model = scsynth.model.ScGAN(adata, **train_kwargs.pop("model_kwargs", {}))
        options = {"train_size": 1.0, **train_kwargs}
        limit = {"max_steps": 10**7, "max_time": {"seconds": budget}} if steps is None else {"max_steps": steps}
        start = time.perf_counter()
        model.train(seed=seed, enable_progress_bar=False, **limit, **options)
        _SCGAN_CACHE[cache_key] = (model, time.perf_counter() - start)
    model, seconds = _SCGAN_CACHE[cache_key]
    labels = list(held_out.obs[key].astype(str)) if conditional else None
    with contextlib.nullcontext() if calibrated else model.module.marginals.disabled():
        cells = model.generate(held_out.n_obs, condition=labels, seed=seed)
    return {"cells": cells, "train_seconds": seconds, "steps": model.n_generator_steps_}


def scvi_models(train, held_out, budget, seed):
    import scvi

    adata = train.copy()
    adata.X = sparse.csr_matrix(adata.X)
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata)
    start = time.perf_counter()
    model.train(max_epochs=10**6, train_size=1.0, max_time={"seconds": budget}, enable_progress_bar=False)
    seconds = time.perf_counter() - start
    n = held_out.n_obs
    gen = torch.Generator().manual_seed(seed)
    libs = np.asarray(adata.X.sum(1)).ravel()
    lib = torch.as_tensor(np.log(libs[np.random.default_rng(seed).integers(0, len(libs), n)]), dtype=torch.float32)
    model.module.eval()
    with torch.inference_mode():
        z = torch.randn(n, model.module.n_latent, generator=gen)
        px = model.module.generative(z=z, library=lib[:, None], batch_index=torch.zeros(n, 1, dtype=torch.long))["px"]
        prior = px.sample().numpy()
    idx = np.random.default_rng(seed).choice(adata.n_obs, size=min(n, adata.n_obs), replace=False)
    post = model.posterior_predictive_sample(adata, indices=idx, n_samples=1)
    post = post.todense() if hasattr(post, "todense") else np.asarray(post)
    var = train.var[[]].copy()
    steps = int(model.history["train_loss"].shape[0])
    return (
        {"cells": anndata.AnnData(sparse.csr_matrix(prior), var=var), "train_seconds": seconds, "steps": steps},
        {"cells": anndata.AnnData(sparse.csr_matrix(np.asarray(post).reshape(len(idx), -1)), var=var),
         "train_seconds": seconds, "steps": steps},
    )


def run_scgan(split: Split, budget: float, seed: int, **kw) -> dict:
    return scgan(split.train, split.held_out, split.labels_key, split.counts, budget, seed, conditional=False, **kw)


def run_cscgan(split: Split, budget: float, seed: int, **kw) -> dict:
    return scgan(split.train, split.held_out, split.labels_key, split.counts, budget, seed, conditional=True, **kw)


#: the models ``--steps`` can budget in generator steps (the copula has no steps: it runs as usual)
STEP_MODELS = {"ScGAN", "cscGAN", "NB-copula"}


def run_groundgan(split: Split, budget: float, seed: int, **kw) -> dict:
    from groundgan_realism import groundgan

    return groundgan(split.train, split.held_out, split.counts, budget, seed, **kw)


_GENESYS_CACHE: dict = {}


def run_genesys(split: Split, budget: float, seed: int, calibrated: bool = True, **kw) -> dict:
    """GeneSys trained for ``budget``; ``calibrated=False`` generates from the same trained model (cached per
    split, budget, seed and options) without its marginal calibration: a paired comparison."""
    from genesys import matched, train_genesys

    key = (id(split), budget, seed, json.dumps(kw, sort_keys=True))
    if key not in _GENESYS_CACHE:
        _GENESYS_CACHE.clear()
        _GENESYS_CACHE[key] = train_genesys(split.train.copy(), budget, seed, **kw)
    model, seconds = _GENESYS_CACHE[key]
    table = model.module.marginal_model.clone()
    if not calibrated:
        model.module.marginal_model.zero_()
    try:
        cells = matched(model.generate(max(200, split.held_out.n_obs), seed=seed), split.held_out, seed)
    finally:
        model.module.marginal_model.copy_(table)
    cells.obs["label_time"] = cells.obs["label"].astype(str) + "@" + cells.obs["time"].astype(str)
    return {"cells": cells, "train_seconds": seconds, "steps": model.n_epochs_trained_}


def run_rnagan(split: Split, budget: float, seed: int, **kw) -> dict:
    from rnagan_realism import pseudo_samples

    return pseudo_samples(split.train, split.held_out, split.labels_key, budget, seed, **kw)


def run_copula(split: Split, budget: float, seed: int, **kw) -> dict:
    from _nb_copula import fit_sample

    if split.labels_key is None:  # scDesign2 fits per cell type: without labels, per k-means cluster
        kw = {"n_clusters": 8, **kw}
    start = time.perf_counter()
    cells = fit_sample(split.train, split.held_out.n_obs, labels_key=split.labels_key,
                       condition=None if split.labels_key is None else split.held_out.obs[split.labels_key].astype(str),
                       is_count_data=split.counts, seed=seed, **kw)
    return {"cells": cells, "train_seconds": time.perf_counter() - start, "steps": 0}


_SCVI_CACHE: dict = {}


def run_scvi(which: int) -> Callable[..., dict]:
    def run(split: Split, budget: float, seed: int) -> dict:
        key = (id(split), budget, seed)
        if key not in _SCVI_CACHE:  # one training gives both the prior and the posterior samples
            _SCVI_CACHE.clear()
            _SCVI_CACHE[key] = scvi_models(split.train, split.held_out, budget, seed)
        return _SCVI_CACHE[key][which]

    return run


# name -> (runner, datasets it runs on, whether it needs labels)
MODELS: dict[str, tuple[Callable[..., dict], tuple[str, ...], dict]] = {
    "ScGAN": (run_scgan, ("pbmc68k_reduced", "immune_559"), {}),
    "cscGAN": (run_cscgan, ("pbmc68k_reduced",), {}),
    "GRouNdGAN": (run_groundgan, ("pbmc68k_reduced", "immune_559"), {}),
    "GeneSys": (run_genesys, ("myoblast",), {}),
    "RNAGAN": (run_rnagan, ("geuvadis",), {}),
    "NB-copula": (run_copula, ("pbmc68k_reduced", "immune_559", "myoblast", "geuvadis"), {}),
    "scVI prior": (run_scvi(0), ("pbmc68k_reduced", "immune_559"), {}),
    "scVI posterior predictive": (run_scvi(1), ("pbmc68k_reduced", "immune_559"), {}),
}


# -- scoring -------------------------------------------------------------------------------------------------------
def score(split: Split, cells: anndata.AnnData, repeats: int, seed: int) -> dict:
    held_out = split.held_out
    cells = cells[:, held_out.var_names] if not cells.var_names.equals(held_out.var_names) else cells
    table = scsynth.metrics.realism(held_out, cells, n_repeats=repeats, seed=seed).set_index("metric")
    row = {"m": int(table["n_cells"].iloc[0])}
    for metric in METRICS:
        row[metric] = float(table.loc[metric, "value"])
        row[f"{metric}/ctrl"] = float(table.loc[metric, "ratio"])
        row[f"{metric}_control"] = float(table.loc[metric, "control"])
    row["rf_auroc_sd"] = float(table.loc["rf_auroc", "value_sd"])  # over the repeats: the score's resolution
    row.update(detected_genes(held_out, cells, seed))
    lib = scsynth.metrics.library_size_distance(held_out, cells, seed=seed)
    row.update(libsize_w1=lib["distance"], libsize_w1_control=lib["control"], libsize_median_ratio=lib["median_ratio"])
    if split.labels_key is not None:
        lfc = scsynth.metrics.label_lfc_agreement(held_out, cells, split.labels_key, seed=seed)
        for part, sub in lfc.groupby("set"):
            suffix = "" if part == "generated" else "_control"
            row[f"marker_lfc_ratio{suffix}"] = float(sub["median_ratio"].median())
            row[f"marker_lfc_within{suffix}"] = float(sub["frac_within"].mean())
        row["labels_annotated"] = bool(lfc.attrs["annotated"])
    return row


def detected_genes(held_out: anndata.AnnData, cells: anndata.AnnData, seed: int) -> dict:
    """Genes detected (> 0) per cell, generated vs held-out: Wasserstein-1 distance, the same between two halves of
    the held-out cells (control) and the ratio of medians. A QC number users look at first, and one the
    PCA-based scores barely see (many tiny values move no principal component)."""
    count = lambda a: np.asarray((a.X > 0).sum(1)).ravel().astype(float)  # noqa: E731
    real, fake = count(held_out), count(cells)
    half = np.random.default_rng(seed).permutation(len(real))
    a, b = real[half[: len(real) // 2]], real[half[len(real) // 2 :]]
    return {"detected_w1": float(stats.wasserstein_distance(real, fake)),
            "detected_w1_control": float(stats.wasserstein_distance(a, b)),
            "detected_median_ratio": float(np.median(fake) / max(np.median(real), 1.0))}


# -- results -------------------------------------------------------------------------------------------------------
def load_payload(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def load_runs(name: str) -> list[dict]:
    return load_payload(name).get("runs", [])


# a new run with the same values of these replaces the stored one
RUN_KEY = ("dataset", "model", "budget_s", "budget_steps", "seed")


def budget_label(row) -> str:
    """"240 s" for a time budget, "1200 steps" for a step budget (``--steps``)."""
    steps = row.get("budget_steps")
    return f"{row['budget_s']:g} s" if steps is None or pd.isna(steps) else f"{int(steps)} steps"


SUMMARY = ["rf_auroc", "rf_auroc_control", "mmd/ctrl", "milisi", "milisi_control", "libsize_w1/ctrl",
           "libsize_median_ratio", "gene_mean_corr", "gene_var_corr", "gene_zero_frac_corr", "gene_corr_corr",
           "marker_lfc_ratio", "marker_lfc_ratio_control", "marker_lfc_within"]


def summarize(runs: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(runs)
    if frame.empty:
        return frame
    frame["libsize_w1/ctrl"] = frame["libsize_w1"] / frame["libsize_w1_control"]
    frame["steps_n"] = pd.to_numeric(frame["steps"].astype(str).str.split("+").str[-1], errors="coerce")
    frame["budget"] = [budget_label(r) for r in frame.to_dict(orient="records")]
    cols = [c for c in ["train_seconds", "steps_n", *SUMMARY] if c in frame]
    grouped = frame.groupby(["dataset", "budget", "model"], sort=False)
    table = grouped[cols].median()
    table["seeds"] = grouped["seed"].nunique()
    return table.reset_index()


def figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table["dataset"]))
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(dict.fromkeys(table["model"]))}  # same across panels
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        sub = table[table["dataset"] == name]
        for model, rows in sub.groupby("model", sort=False):
            rows = rows.sort_values("train_seconds")
            ax.plot(rows["train_seconds"], rows["rf_auroc"], "o-", label=model, color=colours[model])
        ax.axhline(float(sub["rf_auroc_control"].median()), color="grey", ls="--", lw=1, label="real vs real")
        ax.set(title=name, xlabel="CPU training seconds (2 cores)", ylabel="RF AUROC (0.5 = indistinguishable)",
               xscale="log", ylim=(0.45, 1.02))
        # below the panel: inside it, the legend covered the points near the control line (the best ones)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


HEADLINE = ["dataset", "budget", "model", "seeds", "steps", "RF AUROC (ctrl)", "MMD/ctrl", "miLISI (ctrl)",
            "library median ratio", "marker lfc ratio (ctrl)"]


def headline(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader compares first, each value next to its split-half control."""

    def pair(value, control) -> str:
        return "" if pd.isna(value) else f"{value:.2f} ({control:.2f})"

    out = table[["dataset", "budget", "model", "seeds"]].copy()
    out["steps"] = table["steps_n"].map(lambda v: "" if pd.isna(v) or v == 0 else f"{v:.0f}")
    out["RF AUROC (ctrl)"] = [pair(v, c) for v, c in zip(table["rf_auroc"], table["rf_auroc_control"], strict=True)]
    out["MMD/ctrl"] = table["mmd/ctrl"].map(lambda v: f"{v:.2f}")
    out["miLISI (ctrl)"] = [pair(v, c) for v, c in zip(table["milisi"], table["milisi_control"], strict=True)]
    out["library median ratio"] = table["libsize_median_ratio"].map(lambda v: f"{v:.2f}")
    lfc = table.get("marker_lfc_ratio", pd.Series(np.nan, index=table.index))
    lfc_ctrl = table.get("marker_lfc_ratio_control", pd.Series(np.nan, index=table.index))
    out["marker lfc ratio (ctrl)"] = [pair(v, c) for v, c in zip(lfc, lfc_ctrl, strict=True)]
    return out


def report(runs: list[dict], info: dict, name: str = "realism") -> str:
    table = summarize(runs)
    if table.empty:
        return "No runs yet."
    figure(table, RESULTS / f"{name}.png")
    columns = ["dataset", "budget", "model", "seeds", "train_seconds", "steps_n", *SUMMARY]
    rows, heads = table.to_dict(orient="records"), headline(table)
    text = (f"Medians over seeds; held-out real cells; ratio columns are value / split-half control. Machine: "
            f"{info['processor']}, {info['cpus']} CPUs, torch {info['torch']}{threads_note(info)}.\n\n"
            + markdown_table(heads.to_dict(orient="records"), HEADLINE)
            + "\n\nAll columns:\n\n" + markdown_table(rows, [c for c in columns if c in table]))
    write_markdown(name, text)
    for dataset, rows in heads.groupby("dataset", sort=False):  # one table per model page
        write_markdown(f"{name}_{dataset}", f"Medians over seeds; held-out real cells, each value next to its split-half "
                       f"control. Machine: {info['processor']}, {info['cpus']} CPUs, torch {info['torch']}"
                       f"{threads_note(info)}.\n\n"
                       + markdown_table(rows.drop(columns="dataset").to_dict(orient="records"), HEADLINE[1:]))
    return text


def threads_note(info: dict) -> str:
    """Say so in the tables when torch ran on fewer threads than there are cores (runs sharing the machine)."""
    threads = info.get("torch_threads")
    return f", {threads} torch thread{'s' if threads != 1 else ''}" if threads and threads < info["cpus"] else ""


# -- main ----------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[240, 1200], help="training seconds")
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help=f"generator-step budgets instead of --budgets (models {sorted(STEP_MODELS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=None, help=f"of {list(MODELS)} (default: all)")
    parser.add_argument("--datasets", nargs="+", default=["pbmc68k_reduced", "immune_559", "myoblast", "geuvadis"])
    parser.add_argument("--variant", nargs=3, action="append", default=[], metavar=("NAME", "BASE", "JSON"),
                        help="a model BASE trained with other options (JSON of train() keywords)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each realism comparison")
    parser.add_argument("--quick", action="store_true", help="20 s budgets, seed 0, 2 repeats (to realism_quick.*)")
    parser.add_argument("--out", default="realism", help="results name: benchmarks/results/<out>.json/.md/.png")
    parser.add_argument("--summarize", action="store_true", help="only rewrite the tables and figure")
    parser.add_argument("--merge", nargs="+", default=[], metavar="NAME",
                        help="first add the runs of results/<NAME>.json to --out's (replacing the same runs)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's, one per core); 1 when two runs share the cores")
    args = parser.parse_args()
    missing = [name for name in args.merge if not load_runs(name)]
    if missing:
        parser.error(f"--merge: no runs in {', '.join(str(RESULTS / f'{n}.json') for n in missing)}; "
                     "name results files written by this script.")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.budgets, args.seeds, args.repeats = [20], [0], 2
        args.out = "realism_quick" if args.out == "realism" else args.out
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")  # scVI on normalised values warns at every step (the peer's limitation)
    models = dict(MODELS)
    for name, base, options in args.variant:
        runner, where, _ = MODELS[base]
        models[name] = (runner, where, json.loads(options))
    chosen = args.models or list(MODELS) + [v[0] for v in args.variant]
    bases = {name: base for name, base, _ in args.variant}
    if args.steps:
        args.out = "realism_steps" if args.out == "realism" else args.out  # the time-budget tables stay as they are
        unsupported = sorted(m for m in chosen if bases.get(m, m) not in STEP_MODELS)
        if unsupported and not args.summarize:
            parser.error(f"--steps budgets only {sorted(STEP_MODELS)} (and their variants); drop {unsupported} "
                         "from --models or use --budgets.")
    budgets = [(0.0, n) for n in args.steps] if args.steps else [(b, None) for b in args.budgets]
    for name in args.merge:  # the merged file's machine stands for the runs only where --out has none yet
        runs = update_runs(args.out, load_runs(name), RUN_KEY,
                           machine=load_payload(args.out).get("machine") or load_payload(name).get("machine"))
    runs = load_runs(args.out)  # each update below re-reads the file: other processes' runs are kept
    if not args.summarize:
        for seed in args.seeds:
            splits = load_splits(args.datasets, seed)
            for budget, steps in budgets:
                for name, split in splits.items():
                    label = budget_label({"budget_s": budget, "budget_steps": steps})
                    print(f"== seed {seed}, {label}, {name}: {split.train.n_obs} training, "
                          f"{split.held_out.n_obs} held out, {split.train.n_vars} genes", flush=True)
                    for model in chosen:
                        runner, where, options = models[model]
                        if name not in where:
                            continue
                        step_kw = {} if steps is None or bases.get(model, model) == "NB-copula" else {"steps": steps}
                        run = runner(split, budget, seed, **step_kw, **options)
                        row = {"dataset": name, "model": model, "budget_s": budget, "seed": seed,
                               **({} if steps is None else {"budget_steps": steps}),
                               "train_seconds": run["train_seconds"], "steps": str(run["steps"]),
                               **score(split, run["cells"], args.repeats, seed)}
                        runs = update_runs(args.out, [row], RUN_KEY, machine=machine())
                        print(f"  {model:27s} rf_auroc {row['rf_auroc']:.3f} (ctrl {row['rf_auroc_control']:.3f})  "
                              f"mmd/ctrl {row['mmd/ctrl']:.2f}  milisi {row['milisi']:.2f}", flush=True)
    # --summarize describes the machine the runs were made on, not the one rewriting the tables
    info = load_payload(args.out).get("machine") if args.summarize else None
    print("\n" + report(runs, info or machine(), args.out))


if __name__ == "__main__":
    main()
