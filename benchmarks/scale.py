"""Out-of-core training: time per training step and peak memory vs cells, from disk (backed) and in memory.

Every configuration (model x cells x backed / in memory) runs in a fresh subprocess, so each peak resident set
size (``_common.PeakRSS``, sampled from before the file is opened to the end of training) is its own. Backed
runs open the file with ``anndata.read_h5ad(path, backed="r")``; the in-memory baseline reads it whole
(20k and 100k cells only: 1M cells of CSR counts alone take ~2.4 GiB). The ratio columns are backed / in memory
at the same size. Files are the synthetic atlases of ``_atlas.py`` (written on first use, in chunks).

Usage::

    python benchmarks/scale.py                      # 20k, 100k, 1M cells backed; 20k, 100k in memory
    python benchmarks/scale.py --quick              # 20k only (< 2 min)
    python benchmarks/scale.py --models scgan,genesys,rnagan

A model is an entry of :data:`MODELS`: a ``Bench(setup, train)`` pair; ``setup(adata)`` registers the data
and returns the model, ``train(model, callbacks, steps)`` trains about ``steps`` optimiser steps with the
given Lightning callbacks (the step timer) and a capped validation (1 batch: validation is not the subject).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _common import PeakRSS, machine, markdown_table, rss_bytes, write_json, write_markdown  # noqa: E402

SIZES = {20_000: "/tmp/atlas_20k.h5ad", 100_000: "/tmp/atlas_100k.h5ad", 1_000_000: "/tmp/atlas_1m.h5ad"}
IN_MEMORY = (20_000, 100_000)
BATCH_SIZE = 128


class Bench(NamedTuple):
    """How to set up and train one model for the benchmark."""

    setup: Callable[[Any], Any]
    train: Callable[[Any, list, int], None]


# -- ScGAN ----------------------------------------------------------------------------------------------------
def _scgan_setup(adata):
    from scsynth.model import ScGAN

    ScGAN.setup_anndata(adata, labels_key="cell_type")
    return ScGAN(adata)


def _scgan_train(model, callbacks: list, steps: int) -> None:
    n_critic = 5
    model.train(max_steps=max(1, steps // (n_critic + 1)), batch_size=BATCH_SIZE, plan_kwargs={"n_critic": n_critic},
                limit_val_batches=1, enable_progress_bar=False, callbacks=callbacks)


# -- GeneSys --------------------------------------------------------------------------------------------------
def atlas_blueprint(adata):
    """Two fates over the atlas' 5 time steps: at each step the most (and second most) common cell type."""
    import pandas as pd

    table = pd.crosstab(adata.obs["step"], adata.obs["cell_type"])

    def pick(counts, rank):
        present = counts[counts > 0].sort_values(ascending=False)
        return present.index[min(rank, len(present) - 1)]

    return pd.DataFrame([[pick(table.loc[t], r) for t in table.index] for r in range(2)], index=["fate 1", "fate 2"])


def _genesys_setup(adata):
    from scsynth.model import GeneSys

    adata.obs["step"] = adata.obs["time"].astype(np.int64) + 1  # obs is in memory even when X is backed
    GeneSys.setup_anndata(adata, labels_key="cell_type", time_key="step")
    return GeneSys(adata, blueprint=atlas_blueprint(adata), fallback="neighbors")


def _genesys_train(model, callbacks: list, steps: int) -> None:
    model.train(max_epochs=1, batch_size=BATCH_SIZE, early_stopping=False, limit_train_batches=steps,
                limit_val_batches=1, enable_progress_bar=False, callbacks=callbacks)


#: The benchmarked models; other helpers add theirs below (one ``Bench`` per name).
MODELS: dict[str, Bench] = {
    "scgan": Bench(_scgan_setup, _scgan_train),
    "genesys": Bench(_genesys_setup, _genesys_train),
}

# ==== RNAGAN (helper "rnagan-memory"): add MODELS["rnagan"] = Bench(setup, train) here =========================
def _rnagan_setup(adata):
    from scsynth.model import RNAGAN

    # groups from obs only; backed X is checked chunk by chunk and never read whole
    RNAGAN.setup_anndata(adata, labels_key="cell_type")
    return RNAGAN(adata, gene_sets="hallmark")


