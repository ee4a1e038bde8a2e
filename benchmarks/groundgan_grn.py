"""Does GRouNdGAN impose its GRN? Positive/negative-control GRN recovery and knockout recovery, on real data.

Usage::

    python benchmarks/groundgan_grn.py               # 240 s of training per dataset
    python benchmarks/groundgan_grn.py --budget 60   # a quick run

The paper's design (Zinati et al. 2024): a GRN is inferred from the real training cells (GRNBoost2
scheme, :func:`scsynth.data.infer_grn`) and split into two equally important, equally sparse GRNs
(:func:`scsynth.data.control_grns`: odd vs even ranks of each target's top 15 TFs). GRouNdGAN is trained
with the *positive* one imposed; a GRN is re-inferred from the simulated cells with the same method and
scored against both (:func:`scsynth.metrics.grn_recovery`). The imposed GRN should be recovered far better
than the negative control, while on the real cells the two are recovered about equally.

Knockout recovery: the 3 TFs with most targets in the imposed GRN are knocked out (1000 paired cells
each); |pre-normalisation effect| ranks the imposed targets (:func:`scsynth.metrics.knockout_recovery`),
against a correlation baseline (|Spearman correlation| of the TF with each gene in the simulated
control cells) and a chance baseline (AUROC 0.5). Writes ``benchmarks/results/groundgan_grn.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, write_json, write_markdown  # noqa: E402
from realism import datasets  # noqa: E402

import scsynth  # noqa: E402


def train_groundgan(train, grn, counts: bool, budget: float, seed: int):
    adata = train.copy()
    scsynth.model.GRouNdGAN.setup_anndata(adata, is_count_data=counts)
    model = scsynth.model.GRouNdGAN(adata, grn=grn, unregulated="noise")
    start = time.perf_counter()
    # half the budget per stage; a large step budget keeps the learning rate (nearly) constant
    model.train(controller_steps=10**7, max_steps=10**7, batch_size=64, train_size=1.0, seed=seed,
                max_time={"seconds": budget / 2}, enable_progress_bar=False)
    return model, time.perf_counter() - start


def correlation_baseline(control: np.ndarray, genes: pd.Index, tf: str, truth: set[str]) -> dict[str, float]:
    """|Spearman rho| of the TF with every other gene in the control cells, scored like knockout_recovery."""
    i = genes.get_loc(tf)
    rho = stats.spearmanr(control).statistic[i]
    keep = np.arange(len(genes)) != i
    y = genes[keep].isin(list(truth))
    score = np.nan_to_num(np.abs(rho[keep]))
    return {"auroc": float(roc_auc_score(y, score)), "auprc": float(average_precision_score(y, score))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240, help="training seconds per dataset (both stages)")
    parser.add_argument("--k", type=int, default=15, help="TFs per target in the ranked GRN (default 15)")
    parser.add_argument("--n-sim", type=int, default=2000, help="simulated cells to re-infer the GRN from")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore", category=UserWarning)
    rows, ko_rows, details = [], [], {}
    for name, (train, _held_out, _key, counts) in datasets(args.seed).items():
        start = time.perf_counter()
        ranked = scsynth.data.infer_grn(train, top_k=args.k, seed=args.seed, progress=False)
        infer_s = time.perf_counter() - start
        positive, negative = scsynth.data.control_grns(ranked, k=args.k)
        print(f"== {name}: {train.n_obs} cells x {train.n_vars} genes; GRN {ranked['source'].nunique()} TFs, "
              f"{len(ranked)} edges (inferred in {infer_s:.0f} s); positive {len(positive)} / negative "
              f"{len(negative)} edges", flush=True)
        real_all = scsynth.data.infer_grn(train, top_k=None, seed=args.seed, progress=False)
        model, train_s = train_groundgan(train, positive, counts, args.budget, args.seed)
        sim = model.generate(args.n_sim, seed=args.seed)
        sim_all = scsynth.data.infer_grn(sim, top_k=None, layer="normalized", normalize=False, seed=args.seed,
                                         progress=False)
        for source, inferred in (("real training cells", real_all), ("GRouNdGAN cells", sim_all)):
            for truth_name, truth in (("positive (imposed)", positive), ("negative control", negative)):
                res = scsynth.metrics.grn_recovery(inferred, truth)
                p_at = res["precision_at_k"].set_index("k")["precision"]
                rows.append({"dataset": name, "inferred from": source, "scored against": truth_name,
                             "AUPRC": res["auprc"], "AUPRC ratio": res["auprc_ratio"], "EPR": res["epr"],
                             "AUROC": res["auroc"], "P@1": float(p_at.loc[1]), "P@5": float(p_at.loc[5])})
                print(f"  {source:20s} vs {truth_name:18s} AUPRC ratio {res['auprc_ratio']:.2f}  "
                      f"EPR {res['epr']:.2f}", flush=True)
        hubs = positive["source"].value_counts().index[:3]
        for tf in hubs:
            ko = model.perturb(knockout=tf, n_obs=1000, seed=args.seed)
            truth = set(positive.loc[positive["source"] == tf, "target"])
            ours = scsynth.metrics.knockout_recovery(ko, positive)
            post = scsynth.metrics.knockout_recovery(ko, positive, effect="lfc")
            control = ko[ko.obs["condition"] == "control"].layers["normalized"].toarray()
            corr = correlation_baseline(control, ko.var_names, tf, truth)
            ko_rows.append({"dataset": name, "TF": tf, "targets": len(truth),
                            "KO AUROC (pre-LSN)": ours["auroc"], "KO AUPRC (pre-LSN)": ours["auprc"],
                            "KO AUROC (post-LSN)": post["auroc"], "correlation AUROC": corr["auroc"],
                            "correlation AUPRC": corr["auprc"], "chance AUPRC": len(truth) / (len(ko.var_names) - 1)})
        details[name] = {"n_cells": int(train.n_obs), "n_genes": int(train.n_vars), "infer_s": infer_s,
                         "train_s": train_s, "controller_steps": int(model.controller_steps_),
                         "generator_steps": int(model.n_generator_steps_), "grn": model.grn.summary()}
    report = (
        f"GRN recovery (training budget {args.budget:g} s per dataset, {args.n_sim} simulated cells; AUPRC ratio "
        "and EPR: 1 = random):\n\n"
        + markdown_table(rows, ["dataset", "inferred from", "scored against", "AUPRC", "AUPRC ratio", "EPR", "AUROC",
                                "P@1", "P@5"])
        + "\n\nKnockout recovery (1000 cell pairs per TF; |effect| ranks the imposed targets):\n\n"
        + markdown_table(ko_rows, list(ko_rows[0]))
    )
    print("\n" + report)
    write_markdown("groundgan_grn", report)
    path = write_json("groundgan_grn", {"machine": machine(), "budget_s": args.budget, "k": args.k,
                                        "grn_recovery": rows, "knockout_recovery": ko_rows, "details": details})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
