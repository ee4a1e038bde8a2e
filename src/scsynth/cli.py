"""The ``scsynth`` command line: train, generate, evaluate and a demo, over the Python API."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger("scsynth.cli")

DEBUG_ENV = "SCSYNTH_DEBUG"


def _number(kind: type, test, what: str):
    """An argparse ``type=`` that also checks the range, so a bad flag fails before any work."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not test(value):  # NaN fails every test
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_positive_int = _number(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a non-negative number")
_fraction = _number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")
_open_fraction = _number(float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")


def _check_out_dir(path: str, overwrite: bool, flag: str = "--out") -> None:
    """Refuse an existing ``--out`` before any long work: ``model.save`` would only fail after training."""
    from .model._save_load import MANIFEST_FILE

    out = Path(path)
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{flag} {out} is an existing file; {flag} names a directory to save the model to: "
                         f"choose another {flag}.")
    if not overwrite:
        raise ValueError(
            f"{flag} {out} already exists; pass --overwrite to replace it, or choose another {flag}."
        )
    if not (out / MANIFEST_FILE).is_file():
        raise ValueError(
            f"{flag} {out} exists and is not a scsynth model directory (no {MANIFEST_FILE}); --overwrite "
            f"only replaces a saved model: choose another {flag} or remove it yourself."
        )


def _check_out_file(path: str, overwrite: bool, flag: str = "-o/--output") -> None:
    """Refuse an existing output file (or a directory) before loading the model or reading data."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a directory; pass a file path such as {out / 'out.h5ad'}.")
    if out.exists() and not overwrite:
        raise ValueError(
            f"{flag} {out} already exists; pass --overwrite to replace it, or choose another {flag}."
        )


def _read_h5ad(path: str):
    import anndata

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p} is a directory; pass an .h5ad file.")
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist (expected an .h5ad file).")
    if p.suffix == ".h5mu":
        raise ValueError(f"{p} is a MuData file; this command takes one AnnData (.h5ad): write the modality you "
                         "want with mudata.read_h5mu(path)[name].write_h5ad(...).")
    return _reading(p, anndata.read_h5ad, "an .h5ad")


def _reading(path: Path, reader, what: str):
    """``reader(path)``; a corrupt, truncated or empty file fails with one error that names it."""
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected {what} file.")
    try:
        return reader(path)
    except Exception as err:  # noqa: BLE001 - h5py/anndata raise OSError, KeyError, ... for a damaged file
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(
            f"{path} could not be read as {what} file; it may be truncated or corrupt ({detail}). "
            "Write or download it again."
        ) from err


def _drop_empty(adata, layer: str | None, source: str = "the input"):
    """The CLI owns its copy of the data: it drops all-zero genes/cells (with a warning) instead of failing.

    NaN, infinite or negative values are an error, checked first: their sums are not "no expression".
    """
    from .data import check_values, get_matrix

    x = get_matrix(adata, layer)
    check_values(x, f"{source} ({'layer ' + repr(layer) if layer else '.X'})")
    genes = np.asarray(x.sum(axis=0)).ravel() > 0
    cells = np.asarray(x.sum(axis=1)).ravel() > 0
    if not genes.all() or not cells.all():
        warnings.warn(
            f"Dropping {int((~genes).sum())} genes and {int((~cells).sum())} cells with no expression.", stacklevel=2
        )
        adata = adata[cells, genes].copy()
    return adata


def _setup(cls, adata, args: argparse.Namespace, **kwargs) -> None:
    """``cls.setup_anndata`` with the CLI's flag named in the count-data error."""
    try:
        cls.setup_anndata(adata, layer=args.layer, is_count_data=not args.normalized, **kwargs)
    except ValueError as err:
        hint = " On the command line, add --normalized." if "is_count_data=False" in str(err) else ""
        raise ValueError(f"{err}{hint}") from err


def _cmd_train(args: argparse.Namespace) -> None:
    from . import settings
    from .model import ScGAN

    settings.seed = args.seed
    _check_out_dir(args.out, args.overwrite)
    adata = _drop_empty(_read_h5ad(args.input), args.layer, args.input)
    _setup(ScGAN, adata, args, labels_key=args.labels_key)
    model = ScGAN(adata)
    model.train(max_steps=args.max_steps, batch_size=args.batch_size, seed=args.seed)
    model.save(args.out, overwrite=args.overwrite)
    print(f"Saved {model.__class__.__name__} ({model.n_generator_steps_} generator steps) to {args.out}")


def _load_any(model_dir: str, *, trust: bool = False):
    """Load a saved model of whichever class wrote it (read from its ``scsynth.json``)."""
    import json

    from . import model as models
    from .model._save_load import MANIFEST_FILE

    manifest = Path(model_dir) / MANIFEST_FILE
    name = "ScGAN"
    if manifest.is_file():
        try:
            name = str(json.loads(manifest.read_text(encoding="utf-8")).get("model", "ScGAN"))
        except (ValueError, AttributeError) as err:  # not JSON, not UTF-8, or not a JSON object
            raise ValueError(f"{manifest} is damaged ({err}); save the model again.") from err
    cls = getattr(models, name, None)
    if cls is None:
        raise ValueError(f"{model_dir} holds a {name!r}, which this scsynth version does not know.")
    return cls.load(model_dir, trust=trust)


def _cmd_upgrade(args: argparse.Namespace) -> None:
    from .model._save_load import LEGACY_MODEL_FILE, WEIGHTS_FILE

    path = Path(args.model_dir)
    if (path / WEIGHTS_FILE).is_file():
        print(f"{path} is already in the current format (tensors and JSON); nothing to do.")
        return
    if not (path / LEGACY_MODEL_FILE).is_file():
        raise ValueError(f"{path} holds no scsynth model ({LEGACY_MODEL_FILE} is missing).")
    model = _load_any(args.model_dir, trust=True)
    model.save(path, overwrite=True, save_anndata=model.adata is not None)
    print(f"Converted {path} ({type(model).__name__}) to the current format: {LEGACY_MODEL_FILE} (a pickle) was "
          f"replaced by {WEIGHTS_FILE} and JSON.")


def _cmd_generate(args: argparse.Namespace) -> None:
    _check_out_file(args.output, args.overwrite)
    model = _load_any(args.model_dir)
    if type(model).__name__ == "GeneSys":
        if args.per_trajectory is None:
            raise ValueError("This is a GeneSys model: pass --per-trajectory N (trajectories per blueprint row).")
        cells = model.generate(args.per_trajectory, trajectories=args.trajectory, seed=args.seed)
    elif type(model).__name__ == "RNAGAN":
        if args.n_obs is None or args.label is None:
            raise ValueError("This is an RNAGAN model: pass -n/--n-obs and --label GROUP (and --modality sc|bulk).")
        cells = model.generate(args.n_obs, group=args.label, modality=args.modality, seed=args.seed)
    else:
        if args.n_obs is None:
            raise ValueError("Pass -n/--n-obs (number of cells).")
        kwargs = {"labels": args.label} if args.label is not None else {}
        cells = model.generate(args.n_obs, seed=args.seed, **kwargs)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cells.write_h5ad(args.output)
    what = "samples" if type(model).__name__ == "RNAGAN" else "cells"
    print(f"Wrote {cells.n_obs} generated {what} x {cells.n_vars} genes to {args.output}")


def _read_genesys_input(args: argparse.Namespace):
    """The training cells: an .h5ad, or a 10x directory / .h5ad plus GeneSys' annotations.txt (--anno)."""
    from .data import read_genesys_annotations

    if args.anno is not None:
        if not Path(args.anno).is_file():
            raise FileNotFoundError(f"--anno {args.anno}: no such file (expected barcode/label/time, tab-separated).")
        if not Path(args.input).exists():
            raise FileNotFoundError(f"{args.input}: no such file or directory (an .h5ad or a 10x matrix directory).")
        return read_genesys_annotations(args.anno, args.input, label_key=args.labels_key, time_key=args.time_key)
    if Path(args.input).is_dir():
        raise ValueError(f"{args.input} is a directory: pass GeneSys' annotations with --anno annotations.txt.")
    return _read_h5ad(args.input)


def _read_genesys_blueprint(args: argparse.Namespace):
    """The lineage blueprint of --blueprint, its trajectories named by --trajectory-names or its first column."""
    from .data import read_blueprint

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


def _cmd_train_genesys(args: argparse.Namespace) -> None:
    from . import settings
    from .model import GeneSys

    settings.seed = args.seed
    _check_out_dir(args.out, args.overwrite)
    if not Path(args.blueprint).is_file():
        raise FileNotFoundError(f"--blueprint {args.blueprint}: no such file (GeneSys' lineage.txt).")
    blueprint = _read_genesys_blueprint(args)  # before the data: a naming mistake fails fast
    adata = _drop_empty(_read_genesys_input(args), args.layer, args.input)
    GeneSys.setup_anndata(adata, layer=args.layer, labels_key=args.labels_key, time_key=args.time_key,
                          is_count_data=False if args.normalized else None)
    model = GeneSys(adata, blueprint=blueprint, fallback=args.fallback, n_latent=args.n_latent,
                    n_hidden=args.n_hidden)
    print(model.blueprint)
    named = args.trajectory_names is not None or args.blueprint_row_names
    print("Trajectories: " + ", ".join(model.blueprint.trajectories)
          + ("" if named else " (row numbers; name them with --trajectory-names or --blueprint-row-names)"))
    accelerator = {"auto": None, "cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}[args.device]
    model.train(max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_patience=args.patience,
                lr_factor=args.factor, lr_threshold=args.threshold, max_cycles=args.max_cycles,
                early_stopping_patience=args.early_stopping_patience, train_size=args.train_size,
                accelerator=accelerator, seed=args.seed)
    model.save(args.out, overwrite=args.overwrite)
    accuracy = model.trajectory_accuracy(seed=args.seed)["accuracy"].iloc[-1] if len(model.test_indices) else None
    extra = f", held-out trajectory accuracy {accuracy:.2f}" if accuracy is not None else ""
    print(f"Saved GeneSys ({model.n_epochs_trained_} epochs, best validation loss {model.best_validation_loss_:.1f}"
          f"{extra}) to {args.out}")


def _cmd_train_groundgan(args: argparse.Namespace) -> None:
    from . import settings
    from .data import infer_grn, tf_list
    from .model import GRouNdGAN
    from .model._base import _split_indices

    settings.seed = args.seed
    _check_out_dir(args.out, args.overwrite)
    adata = _drop_empty(_read_h5ad(args.input), args.layer, args.input)
    _setup(GRouNdGAN, adata, args)
    grn = args.grn
    if grn == "infer":
        tfs = tf_list(args.tfs)  # fail on a bad TF file before the long inference
        train_cells = _split_indices(adata.n_obs, args.train_size, None, args.seed)[0]
        print(f"Inferring a GRN (top {args.top_k} TFs per gene) on {len(train_cells)} training cells")
        grn = infer_grn(adata, tfs=tfs, top_k=args.top_k, layer=args.layer, obs_subset=train_cells, seed=args.seed)
    elif grn != "collectri" and not Path(grn).is_file():
        raise FileNotFoundError(f"--grn {grn}: no such file (pass a TSV/CSV with source/target columns, "
                                "'collectri' or 'infer').")
    model = GRouNdGAN(adata, grn=grn, unregulated=args.unregulated, missing=args.missing)
    info = model.grn.summary()
    print(f"GRN: {info['n_tfs']} TFs regulate {info['n_targets']} target genes through {info['n_edges']} edges "
          f"(density {info['density']:.2g}); {info['n_noise_only']} noise-only genes, {info['n_dropped_genes']} "
          "genes dropped (not covered by the GRN)")
    model.train(max_steps=args.max_steps, controller_steps=args.controller_steps, batch_size=args.batch_size,
                controller_batch_size=args.controller_batch_size, train_size=args.train_size, seed=args.seed)
    model.save(args.out, overwrite=args.overwrite)
    print(f"Saved GRouNdGAN ({model.controller_steps_} controller + {model.n_generator_steps_} generator steps) "
          f"to {args.out}")


def _read_rnagan_input(args: argparse.Namespace):
    """(AnnData or MuData) registered for RNAGAN from an .h5ad (one modality or an obs column) or an .h5mu."""
    from .model import RNAGAN

    p = Path(args.input)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file (expected an .h5ad or .h5mu file).")
    is_counts = False if args.normalized else None
    if p.suffix == ".h5mu":
        import mudata

        mdata = _reading(p, mudata.read_h5mu, "an .h5mu")
        modalities = _parse_modalities(args.modalities) if args.modalities else None
        combined = RNAGAN.setup_mudata(mdata, layer=args.layer, groupby=args.groupby, modalities=modalities,
                                       is_count_data=is_counts)
        info = combined.uns["rnagan_input"]
        print(f"{p.name}: {', '.join(f'{m} ({n} genes)' for m, n in info['n_genes'].items())}; "
              f"{info['n_shared_genes']} genes shared")
        return mdata
    if args.modalities:
        raise ValueError("--modalities is for .h5mu input; in an .h5ad say the modality with --modality-key "
                         "(an obs column) or --modality.")
    adata = _drop_empty(_read_h5ad(p), args.layer, str(p))
    RNAGAN.setup_anndata(adata, layer=args.layer, groupby=args.groupby, modality_key=args.modality_key,
                         modality=args.modality, is_count_data=is_counts)
    return adata


def _parse_modalities(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, kind = item.partition("=")
        if not sep or not name or kind not in ("sc", "bulk"):
            raise ValueError(f"--modalities expects NAME=sc or NAME=bulk, got {item!r}.")
        out[name] = kind
    return out


def _cmd_train_rnagan(args: argparse.Namespace) -> None:
    from . import settings
    from .model import RNAGAN

    settings.seed = args.seed
    _check_out_dir(args.out, args.overwrite)
    gene_sets = args.gene_sets
    if gene_sets not in ("hallmark", "reactome_wp_pid") and not Path(gene_sets).is_file():
        raise FileNotFoundError(f"--gene-sets {gene_sets}: no such file (pass 'hallmark', 'reactome_wp_pid' or a "
                                "GMT file).")
    data = _read_rnagan_input(args)
    model = RNAGAN(data, gene_sets=gene_sets, n_learned=args.n_learned)
    info = model.gene_sets.summary()
    print(f"Gene sets: {info['n_sets']} gene sets of {info['name']} {info['version'] or ''}".rstrip()
          + f" over {info['n_matched_genes']} of {info['n_genes']} genes ({info['n_dropped_sets']} sets dropped "
          f"with too few genes in the data) + {args.n_learned} learned pathways")
    flags = {"sc": "--sc-steps", "bulk": "--bulk-steps"}
    print(model.training_plan(args.sc_steps, args.bulk_steps, batch_size=args.batch_size, option_names=flags),
          flush=True)
    from .model._rnagan import CHANCE_ACCURACY, DEFAULT_STEPS, RNAGANTrainingWarning

    # the plan above says which budget is ignored, and the chance warning is said below with the CLI's flags
    plan_log = logging.getLogger(RNAGAN.__module__)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RNAGANTrainingWarning)
        plan_log.disabled = True
        try:
            model.train(sc_steps=args.sc_steps, bulk_steps=args.bulk_steps, batch_size=args.batch_size,
                        seed=args.seed)
        finally:
            plan_log.disabled = False
    model.save(args.out, overwrite=args.overwrite, save_anndata=True)  # jobs draw references from it
    print(f"Saved RNAGAN ({', '.join(f'{k}: {n} steps' for k, n in model.steps_.items())}; episode accuracy of the "
          "kept weights "
          f"{', '.join(f'{k} {a:.2f}' for k, a in model.episode_accuracy_.items())}) to {args.out}")
    last = {name.partition("_")[0]: name for name in model.at_chance_}  # each modality's last stage
    for modality, name in last.items():
        if model.at_chance_[name]:
            budget, accuracy = getattr(args, f"{modality}_steps"), model.episode_accuracy_[name]
            more = max(4 * budget, DEFAULT_STEPS[modality])
            print(f"warning: the {modality} stage ended at chance (episode accuracy {accuracy:.2f}; chance "
                  f"is 0.5, below {CHANCE_ACCURACY} counts as chance): the model cannot tell the groups of "
                  f"--groupby {args.groupby} apart: stratify's groups are close to arbitrary (often one for all "
                  f"samples). Train longer (e.g. {flags[modality]} {more}; it was {budget}) and check that the "
                  "groups differ in expression.", file=sys.stderr)


def _cmd_stratify(args: argparse.Namespace) -> None:
    _check_out_file(args.output, args.overwrite)
    model = _load_any(args.model_dir)
    if not hasattr(model, "stratify"):
        raise ValueError(f"{args.model_dir} holds a {type(model).__name__}, which cannot stratify; train an RNAGAN.")
    adata = _read_h5ad(args.input)
    references = args.references
    if references is not None and references.endswith(".h5ad"):
        references = _read_h5ad(references)
    elif references is not None and references not in adata.obs:
        raise ValueError(f"--references {references!r} is neither an .h5ad file nor a column of {args.input}'s obs.")
    probs = model.stratify(adata, references=references, groupby=args.groupby, n_draws=args.n_draws,
                           n_refs=args.n_refs, calibrate=not args.no_calibrate, key_added=args.key_added,
                           seed=args.seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(args.output)
    counts = adata.obs[args.key_added].value_counts()
    print(f"Stratified {adata.n_obs} samples into {len(probs.columns)} groups: "
          f"{', '.join(f'{g} {n}' for g, n in counts.items())} (median top probability "
          f"{float(probs.max(axis=1).median()):.2f})")
    truth = args.groupby or model.groupby
    if isinstance(references, str) or truth not in adata.obs:
        truth = None
    if truth is not None:
        accuracy = (adata.obs[args.key_added].astype(str) == adata.obs[truth].astype(str)).mean()
        print(f"Agreement with obs[{truth!r}]: {accuracy:.3f}")
    print(f"Wrote obs[{args.key_added!r}] and obsm[{args.key_added + '_scores'!r}] to {args.output}")


def _parse_assignments(items: Sequence[str] | None, flag: str) -> dict[str, float]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ValueError(f"{flag} expects TF=NUMBER, got {item!r}.")
    return out


def _cmd_perturb(args: argparse.Namespace) -> None:
    _check_out_file(args.output, args.overwrite)
    model = _load_any(args.model_dir)
    if not hasattr(model, "perturb"):
        raise ValueError(f"{args.model_dir} holds a {type(model).__name__}, which cannot perturb; train a GRouNdGAN.")
    cells = model.perturb(knockout=args.knockout, overexpress=_parse_assignments(args.overexpress, "--overexpress"),
                          set_to=_parse_assignments(args.set_to, "--set"), n_obs=args.n_obs, seed=args.seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cells.write_h5ad(args.output)
    effects = cells.uns["perturbation"]["effects"]
    top = effects.loc[~effects["perturbed"]].sort_values("pval_pre_lsn").head(10)
    print(f"{cells.uns['perturbation']['name']}: {int((effects['fdr_pre_lsn'] < 0.05).sum())} genes change "
          f"(FDR < 0.05, before normalisation); top: {', '.join(top.index)}")
    print(f"Wrote {cells.n_obs} paired cells ({args.n_obs} control + {args.n_obs} perturbed) to {args.output}")


_REPORT_FILES = ("report.md", "realism.csv", "real_vs_generated.png")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from ._report import write_report

    report = Path(args.report)
    if report.exists() and not report.is_dir():
        raise ValueError(f"--report {report} is an existing file; --report names a directory for report.md, "
                         "realism.csv and figures: choose another --report.")
    written = [n for n in _REPORT_FILES if (report / n).exists()]
    if written and not args.overwrite:
        raise ValueError(f"--report {report} already holds {', '.join(written)}; pass --overwrite to replace "
                         "them, or choose another --report.")
    real, sim = _read_h5ad(args.real), _read_h5ad(args.simulated)
    path = write_report(real, sim, args.report, labels_key=args.labels_key, layer=args.layer, n_obs=args.n_obs,
                        seed=args.seed)
    import pandas as pd

    from ._report import realism_text

    print(realism_text(pd.read_csv(report / "realism.csv")))  # the verdicts, not only where they went
    print(f"\nWrote {path}, {report / 'realism.csv'} and the figures in {report}.")


def _cmd_demo(args: argparse.Namespace) -> None:
    from . import data, settings
    from ._report import write_report
    from .model import ScGAN

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
    generated = model.generate(held_out.n_obs, labels=list(held_out.obs["bulk_labels"].astype(str)), seed=args.seed)
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


#: ``scsynth data NAME``: bundled dataset -> (loader in scsynth.data, label column, what the values are)
_DATASETS = {
    "pbmc68k": ("pbmc68k_normalized", "bulk_labels", "normalised expression (train with --normalized)"),
    "myoblast": ("hsmm_myoblast", "label", "FPKM, normalised (GeneSys detects it)"),
    "geuvadis": ("geuvadis_lcl", "sex", "bulk RNA-seq counts"),
}
#: The myoblast time course's lineage blueprint (as in the GeneSys tutorial): one row per trajectory.
_MYOBLAST_BLUEPRINT = {
    "myotube": ["State1", "State2", "State2", "State2"],
    "mesenchymal": ["State1", "State3", "State3", "State3"],
    "proliferating": ["State1", "State1", "State1", "State1"],
}


def _cmd_data(args: argparse.Namespace) -> None:
    from . import data

    outputs = [(args.output, "-o/--output"), (args.held_out, "--held-out"), (args.blueprint, "--blueprint")]
    for path, flag in outputs:
        if path is not None:
            _check_out_file(path, args.overwrite, flag)
    if args.blueprint is not None and args.name != "myoblast":
        raise ValueError("--blueprint is for the myoblast time course (GeneSys); drop it for this dataset.")
    loader, key, kind = _DATASETS[args.name]
    adata = getattr(data, loader)()
    train = np.arange(adata.n_obs)
    if args.held_out is not None:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(train, test_size=args.fraction, random_state=args.seed,
                                       stratify=adata.obs[key].astype(str))
        train, test = np.sort(train), np.sort(test)
    if args.n_top_genes is not None and args.n_top_genes < adata.n_vars:
        import scanpy as sc

        # chosen on the training part only (Seurat flavour on log1p of per-cell normalised values)
        scaled = sc.AnnData(data.normalize_total(adata.X[train], 1e4))
        sc.pp.log1p(scaled)
        hvg = sc.pp.highly_variable_genes(scaled, n_top_genes=args.n_top_genes, inplace=False)
        adata = adata[:, hvg["highly_variable"].to_numpy()].copy()
    parts = {args.output: adata[train].copy()}
    if args.held_out is not None:
        parts[args.held_out] = adata[test].copy()
    for path, part in parts.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        part.write_h5ad(path)
        groups = part.obs[key].astype(str).value_counts()
        print(f"Wrote {path}: {part.n_obs} {'samples' if args.name == 'geuvadis' else 'cells'} x {part.n_vars} "
              f"genes, {kind}; obs[{key!r}] has {len(groups)} groups "
              f"({', '.join(f'{g} {n}' for g, n in groups.head(4).items())}{', ...' if len(groups) > 4 else ''})")
    if args.blueprint is not None:
        lines = ["\t".join([name, *labels]) for name, labels in _MYOBLAST_BLUEPRINT.items()]
        Path(args.blueprint).write_text("\n".join(lines) + "\n")
        print(f"Wrote {args.blueprint}: the lineage blueprint, {len(lines)} trajectories x 4 time steps, named in "
              f"its first column ({', '.join(_MYOBLAST_BLUEPRINT)}): train with --blueprint-row-names")


def build_parser() -> argparse.ArgumentParser:
    """The ``scsynth`` argument parser."""
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

    train = sub.add_parser("train", help="train a model on an .h5ad file")
    train_sub = train.add_subparsers(dest="model", metavar="MODEL", required=True)
    scgan = train_sub.add_parser("scgan", help="ScGAN / cscGAN (conditional with --labels-key)")
    scgan.add_argument("input", help="training data (.h5ad), cells x genes")
    scgan.add_argument("--out", required=True, help="directory to save the model to")
    scgan.add_argument("--labels-key", help="obs column to condition on (cscGAN)")
    scgan.add_argument("--layer", help="layer with the values (default: X)")
    scgan.add_argument("--normalized", action="store_true", help="values are normalised expression, not counts")
    scgan.add_argument("--max-steps", type=_positive_int, default=2000,
                       help="generator steps (default: 2000)")
    scgan.add_argument("--batch-size", type=_positive_int, default=128, help="cells per step (default: 128)")
    scgan.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    scgan.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    scgan.set_defaults(func=_cmd_train)

    gg = train_sub.add_parser("groundgan", help="GRouNdGAN: GRN-guided causal simulator")
    gg.add_argument("input", help="training data (.h5ad), cells x genes (gene symbols for --grn collectri)")
    gg.add_argument("--grn", required=True,
                    help="TSV/CSV with source/target[/weight] columns, 'collectri' (bundled) or 'infer' (GRNBoost2-style)")
    gg.add_argument("--out", required=True, help="directory to save the model to")
    gg.add_argument("--top-k", type=_positive_int, default=15,
                    help="with --grn infer: TFs kept per gene (default: 15)")
    gg.add_argument("--tfs", default="human", help="with --grn infer: 'human' (Lambert 2018) or a file of TF names")
    gg.add_argument("--unregulated", choices=["drop", "noise"], default="drop",
                    help="genes the GRN does not cover: drop them or keep them as noise-only (default: drop)")
    gg.add_argument("--missing", choices=["raise", "drop"], default=None,
                    help="GRN genes absent from the data (default: drop for collectri, raise otherwise)")
    gg.add_argument("--layer", help="layer with the values (default: X)")
    gg.add_argument("--normalized", action="store_true", help="values are normalised expression, not counts")
    gg.add_argument("--controller-steps", type=_positive_int, default=2000,
                    help="stage-1 generator steps (default: 2000)")
    gg.add_argument("--max-steps", type=_positive_int, default=2000,
                    help="stage-2 generator steps (default: 2000)")
    gg.add_argument("--batch-size", type=_positive_int, default=128,
                    help="cells per stage-2 step (default: 128)")
    gg.add_argument("--controller-batch-size", type=_positive_int, default=None,
                    help="cells per stage-1 step (default: --batch-size)")
    gg.add_argument("--train-size", type=_fraction, default=0.9,
                    help="fraction of cells for training (default: 0.9)")
    gg.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    gg.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    gg.set_defaults(func=_cmd_train_groundgan)

    gs = train_sub.add_parser("genesys", help="GeneSys: developmental trajectories from a lineage blueprint")
    gs.add_argument("input", help="training data: .h5ad with obs label/time, or (with --anno) a 10x matrix directory")
    gs.add_argument("--blueprint", required=True, help="lineage blueprint (GeneSys' lineage.txt: one row per "
                    "trajectory, one tab-separated label per time step)")
    gs.add_argument("--trajectory-names", metavar="A,B,...",
                    help="names of the blueprint's trajectories (rows), comma-separated in row order "
                    "(default: trajectory_0, trajectory_1, ...); used by generate --trajectory and in plots")
    gs.add_argument("--blueprint-row-names", action="store_true",
                    help="the first column of --blueprint names the trajectories (the time steps follow)")
    gs.add_argument("--anno", help="GeneSys' annotations.txt (barcode, label, time), matched to the cells by barcode")
    gs.add_argument("--out", required=True, help="directory to save the model to")
    gs.add_argument("--labels-key", default="label", help="obs column with the labels (default: label)")
    gs.add_argument("--time-key", default="time", help="obs column with time steps 1..T (default: time)")
    gs.add_argument("--layer", help="layer with the values (default: X)")
    gs.add_argument("--normalized", action="store_true",
                    help="values are normalised (FPKM, log-normalised...), not counts (default: detected)")
    gs.add_argument("--fallback", choices=["raise", "neighbors"], default="raise",
                    help="blueprint (label, time) without cells: fail, or use the previous/next time step")
    gs.add_argument("--epochs", type=_positive_int, default=200, help="epochs per cycle (default: 200)")
    gs.add_argument("--max-cycles", type=_positive_int, default=1,
                    help="restart cycles from the best weights (default: 1)")
    gs.add_argument("--batch-size", type=_positive_int, default=128,
                    help="trajectories per batch (default: 128)")
    gs.add_argument("--lr", type=_positive_float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    gs.add_argument("--patience", type=_non_negative_int, default=10,
                    help="plateau epochs before the lr drops (default: 10)")
    gs.add_argument("--factor", type=_open_fraction, default=0.5,
                    help="lr factor on a plateau (default: 0.5)")
    gs.add_argument("--threshold", type=_non_negative_float, default=0.05,
                    help="relative improvement that counts (default: 0.05)")
    gs.add_argument("--early-stopping-patience", type=_positive_int, default=30,
                    help="epochs without improvement (default: 30)")
    gs.add_argument("--train-size", type=_fraction, default=0.8,
                    help="fraction of cells for training (default: 0.8)")
    gs.add_argument("--n-latent", type=_positive_int, default=32, help="latent size (default: 32)")
    gs.add_argument("--n-hidden", type=_positive_int, default=256, help="hidden width (default: 256)")
    gs.add_argument("--device", choices=["auto", "cpu", "cuda", "gpu"], default="auto", help="where to train")
    gs.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    gs.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    gs.set_defaults(func=_cmd_train_genesys)

    rg = train_sub.add_parser("rnagan", help="RNAGAN: pathway-aware episode GAN on single-cell and/or bulk data")
    rg.add_argument("input", help="training data: .h5ad (samples x gene symbols) or .h5mu (one modality per data type)")
    rg.add_argument("--groupby", required=True, help="obs column with the group of each sample (cell type, sex...)")
    rg.add_argument("--out", required=True, help="directory to save the model (with its training data) to")
    rg.add_argument("--gene-sets", default="hallmark",
                    help="'hallmark' (bundled MSigDB, default), 'reactome_wp_pid' or a GMT file")
    rg.add_argument("--modality-key", help=".h5ad: obs column saying 'sc' or 'bulk' per sample")
    rg.add_argument("--modality", choices=["sc", "bulk"], default="sc",
                    help=".h5ad without --modality-key: what all samples are (default: sc)")
    rg.add_argument("--modalities", nargs="+", metavar="NAME=KIND",
                    help=".h5mu: modality name to sc/bulk, e.g. rna=sc tcga=bulk (default: modalities named sc/bulk)")
    rg.add_argument("--layer", help="layer with the values (default: X)")
    rg.add_argument("--normalized", action="store_true", help="values are normalised expression, not counts")
    rg.add_argument("--sc-steps", type=_non_negative_int, default=2000,
                    help="steps (batches) of the single-cell stage; the first stage that runs spends half of them "
                    "on discriminator warm-up; ignored without single-cell samples (default: 2000)")
    rg.add_argument("--bulk-steps", type=_non_negative_int, default=1000,
                    help="steps (batches) of the bulk stage: fine-tuning after single cells, or, on bulk data "
                    "alone, half discriminator warm-up, half adversarial; ignored without bulk samples "
                    "(default: 1000)")
    rg.add_argument("--batch-size", type=_positive_int, default=64, help="episodes per batch (default: 64)")
    rg.add_argument("--n-learned", type=_non_negative_int, default=8,
                    help="learned pathways next to the gene sets (default: 8)")
    rg.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    rg.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    rg.set_defaults(func=_cmd_train_rnagan)

    strat = sub.add_parser("stratify", help="assign samples to groups with a saved RNAGAN")
    strat.add_argument("model_dir", help="directory written by 'scsynth train rnagan' or model.save()")
    strat.add_argument("input", help="samples to stratify (.h5ad, genes matched by symbol)")
    strat.add_argument("--references", help="labelled references: an .h5ad, or an obs column of INPUT whose "
                       "labelled samples are the references (default: the model's training data)")
    strat.add_argument("--groupby", help="group column of the reference .h5ad (default: the model's)")
    strat.add_argument("--n-draws", type=_positive_int, default=20,
                       help="reference sets per sample and group (default: 20)")
    strat.add_argument("--n-refs", type=_positive_int, default=5,
                       help="samples per reference set (default: 5)")
    strat.add_argument("--no-calibrate", action="store_true", help="skip the temperature fitted on the references")
    strat.add_argument("--key-added", default="rnagan", help="obs/obsm key to write (default: rnagan)")
    strat.add_argument("-o", "--output", required=True, help="output .h5ad (the input with the result)")
    strat.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    strat.add_argument("--overwrite", action="store_true", help="replace an existing -o/--output file")
    strat.set_defaults(func=_cmd_stratify)

    pert = sub.add_parser("perturb", help="in-silico TF perturbation with a saved GRouNdGAN")
    pert.add_argument("model_dir", help="directory written by 'scsynth train groundgan' or model.save()")
    pert.add_argument("--knockout", nargs="+", metavar="TF", help="TFs to knock out")
    pert.add_argument("--overexpress", nargs="+", metavar="TF=FACTOR", help="TFs to scale, e.g. SPI1=2")
    pert.add_argument("--set", dest="set_to", nargs="+", metavar="TF=VALUE", help="TFs to set (normalised units)")
    pert.add_argument("-n", "--n-obs", type=_positive_int, default=1000, help="cell pairs (default: 1000)")
    pert.add_argument("-o", "--output", required=True, help="output .h5ad (control and perturbed cells)")
    pert.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    pert.add_argument("--overwrite", action="store_true", help="replace an existing -o/--output file")
    pert.set_defaults(func=_cmd_perturb)

    gen = sub.add_parser("generate", help="generate cells from a saved model")
    gen.add_argument("model_dir", help="directory written by 'scsynth train' or model.save()")
    gen.add_argument("-n", "--n-obs", type=_positive_int, help="number of cells")
    gen.add_argument("--per-trajectory", type=_positive_int,
                     help="GeneSys: trajectories generated per blueprint row")
    gen.add_argument("--trajectory", action="append", help="GeneSys: only this trajectory (repeatable)")
    gen.add_argument("-o", "--output", required=True, help="output .h5ad")
    gen.add_argument("--label", help="generate only this label (conditional models; the group for RNAGAN)")
    gen.add_argument("--modality", choices=["sc", "bulk"], help="RNAGAN: single-cell or bulk pseudo-samples")
    gen.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing -o/--output file")
    gen.set_defaults(func=_cmd_generate)

    ev = sub.add_parser("evaluate", help="realism of simulated vs real cells, as a report")
    ev.add_argument("real", help="real cells (.h5ad)")
    ev.add_argument("simulated", help="simulated cells (.h5ad)")
    ev.add_argument("--report", required=True, help="directory for report.md, realism.csv and figures")
    ev.add_argument("--labels-key", help="obs column to colour the embedding by")
    ev.add_argument("--layer", help="layer with the values in both files (default: X)")
    ev.add_argument("--n-obs", type=_positive_int, default=1000, help="cells per side (default: 1000)")
    ev.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    ev.add_argument("--overwrite", action="store_true", help="replace the report files in --report")
    ev.set_defaults(func=_cmd_evaluate)

    dat = sub.add_parser("data", help="write a bundled dataset to .h5ad (to try every command offline)",
                         description="Write one of scsynth's bundled, offline datasets to an .h5ad file, "
                         "optionally with a stratified held-out part to evaluate or stratify against: pbmc68k "
                         "(700 PBMCs, 10 cell types, normalised), myoblast (271-cell myoblast time course, FPKM, "
                         "with --blueprint for GeneSys), geuvadis (85 lymphoblastoid bulk samples, counts, sex).")
    dat.add_argument("name", choices=sorted(_DATASETS), help="the dataset")
    dat.add_argument("-o", "--output", required=True, help="output .h5ad (the training part with --held-out)")
    dat.add_argument("--held-out", help="also write a held-out part, stratified by the dataset's labels, here")
    dat.add_argument("--fraction", type=_open_fraction, default=0.2, help="held-out fraction (default: 0.2)")
    dat.add_argument("--blueprint", help="myoblast: also write its lineage blueprint (GeneSys' lineage.txt) here")
    dat.add_argument("--n-top-genes", type=_positive_int,
                     help="keep only this many highly variable genes, chosen on the training part")
    dat.add_argument("--seed", type=_non_negative_int, default=0, help="random seed of the split (default: 0)")
    dat.add_argument("--overwrite", action="store_true", help="replace existing output files")
    dat.set_defaults(func=_cmd_data)

    up = sub.add_parser("upgrade", help="convert a model saved by scsynth 0.1 (pickled model.pt) to the safe format",
                        description="Load a model directory saved by scsynth 0.1, whose model.pt is a pickle that "
                        "can run code when loaded, and save it again as tensors and JSON. Run it only on models "
                        "you made yourself or otherwise trust.")
    up.add_argument("model_dir", help="directory written by scsynth 0.1's model.save() or 'scsynth train'")
    up.set_defaults(func=_cmd_upgrade)

    demo = sub.add_parser("demo", help="train, generate and evaluate on bundled pbmc68k_reduced")
    demo.add_argument("--out", default="scsynth_demo", help="output directory (default: scsynth_demo)")
    demo.add_argument("--max-steps", type=_positive_int, default=1000, help="generator steps (default: 1000)")
    demo.add_argument("--batch-size", type=_positive_int, default=64, help="cells per step (default: 64)")
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scsynth`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"scsynth {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    # scsynth's own messages at INFO; other libraries' (anndata's "... storing 'x' as categorical") only from WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("scsynth").setLevel(logging.INFO)
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    formatted = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _format_warning
    try:
        args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a command line reports every failure as one line
        if debug:
            raise
        hint = not isinstance(err, _EXPECTED_ERRORS)
        print(f"error: {_error_message(err, debug_hint=hint)}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = formatted
    return 0


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one ``warning: ...`` line, without the source path and line that Python prints."""
    return f"warning: {' '.join(str(message).split())}\n"


# the errors scsynth raises on purpose, with a message that says what to do; anything else is a bug or an
# environment failure, reported with its type and how to see the traceback
_EXPECTED_ERRORS = (ValueError, KeyError, TypeError, OSError, RuntimeError)


def _error_message(err: BaseException, *, debug_hint: bool) -> str:
    """One line for ``err``: KeyError's quotes dropped, numpy string reprs shown as plain strings."""
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    text = re.sub(r"np\.str_\((['\"])(.*?)\1\)", r"'\2'", str(text))  # np.str_('GATA2') -> 'GATA2'
    text = " ".join(text.split()) or type(err).__name__
    if debug_hint:
        hint = f"pass --debug or set {DEBUG_ENV}=1 for the traceback"
        text = f"unexpected {type(err).__name__}: {text} ({hint})"
    return text


if __name__ == "__main__":
    sys.exit(main())
