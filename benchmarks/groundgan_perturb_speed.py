"""GRouNdGAN ``perturb`` with ``target_noise="controller"``: quantile draws of the moved targets only vs all targets.

Usage::

    python benchmarks/groundgan_perturb_speed.py            # 1000 cell pairs, 3 repeats (~6 min, 2 cores)
    python benchmarks/groundgan_perturb_speed.py --quick    # 500 pairs, 1 repeat (to *_quick.*)

With ``target_noise="controller"`` a knockout moves each target of the changed TFs from its conditional quantile
given the old TFs to the same quantile given the new ones; the quantiles come from 32 draws of the target
generators per cell, before and after, i.e. 64 generator passes per cell. Those passes are nearly all of
``perturb``'s time, and only the targets of a perturbed TF move. ``moved targets`` (what ships) runs the
generators of those targets alone (:meth:`scsynth.nn.TargetGenerators.subset`); ``all targets`` (what
``perturb`` did before) runs every target's generator and keeps the moved ones' columns, emulated here by
patching ``subset``. Both are timed in the same process on the same trained model and must give the same
cells: ``max rel. diff`` is the largest difference of ``pre_lsn`` between them, relative to its largest value,
without the marginal calibration (whose quantile tables turn a rounding-level difference at 0 into a step).

Model: :func:`scsynth.data.pbmc68k_normalized` (700 cells, 765 genes), GRouNdGAN with ``target_noise="controller"``
trained for a few steps (the timing does not depend on training), with two GRNs: the top-15 GRN inferred from the
cells (:func:`scsynth.data.infer_grn`, every target has 15 regulators: a TF regulates a quarter of the targets
on average) and the bundled CollecTRI (curated, sparse). Perturbations: the knockout of the TF with the most
targets, of the TF with the median number, and of the three with the most at once. Medians of ``--repeats``
after one warm-up; ``generate`` of as many cells for scale. Prints a markdown table and writes
``benchmarks/results/groundgan_perturb_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import scsynth

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, write_json, write_markdown  # noqa: E402

COLUMNS = ["grn", "perturbation", "moved targets", "n_obs", "all targets s", "moved targets s", "speed-up",
           "generate s", "max rel. diff"]


def trained_model(adata, grn, seed: int = 0) -> scsynth.model.GRouNdGAN:
    adata = adata.copy()
    scsynth.model.GRouNdGAN.setup_anndata(adata, is_count_data=False)
    model = scsynth.model.GRouNdGAN(adata, grn=grn, target_noise="controller", unregulated="noise")
    model.train(controller_steps=30, max_steps=30, batch_size=64, seed=seed, enable_progress_bar=False)
    return model


def all_targets(model):
    """``subset`` as ``perturb`` computed it before: every target's generator, then the chosen columns."""
    gen = model.module.target_generators

    def subset(targets):
        targets = torch.as_tensor(targets, dtype=torch.long)

        def forward(tf_values, noise):
            # the quantile grid's noise is the same for every gene: widen it to all targets
            return gen(tf_values, noise[:, :1].expand(-1, gen.n_targets, -1))[:, targets]
        return forward
    return subset


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def perturbations(grn) -> list[tuple[str, list[str]]]:
    counts = grn.edges["source"].value_counts()
    return [("KO top TF", [counts.index[0]]), ("KO median TF", [counts.index[len(counts) // 2]]),
            ("KO top 3 TFs", list(counts.index[:3]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-obs", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n_obs, args.repeats = [500], 1
    torch.manual_seed(0)
    adata = scsynth.data.pbmc68k_normalized()
    grns = {"inferred top-15": scsynth.data.infer_grn(adata, top_k=15, seed=0, progress=False),
            "CollecTRI": "collectri"}
    rows = []
    for grn_name, grn in grns.items():
        model = trained_model(adata, grn)
        gen = model.module.target_generators
        shipped = gen.subset
        for label, tfs in perturbations(model.grn):
            moved = int(model.grn.edges.loc[model.grn.edges["source"].isin(tfs), "target"].nunique())
            for n_obs in args.n_obs:
                run = lambda: model.perturb(knockout=tfs, n_obs=n_obs, seed=0)  # noqa: E731
                gen.subset = all_targets(model)
                before_s, _ = timed(run, args.repeats)
                with model.module.marginals.disabled():  # the calibration's tables amplify float rounding
                    before = run().layers["pre_lsn"].toarray()
                gen.subset = shipped
                after_s, _ = timed(run, args.repeats)
                with model.module.marginals.disabled():
                    after = run().layers["pre_lsn"].toarray()
                generate_s, _ = timed(lambda: model.generate(n_obs, seed=0), args.repeats)  # noqa: B023
                diff = float(np.abs(before - after).max() / max(np.abs(before).max(), 1e-12))
                rows.append({"grn": grn_name, "perturbation": f"{label} ({', '.join(tfs)})",
                             "moved targets": f"{moved} of {gen.n_targets}", "n_obs": n_obs,
                             "all targets s": round(before_s, 3), "moved targets s": round(after_s, 3),
                             "speed-up": f"{before_s / after_s:.1f}x", "generate s": round(generate_s, 3),
                             "max rel. diff": f"{diff:.1e}"})
                print(rows[-1], flush=True)
    table = markdown_table(rows, COLUMNS)
    text = (f"GRouNdGAN `perturb` (`target_noise=\"controller\"`), pbmc68k_normalized (700 cells, 765 genes); "
            f"medians of {args.repeats} after a warm-up; `all targets`: the quantile draws of every target's "
            f"generator (before), `moved targets`: of the perturbed TFs' targets only (shipped).\n\n{table}\n")
    print(text)
    name = "groundgan_perturb_speed_quick" if args.quick else "groundgan_perturb_speed"
    write_markdown(name, text)
    write_json(name, {"machine": machine(), "repeats": args.repeats, "n_obs": args.n_obs, "rows": rows})


if __name__ == "__main__":
    main()
