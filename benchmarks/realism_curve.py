"""Realism along one training run: ScGAN and cscGAN scored at several generator steps of the same schedule.

Usage::

    python benchmarks/realism_curve.py                         # 2000 steps, scored at 400 ... 2000, seeds 0 1 2
    python benchmarks/realism_curve.py --seeds 0 --models cscGAN --steps 2000 --at 800 2000 --repeats 20
    python benchmarks/realism_curve.py --save-snapshots snaps/ # also keep each snapshot's weights
    python benchmarks/realism_curve.py --from-snapshots snaps/ # score saved snapshots again (e.g. more repeats)
    python benchmarks/realism_curve.py --summarize              # tables and figure from the stored runs

``benchmarks/realism.py --steps N`` trains a model for N steps, with a learning rate that decays over those N
steps; this script trains once, for ``--steps`` generator steps (``train()``'s default 2000, its default
schedule), keeps a copy of the generator at each step of ``--at``, and afterwards scores each copy as a user
would get it: marginal calibration refitted on the training cells, cells generated for the held-out cells (with
their labels for cscGAN), scored against them with ``realism.py``'s ``score`` (same splits, seeds and metrics,
``--repeats`` resamplings). So a row at step 800 is a model 800 steps into a 2000-step schedule, not a model trained
for 800 steps. The models are scored on the same held-out cells with the same resampling seeds, so the
difference of two models on one seed is paired; more ``--repeats`` narrow it (``score`` stores the standard
deviation over the repeats as ``rf_auroc_sd``).

Snapshots are saved with ``torch.save`` as ``{step: state_dict}`` (tensors only, read back with
``weights_only=True``) to ``<dir>/<model>_s<seed>_<steps>.pt``. ``--from-snapshots`` rebuilds each model by a
one-step training on the same cells (which sets its training cells and library sizes) and then loads each snapshot.

Writes ``benchmarks/results/<out>.json`` (every scored snapshot), ``<out>.md`` (medians over seeds per model and
step, and per-seed paired differences between the models) and ``<out>.png`` (RF AUROC against generator step).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine, markdown_table, update_runs, write_markdown  # noqa: E402
from realism import Split, load_payload, load_splits, score  # noqa: E402

import scsynth  # noqa: E402
from scsynth.model import _marginals as marginals  # noqa: E402

DATASET = "pbmc68k_reduced"  # the labelled dataset: cscGAN needs labels


class Snapshots(Callback):
    """Keep a copy of the module's weights when the plan has made each of ``steps`` generator steps."""

    def __init__(self, steps: list[int]) -> None:
        self.steps, self.weights = set(steps), {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.generator_steps
        if step in self.steps and step not in self.weights:
            self.weights[step] = copy.deepcopy(pl_module.module.state_dict())


def build(split: Split, model_name: str, **model_kwargs) -> scsynth.model.ScGAN:
    adata = split.train.copy()
    scsynth.model.ScGAN.setup_anndata(adata, labels_key=split.labels_key if model_name == "cscGAN" else None,
                                      is_count_data=split.counts)
    return scsynth.model.ScGAN(adata, **model_kwargs)


def train_snapshots(split: Split, model_name: str, steps: int, at: list[int], seed: int, **model_kwargs):
    """Train for ``steps`` generator steps; returns the model and its weights at each step of ``at``.

    ``model_kwargs`` go to :class:`~scsynth.model.ScGAN` (a variant of the model as it ships)."""
    model = build(split, model_name, **model_kwargs)
    snapshots = Snapshots(at)
    start = time.perf_counter()
    model.train(max_steps=steps, seed=seed, train_size=1.0, enable_progress_bar=False, callbacks=[snapshots])
    print(f"  {model_name} trained {steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    return model, snapshots.weights


def load_snapshots(split: Split, model_name: str, path: Path, seed: int, **model_kwargs):
    """A model set up on the split's training cells (one training step) and the saved snapshots."""
    if not path.is_file():
        raise FileNotFoundError(f"No snapshots at {path}; train them first with --save-snapshots {path.parent}.")
    model = build(split, model_name, **model_kwargs)
    model.train(max_steps=1, seed=seed, train_size=1.0, enable_progress_bar=False, calibrate_marginals=False)
    return model, torch.load(path, weights_only=True)


def restore(model, weights: dict, seed: int) -> None:
    """Load one snapshot into ``model`` and refit its marginal calibration on the training cells, as ``train()``
    does after its last step: the model as a user would have it had training stopped there."""
    model.module.load_state_dict(weights)
    model.module.eval()
    model._fit_marginals(np.asarray(model.train_indices), seed, fit=True)


def score_snapshot(model, weights: dict, split: Split, seed: int, repeats: int) -> dict:
    """Load one snapshot, refit its marginal calibration on the training cells and score generated cells."""
    restore(model, weights, seed)
    labels = list(split.held_out.obs[split.labels_key].astype(str)) if model.module.conditional else None
    cells = model.generate(split.held_out.n_obs, condition=labels, seed=seed)
    return score(split, cells, repeats, seed)


# -- tables --------------------------------------------------------------------------------------------------------
def report(runs: list[dict], info: dict) -> str:
    frame = pd.DataFrame(runs)
    if frame.empty:
        return "No runs yet."
    for column in ("detected_w1", "detected_w1_control", "detected_median_ratio"):  # rows from before lack them
        frame[column] = frame[column] if column in frame else np.nan
    frame["detected_w1/ctrl"] = frame["detected_w1"] / frame["detected_w1_control"]
    grouped = frame.groupby(["model", "step"])
    table = grouped[["rf_auroc", "rf_auroc_control", "mmd/ctrl", "marker_lfc_ratio", "detected_median_ratio",
                     "detected_w1/ctrl"]].median()
    table["seeds"] = grouped["seed"].nunique()
    table["RF AUROC per seed"] = grouped.apply(
        lambda g: " / ".join(f"{v:.3f}" for v in g.sort_values("seed")["rf_auroc"]), include_groups=False)
    rows = [{"model": m, "step": int(s), "seeds": int(r["seeds"]), "RF AUROC (ctrl)":
             f"{r['rf_auroc']:.2f} ({r['rf_auroc_control']:.2f})", "per seed": r["RF AUROC per seed"],
             "MMD/ctrl": f"{r['mmd/ctrl']:.2f}", "marker lfc ratio": f"{r['marker_lfc_ratio']:.2f}",
             "detected genes: median ratio, W1/ctrl": "" if pd.isna(r["detected_median_ratio"]) else
             f"{r['detected_median_ratio']:.2f}, {r['detected_w1/ctrl']:.1f}"}
            for (m, s), r in table.iterrows()]
    steps = ", ".join(str(int(s)) for s in sorted(frame["step"].unique()))
    text = (f"One {int(frame['budget_steps'].iloc[0])}-step training per model and seed, scored at step(s) {steps}; "
            f"medians over seeds; held-out real cells of {DATASET}; {int(frame['repeats'].iloc[0])} repeats "
            f"per score. Machine: {info['processor']}, {info['cpus']} CPUs, torch {info['torch']}.\n\n"
            + markdown_table(rows, ["model", "step", "seeds", "RF AUROC (ctrl)", "per seed", "MMD/ctrl",
                                    "marker lfc ratio", "detected genes: median ratio, W1/ctrl"]))
    wide = frame.pivot_table(index=["seed", "step"], columns="model", values="rf_auroc")
    if {"ScGAN", "cscGAN"} <= set(wide.columns):
        wide = wide[["ScGAN", "cscGAN"]].dropna()
        diff = (wide["cscGAN"] - wide["ScGAN"]).reset_index(name="d")
        paired = [{"step": int(s), "cscGAN - ScGAN per seed": " / ".join(f"{v:+.3f}" for v in g["d"]),
                   "median": f"{g['d'].median():+.3f}", "seeds cscGAN lower": f"{int((g['d'] < 0).sum())} of {len(g)}"}
                  for s, g in diff.groupby("step")]
        text += "\n\nPaired RF AUROC differences (same split, same resampling seeds):\n\n" + markdown_table(
            paired, ["step", "cscGAN - ScGAN per seed", "median", "seeds cscGAN lower"])
    return text


def figure(runs: list[dict], path: Path):
    """RF AUROC against generator step, per seed and its median; with one step scored, per seed (paired)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(runs)
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    one_step = frame["step"].nunique() == 1
    for i, (model, rows) in enumerate(frame.groupby("model", sort=False)):
        colour = plt.cm.tab10(i)
        if one_step:  # each seed's score, paired across models, and the medians
            rows = rows.sort_values("seed")
            ax.plot(rows["seed"], rows["rf_auroc"], "o", color=colour, label=model)
            ax.axhline(float(rows["rf_auroc"].median()), color=colour, lw=1, label=f"{model} (median)")
            continue
        for _, seed_rows in rows.groupby("seed"):
            seed_rows = seed_rows.sort_values("step")
            ax.plot(seed_rows["step"], seed_rows["rf_auroc"], "-", color=colour, alpha=0.3, lw=1)
        median = rows.groupby("step")["rf_auroc"].median()
        ax.plot(median.index, median.to_numpy(), "o-", color=colour, label=f"{model} (median)")
    ax.axhline(float(frame["rf_auroc_control"].median()), color="grey", ls="--", lw=1, label="real vs real")
    ax.set(xlabel="seed (split and training)" if one_step else "generator step (of one training)",
           ylabel="RF AUROC (0.5 = indistinguishable)",
           title=f"{DATASET}: step {int(frame['step'].iloc[0])}, per seed" if one_step
           else f"{DATASET}: realism along training")
    if one_step:
        ax.set_xticks(sorted(int(seed) for seed in frame["seed"].unique()))  # seeds, not fractions of one
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


# -- main ----------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="generator steps of the training (its schedule)")
    parser.add_argument("--at", type=int, nargs="+", default=[400, 800, 1200, 1600, 2000],
                        help="generator steps to score")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["ScGAN", "cscGAN"], choices=["ScGAN", "cscGAN"])
    parser.add_argument("--variant", nargs=3, action="append", default=[], metavar=("NAME", "MODEL", "JSON"),
                        help="also score MODEL built with these ScGAN keyword arguments (snapshots named after "
                             "NAME), e.g. --variant 'ScGAN, Poisson output' ScGAN '{\"output_noise\": \"poisson\"}'")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each realism comparison")
    parser.add_argument("--save-snapshots", type=Path, default=None, help="folder to keep the snapshots in")
    parser.add_argument("--from-snapshots", type=Path, default=None, help="score snapshots saved there, no training")
    parser.add_argument("--min-calibration-cells", type=int, default=None,
                        help="calibrate labels with at least this many training cells (default: the package's); its "
                             "rows are named '<model>, labels >= N cells calibrated'")
    parser.add_argument("--out", default="realism_curve", help="results name: benchmarks/results/<out>.json/.md/.png")
    parser.add_argument("--summarize", action="store_true", help="only rewrite the tables and figure")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 when two runs share the cores)")
    args = parser.parse_args()
    if not 0 < min(args.at) <= max(args.at) <= args.steps:
        parser.error(f"--at steps must be within 1..{args.steps}, got {args.at}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    suffix = ""
    if args.min_calibration_cells is not None:
        marginals.MIN_CALIBRATION_CELLS = args.min_calibration_cells  # read at each fit
        suffix = f", labels >= {args.min_calibration_cells} cells calibrated"
    runs = load_payload(args.out).get("runs", [])
    key = ("model", "seed", "step", "budget_steps")
    for seed in [] if args.summarize else args.seeds:
        split = load_splits([DATASET], seed)[DATASET]
        print(f"== seed {seed}: {split.train.n_obs} training, {split.held_out.n_obs} held out", flush=True)
        runs_of = {name: (name, {}) for name in args.models} | {
            name: (base, json.loads(kwargs)) for name, base, kwargs in args.variant}
        for name, (base, kwargs) in runs_of.items():
            path = ((args.from_snapshots or args.save_snapshots or Path("."))
                    / f"{name.replace(' ', '_')}_s{seed}_{args.steps}.pt")
            if args.from_snapshots:
                model, weights = load_snapshots(split, base, path, seed, **kwargs)
            else:
                model, weights = train_snapshots(split, base, args.steps, args.at, seed, **kwargs)
                if args.save_snapshots:
                    args.save_snapshots.mkdir(parents=True, exist_ok=True)
                    torch.save(weights, path)
            for step in args.at:
                row = {"dataset": DATASET, "model": name + suffix, "seed": seed, "step": step, "budget_steps": args.steps,
                       "repeats": args.repeats, "min_calibration_cells": marginals.MIN_CALIBRATION_CELLS,
                       **score_snapshot(model, weights[step], split, seed, args.repeats)}
                runs = update_runs(args.out, [row], key, machine=machine())  # keeps other processes' rows
                print(f"  {row['model']:7s} step {step:5d}  rf_auroc {row['rf_auroc']:.3f} (ctrl {row['rf_auroc_control']:.3f}"
                      f", sd {row['rf_auroc_sd']:.3f})  mmd/ctrl {row['mmd/ctrl']:.2f}", flush=True)
    info = load_payload(args.out).get("machine") or machine()
    if runs:
        figure(runs, RESULTS / f"{args.out}.png")
    text = report(runs, info)
    write_markdown(args.out, text)
    print("\n" + text)


if __name__ == "__main__":
    main()
