"""GeneSys: speed and memory at 20k / 100k cells, and realism of generated time steps vs conditional scVI.

Usage::

    python benchmarks/genesys.py                      # both parts (about 20 min on 2 CPU cores)
    python benchmarks/genesys.py --part realism --budget 60
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
pseudotime is compared with the same correlation on held-out real cells.

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


def matched(generated: anndata.AnnData, real: anndata.AnnData, seed: int) -> anndata.AnnData:
    """Generated cells drawn to the real cells' (label, time) composition."""
    rng = np.random.default_rng(seed)
    pick = []
    key_gen = generated.obs["label"].astype(str) + "@" + generated.obs["time"].astype(str)
    key_real = real.obs["label"].astype(str) + "@" + real.obs["time"].astype(str)
    for key, n in key_real.value_counts().items():
        pool = np.flatnonzero(key_gen.to_numpy() == key)
        if len(pool):
            pick.append(rng.choice(pool, size=n, replace=len(pool) < n))
    return generated[np.concatenate(pick)].copy()


def train_genesys(train_adata, budget, seed):
    scsynth.model.GeneSys.setup_anndata(train_adata)
    model = scsynth.model.GeneSys(train_adata, blueprint=BLUEPRINT, fallback="neighbors")
    start = time.perf_counter()
    model.train(max_epochs=10**5, batch_size=32, train_size=5 / 6, seed=seed, enable_progress_bar=False,
                max_time={"seconds": budget})
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


def ordering(train, held_out, generated_by_model) -> dict:
    from sklearn.neighbors import KNeighborsRegressor

    xs = [held_out.X] + [g.X for g in generated_by_model.values()]
    train_pcs, others = log_pca(train.X, xs)
    knn = KNeighborsRegressor(15).fit(train_pcs, train.obs["Pseudotime"].to_numpy())
    out = {}
    for name, pcs, obs in zip(["real held-out", *generated_by_model], others,
                              [held_out.obs, *[g.obs for g in generated_by_model.values()]], strict=True):
        pt = knn.predict(pcs)
        rho = stats.spearmanr(obs["time"].to_numpy(), pt).statistic
        means = pd.Series(pt).groupby(obs["time"].to_numpy()).mean()
        out[name] = {"spearman_time_vs_pseudotime": float(rho), "mean_pseudotime_per_step": means.round(2).tolist()}
    return out


def realism(budget: float, repeats: int, seed: int) -> dict:
    adata = scsynth.data.hsmm_myoblast()
    train_idx, val_idx, test_idx = split(adata, seed)
    fit_idx = np.sort(np.concatenate([train_idx, val_idx]))
    train, held_out = adata[fit_idx].copy(), adata[test_idx].copy()
    in_blueprint = {(lab, t + 1) for _, row in BLUEPRINT.iterrows() for t, lab in enumerate(row)}
    keep = [(lab, t) in in_blueprint for lab, t in zip(held_out.obs["label"].astype(str), held_out.obs["time"],
                                                       strict=True)]
    held_out = held_out[np.asarray(keep)].copy()  # a few cells (e.g. State2 at 0 h) are in no blueprint step
    print(f"realism: {train.n_obs} training+validation cells, {held_out.n_obs} held out, budget {budget:g} s",
          flush=True)
    model, gs_seconds = train_genesys(train.copy(), budget, seed)
    generated = model.generate(200, seed=seed)
    gs_cells = matched(generated, held_out, seed)
    scvi_cells, scvi_seconds, scvi_epochs = train_scvi(train, held_out, budget, seed)
    # classifier accuracy on trajectories assembled from held-out cells only
    full = adata.copy()
    scsynth.model.GeneSys.setup_anndata(full)
    probe = scsynth.model.GeneSys(full, blueprint=BLUEPRINT, fallback="neighbors")  # same (default) architecture
    probe.module.load_state_dict(model.module.state_dict())
    probe.is_trained_ = True
    accuracy = probe.trajectory_accuracy(test_idx, n_trajectories=300, seed=seed)
    rows = []
    for name, cells, seconds, steps in [("GeneSys", gs_cells, gs_seconds, model.n_epochs_trained_),
                                        ("scVI (label, time)", scvi_cells, scvi_seconds, scvi_epochs)]:
        rows.append({"model": name, "time": "all", "train_s": seconds, "epochs": steps,
                     **score(held_out, cells, repeats, seed)})
        for t in sorted(held_out.obs["time"].unique()):
            real_t, gen_t = held_out[held_out.obs["time"] == t], cells[cells.obs["time"] == t]
            try:
                rows.append({"model": name, "time": int(t), **score(real_t, gen_t, repeats, seed)})
            except ValueError as err:  # too few held-out cells at this step
                rows.append({"model": name, "time": int(t), "note": str(err)[:60]})
    order = ordering(train, held_out, {"GeneSys": gs_cells, "scVI (label, time)": scvi_cells})
    return {"rows": rows, "classifier_accuracy_by_step": accuracy.to_dict("list"),
            "classifier_trajectories": accuracy.attrs["trajectories"], "ordering": order,
            "n_train": int(train.n_obs), "n_held_out": int(held_out.n_obs), "budget_s": budget}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["speed", "realism", "both"], default="both")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per size")
    parser.add_argument("--budget", type=float, default=120, help="training seconds per model (realism)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    payload: dict = {"machine": machine(), "args": vars(args)}
    md = []
    if args.part in ("realism", "both"):
        res = realism(args.budget, args.repeats, args.seed)
        payload["realism"] = res
        cols = ["model", "time", "train_s", "epochs", "n", "rf_auroc", "mmd/ctrl", "milisi", "cosine_centroid/ctrl",
                "gene_mean_corr", "gene_corr_corr", "note"]
        acc = res["classifier_accuracy_by_step"]
        md += [f"### Realism of generated time steps (myoblast time course, {res['n_held_out']} held-out cells, "
               f"{args.budget:g} s CPU budget each)", "", markdown_table(res["rows"], cols), "",
               "Held-out trajectory-classifier accuracy after steps 1..t: "
               + ", ".join(f"t{t}: {a:.2f}" for t, a in zip(acc["time"], acc["accuracy"], strict=True))
               + f" (trajectories that held-out cells can form: {', '.join(res['classifier_trajectories'])})", "",
               "Time-step order (Spearman of time step vs kNN-predicted Monocle pseudotime; mean pseudotime "
               "per step):", ""]
        md += [f"- {name}: rho = {v['spearman_time_vs_pseudotime']:.2f}; {v['mean_pseudotime_per_step']}"
               for name, v in res["ordering"].items()]
        md.append("")
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
    write_json("genesys", payload)
    write_markdown("genesys", f"Machine: {payload['machine']['processor']}, {payload['machine']['cpus']} CPUs, "
                   f"torch {payload['machine']['torch']}.\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
