"""What the realism forest sees depends on the scale it looks at: normalised values (the metric's) or their log1p.

``scsynth.metrics.realism`` follows scGAN's evaluation: its random forest sees the top 50 principal components of
library-size-normalised expression, on as many cells per side as half the held-out cells (``m``), split 70/30. Users
look at log-normalised data (``sc.pp.log1p`` before ``sc.pp.pca``), and a forest can be given more cells. This
script scores the same generated cells four ways, per seed of ``realism.py``'s pbmc68k_reduced split:

- ``m cells, 70/30`` (the metric's protocol, ``scsynth.metrics.rf_auroc`` on ``m`` random cells per side,
  ``--repeats`` times) on normalised values and on their log1p;
- ``5-fold, all cells``: a PCA + forest pipeline, out-of-fold predictions for every held-out cell and as many
  generated ones (PCA fitted within each fold), ``--fold-repeats`` shuffles, on normalised values and their log1p.

Sets: real vs real (held-out cells against as many training cells, the control for every protocol), the NB-copula
peer (``_nb_copula.fit_sample``, fitted on the training cells, per cell type) and each model of ``--models`` as a
user gets it after ``--step`` steps of ``train()``'s default schedule (calibrated, generated for the held-out cells'
labels for cscGAN). Models come from ``realism_curve.py --save-snapshots`` files in ``--snapshots`` when there, and
are trained (and their snapshot saved there) when not.

Usage::

    python benchmarks/realism_log_scale.py --snapshots snaps/ --models ScGAN --seeds 0 1 2

Writes ``benchmarks/results/<out>.json`` and ``<out>.md`` (medians over seeds, and per seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, update_runs, write_markdown  # noqa: E402
from _nb_copula import fit_sample  # noqa: E402
from realism import Split, load_payload, load_splits  # noqa: E402
from realism_curve import DATASET, load_snapshots, restore, train_snapshots  # noqa: E402

import scsynth  # noqa: E402
from scsynth.metrics._preprocess import prepare  # noqa: E402

PROTOCOLS = ["m cells, 70/30, normalised (the metric)", "m cells, 70/30, log1p",
             "5-fold, all cells, normalised", "5-fold, all cells, log1p"]
TREES = 300


def as_dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def small_protocol(real: np.ndarray, other: np.ndarray, *, repeats: int, seed: int) -> float:
    """The metric's forest: ``m = len(real) // 2`` random cells per side, 70/30, mean AUROC over ``repeats``."""
    m = min(len(real) // 2, len(other))
    values = []
    for rep in range(repeats):
        rng = np.random.default_rng([seed, rep])
        a, b = real[rng.choice(len(real), m, replace=False)], other[rng.choice(len(other), m, replace=False)]
        values.append(scsynth.metrics.rf_auroc(a, b, n_estimators=TREES, seed=rep, n_jobs=1))
    return float(np.mean(values))


def cross_validated(real: np.ndarray, other: np.ndarray, *, repeats: int, seed: int) -> float:
    """Out-of-fold AUROC of a PCA + forest pipeline over every cell of both sets, mean over ``repeats`` shuffles."""
    x, y = np.vstack([real, other]), np.repeat([0, 1], [len(real), len(other)])
    values = []
    for rep in range(repeats):
        pipe = make_pipeline(PCA(min(50, x.shape[1], int(0.8 * len(x)) - 1), random_state=rep),
                             RandomForestClassifier(TREES, random_state=rep, n_jobs=1))
        folds = StratifiedKFold(5, shuffle=True, random_state=seed * 100 + rep)
        values.append(roc_auc_score(y, cross_val_predict(pipe, x, y, cv=folds, method="predict_proba")[:, 1]))
    return float(np.mean(values))


def protocols(real, other, *, repeats: int, fold_repeats: int, seed: int) -> dict[str, float]:
    """AUROC of telling ``other`` from ``real`` (normalised HVG expression) under each of :data:`PROTOCOLS`."""
    logged = np.log1p(real), np.log1p(other)
    return dict(zip(PROTOCOLS, [small_protocol(real, other, repeats=repeats, seed=seed),
                                small_protocol(*logged, repeats=repeats, seed=seed),
                                cross_validated(real, other, repeats=fold_repeats, seed=seed),
                                cross_validated(*logged, repeats=fold_repeats, seed=seed)], strict=True))


def generated_sets(split: Split, models: list[str], snapshots: Path, step: int, seed: int,
                   variants: dict[str, tuple[str, dict]] | None = None, uncalibrated: bool = False) -> dict:
    """The cells each set puts against the held-out cells: control, NB copula, the models and their variants
    (``{name: (model, ScGAN keyword arguments)}``), and with ``uncalibrated`` each model's cells without its
    marginal calibration too (``"<name>, uncalibrated"``)."""
    held = split.held_out
    labels = held.obs[split.labels_key].astype(str)
    rng = np.random.default_rng(seed)
    sets = {"real vs real": split.train[np.sort(rng.choice(split.train.n_obs, held.n_obs, replace=False))],
            "NB copula": fit_sample(split.train, held.n_obs, labels_key=split.labels_key, condition=labels,
                                    is_count_data=split.counts, seed=seed)}
    runs = {name: (name, {}) for name in models} | (variants or {})
    for name, (base, kwargs) in runs.items():
        path = snapshots / f"{name.replace(' ', '_')}_s{seed}_{step}.pt"
        if path.is_file():
            model, weights = load_snapshots(split, base, path, seed, **kwargs)
        else:
            model, weights = train_snapshots(split, base, step, [step], seed, **kwargs)
            snapshots.mkdir(parents=True, exist_ok=True)
            torch.save(weights, path)
        restore(model, weights[step], seed)
        condition = list(labels) if model.module.conditional else None
        sets[name] = model.generate(held.n_obs, condition=condition, seed=seed)
        if uncalibrated:
            with model.module.marginals.disabled():
                sets[f"{name}, uncalibrated"] = model.generate(held.n_obs, condition=condition, seed=seed)
    return sets


def report(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    order = list(dict.fromkeys(frame["set"]))
    median = frame.groupby("set")[PROTOCOLS].median().loc[order]
    per_seed = frame.groupby("set").apply(
        lambda g: {p: " / ".join(f"{v:.3f}" for v in g.sort_values("seed")[p]) for p in PROTOCOLS},
        include_groups=False).loc[order]
    n_seeds = frame.groupby("set")["seed"].nunique()
    table = [{"set": s, "seeds": int(n_seeds[s]), **{p: f"{median.loc[s, p]:.2f} ({per_seed[s][p]})" for p in PROTOCOLS}}
             for s in order]
    seeds = sorted(int(s) for s in frame["seed"].unique())
    return (f"RF AUROC telling each set from the held-out cells of {DATASET} (0.5: indistinguishable); medians over "
            f"each set's seeds (of {seeds}), per seed in brackets. `m` = half the held-out cells per side. {TREES} trees.\n\n"
            + markdown_table(table, ["set", "seeds", *PROTOCOLS]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, required=True, help="realism_curve.py --save-snapshots folder")
    parser.add_argument("--models", nargs="+", default=["ScGAN", "cscGAN"], choices=["ScGAN", "cscGAN"])
    parser.add_argument("--variant", nargs=3, action="append", default=[], metavar=("NAME", "MODEL", "JSON"),
                        help="also score MODEL built with these ScGAN keyword arguments, e.g. "
                             "--variant 'ScGAN log1p critic' ScGAN '{\"critic_input\": \"log1p\"}'")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="also score each model's cells without its marginal calibration")
    parser.add_argument("--step", type=int, default=2000, help="training steps (train()'s default schedule)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=10, help="resamplings of the metric's protocol")
    parser.add_argument("--fold-repeats", type=int, default=3, help="shuffles of the 5-fold protocol")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", default="realism_log_scale")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    rows = load_payload(args.out).get("runs", [])  # other seeds' and sets' rows are kept
    variants = {name: (base, json.loads(kwargs)) for name, base, kwargs in args.variant}
    for seed in args.seeds:
        split = load_splits([DATASET], seed)[DATASET]
        sets = generated_sets(split, args.models, args.snapshots, args.step, seed, variants, args.uncalibrated)
        for name, cells in sets.items():
            real, other, _ = prepare(split.held_out, cells, n_hvg=1000, library_size=1e4, layer=None)
            row = {"seed": seed, "set": name, "step": None if name in ("real vs real", "NB copula") else args.step,
                   **protocols(as_dense(real), as_dense(other), repeats=args.repeats,
                               fold_repeats=args.fold_repeats, seed=seed)}
            # re-read and merged under a lock: one process per seed can share an --out
            rows = update_runs(args.out, [row], ("seed", "set", "step"), machine=machine(),
                               args={k: str(v) for k, v in vars(args).items()})
            print(f"seed {seed} {name:13s} " + " | ".join(f"{row[p]:.3f}" for p in PROTOCOLS), flush=True)
    text = report(rows)
    write_markdown(args.out, text)
    print("\n" + text)


if __name__ == "__main__":
    main()
