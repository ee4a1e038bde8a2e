"""ScGAN speed and memory: training generator-steps/s and peak memory, generation cells/s.

Usage::

    python benchmarks/speed.py            # 20k and 70k cells x 1000 genes, dense and sparse; 1e5 generated
    python benchmarks/speed.py --quick    # 5k cells, for a smoke run

Each configuration runs in a fresh subprocess so its peak memory is its own. Training memory is the
peak resident memory during ``train()`` minus the resident memory just before it (data already
loaded), compared with the size of the input matrix. Writes ``benchmarks/results/speed.json`` and
prints a markdown table. Timings are medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import lightning

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import (  # noqa: E402
    PeakRSS,
    immune_counts,
    machine,
    markdown_table,
    matrix_bytes,
    resample,
    rss_bytes,
    write_json,
)


class _StepTimes(lightning.pytorch.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_steps != self._last:
            self._last = pl_module.generator_steps
            self.times.append(time.perf_counter())


def run_training(n_obs: int, dense: bool, steps: int, repeats: int, batch_size: int) -> dict:
    import scsynth

    scsynth.settings.verbosity = "warning"
    adata = resample(immune_counts(1000), n_obs, dense=dense)
    scsynth.model.ScGAN.setup_anndata(adata)
    model = scsynth.model.ScGAN(adata)
    rates, overheads = [], []
    for rep in range(repeats):
        timer = _StepTimes()
        before = rss_bytes()
        with PeakRSS() as peak:
            model.train(max_steps=steps, batch_size=batch_size, seed=rep, callbacks=[timer], enable_progress_bar=False)
        overheads.append(peak.peak - before)
        gaps = [b - a for a, b in zip(timer.times[2:], timer.times[3:], strict=False)]  # skip warm-up steps
        rates.append(1.0 / statistics.median(gaps))
    size = matrix_bytes(adata.X)
    return {
        "n_obs": n_obs, "n_vars": adata.n_vars, "input": "dense" if dense else "sparse",
        "batch_size": batch_size, "generator_steps_per_s": statistics.median(rates),
        "cells_per_s": statistics.median(rates) * batch_size * 5,
        "input_MB": size / 1e6, "train_peak_extra_MB": max(overheads) / 1e6,
        "memory_ratio": max(overheads) / size, "repeats": repeats, "steps_per_repeat": steps,
    }


def run_generation(n_cells: int, repeats: int) -> dict:
    import scsynth

    scsynth.settings.verbosity = "warning"
    adata = immune_counts(1000)
    scsynth.model.ScGAN.setup_anndata(adata)
    model = scsynth.model.ScGAN(adata)
    model.train(max_steps=2, batch_size=128, enable_progress_bar=False)
    times = []
    for rep in range(repeats):
        start = time.perf_counter()
        cells = model.generate(n_cells, seed=rep)
        times.append(time.perf_counter() - start)
    return {"n_generated": n_cells, "n_vars": cells.n_vars, "seconds": statistics.median(times),
            "cells_per_s": n_cells / statistics.median(times), "repeats": repeats}


def _child(kind: str, params: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(params)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, params = args.child[0], json.loads(args.child[1])
        result = run_training(**params) if kind == "train" else run_generation(**params)
        print(json.dumps(result))
        return
    sizes = [5_000] if args.quick else [20_000, 70_000]
    steps, repeats = (20, 2) if args.quick else (60, 3)
    train_rows = []
    for n_obs in sizes:
        for dense in (True, False):
            row = _child("train", {"n_obs": n_obs, "dense": dense, "steps": steps, "repeats": repeats,
                                   "batch_size": 128})
            print(f"train {n_obs} {row['input']}: {row['generator_steps_per_s']:.2f} G-steps/s, "
                  f"extra memory {row['train_peak_extra_MB']:.0f} MB = {row['memory_ratio']:.2f}x input", flush=True)
            train_rows.append(row)
    gen = _child("generate", {"n_cells": 10_000 if args.quick else 100_000, "repeats": 3})
    print("\n## Training (ScGAN default architecture, batch 128, 5 critic steps per generator step)\n")
    print(markdown_table(train_rows, ["n_obs", "n_vars", "input", "generator_steps_per_s", "cells_per_s",
                                      "input_MB", "train_peak_extra_MB", "memory_ratio"]))
    print("\n## Generation\n")
    print(markdown_table([gen], ["n_generated", "n_vars", "seconds", "cells_per_s"]))
    path = write_json("speed", {"machine": machine(), "training": train_rows, "generation": gen,
                                "targets": {"generation_1e5_seconds": 15, "memory_ratio": 3}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
