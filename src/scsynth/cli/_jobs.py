"""Jobs on a saved model: ``generate``, ``stratify``, ``perturb`` and ``upgrade``.

A job is offered by what the loaded model can do (``hasattr(model, "perturb")``, the keywords its
``generate`` takes), never by its class name.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._io import check_out_file, load_any, read_h5ad

__all__ = ["CONDITION_KEYWORDS", "condition_kwarg", "generate", "generate_kwargs", "parse_assignments", "perturb",
           "stratify", "upgrade"]

#: ``generate()``'s keyword for ``--condition``, first match wins: ``condition`` (every scsynth model), else
#: the 0.2 names (ScGAN ``labels``, RNAGAN ``group``, GeneSys ``trajectories``) of a model class written for them.
CONDITION_KEYWORDS = ("condition", "labels", "group", "trajectories")


def condition_kwarg(model: Any, condition: str | list[str] | None) -> dict[str, Any]:
    """``{keyword: condition}`` for ``model.generate``, the keyword read from what it accepts (not its class).

    The one place that names the condition's keyword: ``condition`` (all four models), else a 0.2 name.
    A model whose ``condition_kind`` is ``None`` (GRouNdGAN) refuses one. ``None`` gives ``{}``.

    Examples
    --------
    >>> cells = model.generate(100, **condition_kwarg(model, "B cell"), seed=0)  # doctest: +SKIP
    """
    if condition is None:
        return {}
    if getattr(model, "condition_kind", "") is None:
        raise ValueError(f"A {type(model).__name__} generates without a condition: drop --condition.")
    params = inspect.signature(model.generate).parameters
    key = next((k for k in CONDITION_KEYWORDS if k in params), None)
    if key is None:
        raise ValueError(f"A {type(model).__name__} generates without a condition: drop --condition.")
    return {key: condition}


def generate_kwargs(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``model.generate(args.n_obs, **kwargs)`` for the parsed flags.

    ``--condition`` goes through :func:`condition_kwarg` (one value as a string, several as a list);
    ``--modality`` goes to a model whose ``generate`` takes it.

    Examples
    --------
    >>> cells = model.generate(args.n_obs, **generate_kwargs(model, args))  # doctest: +SKIP
    """
    params = inspect.signature(model.generate).parameters
    condition = args.condition
    if not condition:
        key = next((k for k in CONDITION_KEYWORDS if k in params), None)
        if key is not None and params[key].default is inspect.Parameter.empty:
            modality = " (and --modality sc|bulk)" if "modality" in params else ""
            raise ValueError(f"{args.model_dir} holds a {type(model).__name__}, which generates one condition at "
                             f"a time: pass --condition GROUP{modality}.")
        condition = None
    elif len(condition) == 1:
        condition = condition[0]
    kwargs = {**condition_kwarg(model, condition), "seed": args.seed}
    if "modality" in params:
        kwargs["modality"] = args.modality
    return kwargs


def generate(args: argparse.Namespace) -> None:
    """``scsynth generate``: cells (samples, trajectories) from a saved model to an .h5ad."""
    check_out_file(args.output, args.overwrite)
    model = load_any(args.model_dir)
    if "generate" not in getattr(model, "jobs", ()):
        raise ValueError(f"{args.model_dir} holds a {type(model).__name__}, which cannot generate.")
    cells = model.generate(args.n_obs, **generate_kwargs(model, args))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cells.write_h5ad(args.output)
    what = "samples" if "modality" in cells.obs else "cells"  # RNAGAN's pseudo-samples say their modality
    print(f"Wrote {cells.n_obs} generated {what} x {cells.n_vars} genes to {args.output}")


def stratify(args: argparse.Namespace) -> None:
    """``scsynth stratify``: each sample's group, by a saved model that can stratify (RNAGAN)."""
    check_out_file(args.output, args.overwrite)
    model = load_any(args.model_dir)
    if not hasattr(model, "stratify"):
        raise ValueError(f"{args.model_dir} holds a {type(model).__name__}, which cannot stratify; train an RNAGAN.")
    adata = read_h5ad(args.input)
    references = args.references
    if references is not None and references.endswith(".h5ad"):
        references = read_h5ad(references)
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
    # the model's label column: `labels_key` (the new name) or RNAGAN's `groupby` before it
    truth = args.groupby or getattr(model, "labels_key", None) or getattr(model, "groupby", None)
    if isinstance(references, str) or truth not in adata.obs:
        truth = None
    if truth is not None:
        accuracy = (adata.obs[args.key_added].astype(str) == adata.obs[truth].astype(str)).mean()
        print(f"Agreement with obs[{truth!r}]: {accuracy:.3f}")
    print(f"Wrote obs[{args.key_added!r}] and obsm[{args.key_added + '_scores'!r}] to {args.output}")


def parse_assignments(items: Sequence[str] | None, flag: str) -> dict[str, float]:
    """``["SPI1=2"]`` -> ``{"SPI1": 2.0}`` (``--overexpress``, ``--set``).

    Examples
    --------
    >>> parse_assignments(["SPI1=2", "GATA1=0.5"], "--overexpress")
    {'SPI1': 2.0, 'GATA1': 0.5}
    """
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


def perturb(args: argparse.Namespace) -> None:
    """``scsynth perturb``: paired control and perturbed cells from a model that can perturb (GRouNdGAN)."""
    check_out_file(args.output, args.overwrite)
    model = load_any(args.model_dir)
    if "perturb" not in getattr(model, "jobs", ()):
        raise ValueError(f"{args.model_dir} holds a {type(model).__name__}, which cannot perturb; train a GRouNdGAN.")
    cells = model.perturb(knockout=args.knockout, overexpress=parse_assignments(args.overexpress, "--overexpress"),
                          set_to=parse_assignments(args.set_to, "--set"), n_obs=args.n_obs, seed=args.seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cells.write_h5ad(args.output)
    effects = cells.uns["perturbation"]["effects"]
    top = effects.loc[~effects["perturbed"]].sort_values("pval_pre_lsn").head(10)
    print(f"{cells.uns['perturbation']['name']}: {int((effects['fdr_pre_lsn'] < 0.05).sum())} genes change "
          f"(FDR < 0.05, before normalisation); top: {', '.join(top.index)}")
    print(f"Wrote {cells.n_obs} paired cells ({args.n_obs} control + {args.n_obs} perturbed) to {args.output}")


def upgrade(args: argparse.Namespace) -> None:
    """``scsynth upgrade``: re-save a scsynth 0.1 model directory (a pickle) as tensors and JSON."""
    from ..model._save_load import LEGACY_MODEL_FILE, WEIGHTS_FILE

    path = Path(args.model_dir)
    if (path / WEIGHTS_FILE).is_file():
        print(f"{path} is already in the current format (tensors and JSON); nothing to do.")
        return
    if not (path / LEGACY_MODEL_FILE).is_file():
        raise ValueError(f"{path} holds no scsynth model ({LEGACY_MODEL_FILE} is missing).")
    model = load_any(args.model_dir, trust=True)
    model.save(path, overwrite=True, save_anndata=model.adata is not None)
    print(f"Converted {path} ({type(model).__name__}) to the current format: {LEGACY_MODEL_FILE} (a pickle) was "
          f"replaced by {WEIGHTS_FILE} and JSON.")
