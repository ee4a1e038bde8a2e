"""``scsynth train rnagan``: single-cell and/or bulk samples (.h5ad or .h5mu), its plan and a chance warning."""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._io import check_out_dir, drop_empty, is_count_data, read_h5ad, reading

__all__ = ["labels_key_kwarg", "parse_modalities", "train_rnagan"]

#: ``--sc-steps``/``--bulk-steps``: the CLI's flag for each modality's training budget
STEP_FLAGS = {"sc": "--sc-steps", "bulk": "--bulk-steps"}


def labels_key_kwarg(setup: Callable[..., Any], key: str) -> dict[str, str]:
    """``{"labels_key": key}``, or ``{"groupby": key}`` for a ``setup`` that does not take ``labels_key`` yet.

    RNAGAN's ``groupby=`` becomes ``labels_key=``; this keeps the command line quiet on either side of it.

    Examples
    --------
    >>> labels_key_kwarg(lambda adata, *, groupby=None: None, "cell_type")
    {'groupby': 'cell_type'}
    """
    params = inspect.signature(setup).parameters
    return {"labels_key" if "labels_key" in params or "groupby" not in params else "groupby": key}


def parse_modalities(items: Sequence[str]) -> dict[str, str]:
    """``["rna=sc", "tcga=bulk"]`` -> ``{"rna": "sc", "tcga": "bulk"}`` (``--modalities``).

    Examples
    --------
    >>> parse_modalities(["rna=sc", "tcga=bulk"])
    {'rna': 'sc', 'tcga': 'bulk'}
    """
    out = {}
    for item in items:
        name, sep, kind = item.partition("=")
        if not sep or not name or kind not in ("sc", "bulk"):
            raise ValueError(f"--modalities expects NAME=sc or NAME=bulk, got {item!r}.")
        out[name] = kind
    return out


def _read_input(args: argparse.Namespace):
    """(AnnData or MuData) registered for RNAGAN from an .h5ad (one modality or an obs column) or an .h5mu."""
    from ..model import RNAGAN

    p = Path(args.input)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file (expected an .h5ad or .h5mu file).")
    is_counts = is_count_data(args)
    if p.suffix == ".h5mu":
        import mudata

        mdata = reading(p, mudata.read_h5mu, "an .h5mu")
        # --modalities NAME=KIND; the API takes scvi-tools' direction, KIND -> NAME
        modalities = {k: n for n, k in parse_modalities(args.modalities).items()} if args.modalities else None
        combined = RNAGAN.setup_mudata(mdata, layer=args.layer, modalities=modalities, is_count_data=is_counts,
                                       **labels_key_kwarg(RNAGAN.setup_mudata, args.labels_key))
        info = combined.uns["rnagan_input"]
        print(f"{p.name}: {', '.join(f'{m} ({n} genes)' for m, n in info['n_genes'].items())}; "
              f"{info['n_shared_genes']} genes shared")
        return mdata
    if args.modalities:
        raise ValueError("--modalities is for .h5mu input; in an .h5ad say the modality with --modality-key "
                         "(an obs column) or --modality.")
    adata = drop_empty(read_h5ad(p), args.layer, str(p))
    RNAGAN.setup_anndata(adata, layer=args.layer, modality_key=args.modality_key, modality=args.modality,
                         is_count_data=is_counts, **labels_key_kwarg(RNAGAN.setup_anndata, args.labels_key))
    return adata


def train_rnagan(args: argparse.Namespace) -> None:
    """``scsynth train rnagan``: state the plan, train (quietly: the CLI words the chance warning), save."""
    from .. import settings
    from ..model import RNAGAN

    settings.seed = args.seed
    check_out_dir(args.out, args.overwrite)
    gene_sets = args.gene_sets
    if gene_sets not in ("hallmark", "reactome_wp_pid") and not Path(gene_sets).is_file():
        raise FileNotFoundError(f"--gene-sets {gene_sets}: no such file (pass 'hallmark', 'reactome_wp_pid' or a "
                                "GMT file).")
    data = _read_input(args)
    model = RNAGAN(data, gene_sets=gene_sets, n_learned=args.n_learned)
    info = model.gene_sets.summary()
    print(f"Gene sets: {info['n_sets']} gene sets of {info['name']} {info['version'] or ''}".rstrip()
          + f" over {info['n_matched_genes']} of {info['n_genes']} genes ({info['n_dropped_sets']} sets dropped "
          f"with too few genes in the data) + {args.n_learned} learned pathways")
    budget = {"sc": args.sc_steps, "bulk": args.bulk_steps}
    print(model.training_plan(budget, batch_size=args.batch_size, option_names=STEP_FLAGS),
          flush=True)
    from ..model._rnagan import RNAGANTrainingWarning

    # the plan above says which budget is ignored, and the chance warning is said below with the CLI's flags
    plan_log = logging.getLogger(RNAGAN.__module__)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RNAGANTrainingWarning)
        plan_log.disabled = True
        try:
            model.train(max_steps=budget, batch_size=args.batch_size, seed=args.seed,
                        calibrate_marginals=args.calibrate_marginals)
        finally:
            plan_log.disabled = False
    model.save(args.out, overwrite=args.overwrite, save_anndata=True)  # jobs draw references from it
    print(f"Saved RNAGAN ({', '.join(f'{k}: {n} steps' for k, n in model.steps_.items())}; episode accuracy of the "
          "kept weights "
          f"{', '.join(f'{k} {a:.2f}' for k, a in model.episode_accuracy_.items())}) to {args.out}")
    _warn_at_chance(model, args)


def _warn_at_chance(model, args: argparse.Namespace) -> None:
    """One stderr line per modality whose last stage ended at chance, with the flag to raise."""
    from ..model._rnagan import CHANCE_ACCURACY, DEFAULT_STEPS

    last = {name.partition("_")[0]: name for name in model.at_chance_}  # each modality's last stage
    for modality, name in last.items():
        if model.at_chance_[name]:
            budget, accuracy = getattr(args, f"{modality}_steps"), model.episode_accuracy_[name]
            more = max(4 * budget, DEFAULT_STEPS[modality])
            print(f"warning: the {modality} stage ended at chance (episode accuracy {accuracy:.2f}; chance "
                  f"is 0.5, below {CHANCE_ACCURACY} counts as chance): the model cannot tell the groups of "
                  f"--labels-key {args.labels_key} apart: stratify's groups are close to arbitrary (often one for "
                  f"all samples). Train longer (e.g. {STEP_FLAGS[modality]} {more}; it was {budget}) and check "
                  "that the groups differ in expression.", file=sys.stderr)
