"""How real can cells be whose targets are independent given the TFs? GRouNdGAN's assumption, no network.

Usage::

    python benchmarks/groundgan_independence.py                    # both datasets, seeds 0 1 2
    python benchmarks/groundgan_independence.py --seeds 0 --ks 5 20
    python benchmarks/groundgan_independence.py --summarize        # the tables again from the JSON

GRouNdGAN's default (``target_noise="independent"``) draws every target from its regulators and its own
noise, independently of every other target: the GRN is the cells' whole dependence structure. How much
realism that allows is a property of the data, not of training: if the TFs carry a cell's state, targets
drawn independently given them keep the targets' co-expression; if they do not, no amount of training can
put it back. This benchmark measures it with no network at all, on the same splits and scoring as
``realism.py`` (pbmc68k_reduced, 1000 HVGs of the 559 immune cells, 30% held out):

- **predictability**: how much of the targets' variance the TFs explain out of sample (5-fold CV on the
  training cells; the fraction of the targets' total variance, of ``log1p`` of the normalised values, that
  a k-nearest-neighbour regression on the TFs explains, best ``k``; and a ridge regression, as a check
  that kNN is not simply weak in that many dimensions);
- **the independence oracle**: a cell takes the TFs and library size of a random training cell; *each
  target* takes its share of the library from one of that cell's ``k`` nearest *other* training cells in TF
  space, drawn separately per target (each neighbour weighted by one over the number of cells it neighbours, so
  the hubs of the kNN graph do not donate most targets); shares are renormalised (as GRouNdGAN's cells are). That is the
  nonparametric estimate of "targets independent given all TFs", a larger model class than GRouNdGAN's
  (whose targets see only their own regulators); a reference, not a bound, since the kNN estimate blurs the
  conditional distributions that a trained network may fit more sharply;
- **the coupled control**: the same, but all targets of a cell from *one* neighbour: the same TF matching
  (and its blur), the targets' joint profile kept. The gap between the two is what conditional
  independence costs.

TFs are the genes in :func:`scsynth.data.tf_list` ("human", Lambert et al. 2018), read as GRouNdGAN's
``tf_input="log1p"`` does (normalised value in units of the TF's mean, ``log1p``); every other gene is a
target. ``k = 1`` makes the draw deterministic given the TFs (the nearest training cell's targets): there
conditional independence says nothing, and the cells are copies of training cells' target profiles.
Writes ``benchmarks/results/groundgan_independence.json`` / ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, machine, markdown_table, resample, write_json, write_markdown  # noqa: E402

import scsynth  # noqa: E402

NAME = "groundgan_independence"


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float64)


def tf_features(adata: anndata.AnnData, tfs="human") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(shares of each cell's library, library sizes, TF columns, TF features as ``tf_input="log1p"`` reads them)."""
    x = _dense(adata.X)
    library = x.sum(1, keepdims=True)
    if (library <= 0).any():
        raise ValueError("every cell needs a positive total; drop empty cells first.")
    shares = x / library
    names = set(scsynth.data.tf_list(tfs))
    tf_idx = np.flatnonzero([g in names for g in adata.var_names])
    if len(tf_idx) == 0 or len(tf_idx) == adata.n_vars:
        raise ValueError(f"{len(tf_idx)} of {adata.n_vars} genes are TFs: need both TFs and targets.")
    scale = shares[:, tf_idx].mean(0)
    return shares, library, tf_idx, np.log1p(shares[:, tf_idx] / np.where(scale > 0, scale, 1.0))


