"""Atomic, code-free save and data-optional load of scsynth models.

A model directory holds only tensors and JSON:

- ``model.safetensors``: the module's weights;
- ``attributes.json`` + ``arrays.safetensors``: the model's saved attributes (registry, init parameters,
  history, genes, GRN, blueprint, gene sets...), numeric arrays in the safetensors file (see ``_serialize``);
- ``scsynth.json``: the manifest (model class, scsynth version, format, the files the model owns);
- ``adata.h5ad`` with ``save_anndata=True``.

Loading reads no pickle. Models saved by scsynth 0.1 (a pickled ``model.pt``) load only with ``trust=True``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file as load_weights
from safetensors.torch import save_file as save_weights

from ..data._matrix import is_backed
from ._serialize import decode, encode

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
ATTRIBUTES_FILE = "attributes.json"
ARRAYS_FILE = "arrays.safetensors"
ADATA_FILE = "adata.h5ad"
MANIFEST_FILE = "scsynth.json"
LEGACY_MODEL_FILE = "model.pt"
FORMAT_VERSION = 2
#: Every file a model directory may own; overwrite replaces or removes these and nothing else.
OWNED_FILES = (WEIGHTS_FILE, ATTRIBUTES_FILE, ARRAYS_FILE, ADATA_FILE, MANIFEST_FILE, LEGACY_MODEL_FILE)


def saved_attributes(model: Any) -> dict[str, Any]:
    """Public attributes whose names end in ``_``: scvi-tools' convention for what a model saves."""
    return {n: v for n, v in vars(model).items() if n.endswith("_") and not n.startswith("_")}


# -- save ------------------------------------------------------------------------------------------
def write_model_dir(model: Any, dir_path: str | os.PathLike, *, overwrite: bool, save_anndata: bool) -> Path:
    """Write the model into a temporary directory next to ``dir_path``, then move it into place.

    A new directory appears in one rename. An existing model directory is replaced by an atomic exchange
    of the two directories when it holds only the model's files; when it also holds other files, only the
    model's files are replaced (the manifest last) and the others are left alone. A directory that holds no
    scsynth model is refused. A failure at any point leaves ``dir_path`` as it was and no temporary files.
    """
    target = Path(dir_path).resolve()
    foreign = _check_target(target, overwrite)
    if save_anndata and model.adata is None:
        raise ValueError("This model was loaded without its AnnData, so save_anndata=True has nothing to save.")
    if save_anndata and is_backed(model.adata):
        where = getattr(model.adata, "filename", None) or "several files (an AnnCollection)"
        raise ValueError(f"This model's AnnData is on disk ({where}): save_anndata=True would copy all of it into "
                         "the model directory and load it into memory later. Save without it and load with "
                         "adata=anndata.read_h5ad(path, backed='r').")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        _normal_permissions(tmp)
        _write_files(model, tmp, save_anndata=save_anndata)
        if not target.exists():
            os.rename(tmp, target)
        elif foreign or _is_cwd_or_above(target):
            _replace_owned_files(tmp, target)
        else:
            _exchange(tmp, target)  # tmp now holds the previous model, removed below
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _check_target(target: Path, overwrite: bool) -> list[str]:
    """Raise unless ``target`` may be written; return the names of files there that the model does not own."""
    if not target.exists():
        return []
    if not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory; choose another path for the model.")
    if not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace the model saved there.")
    names = sorted(p.name for p in target.iterdir())
    if not names:
        return []
    if MANIFEST_FILE not in names and LEGACY_MODEL_FILE not in names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise FileExistsError(
            f"{target} holds no scsynth model (no {MANIFEST_FILE}; it holds {shown}), so overwrite=True will not "
            "replace it. Choose a new directory for the model."
        )
    return [n for n in names if n not in OWNED_FILES]


def _write_files(model: Any, out: Path, *, save_anndata: bool) -> None:
    from .. import __version__

    state, shared = _unshared_state(model.module.state_dict())
    save_weights(state, str(out / WEIGHTS_FILE))
    arrays: dict[str, np.ndarray] = {}
    attributes = {name: encode(value, arrays, name) for name, value in saved_attributes(model).items()}
    payload = {"var_names": [str(g) for g in model.var_names_], "shared_weights": shared, "attributes": attributes}
    (out / ATTRIBUTES_FILE).write_text(json.dumps(payload, allow_nan=False))
    save_arrays(arrays, str(out / ARRAYS_FILE))
    files = [WEIGHTS_FILE, ATTRIBUTES_FILE, ARRAYS_FILE]
    if save_anndata:
        model.adata.write_h5ad(out / ADATA_FILE)
        files.append(ADATA_FILE)
    manifest = {"model": type(model).__name__, "scsynth_version": __version__, "format": FORMAT_VERSION,
                "n_vars": len(model.var_names_), "files": files}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def _unshared_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict with each tensor stored once, plus ``{alias: stored name}`` for tensors shared by
    several submodules (RNAGAN's pathway layer belongs to both of its networks)."""
    kept: dict[tuple, str] = {}
    out, shared = {}, {}
    for name, tensor in state.items():
        tensor = tensor.detach()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
               tuple(tensor.stride()), tensor.dtype) if tensor.numel() else None
        if key is not None and key in kept:
            shared[name] = kept[key]
            continue
        if key is not None:
            kept[key] = name
        out[name] = tensor.contiguous().cpu()
    return out, shared


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (Linux ``renameat2``); elsewhere two renames, undone on failure."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        rename_exchange, at_fdcwd = 2, -100
        if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
    except (OSError, AttributeError):  # no renameat2 (not glibc / not Linux)
        pass
    backup = a.with_name(a.name + "-previous")
    os.rename(b, backup)
    try:
        os.rename(a, b)
    except BaseException:
        os.rename(backup, b)
        raise
    os.rename(backup, a)


