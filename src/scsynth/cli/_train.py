"""``scsynth train scgan|groundgan|genesys``: read, check, set up, train and save (RNAGAN: ``_rnagan``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._io import check_out_dir, drop_empty, is_count_data, read_h5ad, setup

__all__ = ["train_genesys", "train_groundgan", "train_scgan"]


def train_scgan(args: argparse.Namespace) -> None:
    """``scsynth train scgan``: an ScGAN (cscGAN with ``--labels-key``) saved to ``--out``."""
    from .. import settings
    from ..model import ScGAN

    settings.seed = args.seed
    check_out_dir(args.out, args.overwrite)
    adata = drop_empty(read_h5ad(args.input), args.layer, args.input)
    setup(ScGAN, adata, args, labels_key=args.labels_key)
    model = ScGAN(adata, output_noise=args.output_noise, output_noise_warmup=args.output_noise_warmup)
    model.train(max_steps=args.max_steps, batch_size=args.batch_size, seed=args.seed,
                calibrate_marginals=args.calibrate_marginals)
    model.save(args.out, overwrite=args.overwrite)
    print(f"Saved {model.__class__.__name__} ({model.n_generator_steps_} generator steps) to {args.out}")


def train_groundgan(args: argparse.Namespace) -> None:
    """``scsynth train groundgan``: a GRouNdGAN on a GRN file, CollecTRI or an inferred GRN."""
    from .. import settings
    from ..data import infer_grn, tf_list
    from ..model import GRouNdGAN
    from ..model._inputs import split_indices

    settings.seed = args.seed
    check_out_dir(args.out, args.overwrite)
    adata = drop_empty(read_h5ad(args.input), args.layer, args.input)
    setup(GRouNdGAN, adata, args)
    grn = args.grn
    if grn == "infer":
        tfs = tf_list(args.tfs)  # fail on a bad TF file before the long inference
        train_cells = split_indices(adata.n_obs, args.train_size, None, args.seed)[0]
        print(f"Inferring a GRN (top {args.top_k} TFs per gene) on {len(train_cells)} training cells")
        grn = infer_grn(adata, tfs=tfs, top_k=args.top_k, layer=args.layer, obs_subset=train_cells, seed=args.seed)
    elif grn != "collectri" and not Path(grn).is_file():
        raise FileNotFoundError(f"--grn {grn}: no such file (pass a TSV/CSV with source/target columns, "
                                "'collectri' or 'infer').")
    model = GRouNdGAN(adata, grn=grn, unregulated=args.unregulated, missing=args.missing,
                      target_noise=args.target_noise)
    info = model.grn.summary()
    print(f"GRN: {info['n_tfs']} TFs regulate {info['n_targets']} target genes through {info['n_edges']} edges "
          f"(density {info['density']:.2g}); {info['n_noise_only']} noise-only genes, {info['n_dropped_genes']} "
          "genes dropped (not covered by the GRN)")
    model.train(max_steps=args.max_steps, controller_steps=args.controller_steps, batch_size=args.batch_size,
                controller_batch_size=args.controller_batch_size, train_size=args.train_size, seed=args.seed,
                calibrate_marginals=args.calibrate_marginals)
    model.save(args.out, overwrite=args.overwrite)
    print(f"Saved GRouNdGAN ({model.controller_steps_} controller + {model.n_generator_steps_} generator steps) "
          f"to {args.out}")


def _read_genesys_input(args: argparse.Namespace):
    """The training cells: an .h5ad, or a 10x directory / .h5ad plus GeneSys' annotations.txt (--anno)."""
    from ..data import read_genesys_annotations

    if args.anno is not None:
        if not Path(args.anno).is_file():
            raise FileNotFoundError(f"--anno {args.anno}: no such file (expected barcode/label/time, tab-separated).")
        if not Path(args.input).exists():
            raise FileNotFoundError(f"{args.input}: no such file or directory (an .h5ad or a 10x matrix directory).")
        return read_genesys_annotations(args.anno, args.input, label_key=args.labels_key, time_key=args.time_key)
    if Path(args.input).is_dir():
        raise ValueError(f"{args.input} is a directory: pass GeneSys' annotations with --anno annotations.txt.")
    return read_h5ad(args.input)


def _read_genesys_blueprint(args: argparse.Namespace):
    """The lineage blueprint of --blueprint, its trajectories named by --trajectory-names or its first column."""
    from ..data import read_blueprint

    if args.trajectory_names is not None and args.blueprint_row_names:
        raise ValueError("Pass either --trajectory-names or --blueprint-row-names, not both.")
    blueprint = read_blueprint(args.blueprint, row_names=args.blueprint_row_names)
    if args.trajectory_names is None:
        return blueprint
    names = [n.strip() for n in args.trajectory_names.split(",")]
    if len(names) != blueprint.n_trajectories or not all(names):
        raise ValueError(f"--trajectory-names {args.trajectory_names!r} gives {len(names)} name(s) but "
                         f"{args.blueprint} has {blueprint.n_trajectories} trajectories (rows); pass one "
                         "non-empty name per row, comma-separated, in row order (e.g. --trajectory-names "
                         f"{','.join(f'fate_{i}' for i in range(blueprint.n_trajectories))}).")
    return read_blueprint(blueprint, names=names)


def train_genesys(args: argparse.Namespace) -> None:
    """``scsynth train genesys``: a GeneSys on cells with label/time and a lineage blueprint."""
    from .. import settings
    from ..model import GeneSys

    settings.seed = args.seed
    check_out_dir(args.out, args.overwrite)
    if not Path(args.blueprint).is_file():
        raise FileNotFoundError(f"--blueprint {args.blueprint}: no such file (GeneSys' lineage.txt).")
    blueprint = _read_genesys_blueprint(args)  # before the data: a naming mistake fails fast
    adata = drop_empty(_read_genesys_input(args), args.layer, args.input)
    GeneSys.setup_anndata(adata, layer=args.layer, labels_key=args.labels_key, time_key=args.time_key,
                          is_count_data=is_count_data(args))
    model = GeneSys(adata, blueprint=blueprint, fallback=args.fallback, n_latent=args.n_latent,
                    n_hidden=args.n_hidden)
    print(model.blueprint)
    named = args.trajectory_names is not None or args.blueprint_row_names
    print("Trajectories: " + ", ".join(model.blueprint.trajectories)
          + ("" if named else " (row numbers; name them with --trajectory-names or --blueprint-row-names)"))
    accelerator = {"auto": None, "cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}[args.device]
    model.train(max_epochs=args.max_epochs, batch_size=args.batch_size, lr=args.lr, lr_patience=args.lr_patience,
                lr_factor=args.lr_factor, lr_threshold=args.lr_threshold, max_cycles=args.max_cycles,
                early_stopping_patience=args.early_stopping_patience, train_size=args.train_size,
                accelerator=accelerator, seed=args.seed)
    model.save(args.out, overwrite=args.overwrite)
    accuracy = model.trajectory_accuracy(seed=args.seed)["accuracy"].iloc[-1] if len(model.test_indices) else None
    extra = f", held-out trajectory accuracy {accuracy:.2f}" if accuracy is not None else ""
    print(f"Saved GeneSys ({model.n_epochs_trained_} epochs, best validation loss {model.best_validation_loss_:.1f}"
          f"{extra}) to {args.out}")
