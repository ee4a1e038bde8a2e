"""Reading GeneSys' ``annotations.txt`` (barcode, label, time) and attaching it to the expression matrix."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from ._time_steps import TIME_HINT, describe_steps, time_steps
from ._validate import examples

_ANNOTATION_COLUMNS = ("barcode", "label", "time")


def _read_annotation_table(path: Path) -> pd.DataFrame:
    """Read annotations.txt as text, indexed by barcode, with clear errors for GeneSys' format."""
    if not path.exists():
        raise FileNotFoundError(
            f"Annotation file {str(path)!r} not found. Pass the path to GeneSys' annotations.txt "
            "(tab-separated, header 'barcode<TAB>label<TAB>time')."
        )
    try:
        # dtype=str and no default NA strings: labels such as "NA" or "3" stay as written
        anno = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ValueError(f"Annotation file {str(path)!r} is empty.") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as err:  # a binary or non-UTF-8 file
        raise ValueError(
            f"Annotation file {str(path)!r} could not be read as a UTF-8 tab-separated table ({err})."
        ) from err
    anno.columns = [str(c).strip() for c in anno.columns]
    absent = [c for c in _ANNOTATION_COLUMNS if c not in anno.columns]
    if absent:
        raise ValueError(
            f"Annotation file {str(path)!r} lacks the column(s) {examples(absent)}: it must be "
            "tab-separated with the header line 'barcode<TAB>label<TAB>time' (found columns "
            f"{examples(anno.columns, 10)})."
        )
    for col in ("barcode", "label"):
        anno[col] = anno[col].str.strip()
        empty = anno[col].isna() | (anno[col] == "")
        if empty.any():
            lines = (np.flatnonzero(empty.to_numpy()) + 2).tolist()  # +1 header, +1 one-based
            raise ValueError(
                f"Annotation file {str(path)!r} has {int(empty.sum())} rows without a {col} (lines "
                f"{examples(lines)}); every row needs a barcode, a label and a time."
            )
    dup = anno["barcode"][anno["barcode"].duplicated()].unique()
    if len(dup):
        raise ValueError(
            f"Annotation file {str(path)!r} lists {len(dup)} barcodes more than once ({examples(dup)}); "
            "each cell needs exactly one label and time."
        )
    return anno.set_index("barcode")


def _read_10x(folder: Path) -> AnnData:
    """Read a 10x matrix directory with gene symbols as names, or gene ids when genes.tsv has one column."""
    import scanpy as sc

    try:
        adata = sc.read_10x_mtx(folder, var_names="gene_symbols")
    except (KeyError, IndexError):
        # scanpy reads genes.tsv's second column in both modes, so a one-column file needs a manual read
        adata = _read_10x_one_column(folder)
    adata.var_names_make_unique()
    from scipy import sparse

    adata.X = sparse.csr_matrix(adata.X)  # models read rows: CSR is the fast layout
    return adata


def _read_10x_one_column(folder: Path) -> AnnData:
    from scipy import io, sparse

    legacy = (folder / "genes.tsv").is_file()
    gz = "" if legacy else ".gz"
    x = sparse.csr_matrix(io.mmread(folder / f"matrix.mtx{gz}").T)
    genes = pd.read_csv(
        folder / ("genes.tsv" if legacy else "features.tsv.gz"), header=None, sep="\t", dtype=str
    )
    barcodes = pd.read_csv(folder / f"barcodes.tsv{gz}", header=None, sep="\t", dtype=str)
    adata = AnnData(x.astype(np.float32))
    adata.var_names = genes[0].to_numpy()
    adata.obs_names = barcodes[0].to_numpy()
    return adata


def _load_matrix(matrix: AnnData | str | os.PathLike | None, annotations: Path) -> tuple[AnnData, str]:
    """The expression matrix (a copy, never the user's object) and how to call it in messages."""
    if matrix is None:
        folder = annotations.parent
        if not any((folder / n).is_file() for n in ("matrix.mtx", "matrix.mtx.gz")):
            raise ValueError(
                f"No matrix given and {str(folder)!r} (the annotation file's folder) holds no "
                "matrix.mtx(.gz); pass `matrix=` an AnnData, an .h5ad file or a 10x matrix directory."
            )
        matrix = folder
    if isinstance(matrix, AnnData):
        return matrix.copy(), "the AnnData"
    if not isinstance(matrix, str | os.PathLike):
        raise TypeError(
            "matrix must be an AnnData, a path to an .h5ad file or a 10x matrix directory, got "
            f"{type(matrix).__name__}."
        )
    path = Path(matrix)
    if not path.exists():
        raise FileNotFoundError(
            f"Matrix {str(path)!r} not found; pass an .h5ad file or a 10x matrix directory."
        )
    if path.is_dir():
        return _read_10x(path), f"the 10x matrix in {str(path)!r}"
    if path.suffix.lower() == ".h5ad":
        import anndata

        try:
            return anndata.read_h5ad(path), f"{str(path)!r}"
        except Exception as err:  # noqa: BLE001 - h5py raises OSError (and others) for a damaged file
            raise ValueError(f"Matrix {str(path)!r} could not be read as an .h5ad file ({err}).") from err
    raise ValueError(
        f"Cannot read matrix {str(path)!r}: pass an .h5ad file, a 10x matrix directory (matrix.mtx, "
        "genes.tsv, barcodes.tsv) or an AnnData."
    )


