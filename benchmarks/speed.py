"""ScGAN speed and memory: training generator-steps/s and peak memory; ScGAN and GeneSys generation cells/s.

Usage::

    python benchmarks/speed.py                       # training 20k and 70k cells x 1000 genes, dense and
                                                     # sparse; generation of 1e5 ScGAN cells, GeneSys 2000 x 12
    python benchmarks/speed.py --quick               # 5k cells, 1e4 generated, for a smoke run (< 2 min)
    python benchmarks/speed.py --baseline            # generation side by side with the previous implementation
    python benchmarks/speed.py --baseline --skip-training

Each configuration runs in a fresh subprocess so its peak memory is its own. Training memory is the
peak resident memory during ``train()`` minus the resident memory just before it (data already
loaded), compared with the size of the input matrix. Generation is the full ``model.generate(...)``
(sparse ``.X``, ``layers["counts"]`` for counts, ``layers["normalized"]``): ScGAN on 1000 genes of the
immune counts (1e5 cells; with its marginal calibration, and without it or without the count draw
for their costs), GeneSys on the myoblast time course (2000 genes, FPKM, 3 trajectories x 4
steps, ``generate(2000)`` = 24000 cells). ``--baseline`` also times the previous implementation (dense
matrix, then ``scipy.sparse.csr_matrix``; kept in this script only), alternating new and old in the same
process, and gives the ratio. Writes ``benchmarks/results/speed.json`` and prints a markdown table.
Timings are medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import lightning
import numpy as np
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import (  # noqa: E402
    RESULTS,
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


def _baseline_anndata(values, normalized, *, var_names, obs, counts: bool, uns: dict):
    """The previous ``generated_anndata``: dense matrices, ``csr_matrix(dense)``, float64 totals."""
    import anndata
    import pandas as pd
    from scipy import sparse

    as_array = lambda v: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)  # noqa: E731
    array = as_array(values)
    if int(array.size - np.count_nonzero(np.isfinite(array))):
        raise RuntimeError("NaN")
    x = sparse.csr_matrix(array.astype(np.float32, copy=False))
    out = anndata.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(np.asarray(var_names, dtype=str), dtype=str)))
    if counts:
        out.layers["counts"] = x.copy()
    norm = as_array(normalized).astype(np.float32, copy=False)
    totals = norm.sum(axis=1, keepdims=True, dtype=np.float64)
    out.layers["normalized"] = sparse.csr_matrix((norm * (1e4 / np.where(totals > 0, totals, 1.0))).astype(np.float32))
    out.uns["scsynth"] = uns
    return out


def scgan_baseline(model, n_obs: int, seed: int, batch_size: int = 8192):
    """The previous ``ScGAN.generate`` (unconditional): dense profiles, dense uniforms, then sparse."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    codes, library = model._resolve_labels(n_obs, None, rng)
    gen = torch.Generator().manual_seed(seed)
    module = model.module
    module.eval()
    with torch.inference_mode():
        out = []
        for start in range(0, n_obs, batch_size):
            b = min(batch_size, n_obs - start)
            out.append(module.generative(b, None, z=module.draw_noise(b, gen))["x_fake"].cpu())
        normalized = torch.cat(out)
    lib_size = module.normalize.library_size
    uniforms = torch.rand(normalized.shape, generator=gen)
    values = torch.floor(normalized * torch.as_tensor(library / lib_size).unsqueeze(1) + uniforms)
    obs = pd.DataFrame({"library_size": library}, index=[f"gen-{i}" for i in range(n_obs)])
    return _baseline_anndata(values, normalized, var_names=model.var_names_, obs=obs, counts=True, uns={})


