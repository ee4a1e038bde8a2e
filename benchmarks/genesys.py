"""GeneSys: speed and memory at 20k / 100k cells, and realism of generated time steps vs conditional scVI.

Usage::

    python benchmarks/genesys.py                      # both parts (about 20 min on 2 CPU cores)
    python benchmarks/genesys.py --part realism --budget 120 --seeds 0 1 2 --variants before,after
    python benchmarks/genesys.py --part realism --quick   # one seed, 30 s (about 3 min)
    python benchmarks/genesys.py --part speed --sizes 20000

**Speed** — the bundled myoblast time course (FPKM, 2000 genes, 4 time points) resampled with
replacement to 20k and 100k cells; three-trajectory blueprint; default architecture (256 hidden,
2-layer LSTM); batch 128. Reports seconds per epoch (median of ``--epochs`` epochs; an epoch is
``n_train / batch_size`` batches of 128 four-step trajectories, as GeneSys), peak resident memory of
the process during training, and generation speed (cells/s, median of 3).

**Realism** — the same data at its real size: 40% of each (label, time) group is held out, GeneSys and
a conditional scVI (``categorical_covariate_keys = label, time``, samples from the prior with the
held-out cells' covariates and training library sizes) each train for the same wall-clock budget on
the other cells. GeneSys generates whole trajectories, whose cells are drawn to match the held-out
(label, time) composition. Both are scored with :func:`scsynth.metrics.realism` against the held-out
cells, over all time steps and per time step (ratio = value / split-half control). The table also
gives GeneSys' held-out trajectory-classifier accuracy and whether generated time steps keep the real
order: a kNN regressor trained on the training cells' Monocle pseudotime (in their PCA space) predicts
the pseudotime of generated cells; the Spearman correlation between time step and predicted
pseudotime (over ten generated cells per held-out one, and over as many; with 95% bootstrap intervals) is
compared with the same correlation on held-out real cells. ``--seeds`` repeats the
realism part over splits and training seeds and reports medians; ``--variants`` compares named
settings (``VARIANTS``: ``before`` = the settings before the realism work, ``after`` = the current
defaults, and ablations in between).

Writes ``benchmarks/results/genesys.json`` and ``genesys.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import torch
from scipy import sparse, stats

sys.path.insert(0, str(Path(__file__).parent))
from _common import PeakRSS, machine, markdown_table, matrix_bytes, rss_bytes, write_json, write_markdown

import scsynth

BLUEPRINT = pd.DataFrame(
    [["State1", "State2", "State2", "State2"], ["State1", "State3", "State3", "State3"],
     ["State1", "State1", "State1", "State1"]],
    index=["myotube", "mesenchymal", "proliferating"],
)
#: Generated trajectories per blueprint row, and how many generated cells per held-out one, for the time-step order
ORDER_TRAJECTORIES, ORDER_FACTOR = 1000, 10
MATCHED_N = ", as many cells as held out"
METRICS = ["rf_auroc", "mmd", "milisi", "cosine_centroid", "gene_mean_corr", "gene_corr_corr"]


# -- speed -------------------------------------------------------------------------------------------------
class EpochTimer:
    def __init__(self):
        import lightning

        class _CB(lightning.Callback):
            def on_train_epoch_start(cb, trainer, plan):
                cb.start = time.perf_counter()

            def on_train_epoch_end(cb, trainer, plan):
                self.seconds.append(time.perf_counter() - cb.start)

        self.seconds: list[float] = []
        self.callback = _CB()


def speed(n_obs: int, epochs: int, seed: int) -> dict:
    base = scsynth.data.hsmm_myoblast()
    idx = np.random.default_rng(seed).integers(0, base.n_obs, size=n_obs)
    adata = anndata.AnnData(sparse.csr_matrix(base.X[idx]), obs=base.obs.iloc[idx].reset_index(drop=True),
                            var=base.var[[]])
    adata.obs_names = [f"c{i}" for i in range(n_obs)]
    scsynth.model.GeneSys.setup_anndata(adata)
    model = scsynth.model.GeneSys(adata, blueprint=BLUEPRINT, fallback="neighbors")
    timer = EpochTimer()
    before = rss_bytes()
    with PeakRSS() as peak:
        model.train(max_epochs=epochs, batch_size=128, train_size=0.9, early_stopping=False, seed=seed,
                    enable_progress_bar=False, callbacks=[timer.callback])
    gen_seconds = []
    for rep in range(3):
        start = time.perf_counter()
        cells = model.generate(2000, seed=rep)
        gen_seconds.append(time.perf_counter() - start)
    return {
        "cells": n_obs, "genes": adata.n_vars, "epochs": epochs,
        "batches_per_epoch": -(-int(0.9 * n_obs) // 128),
        "s_per_epoch": float(np.median(timer.seconds)),
        "peak_rss_gib": peak.peak / 2**30, "rss_before_gib": before / 2**30,
        "data_mib": matrix_bytes(adata.X) / 2**20,
        "generated_cells_per_s": cells.n_obs / float(np.median(gen_seconds)),
    }


# -- realism ---------------------------------------------------------------------------------------------
def split(adata: anndata.AnnData, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scsynth.model._genesys_train import split_groups as _split_groups

    groups = pd.factorize(adata.obs["label"].astype(str) + "@" + adata.obs["time"].astype(str))[0]
    return _split_groups(groups, 0.5, 0.1, seed)


def log_pca(train_x, other_xs, n_comps=20):
    from sklearn.decomposition import PCA

    def prep(x):
        x = x.toarray() if sparse.issparse(x) else np.asarray(x)
        return np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1e-8) * 1e4)

    pca = PCA(n_comps, random_state=0).fit(prep(train_x))
    return pca.transform(prep(train_x)), [pca.transform(prep(x)) for x in other_xs]


def matched(generated: anndata.AnnData, real: anndata.AnnData, seed: int, factor: int = 1) -> anndata.AnnData:
    """Generated cells drawn to the real cells' (label, time) composition, ``factor`` times as many."""
    rng = np.random.default_rng(seed)
    pick = []
    key_gen = generated.obs["label"].astype(str) + "@" + generated.obs["time"].astype(str)
    key_real = real.obs["label"].astype(str) + "@" + real.obs["time"].astype(str)
    for key, n in key_real.value_counts().items():
        pool = np.flatnonzero(key_gen.to_numpy() == key)
        if len(pool):
            pick.append(rng.choice(pool, size=n * factor, replace=len(pool) < n * factor))
    return generated[np.concatenate(pick)].copy()


