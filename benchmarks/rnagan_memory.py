"""RNAGAN training memory at 20k cells x 5000 genes: the data path before and after (rows normalised per batch).

Usage::

    python benchmarks/rnagan_memory.py              # new and baseline, fresh and after prior work (~10 min)
    python benchmarks/rnagan_memory.py --quick      # 3000 cells x 1000 genes, 6 steps, fresh only (< 2 min)

The data are those of ``benchmarks/rnagan.py``'s speed part: ``immune_559`` resampled to 20k cells x its 5000
most detected genes (sparse float32 counts), 10 random groups, ``gene_sets="hallmark"``; training as there:
``steps / 2`` discriminator warm-up steps in one ``train()`` call, then ``steps / 2`` adversarial steps in a
second, batch 64. Every configuration runs in a fresh interpreter, so each peak is its own: the resident set
size of the whole process (``_common.PeakRSS``; imports and the AnnData included), per phase: setup, model
construction, the warm-up ``train()``, the adversarial ``train()``.

Paths (``--paths``):

* ``new``: the package. Setup checks the matrix as stored (no copy of ``X`` for one modality); training keeps no
  normalised copy: each batch reads its rows and normalises them (:class:`scsynth.model._rnagan_inputs.NetworkRows`).
* ``baseline``: the previous data path, kept here only (monkeypatched in): count detection on ``X[rows]`` (a
  copy), the count check on ``adata[rows]`` (a copy), and in ``train()`` the whole log-normalised matrix
  (``_network_input``: a gene-subset copy, a float64 copy, a float32 copy) held, plus its ``x[rows]`` copy per stage.

``--prior pbmc`` first runs ``benchmarks/rnagan.py``'s PBMC part (short budgets) in the same process, as the
full ``rnagan.py`` run does before its speed part: the peak then includes what that work left resident (freed
memory glibc keeps in its heaps, the last trainer of each model), which is why ``rnagan.py`` reported 5.3 GiB
after all its parts and less for the speed part alone.

Writes ``benchmarks/results/rnagan_memory.json`` and ``rnagan_memory.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _common import PeakRSS, machine, markdown_table, rss_bytes, write_json, write_markdown  # noqa: E402

G = 2**30


def use_baseline() -> None:
    """Put the previous data path back (this process only)."""
    import scsynth.model._rnagan as rnagan_module
    from scsynth.data import get_matrix
    from scsynth.model import RNAGAN
    from scsynth.model._inputs import detect_count_data

    real_check = rnagan_module.check_expression

    def copying_detection(adata, layer, rows=None):  # detect_count_data(x[rows]), rows = every sample
        return detect_count_data(get_matrix(adata, layer)[np.arange(adata.n_obs) if rows is None else rows])

    def copying_check(adata, *, layer=None, is_count_data=True):
        if is_count_data:  # before: the value check on the AnnData, then the count check on adata[rows] (a copy)
            real_check(adata, layer=layer, is_count_data=False)
            adata = adata[np.arange(adata.n_obs)]
        real_check(adata, layer=layer, is_count_data=is_count_data)

    class WholeCopy:
        """The whole log-normalised matrix in memory, ``x[rows]`` per stage (as ``train()`` did)."""

        def __init__(self, model) -> None:
            self.x = model._network_input(model.adata, dense=False)
            self.totals = np.asarray(get_matrix(model.adata, model.registry_["setup_args"].get("layer")).sum(1)).ravel()

        def take(self, rows):
            return self.x[rows]

    rnagan_module.is_count_matrix = copying_detection
    rnagan_module.check_expression = copying_check
    RNAGAN._training_rows = lambda self: WholeCopy(self)


def speed_data(n_obs: int, n_genes: int, seed: int):
    """``benchmarks/rnagan.py``'s speed data: resampled immune cells, sparse counts, 10 random groups."""
    import anndata
    from _common import resample
    from scipy import sparse

    immune = anndata.read_h5ad(HERE / "data" / "immune_559_counts.h5ad")
    immune.X = sparse.csr_matrix(immune.X, dtype=np.float32)
    detected = np.asarray((immune.X > 0).sum(0)).ravel()
    immune = immune[:, np.sort(np.argsort(-detected)[:n_genes])].copy()
    adata = resample(immune, n_obs, dense=False, seed=seed)
    adata.obs["group"] = [f"group {i}" for i in np.random.default_rng(seed).integers(0, 10, n_obs)]
    return adata