def predictability(adata: anndata.AnnData, ks=(1, 3, 5, 10, 20, 30, 50, 100), *, seed: int = 0,
                   folds: int = 5) -> dict[str, float]:
    """Fraction of the targets' variance the TFs explain out of sample: ``{"knn_<k>": r2, ..., "ridge": r2}``."""
    shares, _, tf_idx, feat = tf_features(adata)
    targets = np.setdiff1d(np.arange(adata.n_vars), tf_idx)
    y = np.log1p(shares[:, targets] * 1e4)
    ks = [k for k in ks if k < len(y) * (folds - 1) / folds]
    sse = {f"knn_{k}": 0.0 for k in ks} | {"ridge": 0.0}
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(feat):
        _, ind = NearestNeighbors(n_neighbors=max(ks)).fit(feat[train]).kneighbors(feat[test])
        for k in ks:
            sse[f"knn_{k}"] += float(((y[train][ind[:, :k]].mean(1) - y[test]) ** 2).sum())
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(feat[train], y[train])
        sse["ridge"] += float(((ridge.predict(feat[test]) - y[test]) ** 2).sum())
    total = float(((y - y.mean(0)) ** 2).sum())
    return {key: 1.0 - value / total for key, value in sse.items()}


def independence_oracle(train: anndata.AnnData, n_obs: int, *, k: int, coupled: bool = False, seed: int = 0,
                        is_count_data: bool = True) -> anndata.AnnData:
    """``n_obs`` cells with a training cell's TFs and library size, targets from its ``k`` nearest other cells.

    ``coupled=False``: each target from a neighbour drawn for it alone (targets independent given the
    TFs); ``coupled=True``: every target from one neighbour per cell. Neighbours are drawn with weights
    inversely proportional to their in-degree in the kNN graph. Count data are rounded stochastically
    (``floor(x + u)``), as GRouNdGAN rounds.
    """
    if not 1 <= k < train.n_obs:
        raise ValueError(f"k must be in [1, {train.n_obs - 1}] (other training cells), got {k}.")
    rng = np.random.default_rng(seed)
    shares, library, tf_idx, feat = tf_features(train)
    targets = np.setdiff1d(np.arange(train.n_vars), tf_idx)
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(feat).kneighbors(feat, return_distance=False)
    # drop each cell itself (where ties put it later, drop the last neighbour instead)
    own = neighbours == np.arange(train.n_obs)[:, None]
    own[~own.any(1), -1] = True
    neighbours = neighbours[~own].reshape(train.n_obs, k)
    rows = rng.integers(0, train.n_obs, n_obs)
    # a neighbour with probability inversely proportional to how many cells have it as a neighbour: kNN graphs in
    # many dimensions have hubs, and drawn uniformly a few hub cells would donate most targets (duplicates)
    weight = 1.0 / np.bincount(neighbours.ravel(), minlength=train.n_obs)[neighbours]
    cumulative = np.cumsum(weight / weight.sum(1, keepdims=True), axis=1)[rows]
    draws = rng.random((n_obs, 1) if coupled else (n_obs, len(targets)))
    picks = np.minimum((draws[:, :, None] > cumulative[:, None, :]).sum(-1), k - 1)
    donors = neighbours[rows[:, None], picks]
    out = shares[rows]
    out[:, targets] = shares[donors, targets[None, :]]
    out = out / out.sum(1, keepdims=True) * library[rows]
    if is_count_data:
        out = np.floor(out + rng.random(out.shape))
    return anndata.AnnData(sparse.csr_matrix(out.astype(np.float32)), var=pd.DataFrame(index=train.var_names.copy()))