def _replace_owned_files(new: Path, target: Path) -> None:
    """Replace the model's files in ``target`` one by one (each atomically), the manifest last."""
    (target / MANIFEST_FILE).unlink(missing_ok=True)  # an interrupted replacement is then seen as incomplete
    written = sorted(p.name for p in new.iterdir() if p.name != MANIFEST_FILE)
    for name in written:
        os.replace(new / name, target / name)
    for name in OWNED_FILES:
        if name not in written and name != MANIFEST_FILE:
            (target / name).unlink(missing_ok=True)
    os.replace(new / MANIFEST_FILE, target / MANIFEST_FILE)


def _is_cwd_or_above(path: Path) -> bool:
    cwd = Path.cwd().resolve()
    resolved = path.resolve()
    return resolved == cwd or resolved in cwd.parents


def _normal_permissions(path: Path) -> None:
    """``mkdtemp`` makes 0700 directories; a saved model gets the permissions of any new directory."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporary directories left by saves to ``target`` whose process is gone (killed saves)."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        pid = stale.name[len(f".{target.name}.tmp-"):].split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not saving this model now: an earlier, interrupted save left it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- load ------------------------------------------------------------------------------------------
def read_model_dir(
    dir_path: str | os.PathLike, *, map_location: str | torch.device = "cpu", trust: bool = False
) -> dict[str, Any]:
    """Read a model directory into ``{"model_state_dict", "var_names", "attr_dict", "manifest"}``.

    ``trust=True`` also reads the pickled ``model.pt`` of scsynth 0.1, which can run code: only for files
    you made yourself or otherwise trust.
    """
    path = Path(dir_path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory; pass the directory written by model.save().")
    names = sorted(p.name for p in path.iterdir())
    manifest = _read_manifest(path, names)
    if WEIGHTS_FILE in names:
        return _read_current(path, names, manifest, map_location)
    if LEGACY_MODEL_FILE in names:
        return {**_read_legacy(path / LEGACY_MODEL_FILE, map_location, trust), "manifest": manifest}
    raise ValueError(
        f"{path} is not a saved scsynth model: {WEIGHTS_FILE} is missing (found: {names[:10]})."
        + (" The manifest is missing too: a save into it was interrupted; save the model again."
           if not manifest and any(n in names for n in OWNED_FILES) else "")
    )


def _read_manifest(path: Path, names: list[str]) -> dict[str, Any]:
    if MANIFEST_FILE not in names:
        return {}
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path / MANIFEST_FILE} is not valid JSON ({err}); the model directory is damaged.") from err
    if not isinstance(manifest, dict):
        raise ValueError(f"{path / MANIFEST_FILE} does not describe a model; the model directory is damaged.")
    return manifest


def _read_current(path: Path, names: list[str], manifest: dict, map_location) -> dict[str, Any]:
    if not manifest:
        raise ValueError(f"{path} has no {MANIFEST_FILE}: a save into it was interrupted; save the model again.")
    for name in (ATTRIBUTES_FILE, ARRAYS_FILE):
        if name not in names:
            raise ValueError(f"{path} is an incomplete saved model: {name} is missing.")
    try:
        state = load_weights(str(path / WEIGHTS_FILE), device=str(map_location))
        arrays = load_arrays(str(path / ARRAYS_FILE))
        payload = json.loads((path / ATTRIBUTES_FILE).read_text(encoding="utf-8"))
        attributes = {k: decode(v, arrays) for k, v in payload["attributes"].items()}
        for alias, name in payload.get("shared_weights", {}).items():
            state[alias] = state[name]
        var_names = np.asarray(payload["var_names"], dtype=str)
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - any damage means the same thing to the user
        raise ValueError(f"{path} could not be read as a saved model ({type(err).__name__}: {err}).") from err
    return {"model_state_dict": state, "var_names": var_names, "attr_dict": attributes, "manifest": manifest}


def _read_legacy(model_file: Path, map_location, trust: bool) -> dict[str, Any]:
    if not zipfile.is_zipfile(model_file):  # torch.save writes a zip archive
        raise ValueError(f"{model_file} could not be read as a saved model: it is not a torch.save archive.")
    try:
        saved = torch.load(model_file, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001
        if not trust:
            raise ValueError(
                f"{model_file} is a pickled model file (scsynth 0.1 format) holding Python objects, which can run "
                "code when loaded, so it is not read by default. If you made it yourself, load it once with "
                "load(dir_path, trust=True) (or `scsynth upgrade DIR`) and save it again: the new format holds "
                f"only tensors and JSON. ({type(err).__name__})"
            ) from err
        try:
            saved = torch.load(model_file, map_location=map_location, weights_only=False)
        except Exception as err2:  # noqa: BLE001
            raise ValueError(f"{model_file} could not be read as a saved model: {err2}") from err2
        logger.warning("Loaded the pickled %s with trust=True; save the model again to convert it.", model_file)
    if not isinstance(saved, dict) or not {"model_state_dict", "attr_dict"} <= set(saved):
        raise ValueError(f"{model_file} does not hold a saved model (unexpected content).")
    return saved