#: Named GeneSys settings for ablations: model options and train options on top of the benchmark's.
VARIANTS: dict[str, dict[str, dict]] = {
    # the defaults before issue 14: Gaussian on log1p, 32 latents, GeneSys' lr and plateau schedule (5% relative
    # threshold) on the validation loss, its best weights, early stopping
    "before": {"model": {"continuous_likelihood": "normal", "n_latent": 32},
               "train": {"monitor": "validation_loss", "init_decoder": False, "lr": 1e-3, "lr_threshold": 0.05}},
    # each step adds one change
    "hurdle": {"model": {"n_latent": 32},
               "train": {"monitor": "validation_loss", "init_decoder": False, "lr": 1e-3, "lr_threshold": 0.05}},
    "hurdle+init": {"model": {"n_latent": 32},
                    "train": {"monitor": "validation_loss", "lr": 1e-3, "lr_threshold": 0.05}},
    "hurdle+init+schedule": {"model": {"n_latent": 32}, "train": {}},  # train-loss schedule, lr 3e-3, threshold 0
    "after": {"model": {}, "train": {}},  # the current defaults: also 8 latents
}


def train_genesys(train_adata, budget, seed, model_kwargs: dict | None = None, train_kwargs: dict | None = None):
    """GeneSys with the benchmark's blueprint, trained for ``budget`` seconds (batch 32)."""
    scsynth.model.GeneSys.setup_anndata(train_adata)
    model = scsynth.model.GeneSys(train_adata, blueprint=BLUEPRINT, fallback="neighbors", **(model_kwargs or {}))
    start = time.perf_counter()
    kwargs = {"max_epochs": 10**5, "batch_size": 32, "train_size": 5 / 6, "seed": seed, "enable_progress_bar": False,
              "max_time": {"seconds": budget}, **(train_kwargs or {})}
    model.train(**kwargs)
    return model, time.perf_counter() - start


