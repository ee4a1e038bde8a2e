"""GRouNdGAN vs ScGAN vs scVI-from-prior: realism on the same held-out cells for the same CPU budget.

Usage::

    python benchmarks/groundgan_realism.py               # 240 s of training per model and dataset
    python benchmarks/groundgan_realism.py --budget 60   # a quick run

Same datasets, split and scoring as ``benchmarks/realism.py`` (pbmc68k_reduced, 1000 HVGs of the 559
immune cells; 30% held out; :func:`scsynth.metrics.realism` with the split-half control). GRouNdGAN
imposes the top-15 GRN inferred from the training cells (:func:`scsynth.data.infer_grn`; its
inference time is reported, not counted in the budget) and spends half the budget on each stage.
Writes ``benchmarks/results/groundgan_realism.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, write_json, write_markdown  # noqa: E402
from groundgan_grn import train_groundgan  # noqa: E402
from realism import METRICS, datasets, scgan, scvi_models  # noqa: E402

import scsynth  # noqa: E402


def groundgan(train, held_out, counts, budget, seed, **kw):
    start = time.perf_counter()
    grn = scsynth.data.infer_grn(train, top_k=15, seed=seed, progress=False)
    infer_s = time.perf_counter() - start
    # unregulated genes stay as noise-only generators, so every model is scored on the same genes
    model, seconds = train_groundgan(train, grn, counts, budget, seed, **kw)
    cells = model.generate(held_out.n_obs, seed=seed)
    steps = f"{model.controller_steps_}+{model.n_generator_steps_}"
    return {"cells": cells, "train_seconds": seconds, "steps": steps, "infer_grn_s": infer_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240, help="training seconds per model and dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each realism comparison")
    args = parser.parse_args()
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*value argument must be within the support.*")
    rows, tables = [], {}
    for name, (train, held_out, _key, counts) in datasets(args.seed).items():
        print(f"== {name}: {train.n_obs} training cells, {held_out.n_obs} held out, {train.n_vars} genes", flush=True)
        runs = {"GRouNdGAN": groundgan(train, held_out, counts, args.budget, args.seed),
                "ScGAN": scgan(train, held_out, None, counts, args.budget, args.seed, conditional=False)}
        runs["scVI prior"] = scvi_models(train, held_out, args.budget, args.seed)[0]
        for model_name, run in runs.items():
            cells = run["cells"]
            table = scsynth.metrics.realism(held_out[:, cells.var_names], cells, n_repeats=args.repeats,
                                            seed=args.seed)
            tables[f"{name}/{model_name}"] = table.to_dict(orient="records")
            row = {"dataset": name, "model": model_name, "train_s": run["train_seconds"], "steps": run["steps"],
                   "genes": cells.n_vars}
            for metric in METRICS:
                rec = table.set_index("metric").loc[metric]
                row[metric] = float(rec["value"])
                row[f"{metric}/ctrl"] = float(rec["ratio"])
            rows.append(row)
            print(f"  {model_name:12s} rf_auroc {row['rf_auroc']:.3f}  mmd/ctrl {row['mmd/ctrl']:.2f}  "
                  f"milisi {row['milisi']:.3f}", flush=True)
    columns = ["dataset", "model", "train_s", "steps", "genes", "rf_auroc", "mmd/ctrl", "milisi",
               "cosine_centroid/ctrl", "gene_mean_corr", "gene_corr_corr"]
    report = (f"Same {args.budget:g} s CPU training budget per model; ratio = metric / split-half control.\n\n"
              + markdown_table(rows, columns))
    print("\n" + report)
    write_markdown("groundgan_realism", report)
    path = write_json("groundgan_realism", {"machine": machine(), "budget_s": args.budget, "rows": rows,
                                            "tables": tables})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
