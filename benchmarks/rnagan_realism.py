"""RNAGAN pseudo-sample realism: are generated samples of a group like held-out members, or an exaggeration?

Usage::

    python benchmarks/rnagan_realism.py                          # GEUVADIS sex + pbmc68k_reduced, 3 seeds
    python benchmarks/rnagan_realism.py --dataset geuvadis --label "fm 1" --plan '{"feature_matching": 1}'
    python benchmarks/rnagan_realism.py --dataset pbmc --sc-steps 500 --label "no calibration, 500 steps" \\
        --train '{"calibrate_marginals": false}'               # an RNAGAN.train option off (before / after rows)
    python benchmarks/rnagan_realism.py --quick                  # a few steps, 1 seed (checks the script)

**geuvadis** — the GEUVADIS lymphoblastoid lines (:func:`scsynth.data.geuvadis_lcl`, 85 samples, groups: sex),
the 2000 most variable genes (as ``benchmarks/rnagan.py``'s bulk part). ``--folds``-fold stratified
cross-fitting: RNAGAN (bulk stage, batch 32) trains on the other folds and generates, per sex, as many
pseudo-samples as the held-out fold has of that sex; all folds pooled are scored by
:func:`scsynth.metrics.realism` against the held-out samples (RF AUROC with its real-vs-real control,
MMD / control). **pbmc** — ``pbmc68k_reduced`` (cell types), 30% of each type held out, one single-cell
model, as many generated cells per type as held out.

Group differences, per fold: for each group, its top 20 markers are the genes with the largest log2 fold
change (group vs the other samples, means of values normalised to 1e4, pseudocount 1) among the *training*
samples, of those with at least a 2-fold change (a noise gene's ratio means nothing; GEUVADIS sex has about
a dozen: the Y genes and XIST); the same fold change is computed on the held-out samples (real) and on the generated ones.
``lfc_ratio`` is the median of generated / real over every (fold, group, marker); ``within`` the fraction of
those in 0.8-1.25x. ``train/real`` is the same ratio for the training samples themselves (what a perfect
copy of the training data would score: the selection-bias level). ``var_ratio`` is the median over the
markers of the generated / real variance of log1p values within the group. The held-out samples are also
stratified against the training ones (``stratify_acc``), to check that a change does not cost accuracy.
Medians over ``--seeds``; each configuration (``--label``, ``--plan``) is kept in the JSON next to the
others, so before / after rows accumulate.

Writes ``benchmarks/results/rnagan_realism.json`` and ``rnagan_realism.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import anndata
import numpy as np
import torch
from _common import RESULTS, machine, markdown_table, write_json, write_markdown
from rnagan import bulk_data, split_by_group
from scipy import sparse
from sklearn.model_selection import StratifiedKFold

import scsynth
from scsynth.model import RNAGAN

N_TOP = 20
#: a marker's smallest training log2 fold change (2x)
MIN_LFC = 1.0
COLUMNS = ["config", "dataset", "steps", "n_seeds", "rf_auroc", "rf_control", "mmd_ratio", "lfc_ratio", "within",
           "train/real", "var_ratio", "stratify_acc", "n_markers", "s_per_step"]


def dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float64)


def cp10k(x) -> np.ndarray:
    x = dense(x)
    return x / np.maximum(x.sum(1, keepdims=True), 1e-12) * 1e4


def group_lfc(x: np.ndarray, labels: np.ndarray, group: str) -> np.ndarray:
    inside = labels == group
    return np.log2((x[inside].mean(0) + 1) / (x[~inside].mean(0) + 1))


def marker_rows(train, held, gen, key: str, *, min_cells: int = 3) -> list[dict]:
    """Per group, its top markers on ``train``: the fold change on held-out and generated samples."""
    xs = {name: cp10k(a.X) for name, a in (("train", train), ("real", held), ("gen", gen))}
    labels = {name: a.obs[key].astype(str).to_numpy() for name, a in (("train", train), ("real", held), ("gen", gen))}
    rows = []
    for group in sorted(set(labels["real"])):
        counts = [(labels[s] == group).sum() for s in xs] + [(labels[s] != group).sum() for s in xs]
        if min(counts) < min_cells:
            continue
        lfc = {s: group_lfc(xs[s], labels[s], group) for s in xs}
        top = np.argsort(-lfc["train"])[:N_TOP]
        top = top[lfc["train"][top] >= MIN_LFC]  # genuine markers only: a noise gene's ratio means nothing
        var = {s: np.log1p(xs[s][labels[s] == group][:, top]).var(0) for s in ("real", "gen")}
        for j, g in enumerate(top):
            rows.append({"group": group, "gene": str(train.var_names[g]), "real": float(lfc["real"][g]),
                         "gen": float(lfc["gen"][g]), "train": float(lfc["train"][g]),
                         "var_ratio": float(var["gen"][j] / max(var["real"][j], 1e-6))})
    return rows


def train_model(train: anndata.AnnData, key: str, modality: str, steps: int, batch_size: int, seed: int,
                plan: dict, arch: dict, **train_kwargs) -> RNAGAN:
    train = train.copy()
    if modality == "bulk":
        RNAGAN.setup_anndata(train, labels_key=key, modality="bulk")
    else:
        RNAGAN.setup_anndata(train, labels_key=key, is_count_data=False)
    model = RNAGAN(train, gene_sets="hallmark", **arch)
    model.train(max_steps={"sc": 0, "bulk": 0, modality: steps}, batch_size=batch_size, seed=seed,
                plan_kwargs=plan or None, enable_progress_bar=False, **train_kwargs)
    return model


def generate_like(model: RNAGAN, held: anndata.AnnData, key: str, modality: str, seed: int) -> anndata.AnnData:
    labels = held.obs[key].astype(str)
    parts = [model.generate(int(n), condition=g, modality=modality, seed=seed + i)
             for i, (g, n) in enumerate(labels.value_counts().items()) if n > 0]
    out = anndata.concat(parts)
    out.obs_names_make_unique()
    out.obs[key] = out.obs[model.labels_key].astype(str)
    return out


def pseudo_samples(train: anndata.AnnData, held_out: anndata.AnnData, key: str, budget: float, seed: int, *,
                   plan: dict | None = None, arch: dict | None = None, **train_kwargs) -> dict:
    """``benchmarks/realism.py``'s RNAGAN run: bulk RNAGAN trained for ``budget`` s, as many pseudo-samples per group
    as ``held_out`` has. Each of the two stages (discriminator warm-up, adversarial) gets half the budget.
    ``train_kwargs``: more ``RNAGAN.train`` options (e.g. ``train_size``, ``monitor_realism``)."""
    train = train.copy()
    RNAGAN.setup_anndata(train, labels_key=key, modality="bulk")
    model = RNAGAN(train, gene_sets="hallmark", **(arch or {}))
    start = time.perf_counter()
    model.train(max_steps={"sc": 0, "bulk": 10**6}, warmup_steps=10**6 // 2, batch_size=32, seed=seed,
                plan_kwargs=plan or None, enable_progress_bar=False, max_time={"seconds": budget / 2}, **train_kwargs)
    seconds = time.perf_counter() - start
    # history rows of ~50 batches per stage
    steps = {name: len(next(iter(h.values())) if isinstance(h, dict) else h) for name, h in model.histories_.items()}
    return {"cells": generate_like(model, held_out, key, "bulk", seed), "train_seconds": seconds, "steps": steps}


def splits(dataset: str, labels: np.ndarray, folds: int, seed: int):
    if dataset == "pbmc":
        return [split_by_group(labels, 0.3, seed)]
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def one_seed(dataset: str, steps: int, folds: int, seed: int, plan: dict, arch: dict, repeats: int,
             train_kwargs: dict | None = None) -> dict:
    if dataset == "geuvadis":
        adata, key, modality, batch = bulk_data(), "sex", "bulk", 32
    else:
        adata, key, modality, batch = scsynth.data.pbmc68k_normalized(), "bulk_labels", "sc", 64
    labels = adata.obs[key].astype(str).to_numpy()
    held, generated, rows, acc, seconds = [], [], [], [], []
    for k, (tr, te) in enumerate(splits(dataset, labels, folds, seed)):
        train, test = adata[tr].copy(), adata[te].copy()
        start = time.perf_counter()
        model = train_model(train, key, modality, steps, batch, seed + k, plan, arch, **(train_kwargs or {}))
        seconds.append(time.perf_counter() - start)
        gen = generate_like(model, test, key, modality, seed + 100 * k)
        rows += [{**r, "fold": k} for r in marker_rows(train, test, gen, key)]
        query = test.copy()
        model.stratify(query, n_draws=20, n_refs=5, seed=seed)
        acc.append(float((query.obs["rnagan"].astype(str).to_numpy() == labels[te]).mean()) * len(te))
        held.append(test)
        generated.append(gen)
        print(f"  seed {seed} fold {k}: {seconds[-1]:.0f} s", flush=True)
    real, gen = anndata.concat(held), anndata.concat(generated)
    gen.obs_names_make_unique()
    table = scsynth.metrics.realism(real, gen, n_repeats=repeats, seed=seed, rf_trees=300, n_jobs=1)
    table = table.set_index("metric")
    ratio = np.array([r["gen"] / r["real"] if r["real"] > 0 else np.inf for r in rows])
    copy = np.array([r["train"] / r["real"] if r["real"] > 0 else np.inf for r in rows])
    return {"seed": seed, "rf_auroc": float(table.loc["rf_auroc", "value"]),
            "rf_control": float(table.loc["rf_auroc", "control"]), "mmd_ratio": float(table.loc["mmd", "ratio"]),
            "lfc_ratio": float(np.median(ratio)), "within": float(np.mean((ratio >= 0.8) & (ratio <= 1.25))),
            "train/real": float(np.median(copy)), "var_ratio": float(np.median([r["var_ratio"] for r in rows])),
            "stratify_acc": float(sum(acc) / len(real)), "s_per_step": float(np.median(seconds) / steps),
            "n_markers": len(rows) / max(1, k + 1), "n_per_side": int(table["n_cells"].iloc[0]), "markers": rows}


def summarise(config: str, dataset: str, steps: int, runs: list[dict]) -> dict:
    keys = [c for c in COLUMNS if c not in ("config", "dataset", "steps", "n_seeds")]
    return {"config": config, "dataset": dataset, "steps": steps, "n_seeds": len(runs),
            **{c: float(np.median([r[c] for r in runs])) for c in keys}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", choices=["geuvadis", "pbmc"], default=["geuvadis", "pbmc"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bulk-steps", type=int, default=1000, help="bulk stage budget (the default)")
    parser.add_argument("--sc-steps", type=int, default=1500, help="single-cell budget (benchmarks/rnagan.py's)")
    parser.add_argument("--folds", type=int, default=2, help="cross-fitting folds on GEUVADIS")
    parser.add_argument("--plan", default="{}", help="plan_kwargs as JSON (an ablation)")
    parser.add_argument("--arch", default="{}", help="RNAGAN(...) options as JSON (an ablation)")
    parser.add_argument("--train", default="{}", help="more RNAGAN.train options as JSON (e.g. calibrate_marginals)")
    parser.add_argument("--label", default="defaults", help="name of this configuration in the table")
    parser.add_argument("--repeats", type=int, default=3, help="realism resamplings")
    parser.add_argument("--quick", action="store_true", help="few steps, one seed (checks the script)")
    args = parser.parse_args()
    if args.quick:
        args.bulk_steps, args.sc_steps, args.seeds, args.repeats = 40, 40, [0], 1
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    scsynth.settings.verbosity = "warning"
    plan, arch, train = json.loads(args.plan), json.loads(args.arch), json.loads(args.train)
    name = "rnagan_realism_quick" if args.quick else "rnagan_realism"
    previous = RESULTS / f"{name}.json"
    results = {}
    for dataset in args.dataset:
        steps = args.bulk_steps if dataset == "geuvadis" else args.sc_steps
        runs = []
        for seed in args.seeds:
            scsynth.settings.seed = seed
            runs.append(one_seed(dataset, steps, args.folds, seed, plan, arch, args.repeats, train))
            print({k: v for k, v in runs[-1].items() if k != "markers"}, flush=True)
        results[f"{args.label} | {dataset}"] = {
            "summary": summarise(args.label, dataset, steps, runs), "plan": plan, "arch": arch, "train": train,
            "folds": args.folds,
            "runs": runs, "machine": machine()}
    # read just before writing: other configurations may have been run meanwhile
    payload = json.loads(previous.read_text()) if previous.is_file() else {"configs": {}}
    payload["configs"].update(results)
    rows = [c["summary"] for c in payload["configs"].values()]
    md = ["Medians over seeds; rf_control: two halves of the held-out real samples; lfc_ratio: generated / real "
          "group log fold change of each group's top 20 markers (chosen on training samples); within: fraction "
          "in 0.8-1.25x; train/real: the same ratio for the training samples (selection-bias level).", "",
          markdown_table(rows, COLUMNS)]
    print("\n".join(md), flush=True)
    write_json(name, payload)
    write_markdown(name, "\n".join(md))


if __name__ == "__main__":
    main()
