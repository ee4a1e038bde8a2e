"""Realism on a small cohort by cross-fitting: every sample is held out once, all folds are scored together.

Usage::

    python benchmarks/realism_crossfit.py                    # GEUVADIS, 240 s, 3 folds, seeds 0 1 2, RNAGAN + peer
    python benchmarks/realism_crossfit.py --models "RNAGAN, no calibration" \\
        --variant "RNAGAN, no calibration" RNAGAN '{"calibrate_marginals": false}'
    python benchmarks/realism_crossfit.py --models RNAGAN "RNAGAN realism checkpoint" NB-copula \\
        --variant "RNAGAN realism checkpoint" RNAGAN '{"train_size": 0.8, "monitor_realism": true}'
    python benchmarks/realism_crossfit.py --quick            # 10 s budgets, seed 0, 2 folds (checks the script)

Why: ``benchmarks/realism.py`` holds out 30% of the 85 GEUVADIS samples, so its forest tells 25 pseudo-samples
from 25 real ones and its real-vs-real control compares two halves of those 25; between seeds the control alone
moves from 0.55 to 0.67 and one model's RF AUROC by ±0.25, which is too noisy to tell two options apart. Here
``--folds`` stratified folds (by sex, shuffled with the seed) each train a model for the same wall-clock budget
on the other folds (3 folds: about 57 training samples, as the 30% split's 60) and generate as many
pseudo-samples per sex as the fold holds out. The held-out samples of all folds (all 85) and the pseudo-samples
of all folds (85) are then scored together by ``realism.py``'s scoring (:func:`scsynth.metrics.realism`, the
control is two halves of the 85 real samples).

Genes: each fold keeps the 2000 most variable genes of *its own* training samples (as ``realism.py``: no
held-out sample chooses genes); the pooled scores use the genes every fold kept (about 1400 of 2000).

Writes ``benchmarks/results/<out>.json/.md/.png`` (default ``realism_crossfit``), rows keyed by (model, budget,
seed) with ``folds`` recorded; ``train_seconds`` is the median over folds.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from functools import reduce
from pathlib import Path

import anndata
import numpy as np
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, update_runs  # noqa: E402
from realism import MODELS, RUN_KEY, Split, _hvg_on_train, load_runs, report, score  # noqa: E402

import scsynth  # noqa: E402

DATASET, LABELS_KEY, N_GENES = "geuvadis", "sex", 2000


def fold_splits(folds: int, seed: int) -> list[Split]:
    """GEUVADIS split ``folds`` ways (stratified by sex); each fold's genes chosen on its training samples."""
    adata = scsynth.data.geuvadis_lcl()
    sex = adata.obs[LABELS_KEY].astype(str).to_numpy()
    out = []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(sex)), sex):
        train, held_out = _hvg_on_train(adata[train_idx].copy(), adata[test_idx].copy(), N_GENES)
        out.append(Split(train, held_out, LABELS_KEY, True))
    return out


def pooled(splits: list[Split], generated: list[anndata.AnnData]) -> tuple[Split, anndata.AnnData]:
    """All folds' held-out samples and pseudo-samples, on the genes every fold kept."""
    genes = reduce(lambda a, b: a.intersection(b, sort=False), [s.held_out.var_names for s in splits])
    real = anndata.concat([s.held_out[:, genes] for s in splits])
    cells = anndata.concat([c[:, genes] for c in generated])
    cells.obs_names_make_unique()
    return Split(None, real, LABELS_KEY, True), cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[240], help="training seconds per fold")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["RNAGAN", "NB-copula"])
    parser.add_argument("--variant", nargs=3, action="append", default=[], metavar=("NAME", "BASE", "JSON"),
                        help="a model BASE trained with other options (JSON of train() keywords)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each realism comparison")
    parser.add_argument("--quick", action="store_true", help="10 s budgets, seed 0, 2 folds (to <out>_quick.*)")
    parser.add_argument("--out", default="realism_crossfit", help="results name: benchmarks/results/<out>.*")
    args = parser.parse_args()
    if args.quick:
        args.budgets, args.seeds, args.folds, args.repeats, args.out = [10], [0], 2, 2, f"{args.out}_quick"
    models = {name: spec for name, spec in MODELS.items() if DATASET in spec[1]}
    for name, base, options in args.variant:
        if base not in models:
            parser.error(f"--variant {name!r}: base {base!r} is not one of {sorted(models)}")
        models[name] = (models[base][0], models[base][1], json.loads(options))
    unknown = sorted(set(args.models) - set(models))
    if unknown:
        parser.error(f"--models {unknown}: not a GEUVADIS model; choose from {sorted(models)} or add a --variant")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    runs = load_runs(args.out)
    stored = {r.get("folds") for r in runs} - {args.folds}
    if stored:
        parser.error(f"benchmarks/results/{args.out}.json holds {sorted(stored)}-fold runs; give another --out")
    for seed in args.seeds:
        splits = fold_splits(args.folds, seed)
        for budget in args.budgets:
            print(f"== seed {seed}, {budget:g} s per fold, {args.folds} folds: "
                  f"{[s.train.n_obs for s in splits]} training samples", flush=True)
            for model in args.models:
                runner, _, options = models[model]
                results = [runner(split, budget, seed + 1000 * k, **options) for k, split in enumerate(splits)]
                real, cells = pooled(splits, [r["cells"] for r in results])
                row = {"dataset": DATASET, "model": model, "budget_s": budget, "seed": seed, "folds": args.folds,
                       "train_seconds": float(np.median([r["train_seconds"] for r in results])),
                       "steps": str([r["steps"] for r in results]), "n_genes": real.held_out.n_vars,
                       **score(real, cells, args.repeats, seed)}
                runs = update_runs(args.out, [row], RUN_KEY, machine=machine(), folds=args.folds)
                print(f"  {model:27s} rf_auroc {row['rf_auroc']:.3f} (ctrl {row['rf_auroc_control']:.3f})  "
                      f"mmd/ctrl {row['mmd/ctrl']:.2f}  milisi {row['milisi']:.2f}  ({row['m']} per side)", flush=True)
    print("\n" + report(runs, machine(), args.out))


if __name__ == "__main__":
    main()