def _check_start(times: np.ndarray, path: Path) -> None:
    """GeneSys' time steps start at 1; gaps are allowed (neighbours fill them) but usually a mistake."""
    steps = np.unique(times)
    if len(steps) and steps[0] != 1:
        raise ValueError(
            f"The 'time' column of {str(path)!r} starts at {steps[0]}, not 1. {TIME_HINT} Renumber them, "
            "e.g. `pd.factorize(time, sort=True)[0] + 1`."
        )
    gaps = sorted(set(range(1, int(steps[-1]) + 1)) - set(steps.tolist())) if len(steps) else []
    if gaps:
        warnings.warn(
            f"The 'time' column of {str(path)!r} has no cells at {describe_steps(gaps)} (it runs "
            f"1..{steps[-1]}); "
            "blueprint entries at those steps can only use neighbouring steps (fallback='neighbors').",
            UserWarning,
            stacklevel=3,
        )


def _align(anno: pd.DataFrame, adata: AnnData, path: Path, source: str) -> pd.DataFrame:
    """Annotation rows in the matrix's cell order, matched by barcode (GeneSys matched labels by position)."""
    obs_names = pd.Index(adata.obs_names)
    if obs_names.has_duplicates:
        raise ValueError(
            f"{source} has duplicated cell barcodes "
            f"({examples(obs_names[obs_names.duplicated()].unique())}); annotations are matched to cells by "
            "barcode, so barcodes must be unique."
        )
    unannotated = obs_names[~obs_names.isin(anno.index)]
    if len(unannotated):
        hint = (
            " No barcode matches at all: check that both use the same barcode format (e.g. a '-1' suffix)."
            if len(unannotated) == len(obs_names)
            else ""
        )
        raise ValueError(
            f"{len(unannotated)} of {adata.n_obs} cells of {source} have no row in {str(path)!r} "
            f"({examples(unannotated)}); annotations are matched to cells by barcode.{hint} Annotate them, "
            "or subset the matrix to the annotated cells first, e.g. `adata = "
            "adata[adata.obs_names.isin(annotations['barcode'])].copy()`."
        )
    extra = anno.index[~anno.index.isin(obs_names)]
    if len(extra):
        warnings.warn(
            f"{len(extra)} barcodes of {str(path)!r} are not cells of {source} ({examples(extra)}); their "
            "annotations are ignored.",
            UserWarning,
            stacklevel=3,
        )
    return anno.reindex(obs_names)


def read_genesys_annotations(
    path: str | os.PathLike,
    matrix: AnnData | str | os.PathLike | None = None,
    *,
    label_key: str = "label",
    time_key: str = "time",
) -> AnnData:
    """Read GeneSys' ``annotations.txt`` and attach it to the expression matrix, matching cells by barcode.

    Parameters
    ----------
    path
        The annotation file: tab-separated, header ``barcode``, ``label``, ``time`` (GeneSys' format);
        further columns are kept in ``obs`` as text. ``time`` must hold whole numbers starting at 1
        (``6.0`` becomes ``6``); see :func:`as_time_steps`.
    matrix
        An AnnData (copied; yours is never modified), a path to an ``.h5ad`` file or a 10x matrix
        directory (``matrix.mtx``, ``genes.tsv``, ``barcodes.tsv``; gene symbols as names, or gene ids
        when ``genes.tsv`` has one column; names made unique). Default: the annotation file's folder,
        when it holds ``matrix.mtx`` or ``matrix.mtx.gz``.
    label_key
        ``obs`` column for the labels (string categorical).
    time_key
        ``obs`` column for the time steps (int64).

    Returns
    -------
    A new AnnData in the matrix's cell order, with ``obs[label_key]`` and ``obs[time_key]``.

    Raises
    ------
    ValueError
        For a missing header column, rows without barcode or label, duplicated barcodes, invalid times
        (non-numeric, non-integer, below 1 or not starting at 1), or cells of the matrix without an
        annotation (subset the matrix first). Annotated barcodes absent from the matrix only warn, and
        so do time steps without cells.

    Examples
    --------
    >>> import anndata, numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> text = "barcode\\tlabel\\ttime\\nc2\\tCortex\\t2.0\\nc1\\tQC\\t1.0\\n"
    >>> _ = (folder / "annotations.txt").write_text(text)
    >>> adata = anndata.AnnData(np.ones((2, 3), dtype=np.float32), obs=pd.DataFrame(index=["c1", "c2"]))
    >>> out = read_genesys_annotations(folder / "annotations.txt", adata)
    >>> out.obs["label"].tolist(), out.obs["time"].tolist()
    (['QC', 'Cortex'], [1, 2])
    """
    if label_key == time_key:
        raise ValueError(f"label_key and time_key must differ, both are {label_key!r}.")
    path = Path(path)
    anno = _read_annotation_table(path)
    extras = [c for c in anno.columns if c not in ("label", "time")]
    clash = [k for k in (label_key, time_key) if k in extras]
    if clash:
        raise ValueError(
            f"Annotation file {str(path)!r} already has a column {clash[0]!r}; choose another "
            "label_key/time_key."
        )
    times = pd.Series(
        time_steps(anno["time"], f"The 'time' column of {str(path)!r}"), index=anno.index, dtype=np.int64
    )
    _check_start(times.to_numpy(), path)
    adata, source = _load_matrix(matrix, path)
    aligned = _align(anno, adata, path, source)
    replaced = [c for c in [label_key, time_key, *extras] if c in adata.obs]
    if replaced:
        warnings.warn(
            f"obs columns {examples(replaced)} of {source} are replaced by the annotations of "
            f"{str(path)!r}.",
            UserWarning,
            stacklevel=2,
        )
    adata.obs[label_key] = pd.Categorical(aligned["label"].to_numpy(dtype=object).astype(str))
    adata.obs[time_key] = times.reindex(aligned.index).to_numpy(dtype=np.int64)
    for col in extras:
        adata.obs[col] = aligned[col].to_numpy(dtype=object)
    return adata
