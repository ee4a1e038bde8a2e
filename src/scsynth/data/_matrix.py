"""Reading, checking and normalising expression matrices: one implementation for models, metrics and plots."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

Matrix = np.ndarray | sparse.spmatrix | sparse.sparray


def get_matrix(adata: AnnData, layer: str | None = None, *, name: str = "adata") -> Matrix:
    """``adata.X`` or ``adata.layers[layer]`` as stored (no copy), with clear errors.

    Parameters
    ----------
    adata
        Annotated data matrix.
    layer
        Layer to read; ``.X`` when ``None``.
    name
        How ``adata`` is called in error messages.

    Examples
    --------
    >>> import anndata, numpy as np
    >>> get_matrix(anndata.AnnData(np.ones((2, 3)))).shape
    (2, 3)
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"`{name}` must be an AnnData, got {type(adata).__name__}.")
    if layer is None:
        if adata.X is None:
            raise ValueError(f"`{name}.X` is empty; pass `layer=` naming the layer that holds the expression values.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"Layer {layer!r} is not in `{name}.layers` (available: {sorted(adata.layers.keys()) or 'none'}); "
            "pass `layer=None` to use `.X`."
        )
    return adata.layers[layer]


def check_values(x: Matrix, where: str) -> None:
    """Raise unless ``x`` holds finite, non-negative real numbers (dense or sparse).

    Examples
    --------
    >>> import numpy as np
    >>> check_values(np.array([[0.0, 2.0]]), "X")
    """
    values = x.data if sparse.issparse(x) else np.asarray(x)
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise TypeError(f"{where} has dtype {values.dtype}; expected real-valued expression.")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{where} contains {int((~finite).sum())} NaN or infinite values; remove or impute them first.")
    if values.size and (values < 0).any():
        raise ValueError(
            f"{where} contains negative values (min {values.min():.3g}); pass counts or non-negative normalised "
            "expression, not scaled or centred data."
        )


def normalize_total(x: Matrix, library_size: float) -> Matrix:
    """Scale every cell (row) to sum to ``library_size``; cells summing to 0 stay 0.

    Parameters
    ----------
    x
        Cells x genes, non-negative, dense or sparse.
    library_size
        Target total per cell.

    Returns
    -------
    A new float64 matrix of the same kind (CSR when sparse).

    Examples
    --------
    >>> import numpy as np
    >>> normalize_total(np.array([[1.0, 3.0], [0.0, 0.0]]), 100)
    array([[25., 75.],
           [ 0.,  0.]])
    """
    totals = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(library_size, totals, out=np.zeros_like(totals), where=totals > 0)
    if sparse.issparse(x):
        out = sparse.csr_matrix(x, dtype=np.float64, copy=True)
        out.data *= np.repeat(scale, np.diff(out.indptr))
        return out
    return np.asarray(x, dtype=np.float64) * scale[:, None]


# -- out-of-core access: backed AnnData (``read_h5ad(path, backed="r")``) and AnnCollection ------------------------

#: Rows read at a time by the whole-matrix passes (checks, library sizes) over backed data.
CHUNK_ROWS = 50_000


def is_backed(adata) -> bool:
    """Whether ``adata``'s expression lives on disk: a backed AnnData or an AnnCollection (wrapped or not)."""
    from anndata.experimental import AnnCollection

    return isinstance(adata, AnnCollection | CollectionData) or bool(getattr(adata, "isbacked", False))


def check_backed(adata, layer: str | None = None, *, name: str = "adata") -> None:
    """Raise, naming what to do, for what training from disk cannot do (no-op for in-memory AnnData).

    Raises
    ------
    ValueError
        ``adata`` is a view of a backed AnnData (its subset would be read into memory at every access), or
        its backed ``.X`` is stored column-wise (CSC: every batch would read the whole file).
    KeyError
        ``layer`` is not in the file (a backed AnnData reads only what the ``.h5ad`` holds).
    """
    if not is_backed(adata):
        return
    if isinstance(adata, AnnData) and adata.is_view:
        raise ValueError(
            f"`{name}` is a view of a backed AnnData; training from disk needs the whole file. Pass "
            f"anndata.read_h5ad(path, backed='r') itself (subset cells with the split instead), or load the "
            f"subset with `{name}[...].to_memory()`."
        )
    if layer is not None and layer not in _layer_keys(adata):
        raise KeyError(
            f"Layer {layer!r} is not in the file behind `{name}` (layers: {sorted(_layer_keys(adata)) or 'none'}); "
            "write it to the .h5ad first, or pass `layer=None` to train on the backed `.X`."
        )
    if layer is None and isinstance(adata, AnnData) and getattr(adata.X, "format", None) == "csc":
        raise ValueError(
            f"`{name}.X` is stored as CSC on disk, so reading cells would read the whole file; rewrite it as "
            "CSR (e.g. adata.to_memory() in chunks, or anndata.experimental.concat_on_disk), then train backed."
        )


def _layer_keys(adata) -> list[str]:
    if isinstance(adata, CollectionData):
        return list(adata.collection[:1].layers.keys())
    return list(adata.layers.keys())