def train_scvi(train_adata, held_out, budget, seed):
    import scvi

    adata = train_adata.copy()
    adata.X = sparse.csr_matrix(np.round(adata.X.toarray()))  # scVI needs counts: rounded FPKM
    adata.obs["time_cat"] = adata.obs["time"].astype(str)
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata, categorical_covariate_keys=["label", "time_cat"])
    model = scvi.model.SCVI(adata)
    start = time.perf_counter()
    model.train(max_epochs=10**6, train_size=5 / 6, max_time={"seconds": budget}, enable_progress_bar=False,
                early_stopping=True)
    seconds = time.perf_counter() - start
    state = model.adata_manager.get_state_registry("extra_categorical_covs")
    maps = state["mappings"]
    codes = np.stack([
        pd.Categorical(held_out.obs["label"].astype(str), categories=maps["label"]).codes,
        pd.Categorical(held_out.obs["time"].astype(str), categories=maps["time_cat"]).codes,
    ], 1)
    libs = np.asarray(adata.X.sum(1)).ravel()
    rng = np.random.default_rng(seed)
    lib = np.empty(held_out.n_obs)
    key_train = adata.obs["label"].astype(str) + "@" + adata.obs["time"].astype(str)
    for i, key in enumerate(held_out.obs["label"].astype(str) + "@" + held_out.obs["time"].astype(str)):
        pool = libs[key_train.to_numpy() == key]
        lib[i] = rng.choice(pool if len(pool) else libs)
    gen = torch.Generator().manual_seed(seed)
    n = held_out.n_obs
    model.module.eval()
    with torch.inference_mode():
        z = torch.randn(n, model.module.n_latent, generator=gen)
        px = model.module.generative(z=z, library=torch.as_tensor(np.log(lib), dtype=torch.float32)[:, None],
                                     batch_index=torch.zeros(n, 1, dtype=torch.long),
                                     cat_covs=torch.as_tensor(codes, dtype=torch.long))["px"]
        x = px.sample().numpy()
    cells = anndata.AnnData(sparse.csr_matrix(x), obs=held_out.obs[["label", "time"]].copy(), var=held_out.var[[]])
    return cells, seconds, int(model.history["train_loss"].shape[0])


def score(real, generated, repeats, seed) -> dict:
    table = scsynth.metrics.realism(real, generated[:, real.var_names], n_repeats=repeats, seed=seed,
                                    rf_trees=300).set_index("metric")
    out = {"n": int(table["n_cells"].iloc[0])}
    for m in METRICS:
        out[m] = float(table.loc[m, "value"])
        out[f"{m}/ctrl"] = float(table.loc[m, "ratio"])
    return out


def rho_interval(time: np.ndarray, pseudotime: np.ndarray, seed: int, n_boot: int = 1000) -> list[float]:
    """95% bootstrap interval (cells resampled with replacement) of the Spearman of time vs pseudotime."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(time), len(time)) for _ in range(n_boot)]
    rhos = [stats.spearmanr(time[i], pseudotime[i]).statistic for i in draws]
    return np.nanpercentile(rhos, [2.5, 97.5]).round(3).tolist()


def ordering(train, held_out, generated_by_model, seed: int = 0) -> dict:
    """Spearman of time step vs kNN-predicted pseudotime for the held-out and each set of generated cells,
    with its bootstrap interval and each step's mean pseudotime."""
    from sklearn.neighbors import KNeighborsRegressor

    xs = [held_out.X] + [g.X for g in generated_by_model.values()]
    train_pcs, others = log_pca(train.X, xs)
    knn = KNeighborsRegressor(15).fit(train_pcs, train.obs["Pseudotime"].to_numpy())
    out = {}
    for name, pcs, obs in zip(["real held-out", *generated_by_model], others,
                              [held_out.obs, *[g.obs for g in generated_by_model.values()]], strict=True):
        pt, time = knn.predict(pcs), obs["time"].to_numpy().astype(float)
        rho = stats.spearmanr(time, pt).statistic
        means = pd.Series(pt).groupby(time).mean()
        out[name] = {"spearman_time_vs_pseudotime": float(rho), "interval": rho_interval(time, pt, seed),
                     "n_cells": len(time), "mean_pseudotime_per_step": means.round(2).tolist()}
    return out


