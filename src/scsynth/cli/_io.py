"""Files in and out of the command line: output checks before any long work, readers that name a bad file."""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["check_out_dir", "check_out_file", "drop_empty", "is_count_data", "load_any", "read_h5ad", "reading",
           "setup"]


def check_out_dir(path: str, overwrite: bool, flag: str = "--out") -> None:
    """Refuse an existing ``--out`` before any long work: ``model.save`` would only fail after training.

    Examples
    --------
    >>> check_out_dir("new_model_dir", overwrite=False)  # doctest: +SKIP
    """
    from ..model._save_load import MANIFEST_FILE

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


def check_out_file(path: str, overwrite: bool, flag: str = "-o/--output") -> None:
    """Refuse an existing output file (or a directory) before loading the model or reading data.

    Examples
    --------
    >>> check_out_file("new.h5ad", overwrite=False)  # doctest: +SKIP
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a directory; pass a file path such as {out / 'out.h5ad'}.")
    if out.exists() and not overwrite:
        raise ValueError(
            f"{flag} {out} already exists; pass --overwrite to replace it, or choose another {flag}."
        )


def read_h5ad(path: str):
    """The AnnData in ``path``; a missing, MuData, damaged or empty file fails with one line naming it.

    Examples
    --------
    >>> adata = read_h5ad("cells.h5ad")  # doctest: +SKIP
    """
    import anndata

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p} is a directory; pass an .h5ad file.")
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist (expected an .h5ad file).")
    if p.suffix == ".h5mu":
        raise ValueError(f"{p} is a MuData file; this command takes one AnnData (.h5ad): write the modality you "
                         "want with mudata.read_h5mu(path)[name].write_h5ad(...).")
    return reading(p, anndata.read_h5ad, "an .h5ad")


def reading(path: Path, reader: Callable[[Path], Any], what: str) -> Any:
    """``reader(path)``; a corrupt, truncated or empty file fails with one error that names it.

    Examples
    --------
    >>> import mudata
    >>> mdata = reading(Path("both.h5mu"), mudata.read_h5mu, "an .h5mu")  # doctest: +SKIP
    """
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


def drop_empty(adata, layer: str | None, source: str = "the input"):
    """The CLI owns its copy of the data: it drops all-zero genes/cells (with a warning) instead of failing.

    NaN, infinite or negative values are an error, checked first: their sums are not "no expression".

    Examples
    --------
    >>> adata = drop_empty(read_h5ad("cells.h5ad"), None, "cells.h5ad")  # doctest: +SKIP
    """
    import numpy as np

    from ..data import check_values, get_matrix

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


def is_count_data(args: argparse.Namespace, *, detected: bool = True) -> bool | None:
    """``is_count_data`` for ``--normalized``: ``False`` with it, else detected (``None``), as in the API."""
    return False if args.normalized else None


def setup(cls: type, adata, args: argparse.Namespace, **kwargs: Any) -> None:
    """``cls.setup_anndata`` with ``--layer``/``--normalized``, naming the CLI's flag in the count-data error.

    Examples
    --------
    >>> setup(ScGAN, adata, args, labels_key="cell_type")  # doctest: +SKIP
    """
    try:
        cls.setup_anndata(adata, layer=args.layer, is_count_data=is_count_data(args), **kwargs)
    except ValueError as err:
        hint = " On the command line, add --normalized." if "is_count_data=False" in str(err) else ""
        raise ValueError(f"{err}{hint}") from err


def load_any(model_dir: str, *, trust: bool = False):
    """Load a saved model of whichever class wrote it (read from its ``scsynth.json``).

    Examples
    --------
    >>> model = load_any("my_model")  # doctest: +SKIP
    """
    from .. import model as models
    from ..model._save_load import MANIFEST_FILE

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
