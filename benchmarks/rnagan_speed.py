"""RNAGAN stratify and embed throughput: shared reference sets + a factorised first layer vs per episode.

Usage::

    python benchmarks/rnagan_speed.py            # 20k cells x 5000 genes, 3 repeats, pbmc accuracy (~30 min)
    python benchmarks/rnagan_speed.py --quick    # 2000 cells, 40 queries, 1 repeat, short training (< 2 min)
    python benchmarks/rnagan_speed.py --no-accuracy --paths new baseline   # speed only, two paths

**speed** — as ``benchmarks/rnagan.py``'s speed part: ``immune_559`` resampled to 20k cells x its 5000 most
detected genes (sparse counts), 10 random groups, 50 Hallmark sets + 8 learned pathways, a short training
(inference cost does not depend on it). Queries: the first 500 cells (a copy, so no exclusion);
``stratify(n_draws=20, n_refs=5, calibrate=False)`` and ``scsynth.tl.embed`` (10 sets of 10 references).
Three paths, alternated within each repeat, medians reported:

* ``new``: the package: per group one table of 2 x n_draws reference sets shared by all targets (each
  target scores a random n_draws of those without its own row), only the drawn reference rows turned
  into network input, each target and each set encoded once through the first layer split as
  ``(W_t + W_m) t + (W_p p - W_m m) + b``; only the per-pair sums go through the rest of the MLP;
* ``per-episode (shared sets)``: the same draws, every (target, set) episode through the full
  discriminator (``model._factorised = False``: isolates the first-layer factorisation);
* ``baseline``: the previous implementation, kept here only: independent sets per (target, group),
  the whole training data densified, every episode through the full discriminator.

Also timed: ``stratify`` of all 20k training cells against themselves (own row left out: 20k x 10 groups
x 20 draws = 4M pairs), new path only, with peak resident memory.

**accuracy** — ``pbmc68k_reduced``, 30% of each ``bulk_labels`` type held out, a short single-cell training;
held-out cells stratified against the training cells (calibrated) by the new path and the baseline,
each over several draw seeds (mean, sd); embedding quality (silhouette of types, ARI of k-means) of
the held-out cells' vectors by both. Same model for both, so only the draws and the arithmetic differ.

Writes ``benchmarks/results/rnagan_speed.json`` and ``rnagan_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import types
import warnings

import anndata
import numpy as np
from _common import HERE, RESULTS, PeakRSS, machine, markdown_table, resample, write_json, write_markdown
from rnagan import split_by_group  # the same stratified held-out split as the RNAGAN benchmark
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

import scsynth
from scsynth.model import RNAGAN
from scsynth.model._rnagan_inputs import draw_sets
from scsynth.model._rnagan_stratify import InputRows

IMMUNE = HERE / "data" / "immune_559_counts.h5ad"


# -- the previous implementation, kept here as the baseline ------------------------------------------------
def baseline_group_logits(self, target_x, own_of_target, ref_x, ref_labels, names, n_draws, n_refs, rng,
                          batch_size):
    """Independent sets per (target, group), each episode through the full discriminator (the old code)."""
    if isinstance(ref_x, InputRows):  # the old reference pool: all training data, densified
        ref_x = self._network_input(self.adata)
    logits = np.zeros((len(target_x), len(names)), dtype=np.float64)
    self.module.eval()
    for j, g in enumerate(names):
        members = np.flatnonzero(ref_labels == g)
        picks = np.empty((len(target_x), n_draws, n_refs), dtype=np.int64)
        for i in range(len(target_x)):
            pool = members[members != own_of_target[i]]
            picks[i] = draw_sets(rng, pool, n_draws, n_refs)
        logits[:, j] = self._over_draws(self.module.discriminator, target_x, ref_x, picks, batch_size)
    return logits


def baseline_latent(self, adata=None, *, layer=None, n_draws=10, n_refs=10, seed=None, batch_size=2048):
    """The old ``get_latent_representation``: independent background sets per sample, full episodes."""
    adata = self.adata if adata is None else adata
    rng = np.random.default_rng(scsynth.settings.seed if seed is None else seed)
    target_x, ref_x = self._network_input(adata, layer), self._network_input(self.adata)
    picks = rng.integers(0, ref_x.shape[0], size=(adata.n_obs, n_draws, n_refs))
    self.module.eval()
    latent = self._over_draws(self.module.discriminator.embed, target_x, ref_x, picks, batch_size)
    return latent.astype(np.float32)


def use_path(model: RNAGAN, path: str) -> None:
    """Point ``model`` at one of the three paths (instance attributes shadow the class's methods)."""
    for name in ("_group_logits", "get_latent_representation", "_factorised"):
        model.__dict__.pop(name, None)
    if path == "baseline":
        model._group_logits = types.MethodType(baseline_group_logits, model)
        model.get_latent_representation = types.MethodType(baseline_latent, model)
    elif path == "per-episode (shared sets)":
        model._factorised = False


PATHS = ["new", "per-episode (shared sets)", "baseline"]


# -- speed ---------------------------------------------------------------------------------------------------
def speed_data(n_obs: int, n_genes: int, seed: int) -> anndata.AnnData:
    immune = anndata.read_h5ad(IMMUNE)
    immune.X = sparse.csr_matrix(immune.X, dtype=np.float32)
    detected = np.asarray((immune.X > 0).sum(0)).ravel()
    immune = immune[:, np.sort(np.argsort(-detected)[:n_genes])].copy()
    adata = resample(immune, n_obs, dense=False, seed=seed)
    adata.obs["group"] = [f"group {i}" for i in np.random.default_rng(seed).integers(0, 10, n_obs)]
    return adata


def speed(n_obs: int, n_genes: int, n_queries: int, steps: int, repeats: int, paths: list[str],
          seed: int) -> dict:
    adata = speed_data(n_obs, n_genes, seed)
    RNAGAN.setup_anndata(adata, labels_key="group")
    model = RNAGAN(adata, gene_sets="hallmark")
    model.train(max_steps={"sc": steps}, warmup_steps=steps // 2, batch_size=64, seed=seed,
                enable_progress_bar=False)
    queries = adata[:n_queries].copy()
    seconds: dict[str, dict[str, list[float]]] = {p: {"stratify": [], "embed": []} for p in paths}
    for r in range(repeats):
        for path in paths if r % 2 == 0 else paths[::-1]:  # alternate the order between repeats
            use_path(model, path)
            start = time.perf_counter()
            model.stratify(queries, n_draws=20, n_refs=5, seed=seed + r, calibrate=False)
            seconds[path]["stratify"].append(time.perf_counter() - start)
            start = time.perf_counter()
            scsynth.tl.embed(queries, model)
            seconds[path]["embed"].append(time.perf_counter() - start)
            print(r, path, {k: round(v[-1], 3) for k, v in seconds[path].items()}, flush=True)
    use_path(model, "new")
    rows = []
    for job in ("stratify", "embed"):
        rate = {p: n_queries / float(np.median(seconds[p][job])) for p in paths}
        row = {"job": job, **{f"{p} samples/s": rate[p] for p in paths}}
        if "baseline" in rate:
            row["new / baseline"] = rate["new"] / rate["baseline"]
        rows.append(row)
    with PeakRSS() as peak:
        start = time.perf_counter()
        model.stratify(adata, n_draws=20, n_refs=5, seed=seed, calibrate=False)
        whole = time.perf_counter() - start
    return {"cells": n_obs, "genes": n_genes, "queries": n_queries, "train_steps": steps, "repeats": repeats,
            "seconds": seconds, "rows": rows,
            "all_cells": {"cells": n_obs, "pairs": n_obs * 10 * 20, "seconds": whole,
                          "samples_per_s": n_obs / whole, "peak_rss_gib": peak.peak / 2**30}}


# -- accuracy ------------------------------------------------------------------------------------------------
def accuracy(steps: int, draw_seeds: int, seed: int) -> dict:
    adata = scsynth.data.pbmc68k_normalized()
    labels = adata.obs["bulk_labels"].astype(str).to_numpy()
    tr, te = split_by_group(labels, 0.3, seed)
    train, test = adata[tr].copy(), adata[te].copy()
    RNAGAN.setup_anndata(train, labels_key="bulk_labels", is_count_data=False)
    model = RNAGAN(train, gene_sets="hallmark")
    model.train(max_steps={"sc": steps}, batch_size=64, seed=seed, enable_progress_bar=False)
    runs = []
    k = len(np.unique(labels))
    for s in range(draw_seeds):
        for path in ("new", "baseline"):
            use_path(model, path)
            model.stratify(test, n_draws=20, n_refs=5, seed=s)
            acc = float((test.obs["rnagan"].astype(str) == labels[te]).mean())
            z = model.get_latent_representation(test, seed=s)
            clusters = KMeans(k, n_init=10, random_state=seed).fit_predict(StandardScaler().fit_transform(z))
            runs.append({"path": path, "draw_seed": s, "stratify_accuracy": acc,
                         "temperature": test.uns["rnagan"]["params"]["temperature"],
                         "embed_silhouette": float(silhouette_score(z, labels[te])),
                         "embed_kmeans_ari": float(adjusted_rand_score(labels[te], clusters))})
            print(runs[-1], flush=True)
    use_path(model, "new")
    summary = []
    for path in ("new", "baseline"):
        mine = [r for r in runs if r["path"] == path]
        row = {"path": path}
        for key in ("stratify_accuracy", "embed_silhouette", "embed_kmeans_ari"):
            values = np.array([r[key] for r in mine])
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            row[f"{key} mean"], row[f"{key} sd"] = float(values.mean()), float(sd)
        summary.append(row)
    return {"n_train": len(tr), "n_test": len(te), "steps": steps, "draw_seeds": draw_seeds, "runs": runs,
            "summary": summary}


def render(payload: dict) -> list[str]:
    md = []
    if "speed" in payload:
        res = payload["speed"]
        paths = list(res["seconds"])
        cols = ["job", *[f"{p} samples/s" for p in paths]]
        cols += ["new / baseline"] if "baseline" in paths else []
        a = res["all_cells"]
        md += [f"### stratify / embed throughput ({res['cells']} cells x {res['genes']} genes, "
               f"{res['queries']} queries, 10 groups; stratify n_draws=20, n_refs=5, calibrate=False; "
               f"embed 10 x 10; median of {res['repeats']})", "", markdown_table(res["rows"], cols), "",
               f"All {a['cells']} training cells stratified against themselves (own row left out, "
               f"{a['pairs']:,} pairs), new path: {a['seconds']:.1f} s ({a['samples_per_s']:.0f} samples/s), "
               f"peak RSS {a['peak_rss_gib']:.2f} GiB.", ""]
    if "accuracy" in payload:
        acc = payload["accuracy"]
        cols = ["path"] + [f"{k} {s}" for k in ("stratify_accuracy", "embed_silhouette", "embed_kmeans_ari")
                           for s in ("mean", "sd")]
        md += [f"### Accuracy: pbmc68k_reduced bulk_labels ({acc['n_train']} training / {acc['n_test']} "
               f"held-out cells, {acc['steps']} steps, one model; mean and sd over {acc['draw_seeds']} draw "
               "seeds)", "",
               markdown_table(acc["summary"], cols), ""]
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20000)
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--train-steps", type=int, default=20, help="speed model (inference costs the same)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=PATHS)
    parser.add_argument("--acc-steps", type=int, default=1500, help="pbmc training steps")
    parser.add_argument("--draw-seeds", type=int, default=5)
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2000 cells, 40 queries, short pbmc training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.cells, args.queries, args.repeats, args.train_steps = 2000, 40, 1, 4
        args.acc_steps, args.draw_seeds = 30, 2
    scsynth.settings.verbosity = "warning"
    scsynth.settings.seed = args.seed
    warnings.filterwarnings("ignore")
    name = "rnagan_speed_quick" if args.quick else "rnagan_speed"
    # a part not run now keeps its earlier result, so one part can be rerun alone
    previous = RESULTS / f"{name}.json"
    payload = json.loads(previous.read_text()) if previous.is_file() else {}
    run = {"machine": machine(), "args": vars(args)}
    if not args.no_speed:
        payload["speed"] = speed(args.cells, args.genes, args.queries, args.train_steps, args.repeats,
                                 args.paths, args.seed)
        payload.setdefault("runs", {})["speed"] = run
    if not args.no_accuracy:
        payload["accuracy"] = accuracy(args.acc_steps, args.draw_seeds, args.seed)
        payload.setdefault("runs", {})["accuracy"] = run
    md = render(payload)
    print("\n".join(md), flush=True)
    write_json(name, payload)
    write_markdown(name, f"Machine: {run['machine']['processor']}, {run['machine']['cpus']} CPUs, "
                   f"torch {run['machine']['torch']}.\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
