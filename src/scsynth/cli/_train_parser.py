"""The ``scsynth train MODEL`` parsers: one per model, the shared flags spelled and worded as everywhere."""

from __future__ import annotations

import argparse

from . import _rnagan, _train
from ._flags import (
    add_batch_size,
    add_layer,
    add_no_calibration,
    add_normalized,
    add_overwrite,
    add_renamed,
    add_seed,
    fraction,
    half_open_fraction,
    non_negative_float,
    non_negative_int,
    open_fraction,
    positive_float,
    positive_int,
    require,
)

__all__ = ["add_train_parsers"]

_OUT_DIR = "an existing --out model directory"


def add_train_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` with its ``scgan``, ``groundgan``, ``genesys`` and ``rnagan`` subcommands to ``sub``."""
    train = sub.add_parser("train", help="train a model on an .h5ad file")
    train_sub = train.add_subparsers(dest="model", metavar="MODEL", required=True)
    _add_scgan(train_sub)
    _add_groundgan(train_sub)
    _add_genesys(train_sub)
    _add_rnagan(train_sub)


def _add_scgan(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("scgan", help="ScGAN / cscGAN (conditional with --labels-key)")
    p.add_argument("input", help="training data (.h5ad), cells x genes")
    p.add_argument("--out", required=True, help="directory to save the model to")
    p.add_argument("--labels-key", help="obs column to condition on (cscGAN)")
    add_layer(p)
    add_normalized(p, detected=True)
    p.add_argument("--max-steps", type=positive_int, default=2000, help="generator steps (default: 2000)")
    p.add_argument("--output-noise", choices=["none", "poisson"], default="poisson",
                   help="'poisson': draw each generated value as counts at a real cell's depth, in training and "
                        "generation (realer cells; see the ScGAN docs); 'none': the generator's values, as "
                        "the original scGAN (default: poisson)")
    p.add_argument("--output-noise-warmup", type=half_open_fraction, default=0.5,
                   help="with --output-noise poisson: share of the steps trained before the draw is "
                        "switched on (default: 0.5)")
    add_batch_size(p, default=128, unit="cells")
    add_no_calibration(p)
    add_seed(p)
    add_overwrite(p, target=_OUT_DIR)
    p.set_defaults(func=_train.train_scgan)


def _add_groundgan(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("groundgan", help="GRouNdGAN: GRN-guided causal simulator")
    p.add_argument("input", help="training data (.h5ad), cells x genes (gene symbols for --grn collectri)")
    p.add_argument("--grn", required=True, help="TSV/CSV with source/target[/weight] columns, 'collectri' "
                   "(through decoupler; bundled snapshot offline) or 'infer' (GRNBoost2-style)")
    p.add_argument("--out", required=True, help="directory to save the model to")
    p.add_argument("--top-k", type=positive_int, default=15, help="with --grn infer: TFs kept per gene (default: 15)")
    p.add_argument("--tfs", default="human", help="with --grn infer: 'human' (Lambert 2018) or a file of TF names")
    p.add_argument("--unregulated", choices=["drop", "noise"], default="drop",
                   help="genes the GRN does not cover: drop them or keep them as noise-only (default: drop)")
    p.add_argument("--missing", choices=["raise", "drop"], default=None,
                   help="GRN genes absent from the data (default: drop for collectri, raise otherwise)")
    p.add_argument("--target-noise", choices=["independent", "controller"], default="independent",
                   help="targets' noise: their own (cells follow the GRN alone) or the controller's cells "
                   "(as realistic as the controller's; knockouts along conditional quantiles) (default: independent)")
    add_layer(p)
    add_normalized(p, detected=True)
    p.add_argument("--controller-steps", type=positive_int, default=2000,
                   help="stage-1 generator steps (default: 2000)")
    p.add_argument("--max-steps", type=positive_int, default=2000, help="stage-2 generator steps (default: 2000)")
    add_batch_size(p, default=128, unit="cells", note=" in stage 2")
    p.add_argument("--controller-batch-size", type=positive_int, default=None,
                   help="cells per training batch in stage 1 (default: --batch-size)")
    p.add_argument("--train-size", type=fraction, default=0.9, help="fraction of cells for training (default: 0.9)")
    add_no_calibration(p)
    add_seed(p)
    add_overwrite(p, target=_OUT_DIR)
    p.set_defaults(func=_train.train_groundgan)


def _add_genesys(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("genesys", help="GeneSys: developmental trajectories from a lineage blueprint")
    p.add_argument("input", help="training data: .h5ad with obs label/time, or (with --anno) a 10x matrix directory")
    p.add_argument("--blueprint", required=True, help="lineage blueprint (GeneSys' lineage.txt: one row per "
                   "trajectory, one tab-separated label per time step)")
    p.add_argument("--trajectory-names", metavar="A,B,...",
                   help="names of the blueprint's trajectories (rows), comma-separated in row order "
                   "(default: trajectory_0, trajectory_1, ...); used by generate --condition and in plots")
    p.add_argument("--blueprint-row-names", action="store_true",
                   help="the first column of --blueprint names the trajectories (the time steps follow)")
    p.add_argument("--anno", help="GeneSys' annotations.txt (barcode, label, time), matched to the cells by barcode")
    p.add_argument("--out", required=True, help="directory to save the model to")
    p.add_argument("--labels-key", default="label", help="obs column with the labels (default: label)")
    p.add_argument("--time-key", default="time", help="obs column with time steps 1..T (default: time)")
    add_layer(p)
    add_normalized(p, detected=True)
    p.add_argument("--fallback", choices=["raise", "neighbors"], default="raise",
                   help="blueprint (label, time) without cells: fail, or use the previous/next time step")
    p.add_argument("--max-epochs", type=positive_int, default=200, help="epochs per cycle (default: 200)")
    add_renamed(p, "--epochs", "--max-epochs", dest="max_epochs", type=positive_int)
    p.add_argument("--max-cycles", type=positive_int, default=1,
                   help="restart cycles from the best weights (default: 1)")
    add_batch_size(p, default=128, unit="trajectories")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    p.add_argument("--lr-patience", type=non_negative_int, default=10,
                   help="plateau epochs before the lr drops (default: 10)")
    add_renamed(p, "--patience", "--lr-patience", dest="lr_patience", type=non_negative_int)
    p.add_argument("--lr-factor", type=open_fraction, default=0.5, help="lr factor on a plateau (default: 0.5)")
    add_renamed(p, "--factor", "--lr-factor", dest="lr_factor", type=open_fraction)
    p.add_argument("--lr-threshold", type=non_negative_float, default=0.05,
                   help="relative improvement that counts for the lr plateau (default: 0.05)")
    add_renamed(p, "--threshold", "--lr-threshold", dest="lr_threshold", type=non_negative_float)
    p.add_argument("--early-stopping-patience", type=positive_int, default=30,
                   help="epochs without improvement (default: 30)")
    p.add_argument("--train-size", type=fraction, default=0.8, help="fraction of cells for training (default: 0.8)")
    p.add_argument("--n-latent", type=positive_int, default=32, help="latent size (default: 32)")
    p.add_argument("--n-hidden", type=positive_int, default=256, help="hidden width (default: 256)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "gpu"], default="auto", help="where to train")
    add_seed(p)
    add_overwrite(p, target=_OUT_DIR)
    p.set_defaults(func=_train.train_genesys)


def _add_rnagan(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("rnagan", help="RNAGAN: pathway-aware episode GAN on single-cell and/or bulk data")
    p.add_argument("input", help="training data: .h5ad (samples x gene symbols) or .h5mu (one modality per data type)")
    p.add_argument("--labels-key", help="obs column with the group of each sample (cell type, sex...); required")
    add_renamed(p, "--groupby", "--labels-key", dest="labels_key")
    require(p, "labels_key", "--labels-key")
    p.add_argument("--out", required=True, help="directory to save the model (with its training data) to")
    p.add_argument("--gene-sets", default="hallmark",
                   help="'hallmark' (MSigDB through decoupler, bundled offline; default), 'reactome_wp_pid' or a GMT file")
    p.add_argument("--modality-key", help=".h5ad: obs column saying 'sc' or 'bulk' per sample")
    p.add_argument("--modality", choices=["sc", "bulk"], default="sc",
                   help=".h5ad without --modality-key: what all samples are (default: sc)")
    p.add_argument("--modalities", nargs="+", metavar="NAME=KIND",
                   help=".h5mu: modality name to sc/bulk, e.g. rna=sc tcga=bulk (default: modalities named sc/bulk)")
    add_layer(p)
    add_normalized(p, detected=True)
    p.add_argument("--sc-steps", type=non_negative_int, default=2000,
                   help="steps (batches) of the single-cell stage; the first stage that runs spends half of them "
                   "on discriminator warm-up; ignored without single-cell samples (default: 2000)")
    p.add_argument("--bulk-steps", type=non_negative_int, default=1000,
                   help="steps (batches) of the bulk stage: fine-tuning after single cells, or, on bulk data "
                   "alone, half discriminator warm-up, half adversarial; ignored without bulk samples "
                   "(default: 1000)")
    add_batch_size(p, default=64, unit="episodes")
    p.add_argument("--n-learned", type=non_negative_int, default=8,
                   help="learned pathways next to the gene sets (default: 8)")
    add_no_calibration(p)
    add_seed(p)
    add_overwrite(p, target=_OUT_DIR)
    p.set_defaults(func=_rnagan.train_rnagan)