def _rnagan_train(model, callbacks: list, steps: int) -> None:
    # RNAGAN's own batch: 64 episodes (target + 5-20 references + a negative: up to 1408 cells read per step);
    # half the steps discriminator warm-up, half adversarial (two Lightning fits: one gap in the step timer)
    model.train(max_steps={"sc": steps}, warmup_steps=steps // 2, batch_size=64, seed=0, enable_progress_bar=False,
                callbacks=callbacks)


MODELS["rnagan"] = Bench(_rnagan_setup, _rnagan_train)
# ==== end of RNAGAN section ====================================================================================


# -- one configuration, in a fresh process ---------------------------------------------------------------------
def _step_timer():
    import lightning

    class StepTimer(lightning.Callback):
        """Wall-clock time at the end of every training batch (one optimiser step)."""

        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            if not self.ends:
                self.ends.append(time.perf_counter())

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.ends.append(time.perf_counter())

    return StepTimer()


def run_one(model: str, n_cells: int, backed: bool, steps: int) -> dict:
    """Open the file, set up and train ``model``; times and peak memory (called in the child process)."""
    import anndata
    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    bench = MODELS[model]
    base = rss_bytes()
    timer = _step_timer()
    with PeakRSS() as peak:
        start = time.perf_counter()
        adata = anndata.read_h5ad(SIZES[n_cells], backed="r" if backed else None)
        opened = time.perf_counter()
        trained = bench.setup(adata)
        set_up = time.perf_counter()
        bench.train(trained, [timer], steps)
        done = time.perf_counter()
    step_times = np.diff(timer.ends)[2:]  # the first steps warm up (allocations, first reads)
    return {
        "model": model, "n_cells": n_cells, "data": "backed" if backed else "in memory",
        "open_s": opened - start, "setup_s": set_up - opened, "train_s": done - set_up,
        "n_steps": int(len(timer.ends) - 1), "step_ms": float(np.median(step_times) * 1e3),
        "peak_gib": peak.peak / 2**30, "import_gib": base / 2**30,
        "still_backed": bool(getattr(adata, "isbacked", False)) if backed else None,
    }


def spawn(model: str, n_cells: int, backed: bool, steps: int) -> dict:
    """:func:`run_one` in a fresh interpreter (its own peak memory), with a clear error if it fails."""
    cmd = [sys.executable, __file__, "--child", f"{model}:{n_cells}:{int(backed)}:{steps}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_files(sizes) -> None:
    from _atlas import write_synthetic_atlas

    for n in sizes:
        if not Path(SIZES[n]).exists():
            print(f"writing {SIZES[n]} ...", flush=True)
            write_synthetic_atlas(SIZES[n], n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="scgan,genesys", help=f"comma-separated, of {sorted(MODELS)}")
    parser.add_argument("--quick", action="store_true", help="20k cells only")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (batches) per configuration (24; 12 with --quick)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, n, backed, steps = args.child.split(":")
        print(json.dumps(run_one(model, int(n), bool(int(backed)), int(steps))))
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {sorted(MODELS)}")
    args.steps = args.steps or (12 if args.quick else 24)
    sizes = [20_000] if args.quick else sorted(SIZES)
    ensure_files(sizes)
    rows = []
    for model in models:
        for n in sizes:
            backed = spawn(model, n, True, args.steps)
            memory = spawn(model, n, False, args.steps) if n in IN_MEMORY else None
            for row in (backed, memory):
                if row is None:
                    continue
                if memory is not None:
                    row["step_ratio"] = row["step_ms"] / memory["step_ms"]
                    row["memory_ratio"] = row["peak_gib"] / memory["peak_gib"]
                rows.append(row)
                print(f"{row['model']} {row['n_cells']} {row['data']}: {row['step_ms']:.0f} ms/step, "
                      f"peak {row['peak_gib']:.2f} GiB, setup {row['setup_s']:.1f} s", flush=True)
    columns = ["model", "n_cells", "data", "setup_s", "step_ms", "step_ratio", "peak_gib", "memory_ratio", "n_steps"]
    table = markdown_table(rows, columns)
    note = ("step_ms: median wall time of one training batch (optimiser step), batch size "
            f"{BATCH_SIZE}; peak_gib: peak resident memory of the whole process (imports ~"
            f"{rows[0]['import_gib']:.2f} GiB included); ratios: backed / in memory at the same size.")
    print(table + "\n\n" + note)
    name = "scale_quick" if args.quick else "scale"
    write_json(name, {"machine": machine(), "batch_size": BATCH_SIZE, "steps": args.steps, "rows": rows})
    write_markdown(name, table + "\n\n" + note)


if __name__ == "__main__":
    main()