def genesys_baseline(model, n_obs: int, seed: int):
    """The previous ``GeneSys.generate`` for normalised (FPKM) data: one dense decode, float64 noise."""
    import pandas as pd

    bp = model.blueprint
    rows = np.repeat(np.arange(bp.n_trajectories), n_obs)
    n, n_times = len(rows), bp.n_times
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.module.eval()
    z = model.module.rollout(torch.as_tensor(rows), generator=gen)
    with torch.inference_mode():
        params = model.module.decode(z, None)
    mean = params["mean"].cpu().numpy().reshape(n * n_times, -1)
    scale = params["scale"].cpu().numpy()
    values = np.clip(np.expm1(mean + scale * rng.standard_normal(mean.shape)), 0, None).astype(np.float32)
    normalized = np.clip(np.expm1(mean), 0, None)
    traj, steps = np.repeat(rows, n_times), np.tile(np.arange(1, n_times + 1), n)
    names = np.asarray(bp.trajectories)
    obs = pd.DataFrame({
        "trajectory": pd.Categorical(names[traj], categories=bp.trajectories), "time": steps.astype(np.int64),
        "label": pd.Categorical(bp.table.to_numpy()[traj, steps - 1].astype(str), categories=bp.labels),
        "trajectory_id": np.repeat([f"traj-{i}" for i in range(n)], n_times),
        "library_size": values.sum(1).astype(np.float32),
    }, index=[f"gen-{i}" for i in range(n * n_times)])
    return _baseline_anndata(values, normalized, var_names=model.var_names_, obs=obs, counts=False, uns={})


def _scgan_model():
    import scsynth

    adata = immune_counts(1000)
    scsynth.model.ScGAN.setup_anndata(adata)
    model = scsynth.model.ScGAN(adata)
    model.train(max_steps=2, batch_size=128, enable_progress_bar=False)
    return model


def _genesys_model(epochs: int):
    import anndata
    import pandas as pd
    from scipy import sparse

    import scsynth

    base = scsynth.data.hsmm_myoblast()
    idx = np.random.default_rng(0).integers(0, base.n_obs, size=2000)
    adata = anndata.AnnData(sparse.csr_matrix(base.X[idx]), obs=base.obs.iloc[idx].reset_index(drop=True),
                            var=base.var[[]])
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    blueprint = pd.DataFrame([["State1", "State2", "State2", "State2"], ["State1", "State3", "State3", "State3"],
                              ["State1", "State1", "State1", "State1"]],
                             index=["myotube", "mesenchymal", "proliferating"])  # as benchmarks/genesys.py
    scsynth.model.GeneSys.setup_anndata(adata)
    model = scsynth.model.GeneSys(adata, blueprint=blueprint, fallback="neighbors")
    model.train(max_epochs=epochs, batch_size=128, train_size=0.9, early_stopping=False, seed=0,
                enable_progress_bar=False)
    return model


def _uncalibrated(model, n_obs: int, seed: int):
    """ScGAN's ``generate`` without its marginal calibration (the tables put back afterwards)."""
    tables = {k: v.clone() for k, v in model.module.marginals.state_dict().items()}
    model.module.marginals.reset()
    try:
        return model.generate(n_obs, seed=seed)
    finally:
        model.module.marginals.load_state_dict(tables)


def _without_draw(model, n_obs: int, seed: int):
    """ScGAN's ``generate`` without its count draw (as ``output_noise="none"``; units put back after)."""
    units = model.module.count_noise.units.clone()
    model.module.count_noise.units.zero_()
    try:
        return model.generate(n_obs, seed=seed)
    finally:
        model.module.count_noise.units.copy_(units)


