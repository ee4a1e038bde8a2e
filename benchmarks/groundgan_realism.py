"""GRouNdGAN vs ScGAN vs scVI-from-prior: realism on the same held-out cells for the same CPU budget.

Usage::

    python benchmarks/groundgan_realism.py               # 240 s of training per model and dataset
    python benchmarks/groundgan_realism.py --budget 60   # a quick run
    python benchmarks/groundgan_realism.py --stage2 --controller-steps 400 --target-steps 300 --seeds 0
    python benchmarks/groundgan_realism.py --stage2 --summarize   # the tables again from the JSON

Same datasets, split and scoring as ``benchmarks/realism.py`` (pbmc68k_reduced, 1000 HVGs of the 559
immune cells; 30% held out; :func:`scsynth.metrics.realism` with the split-half control). GRouNdGAN
imposes the top-15 GRN inferred from the training cells (:func:`scsynth.data.infer_grn`; its
inference time is reported, not counted in the budget) and spends half the budget on each stage.
Writes ``benchmarks/results/groundgan_realism.json``.

``--stage2``: the stage-2 objectives side by side at equal *steps* (so the machine's speed does not enter):
one ScGAN controller is trained per dataset and seed, then each objective (``target_objective=
"conditional"``, the default, and ``"adversarial"``, the original) trains its target generators on top of
it for the same number of steps; the controller's own cells are the reference (GRouNdGAN's cells can only
be as realistic as its controller's TFs allow). Writes ``groundgan_stage2.json`` / ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, write_json, write_markdown  # noqa: E402
from groundgan_grn import train_groundgan  # noqa: E402
from realism import METRICS, datasets, scgan, scvi_models  # noqa: E402

import scsynth  # noqa: E402


_CACHE: dict = {}


def groundgan(train, held_out, counts, budget, seed, *, calibrated: bool = True, **kw):
    """GRouNdGAN on the top-15 GRN inferred from ``train``, trained for ``budget`` seconds in all.

    ``calibrated=False`` generates from the same trained model (cached per data, budget, seed and options)
    without its marginal calibration: a paired comparison.
    """
    key = (id(train), budget, seed, json.dumps(kw, sort_keys=True))
    if key not in _CACHE:
        _CACHE.clear()
        start = time.perf_counter()
        grn = scsynth.data.infer_grn(train, top_k=15, seed=seed, progress=False)
        infer_s = time.perf_counter() - start
        # unregulated genes stay as noise-only generators, so every model is scored on the same genes
        _CACHE[key] = (*train_groundgan(train, grn, counts, budget, seed, **kw), infer_s)
    model, seconds, infer_s = _CACHE[key]
    with contextlib.nullcontext() if calibrated else model.module.marginals.disabled():
        cells = model.generate(held_out.n_obs, seed=seed)
    steps = f"{model.controller_steps_}+{model.n_generator_steps_}"
    return {"cells": cells, "train_seconds": seconds, "steps": steps, "infer_grn_s": infer_s}


def cells_from_real_tfs(model, train, n_obs: int, seed: int):
    """Cells whose TFs are those of ``n_obs`` random *training* cells and whose targets come from stage 2.

    A perfect controller's cells, so to speak: how realistic stage 2 alone is, given real TF values
    (and those cells' library sizes), scored on held-out cells like every other row.
    """
    import anndata
    import numpy as np
    import pandas as pd
    import torch
    from scipy import sparse

    module = model.module
    rng = np.random.default_rng(seed)
    rows = rng.choice(train.n_obs, size=n_obs, replace=True)
    x = train[rows, model.var_names_].X
    x = torch.as_tensor(x.toarray() if sparse.issparse(x) else np.asarray(x), dtype=torch.float32)
    library = x.sum(1, keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_obs, module.n_targets, module.noise_per_gene, generator=gen)
    module.eval()
    with torch.inference_mode():
        tfs = module.normalize(x)[:, module.tf_positions]
        values = module.normalize(module.regenerate(tfs, noise)) * library / module.normalize.library_size
    if model.is_count_data:
        values = torch.floor(values + torch.rand(values.shape, generator=gen))
    return anndata.AnnData(sparse.csr_matrix(values.numpy()), var=pd.DataFrame(index=np.asarray(model.var_names_)))


def stage2_ablation(args: argparse.Namespace) -> None:
    rows = []
    for seed in args.seeds:
        for name, (train, held_out, _key, counts) in datasets(seed).items():
            if args.datasets and name not in args.datasets:
                continue
            grn = scsynth.data.infer_grn(train, top_k=15, seed=seed, progress=False)
            controller_data = train.copy()
            scsynth.model.ScGAN.setup_anndata(controller_data, is_count_data=counts)
            controller = scsynth.model.ScGAN(controller_data)
            start = time.perf_counter()
            controller.train(args.controller_steps, batch_size=64, train_size=1.0, seed=seed, enable_progress_bar=False)
            controller_s = time.perf_counter() - start
            runs = {"ScGAN controller (its own cells)": (controller, controller_s)}
            tf_inputs = args.tf_inputs if seed in (args.tf_input_seeds or args.seeds) else args.tf_inputs[:1]
            for objective, tf_input in itertools.product(args.objectives, tf_inputs):
                adata = train.copy()
                scsynth.model.GRouNdGAN.setup_anndata(adata, is_count_data=counts)
                model = scsynth.model.GRouNdGAN(adata, grn=grn, controller=controller, unregulated="noise",
                                                target_objective=objective, tf_input=tf_input)
                start = time.perf_counter()
                model.train(args.target_steps, batch_size=64, train_size=1.0, seed=seed, enable_progress_bar=False)
                name_ = f"GRouNdGAN {objective}" + ("" if tf_input == "log1p" else f", tf_input={tf_input}")
                runs[name_] = (model, time.perf_counter() - start)
            scored = [(name_, model, seconds, False) for name_, (model, seconds) in runs.items()]
            if args.real_tfs:  # stage 2 alone, given training cells' real TF values
                scored += [(f"{name_}, real TFs", model, seconds, True) for name_, (model, seconds) in runs.items()
                           if model is not controller]
            for model_name, model, seconds, real_tfs in scored:
                if real_tfs:
                    cells = cells_from_real_tfs(model, train, held_out.n_obs, seed)
                else:
                    cells = model.generate(held_out.n_obs, seed=seed)
                table = scsynth.metrics.realism(held_out[:, cells.var_names], cells, n_repeats=args.repeats, seed=seed)
                rec = table.set_index("metric")
                row = {"dataset": name, "seed": seed, "model": model_name,
                       "steps": f"{args.controller_steps}" + ("" if model is controller else f"+{args.target_steps}"),
                       "train_s": seconds, "rf_auroc": float(rec.loc["rf_auroc", "value"]),
                       "rf_ctrl": float(rec.loc["rf_auroc", "control"]), "mmd/ctrl": float(rec.loc["mmd", "ratio"]),
                       "milisi": float(rec.loc["milisi", "value"]), "gene_mean_corr": float(rec.loc["gene_mean_corr", "value"]),
                       "gene_corr_corr": float(rec.loc["gene_corr_corr", "value"])}
                rows.append(row)
                print(f"  seed {seed} {name:16s} {model_name:34s} rf_auroc {row['rf_auroc']:.3f} "
                      f"(ctrl {row['rf_ctrl']:.3f})  mmd/ctrl {row['mmd/ctrl']:.2f}  milisi {row['milisi']:.2f}  "
                      f"({seconds:.0f} s)", flush=True)
                # written after every row, so a run cut short keeps what it measured
                write_json("groundgan_stage2", {"machine": machine(), "args": vars(args), "rows": rows})
    write_stage2_report(rows, args.controller_steps, args.target_steps)


def write_stage2_report(rows: list[dict], controller_steps: int, target_steps: int) -> None:
    """Medians over seeds per dataset and model, then every row; ``--stage2 --summarize`` redoes it from the JSON."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    metrics = ["train_s", "rf_auroc", "rf_ctrl", "mmd/ctrl", "milisi", "gene_mean_corr", "gene_corr_corr"]
    medians = frame.groupby(["dataset", "model"], sort=False).agg(
        seeds=("seed", "nunique"), steps=("steps", "first"), **{m: (m, "median") for m in metrics}).reset_index()
    report = (f"Stage-2 objectives at equal steps on one shared ScGAN controller per dataset and seed "
              f"({controller_steps} controller steps, {target_steps} stage-2 steps, batch 64; held-out cells; "
              "`train_s` is the stage's own time, with other work sharing the CPU). Medians over seeds:\n\n"
              + markdown_table(medians.to_dict(orient="records"), list(medians.columns))
              + "\n\nEvery run:\n\n" + markdown_table(rows, list(rows[0])))
    print("\n" + report)
    write_markdown("groundgan_stage2", report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240, help="training seconds per model and dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each realism comparison")
    parser.add_argument("--stage2", action="store_true", help="only the step-matched stage-2 objective comparison")
    parser.add_argument("--controller-steps", type=int, default=400, help="--stage2: controller steps")
    parser.add_argument("--target-steps", type=int, default=300, help="--stage2: stage-2 steps per objective")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="--stage2: seeds")
    parser.add_argument("--datasets", nargs="+", default=None, help="--stage2: datasets (default both)")
    parser.add_argument("--objectives", nargs="+", default=["conditional", "adversarial"],
                        choices=["conditional", "adversarial"], help="--stage2: stage-2 objectives")
    parser.add_argument("--tf-inputs", nargs="+", default=["log1p"], choices=["log1p", "normalized"],
                        help="--stage2: what the target generators read of the TFs (GRouNdGAN's tf_input; first: default)")
    parser.add_argument("--tf-input-seeds", type=int, nargs="+", default=None,
                        help="--stage2: seeds that run every --tf-inputs value (default all; the others the first)")
    parser.add_argument("--real-tfs", action="store_true",
                        help="--stage2: also score each stage 2 given training cells' real TF values")
    parser.add_argument("--summarize", action="store_true",
                        help="--stage2: rewrite groundgan_stage2.md from the JSON (e.g. of a run cut short)")
    args = parser.parse_args()
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*value argument must be within the support.*")
    if args.stage2 and args.summarize:
        saved = json.loads((Path(__file__).parent / "results" / "groundgan_stage2.json").read_text())
        return write_stage2_report(saved["rows"], saved["args"]["controller_steps"], saved["args"]["target_steps"])
    if args.stage2:
        return stage2_ablation(args)
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