def split_cells(seed: int):
    adata = scsynth.data.hsmm_myoblast()
    train_idx, val_idx, test_idx = split(adata, seed)
    fit_idx = np.sort(np.concatenate([train_idx, val_idx]))
    train, held_out = adata[fit_idx].copy(), adata[test_idx].copy()
    in_blueprint = {(lab, t + 1) for _, row in BLUEPRINT.iterrows() for t, lab in enumerate(row)}
    keep = [(lab, t) in in_blueprint for lab, t in zip(held_out.obs["label"].astype(str), held_out.obs["time"],
                                                       strict=True)]
    held_out = held_out[np.asarray(keep)].copy()  # a few cells (e.g. State2 at 0 h) are in no blueprint step
    return adata, train, held_out, test_idx


def library_ratio(real, generated) -> float:
    """Median total of the generated cells over that of the real ones (same (label, time) composition)."""
    return float(np.median(np.asarray(generated.X.sum(1)).ravel()) / np.median(np.asarray(real.X.sum(1)).ravel()))


def per_time_rows(name, real, cells, repeats, seed) -> list[dict]:
    rows = []
    for t in sorted(real.obs["time"].unique()):
        real_t, gen_t = real[real.obs["time"] == t], cells[cells.obs["time"] == t]
        try:
            rows.append({"model": name, "time": int(t), **score(real_t, gen_t, repeats, seed)})
        except ValueError as err:  # too few held-out cells at this step
            rows.append({"model": name, "time": int(t), "note": str(err)[:60]})
    return rows


def realism(budget: float, repeats: int, seed: int, variants: list[str], with_scvi: bool = True,
            max_epochs: int | None = None) -> dict:
    """One split (``seed``): every GeneSys variant (and scVI) trained for ``budget`` s, scored on held-out cells."""
    adata, train, held_out, test_idx = split_cells(seed)
    print(f"realism seed {seed}: {train.n_obs} training+validation cells, {held_out.n_obs} held out, budget "
          f"{budget:g} s", flush=True)
    rows, summaries, order_cells, accuracy = [], [], {}, {}
    for variant in variants:
        spec = VARIANTS[variant]
        cap = {} if max_epochs is None else {"max_epochs": max_epochs}
        model, seconds = train_genesys(train.copy(), budget, seed, spec["model"], {**spec["train"], **cap})
        name = f"GeneSys ({variant})"
        cells = matched(model.generate(200, seed=seed), held_out, seed)
        # the order, also on ORDER_FACTOR times as many generated cells (same composition): a steadier estimate of
        # the model's rho than one the size of the held-out set
        order_cells[name] = matched(model.generate(ORDER_TRAJECTORIES, seed=seed), held_out, seed, ORDER_FACTOR)
        order_cells[name + MATCHED_N] = cells
        # classifier accuracy on trajectories assembled from held-out cells only
        full = adata.copy()
        scsynth.model.GeneSys.setup_anndata(full)
        probe = scsynth.model.GeneSys(full, blueprint=BLUEPRINT, fallback="neighbors", **spec["model"])
        probe.module.load_state_dict(model.module.state_dict())
        probe.is_trained_ = True
        acc = probe.trajectory_accuracy(test_idx, n_trajectories=300, seed=seed)
        accuracy[name] = acc.to_dict("list") | {"trajectories": acc.attrs["trajectories"]}
        overall = {"model": name, "variant": variant, "seed": seed, "time": "all", "train_s": seconds,
                   "epochs": model.n_epochs_trained_, **score(held_out, cells, repeats, seed),
                   "library_ratio": library_ratio(held_out, cells), "accuracy_last": float(acc["accuracy"].iloc[-1])}
        rows.append(overall)
        rows += per_time_rows(name, held_out, cells, repeats, seed)
        summaries.append(overall)
        print(f"  {name}: {seconds:.0f} s, {model.n_epochs_trained_} epochs, rf_auroc {overall['rf_auroc']:.3f}, "
              f"milisi {overall['milisi']:.2f}, library ratio {overall['library_ratio']:.2f}", flush=True)
    if with_scvi:
        scvi_cells, scvi_seconds, scvi_epochs = train_scvi(train, held_out, budget, seed)
        overall = {"model": "scVI (label, time)", "variant": "scVI", "seed": seed, "time": "all",
                   "train_s": scvi_seconds, "epochs": scvi_epochs, **score(held_out, scvi_cells, repeats, seed),
                   "library_ratio": library_ratio(held_out, scvi_cells)}
        rows.append(overall)
        rows += per_time_rows("scVI (label, time)", held_out, scvi_cells, repeats, seed)
        order_cells["scVI (label, time)"] = scvi_cells
        summaries.append(overall)
    order = ordering(train, held_out, order_cells, seed)
    real = order["real held-out"]
    for row in summaries:
        own = order[row["model"]]
        row["rho"], row["rho_interval"] = own["spearman_time_vs_pseudotime"], own["interval"]
        if row["model"] + MATCHED_N in order:
            row["rho_matched_n"] = order[row["model"] + MATCHED_N]["spearman_time_vs_pseudotime"]
        row["rho_real"], row["rho_real_interval"] = real["spearman_time_vs_pseudotime"], real["interval"]
    return {"rows": rows, "summary": summaries, "classifier_accuracy_by_step": accuracy, "ordering": order,
            "n_train": int(train.n_obs), "n_held_out": int(held_out.n_obs), "budget_s": budget, "seed": seed}