def run_one(path: str, prior: str, n_obs: int, n_genes: int, steps: int, seed: int = 0) -> dict:
    """One configuration (called in the child process): peak resident memory per phase."""
    warnings.filterwarnings("ignore")
    import scsynth
    from scsynth.model import RNAGAN

    scsynth.settings.verbosity = "warning"
    scsynth.settings.seed = seed
    if path == "baseline":
        use_baseline()
    start = time.perf_counter()
    if prior == "pbmc":
        import rnagan

        rnagan.DECOUPLER_CHECK = False
        rnagan.pbmc(steps=200, scvi_epochs=20, seed=seed)
    prior_s = time.perf_counter() - start
    imports = rss_bytes()
    adata = speed_data(n_obs, n_genes, seed)
    out = {"path": path, "prior": prior, "cells": n_obs, "genes": n_genes, "steps": steps, "prior_s": prior_s,
           "before_gib": imports / G, "data_gib": rss_bytes() / G}
    phases = {
        "setup": lambda: RNAGAN.setup_anndata(adata, labels_key="group"),
        "model": lambda: RNAGAN(adata, gene_sets="hallmark"),
    }
    model = None
    for name, call in phases.items():
        with PeakRSS() as peak:
            result = call()
        model = result if result is not None else model
        out[f"{name}_peak_gib"] = peak.peak / G
    for name, warmup in (("warmup", steps // 2), ("adversarial", 0)):
        with PeakRSS() as peak:
            t = time.perf_counter()
            model.train(max_steps={"sc": steps // 2}, warmup_steps=warmup, batch_size=64, seed=seed,
                        enable_progress_bar=False)
        out[f"{name}_peak_gib"] = peak.peak / G
        out[f"{name}_s"] = time.perf_counter() - t
        out[f"after_{name}_gib"] = rss_bytes() / G
    out["train_peak_gib"] = max(out["warmup_peak_gib"], out["adversarial_peak_gib"])
    return out


def spawn(path: str, prior: str, n_obs: int, n_genes: int, steps: int) -> dict:
    """:func:`run_one` in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--child", json.dumps([path, prior, n_obs, n_genes, steps])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="+", choices=["new", "baseline"], default=["new", "baseline"])
    parser.add_argument("--prior", nargs="+", choices=["none", "pbmc"], default=["none", "pbmc"])
    parser.add_argument("--cells", type=int, default=20000)
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration (medians reported)")
    parser.add_argument("--quick", action="store_true", help="3000 cells x 1000 genes, 6 steps, no prior work")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(*json.loads(args.child))))
        return
    if args.quick:
        args.cells, args.genes, args.steps, args.prior = 3000, 1000, 6, ["none"]
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeats):  # alternate the paths, so load from other work hits both alike
        for prior in args.prior:
            for path in args.paths:
                row = spawn(path, prior, args.cells, args.genes, args.steps)
                runs.setdefault((prior, path), []).append(row)
                print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    keys = ["before_gib", "data_gib", "setup_peak_gib", "model_peak_gib", "warmup_peak_gib", "after_warmup_gib",
            "adversarial_peak_gib", "train_peak_gib", "warmup_s", "adversarial_s"]
    rows = []
    for (prior, path), group in runs.items():
        row = {"prior work": prior, "path": path, **{k: float(np.median([r[k] for r in group])) for k in keys}}
        base = runs.get((prior, "baseline"))
        if base is not None and path != "baseline":
            row["train_peak_ratio"] = row["train_peak_gib"] / float(np.median([r["train_peak_gib"] for r in base]))
        rows.append(row)
    columns = ["prior work", "path", "before_gib", "data_gib", "setup_peak_gib", "warmup_peak_gib",
               "after_warmup_gib", "adversarial_peak_gib", "train_peak_gib", "train_peak_ratio"]
    table = markdown_table(rows, columns)
    note = (f"{args.cells} cells x {args.genes} genes, {args.steps} steps (batch 64), {args.repeats} run(s) each, "
            "each in a fresh process. GiB of the whole process: before_gib after imports (and prior work), "
            "data_gib with the AnnData, *_peak_gib the peak during each phase, after_warmup_gib what stays resident "
            "after the warm-up train() call; train_peak_ratio: new / baseline.")
    print(table + "\n\n" + note)
    name = "rnagan_memory_quick" if args.quick else "rnagan_memory"
    write_json(name, {"machine": machine(), "args": vars(args), "rows": rows,
                      "runs": [r for group in runs.values() for r in group]})
    write_markdown(name, table + "\n\n" + note)


if __name__ == "__main__":
    main()
