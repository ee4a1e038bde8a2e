"""``scsynth evaluate`` (a realism report on two .h5ad files) and ``scsynth demo`` (train, generate, evaluate)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._io import read_h5ad
from ._jobs import condition_kwarg

__all__ = ["REPORT_FILES", "demo", "evaluate"]

#: What ``evaluate`` writes into ``--report`` (``--overwrite`` replaces them)
REPORT_FILES = ("report.md", "realism.csv", "real_vs_generated.png")


def evaluate(args: argparse.Namespace) -> None:
    """``scsynth evaluate``: realism metrics of simulated vs real cells, as a report and on the terminal."""
    from .._report import write_report

    report = Path(args.report)
    if report.exists() and not report.is_dir():
        raise ValueError(f"--report {report} is an existing file; --report names a directory for report.md, "
                         "realism.csv and figures: choose another --report.")
    written = [n for n in REPORT_FILES if (report / n).exists()]
    if written and not args.overwrite:
        raise ValueError(f"--report {report} already holds {', '.join(written)}; pass --overwrite to replace "
                         "them, or choose another --report.")
    real, sim = read_h5ad(args.real), read_h5ad(args.simulated)
    path = write_report(real, sim, args.report, labels_key=args.labels_key, layer=args.layer, n_obs=args.n_obs,
                        seed=args.seed, scale=args.scale)
    import pandas as pd

    from .._report import realism_text

    print(realism_text(pd.read_csv(report / "realism.csv")))  # the verdicts, not only where they went
    print(f"\nWrote {path}, {report / 'realism.csv'} and the figures in {report}.")


def demo(args: argparse.Namespace) -> None:
    """``scsynth demo``: a conditional ScGAN on bundled pbmc68k_reduced, evaluated on held-out cells."""
    import numpy as np

    from .. import data, settings
    from .._report import write_report
    from ..model import ScGAN

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file; --out names the demo's output directory.")
    settings.seed = args.seed
    start = time.perf_counter()
    adata = data.pbmc68k_normalized()
    rng = np.random.default_rng(args.seed)
    test = np.zeros(adata.n_obs, dtype=bool)
    test[rng.choice(adata.n_obs, size=adata.n_obs // 5, replace=False)] = True
    train, held_out = adata[~test].copy(), adata[test].copy()
    print(f"[1/4] pbmc68k_reduced: {train.n_obs} training cells, {held_out.n_obs} held out, {adata.n_vars} genes")
    ScGAN.setup_anndata(train, labels_key="bulk_labels", is_count_data=False)
    model = ScGAN(train)
    print(f"[2/4] Training a conditional ScGAN for {args.max_steps} generator steps")
    # 10 % of the training cells are for the validation curve in history.png
    model.train(max_steps=args.max_steps, batch_size=args.batch_size, train_size=0.9)
    model.save(out / "model", overwrite=True)
    print(f"[3/4] Generating {held_out.n_obs} cells with the held-out cells' labels")
    labels = list(held_out.obs["bulk_labels"].astype(str))
    generated = model.generate(held_out.n_obs, **condition_kwarg(model, labels), seed=args.seed)
    generated.write_h5ad(out / "generated.h5ad")
    held_out.write_h5ad(out / "real_test.h5ad")
    print("[4/4] Evaluating against the held-out cells")
    path = write_report(
        held_out, generated, out, labels_key="bulk_labels", model=model, n_obs=held_out.n_obs, seed=args.seed,
        title="scsynth demo: conditional ScGAN on pbmc68k_reduced",
        notes=[f"Trained {model.n_generator_steps_} generator steps; total demo time "
               f"{time.perf_counter() - start:.0f} s. Model in `model/`, cells in `generated.h5ad`."],
    )
    print((out / "report.md").read_text().split("![")[0])
    print(f"Report: {path}")
