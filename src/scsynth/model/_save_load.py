"""Atomic save and data-optional load for scsynth models (scvi-tools' ``model.pt`` format)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODEL_FILE = "model.pt"
ADATA_FILE = "adata.h5ad"
MANIFEST_FILE = "scsynth.json"


def saved_attributes(model: Any) -> dict[str, Any]:
    """Public attributes whose names end in ``_``: scvi-tools' convention for what a model saves."""
    return {n: v for n, v in vars(model).items() if n.endswith("_") and not n.startswith("_")}


def write_model_dir(model: Any, dir_path: str | os.PathLike, *, overwrite: bool, save_anndata: bool) -> Path:
    """Write ``model.pt`` (+ ``adata.h5ad``) into a temporary directory, then move it into place.

    A failure at any point leaves an existing ``dir_path`` untouched.
    """
    target = Path(dir_path).resolve()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.")
    if save_anndata and model.adata is None:
        raise ValueError("This model was loaded without its AnnData, so save_anndata=True has nothing to save.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        torch.save(
            {
                "model_state_dict": model.module.state_dict(),
                "var_names": np.asarray(model.var_names_, dtype=str),
                "attr_dict": saved_attributes(model),
            },
            tmp / MODEL_FILE,
        )
        if save_anndata:
            model.adata.write_h5ad(tmp / ADATA_FILE)
        from .. import __version__

        manifest = {"model": type(model).__name__, "scsynth_version": __version__, "n_vars": len(model.var_names_)}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "previous")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_model_dir(dir_path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read ``model.pt`` with a clear error when the directory is not a saved model."""
    path = Path(dir_path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory; pass the directory written by model.save().")
    model_file = path / MODEL_FILE
    if not model_file.is_file():
        raise ValueError(
            f"{path} is not a saved scsynth/scvi-tools model: {MODEL_FILE} is missing "
            f"(found: {sorted(p.name for p in path.iterdir())[:10]})."
        )
    try:
        saved = torch.load(model_file, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise ValueError(f"{model_file} could not be read as a saved model: {err}") from err
    if not isinstance(saved, dict) or not {"model_state_dict", "attr_dict"} <= set(saved):
        raise ValueError(f"{model_file} does not hold a saved model (unexpected content).")
    return saved