def read_rows(adata, layer: str | None, index) -> Matrix:
    """Rows ``index`` (a slice or integer array, repeats and any order allowed) of ``.X`` / ``layer``, in memory.

    In-memory data is indexed as stored (``x[index]``). Backed data is read once per distinct row, in
    increasing order (the order h5py reads fastest), then put in the requested order, so the result equals
    the in-memory one.
    """
    if isinstance(adata, CollectionData):
        adata = adata.collection
    from anndata.experimental import AnnCollection

    if isinstance(adata, AnnCollection):
        read = lambda idx: _collection_rows(adata, layer, idx)  # noqa: E731
    else:
        x = get_matrix(adata, layer)
        if not is_backed(adata) or isinstance(x, np.ndarray | sparse.spmatrix | sparse.sparray):
            return x[index]
        read = x.__getitem__
    if isinstance(index, slice):
        return read(index)
    unique, inverse = np.unique(np.asarray(index, dtype=np.int64), return_inverse=True)
    rows = read(unique)
    return rows if len(unique) == len(inverse) and (inverse == np.arange(len(inverse))).all() else rows[inverse]


def _collection_rows(collection, layer: str | None, index) -> Matrix:
    view = collection[index]
    return view.X if layer is None else view.layers[layer]


def iter_row_chunks(adata, layer: str | None = None, *, chunk_size: int = CHUNK_ROWS):
    """Yield ``(start, rows)``: ``.X`` / ``layer`` in blocks of ``chunk_size`` cells, each in memory.

    In-memory data is yielded whole, as stored (one block, no copy), so a pass over the chunks computes
    exactly what a pass over the matrix did; backed data is read ``chunk_size`` rows at a time.
    """
    if not is_backed(adata):
        yield 0, get_matrix(adata, layer)
        return
    n_obs = adata.n_obs if not isinstance(adata, CollectionData) else adata.collection.n_obs
    for start in range(0, n_obs, chunk_size):
        yield start, read_rows(adata, layer, slice(start, min(start + chunk_size, n_obs)))


def row_sums(adata, layer: str | None = None, *, chunk_size: int = CHUNK_ROWS) -> np.ndarray:
    """Total of every cell (row) of ``.X`` / ``layer``, one chunk of rows at a time for backed data."""
    return np.concatenate([np.asarray(rows.sum(axis=1)).ravel()
                           for _, rows in iter_row_chunks(adata, layer, chunk_size=chunk_size)])


class _CollectionMatrix(sparse.csr_matrix):
    """``.X`` of an AnnCollection as scvi-tools reads it: ``m[idx]`` reads those cells from the files."""

    def __init__(self, collection) -> None:  # no super().__init__: holds no values, only reads them on demand
        self.collection = collection
        self._shape = (collection.n_obs, collection.n_vars)

    def __getitem__(self, idx):
        x = self.collection[idx].X
        return x if sparse.issparse(x) else sparse.csr_matrix(x)

    def getformat(self) -> str:
        return "csr"

    @property
    def data(self):  # what scvi-tools' count check samples
        return self[: min(64, self.collection.n_obs)].data

    def __str__(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        return f"CollectionMatrix({self.collection.n_obs} x {self.collection.n_vars})"


def _collection_adapter_cls():
    from scvi.dataloaders import CollectionAdapter

    class _Adapter(CollectionAdapter):
        SPECIAL_ATTRS = [*CollectionAdapter.SPECIAL_ATTRS, "X", "is_view"]

        def __init__(self, collection) -> None:
            super().__init__(collection)
            self.uns = {}  # scvi's adapter shares one class-level dict: two collections would get one registry

        @property
        def X(self):
            return _CollectionMatrix(self.collection)

        @property
        def n_obs(self) -> int:
            return self.collection.n_obs

        @property
        def n_vars(self) -> int:
            return self.collection.n_vars

    return _Adapter


class CollectionData:
    """Marker base of the AnnCollection wrapper (see :func:`as_anndata`)."""


def as_anndata(adata):
    """``adata`` itself, or for an :class:`anndata.experimental.AnnCollection` the AnnData-like wrapper models train on.

    The wrapper is scvi-tools' :class:`~scvi.dataloaders.CollectionAdapter` (plus ``.X``), made once per
    collection and kept on it, so ``Model.setup_anndata(collection)`` and ``Model(collection)`` share one
    registry. Cells are read from the collection's (backed) files batch by batch.
    """
    from anndata.experimental import AnnCollection

    if not isinstance(adata, AnnCollection):
        return adata
    adapter = getattr(adata, "_scsynth_adapter", None)
    if adapter is None:
        cls = type("CollectionAnnData", (_collection_adapter_cls(), CollectionData), {})
        adapter = cls(adata)
        adata._scsynth_adapter = adapter
    return adapter


class BackedRows:
    """Cells of a backed AnnData / AnnCollection read on demand: ``rows[index]`` is :func:`read_rows`.

    Stands where a model's training code held the in-memory matrix (``x[cells]``, ``x.sum(axis=1)``,
    ``x.shape``), so the same code trains from disk without ever holding all of ``.X``.
    """

    def __init__(self, adata, layer: str | None = None, *, chunk_size: int = CHUNK_ROWS) -> None:
        self.adata, self.layer, self.chunk_size = adata, layer, int(chunk_size)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.adata.n_obs), int(self.adata.n_vars))

    def __getitem__(self, index) -> Matrix:
        return read_rows(self.adata, self.layer, index)

    def sum(self, axis: int) -> np.ndarray:
        """Row totals (``axis=1``, as an ``(n_obs, 1)`` array) in one chunked pass."""
        if axis != 1:
            raise ValueError("BackedRows sums rows only (axis=1).")
        return row_sums(self.adata, self.layer, chunk_size=self.chunk_size)[:, None]