def run(args: argparse.Namespace) -> list[dict]:
    from realism import load_splits, score

    payload = json.loads((RESULTS / f"{NAME}.json").read_text()) if (RESULTS / f"{NAME}.json").is_file() else {}
    key = ("dataset", "seed", "k", "targets")
    rows = payload.get("rows", [])
    for seed in args.seeds:
        for name, split in load_splits(args.datasets, seed).items():
            fit = predictability(split.train, seed=seed)
            best = max((int(key_[4:]) for key_ in fit if key_.startswith("knn_")), key=lambda k: fit[f"knn_{k}"])
            n_tfs = len(tf_features(split.train)[2])
            print(f"== seed {seed}, {name}: {n_tfs} TFs, {split.train.n_vars - n_tfs} targets; TFs explain "
                  f"{fit[f'knn_{best}']:.1%} of the targets' variance (kNN, best k={best}), {fit['ridge']:.1%} "
                  "(ridge)", flush=True)
            # k = 0: training cells themselves, resampled (what copying real cells scores on held-out ones)
            for k, coupled in [(0, True)] + [(k, c) for k in sorted(set(args.ks) | {best}) for c in (False, True)]:
                if k == 0:
                    cells = resample(split.train, split.held_out.n_obs, dense=False, seed=seed)
                else:
                    cells = independence_oracle(split.train, split.held_out.n_obs, k=k, coupled=coupled, seed=seed,
                                                is_count_data=split.counts)
                row = {"dataset": name, "seed": seed, "k": k, "best_k": k == best,
                       "targets": ("training cells" if k == 0 else "one neighbour per cell" if coupled
                                   else "independent"), "tfs": n_tfs,
                       "r2_knn_best": fit[f"knn_{best}"], "r2_ridge": fit["ridge"],
                       **score(split, cells, args.repeats, seed)}
                rows = [r for r in rows if tuple(r[c] for c in key) != tuple(row[c] for c in key)] + [row]
                write_json(NAME, {"machine": machine(), "rows": rows})
                print(f"  k={k:3d} {row['targets']:23s} rf_auroc {row['rf_auroc']:.3f} (ctrl "
                      f"{row['rf_auroc_control']:.3f})  mmd/ctrl {row['mmd/ctrl']:.2f}  gene-gene corr. r "
                      f"{row['gene_corr_corr']:.2f}", flush=True)
    return rows


def report(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    fit = frame.groupby("dataset", sort=False).agg(seeds=("seed", "nunique"), tfs=("tfs", "median"),
                                                   r2_knn_best=("r2_knn_best", "median"),
                                                   r2_ridge=("r2_ridge", "median"))
    cols = ["rf_auroc", "rf_auroc_control", "mmd/ctrl", "milisi", "gene_corr_corr", "gene_mean_corr"]
    medians = frame.groupby(["dataset", "k", "targets"], sort=False).agg(
        seeds=("seed", "nunique"), best_k_in=("best_k", "sum"), **{c: (c, "median") for c in cols}).reset_index()
    medians = medians.sort_values(["dataset", "k", "targets"], kind="stable")
    per_seed = frame.pivot_table(index=["dataset", "k", "targets"], columns="seed", values="rf_auroc")
    medians["rf_auroc per seed"] = ["/".join(f"{v:.3f}" for v in per_seed.loc[tuple(r)].dropna())
                                    for r in medians[["dataset", "k", "targets"]].to_numpy()]
    return ("How much of the targets' variance the TFs explain out of sample (5-fold CV on the training cells, "
            "medians over seeds):\n\n" + markdown_table(fit.reset_index().to_dict(orient="records"), ["dataset",
            "seeds", "tfs", "r2_knn_best", "r2_ridge"])
            + "\n\nCells whose targets come from training cells near in TF space, each target from its own "
            "neighbour (`independent`, GRouNdGAN's assumption) or all from one (`one neighbour per cell`); scored "
            "on the held-out cells as in `realism.py`, medians over seeds (`best_k_in`: seeds whose "
            "cross-validated best k this is):\n\n"
            + markdown_table(medians.to_dict(orient="records"), ["dataset", "k", "targets", "seeds", "best_k_in",
                                                                 *cols, "rf_auroc per seed"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["pbmc68k_reduced", "immune_559"])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 20, 50], help="neighbours (plus each CV best)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each realism comparison")
    parser.add_argument("--summarize", action="store_true", help="only rewrite the table from the JSON")
    args = parser.parse_args()
    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    rows = json.loads((RESULTS / f"{NAME}.json").read_text())["rows"] if args.summarize else run(args)
    text = report(rows)
    write_markdown(NAME, text)
    print("\n" + text)


if __name__ == "__main__":
    main()