def run_generation(model: str, n_obs: int, repeats: int, baseline: bool, epochs: int = 2) -> dict:
    """Seconds of ``generate(n_obs)`` (medians of ``repeats``), new and (``baseline``) previous, alternating."""
    import warnings

    import scsynth

    scsynth.settings.verbosity = "warning"
    warnings.filterwarnings("ignore")
    fitted = _scgan_model() if model == "ScGAN" else _genesys_model(epochs)
    old = {"ScGAN": scgan_baseline, "GeneSys": genesys_baseline}[model]
    fitted.generate(min(n_obs, 100), seed=0)  # compile / load the numba kernels outside the timings
    runs = [("new", fitted.generate)] + ([("baseline", lambda n, seed: old(fitted, n, seed))] if baseline else [])
    if model == "ScGAN":  # what the marginal calibration costs
        runs.append(("uncalibrated", lambda n, seed: _uncalibrated(fitted, n, seed)))
        # what the count draw costs
        runs.append(("without_draw", lambda n, seed: _without_draw(fitted, n, seed)))
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    peak: dict[str, int] = {}
    for rep in range(repeats):
        for name, fn in runs:
            before = rss_bytes()
            with PeakRSS() as rss:
                start = time.perf_counter()
                cells = fn(n_obs, seed=rep)
                times[name].append(time.perf_counter() - start)
            peak[name] = max(peak.get(name, 0), rss.peak - before)
            n_cells, n_vars = cells.n_obs, cells.n_vars
            del cells
    row = {"model": model, "n_generated": n_cells, "n_vars": n_vars, "repeats": repeats}
    for name in times:
        sec = statistics.median(times[name])
        suffix = "" if name == "new" else f"_{name}"
        row.update({f"seconds{suffix}": sec, f"cells_per_s{suffix}": n_cells / sec,
                    f"peak_extra_MB{suffix}": peak[name] / 1e6})
    if baseline:
        row["speedup"] = row["seconds_baseline"] / row["seconds"]
    if "uncalibrated" in times:
        row["calibration_cost"] = row["seconds"] / row["seconds_uncalibrated"]
    if "without_draw" in times:
        row["draw_cost"] = row["seconds"] / row["seconds_without_draw"]
    return row


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
    parser.add_argument("--baseline", action="store_true", help="also time the previous generation code")
    parser.add_argument("--skip-training", action="store_true")
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
    for n_obs in ([] if args.skip_training else sizes):
        for dense in (True, False):
            row = _child("train", {"n_obs": n_obs, "dense": dense, "steps": steps, "repeats": repeats,
                                   "batch_size": 128})
            print(f"train {n_obs} {row['input']}: {row['generator_steps_per_s']:.2f} G-steps/s, "
                  f"extra memory {row['train_peak_extra_MB']:.0f} MB = {row['memory_ratio']:.2f}x input", flush=True)
            train_rows.append(row)
    gen_rows = []
    for model, n_obs in (("ScGAN", 10_000 if args.quick else 100_000), ("GeneSys", 200 if args.quick else 2000)):
        row = _child("generate", {"model": model, "n_obs": n_obs, "repeats": 3, "baseline": args.baseline,
                                  "epochs": 1 if args.quick else 2})
        print(f"generate {model}: {row['cells_per_s']:.0f} cells/s", flush=True)
        gen_rows.append(row)
    if train_rows:
        print("\n## Training (ScGAN default architecture, batch 128, 5 critic steps per generator step)\n")
        print(markdown_table(train_rows, ["n_obs", "n_vars", "input", "generator_steps_per_s", "cells_per_s",
                                          "input_MB", "train_peak_extra_MB", "memory_ratio"]))
    print("\n## Generation (full generate(): sparse X, counts and normalized layers; median of 3)\n")
    cols = ["model", "n_generated", "n_vars", "seconds", "cells_per_s", "peak_extra_MB"]
    if args.baseline:
        cols += ["seconds_baseline", "cells_per_s_baseline", "peak_extra_MB_baseline", "speedup"]
    cols += ["seconds_uncalibrated", "calibration_cost", "seconds_without_draw", "draw_cost"]
    print(markdown_table(gen_rows, cols))
    name = "speed_quick" if args.quick else "speed"
    if args.skip_training:  # keep the training figures of the last full run
        previous = RESULTS / f"{name}.json"
        train_rows = json.loads(previous.read_text()).get("training", []) if previous.exists() else []
    path = write_json(name, {
        "machine": machine(), "training": train_rows, "generation": gen_rows,
        "targets": {"scgan_generation_cells_per_s": 50_000, "genesys_generation_cells_per_s": 20_000,
                    "memory_ratio": 3}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