SUMMARY = ["rf_auroc", "mmd/ctrl", "milisi", "cosine_centroid/ctrl", "library_ratio", "rho", "rho_matched_n",
           "rho_real", "accuracy_last", "train_s", "epochs"]


def medians(runs: list[dict]) -> list[dict]:
    """Median over seeds of each model's summary metrics (and the per-seed range of the key ones)."""
    table = pd.DataFrame([row for run in runs for row in run["summary"]])
    out = []
    for model, group in table.groupby("model", sort=False):
        row = {"model": model, "seeds": int(len(group))}
        for col in SUMMARY:
            if col in group:
                row[col] = float(group[col].median())
        for col in ("rf_auroc", "milisi"):
            row[f"{col}_range"] = f"{group[col].min():.2f}-{group[col].max():.2f}"
        out.append(row)
    return out


def order_rows(runs: list[dict]) -> list[dict]:
    """Each model's time-step order on each seed, with its interval and the held-out cells'."""
    def fmt(pair: list[float]) -> str:
        return f"{pair[0]:.2f} to {pair[1]:.2f}"

    return [{"model": row["model"], "seed": run["seed"], "rho": row["rho"], "rho_interval": fmt(row["rho_interval"]),
             "rho_matched_n": row.get("rho_matched_n", ""), "rho_real": row["rho_real"],
             "rho_real_interval": fmt(row["rho_real_interval"])}
            for run in runs for row in run["summary"] if "rho_interval" in row]


