"""The ``scsynth`` argument parser: the top level and the job subcommands (``train``: ``_train_parser``)."""

from __future__ import annotations

import argparse

from . import _data, _evaluate, _jobs
from ._data import DATASETS
from ._flags import (
    DEBUG_ENV,
    add_batch_size,
    add_layer,
    add_overwrite,
    add_renamed,
    add_seed,
    comma_list,
    open_fraction,
    positive_int,
    require,
)
from ._train_parser import add_train_parsers

__all__ = ["build_parser"]

_OUT_FILE = "an existing -o/--output file"


def build_parser() -> argparse.ArgumentParser:
    """The ``scsynth`` argument parser.

    Examples
    --------
    >>> build_parser().parse_args(["generate", "m", "-n", "5", "-o", "x.h5ad"]).n_obs
    5
    """
    parser = argparse.ArgumentParser(
        prog="scsynth",
        description="scsynth: train, generate, perturb, stratify, evaluate and a demo, from the shell.",
        epilog=f"Failures print one 'error:' line and exit with status 1; for the full traceback pass "
        f"--debug (before the command) or set {DEBUG_ENV}=1.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help=f"show a failure's traceback instead of one error line (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parsers(sub)
    _add_stratify(sub)
    _add_perturb(sub)
    _add_generate(sub)
    _add_evaluate(sub)
    _add_data(sub)
    _add_upgrade(sub)
    _add_demo(sub)
    return parser


def _add_stratify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stratify", help="assign samples to groups with a saved RNAGAN")
    p.add_argument("model_dir", help="directory written by 'scsynth train rnagan' or model.save()")
    p.add_argument("input", help="samples to stratify (.h5ad, genes matched by symbol)")
    p.add_argument("--references", help="labelled references: an .h5ad, or an obs column of INPUT whose "
                   "labelled samples are the references (default: the model's training data)")
    p.add_argument("--groupby", help="with --references FILE.h5ad: the obs column of that file to group the "
                   "references by, as scanpy's groupby (default: the model's --labels-key)")
    p.add_argument("--n-draws", type=positive_int, default=20, help="reference sets per sample and group (default: 20)")
    p.add_argument("--n-refs", type=positive_int, default=5, help="samples per reference set (default: 5)")
    p.add_argument("--no-calibrate", action="store_true", help="skip the temperature fitted on the references")
    p.add_argument("--key-added", default="rnagan", help="obs/obsm key to write (default: rnagan)")
    p.add_argument("-o", "--output", required=True, help="output .h5ad (the input with the result)")
    add_seed(p)
    add_overwrite(p, target=_OUT_FILE)
    p.set_defaults(func=_jobs.stratify)


def _add_perturb(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("perturb", help="in-silico TF perturbation with a saved GRouNdGAN")
    p.add_argument("model_dir", help="directory written by 'scsynth train groundgan' or model.save()")
    p.add_argument("--knockout", nargs="+", metavar="TF", help="TFs to knock out")
    p.add_argument("--overexpress", nargs="+", metavar="TF=FACTOR", help="TFs to scale, e.g. SPI1=2")
    p.add_argument("--set", dest="set_to", nargs="+", metavar="TF=VALUE", help="TFs to set (normalised units)")
    p.add_argument("-n", "--n-obs", type=positive_int, default=1000, metavar="N", help="cell pairs (default: 1000)")
    p.add_argument("-o", "--output", required=True, help="output .h5ad (control and perturbed cells)")
    add_seed(p)
    add_overwrite(p, target=_OUT_FILE)
    p.set_defaults(func=_jobs.perturb)


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate cells from a saved model")
    p.add_argument("model_dir", help="directory written by 'scsynth train' or model.save()")
    p.add_argument("-n", "--n-obs", type=positive_int, metavar="N",
                   help="how many to generate: cells (ScGAN, GRouNdGAN), samples (RNAGAN), or trajectories per "
                   "blueprint row (GeneSys: each gives one cell per time step); required")
    add_renamed(p, "--per-trajectory", "-n/--n-obs", dest="n_obs", type=positive_int)
    require(p, "n_obs", "-n/--n-obs")
    p.add_argument("--condition", type=comma_list, action="extend", metavar="VALUE[,VALUE...]",
                   help="what to generate, comma-separated: ScGAN one label (or one per cell), RNAGAN the group, "
                   "GeneSys trajectory names (default: ScGAN labels at their training frequencies, GeneSys every "
                   "trajectory; RNAGAN needs one; GRouNdGAN takes none)")
    add_renamed(p, "--label", "--condition", dest="condition", extend=True)
    add_renamed(p, "--trajectory", "--condition", dest="condition", extend=True)
    p.add_argument("--modality", choices=["sc", "bulk"], help="RNAGAN: single-cell or bulk pseudo-samples")
    p.add_argument("-o", "--output", required=True, help="output .h5ad")
    add_seed(p)
    add_overwrite(p, target=_OUT_FILE)
    p.set_defaults(func=_jobs.generate)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="realism of simulated vs real cells, as a report")
    p.add_argument("real", help="real cells (.h5ad)")
    p.add_argument("simulated", help="simulated cells (.h5ad)")
    p.add_argument("--report", required=True, help="directory for report.md, realism.csv and figures")
    p.add_argument("--labels-key", help="obs column to colour the embedding by")
    add_layer(p, where="both files")
    p.add_argument("-n", "--n-obs", type=positive_int, default=1000, metavar="N",
                   help="cells per side (default: 1000)")
    # metrics' SCALES, spelled out: importing scsynth.metrics here would load scanpy on every command
    p.add_argument("--scale", choices=["normalized", "log1p"], default="normalized",
                   help="what the forest, MMD and centroid distances see: library-size-normalised "
                        "values (the published protocol, default) or their log1p (the scale of a usual "
                        "analysis; stricter on lowly expressed genes)")
    add_seed(p)
    add_overwrite(p, target="the report files in an existing --report directory")
    p.set_defaults(func=_evaluate.evaluate)


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="write a bundled dataset to .h5ad (to try every command offline)",
                       description="Write one of scsynth's bundled, offline datasets to an .h5ad file, "
                       "optionally with a stratified held-out part to evaluate or stratify against: pbmc68k "
                       "(700 PBMCs, 10 cell types, normalised), myoblast (271-cell myoblast time course, FPKM, "
                       "with --blueprint for GeneSys), geuvadis (85 lymphoblastoid bulk samples, counts, sex).")
    p.add_argument("name", choices=sorted(DATASETS), help="the dataset")
    p.add_argument("-o", "--output", required=True, help="output .h5ad (the training part with --held-out)")
    p.add_argument("--held-out", help="also write a held-out part, stratified by the dataset's labels, here")
    p.add_argument("--fraction", type=open_fraction, default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--blueprint", help="myoblast: also write its lineage blueprint (GeneSys' lineage.txt) here")
    p.add_argument("--n-top-genes", type=positive_int,
                   help="keep only this many highly variable genes, chosen on the training part")
    add_seed(p, what="random seed of the held-out split")
    add_overwrite(p, target="existing output files")
    p.set_defaults(func=_data.write_dataset)


def _add_upgrade(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upgrade", help="convert a model saved by scsynth 0.1 (pickled model.pt) to the safe format",
                       description="Load a model directory saved by scsynth 0.1, whose model.pt is a pickle that "
                       "can run code when loaded, and save it again as tensors and JSON. Run it only on models "
                       "you made yourself or otherwise trust.")
    p.add_argument("model_dir", help="directory written by scsynth 0.1's model.save() or 'scsynth train'")
    p.set_defaults(func=_jobs.upgrade)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train, generate and evaluate on bundled pbmc68k_reduced")
    p.add_argument("--out", default="scsynth_demo", help="output directory (default: scsynth_demo)")
    p.add_argument("--max-steps", type=positive_int, default=1000, help="generator steps (default: 1000)")
    add_batch_size(p, default=64, unit="cells")
    add_seed(p)
    p.set_defaults(func=_evaluate.demo)