def realism_markdown(runs: list[dict], budget: float, max_epochs: int | None = None) -> list[str]:
    first = runs[0]
    seeds = [run["seed"] for run in runs]
    cols = ["model", "seeds", "rf_auroc", "rf_auroc_range", "mmd/ctrl", "milisi", "milisi_range",
            "cosine_centroid/ctrl", "library_ratio", "rho", "rho_matched_n", "rho_real", "accuracy_last", "train_s",
            "epochs"]
    limit = f"{budget:g} s CPU budget" if max_epochs is None else f"{max_epochs} epochs (at most {budget:g} s)"
    md = [f"### Realism of generated time steps (myoblast time course, {first['n_held_out']} held-out cells, "
          f"{limit} each, medians over seeds {seeds})", "",
          markdown_table(medians(runs), cols), "",
          "library_ratio: median total of generated / held-out real cells; rho: Spearman of time step vs "
          f"kNN-predicted Monocle pseudotime over {ORDER_FACTOR} generated cells per held-out one of the same "
          "(label, time) (rho_matched_n: over as many as held out; rho_real: the held-out real cells); "
          "accuracy_last: held-out trajectory-classifier accuracy after all time steps.", "",
          "Time-step order per seed (95% bootstrap intervals over cells):", "",
          markdown_table(order_rows(runs), ["model", "seed", "rho", "rho_interval", "rho_matched_n", "rho_real",
                                            "rho_real_interval"]), "",
          f"Per time step, seed {first['seed']}:", "",
          markdown_table(first["rows"], ["model", "time", "train_s", "epochs", "n", "rf_auroc", "mmd/ctrl", "milisi",
                                         "cosine_centroid/ctrl", "gene_mean_corr", "gene_corr_corr", "note"]), ""]
    for name, acc in first["classifier_accuracy_by_step"].items():
        md.append(f"{name}: held-out trajectory-classifier accuracy after steps 1..t: "
                  + ", ".join(f"t{t}: {a:.2f}" for t, a in zip(acc["time"], acc["accuracy"], strict=True))
                  + f" (trajectories that held-out cells can form: {', '.join(acc['trajectories'])})")
    md += ["", f"Time-step order, seed {first['seed']} (Spearman of time step vs kNN-predicted Monocle pseudotime; "
           "mean pseudotime per step):", ""]
    md += [f"- {name} ({v['n_cells']} cells): rho = {v['spearman_time_vs_pseudotime']:.2f}; "
           f"{v['mean_pseudotime_per_step']}" for name, v in first["ordering"].items()]
    md.append("")
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["speed", "realism", "both"], default="both")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per size")
    parser.add_argument("--budget", type=float, default=120, help="training seconds per model (realism)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of a single realism run (see --seeds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="realism over these seeds (e.g. 0 1 2), medians reported")
    parser.add_argument("--variants", default="after", help=f"comma-separated GeneSys settings of {list(VARIANTS)}")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="also stop GeneSys after this many epochs (a budget in steps, not seconds)")
    parser.add_argument("--no-scvi", action="store_true", help="leave out the conditional scVI peer")
    parser.add_argument("--quick", action="store_true", help="one seed, 30 s budget, 2 repeats (about 3 min)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", default="genesys", help="name of the results files in benchmarks/results/")
    args = parser.parse_args()
    if args.quick:
        args.budget, args.repeats, args.seeds = min(args.budget, 30), 2, args.seeds or [args.seed]
        if args.part == "both":
            args.part = "realism"
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    payload: dict = {"machine": machine(), "args": vars(args)}
    md = []
    if args.part in ("realism", "both"):
        runs = [realism(args.budget, args.repeats, seed, variants, not args.no_scvi, args.max_epochs)
                for seed in (args.seeds or [args.seed])]
        payload["realism"] = {"runs": runs, "medians": medians(runs)}
        md += realism_markdown(runs, args.budget, args.max_epochs)
        print("\n".join(md), flush=True)
    if args.part in ("speed", "both"):
        rows = []
        for n in args.sizes:
            print(f"speed: {n} cells", flush=True)
            rows.append(speed(n, args.epochs, args.seed))
            print(rows[-1], flush=True)
        payload["speed"] = rows
        part = ["### Training and generation speed (2000 genes, 3 trajectories x 4 steps, batch 128)", "",
                markdown_table(rows, ["cells", "batches_per_epoch", "s_per_epoch", "peak_rss_gib", "data_mib",
                                      "generated_cells_per_s"])]
        print("\n".join(part), flush=True)
        md += part
    write_json(args.out, payload)
    write_markdown(args.out, f"Machine: {payload['machine']['processor']}, {payload['machine']['cpus']} CPUs, "
                   f"torch {payload['machine']['torch']}.\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
