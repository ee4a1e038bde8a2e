"""RNAGAN's inputs: constants, log-normalisation, reference-set draws and the MuData stack of ``setup_mudata``."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata import concat as ad_concat
from scipy import sparse

from ..data import check_obs_key, get_matrix, normalize_total
from ..data._matrix import CHUNK_ROWS, is_backed, read_rows, row_sums
from ._inputs import detect_count_data, genes_by_name

logger = logging.getLogger(__name__)

MODALITIES = ("sc", "bulk")
#: obs column of the AnnData that :meth:`RNAGAN.setup_mudata` builds from a MuData.
MUDATA_MODALITY_KEY = "modality"
#: Every sample is normalised to this total, then log1p transformed, before the networks see it.
NETWORK_LIBRARY_SIZE = 1e4
#: Default step budgets of :meth:`RNAGAN.train` (a budget that differs is "given": ignoring it warns).
DEFAULT_STEPS = {"sc": 2000, "bulk": 1000}
#: Episode accuracy (of a stage's kept weights) below which the discriminator counts as at chance. Chance is
#: 0.5 (half the episodes are true, half pair the references with another group's target); a history row
#: averages about 50 batches of 64 episodes (sd about 0.01 at chance), but the best row of a few is kept,
#: so 0.6 leaves a margin for that selection and for short stages.
CHANCE_ACCURACY = 0.6
#: how messages name each modality
MODALITY_WORDS = {"sc": "single-cell", "bulk": "bulk"}


class RNAGANTrainingWarning(UserWarning):
    """What an RNAGAN will not learn or did not learn: an ignored step budget, a discriminator at chance."""


def log_normalize(x, library_size: float = NETWORK_LIBRARY_SIZE, *, dense: bool = True):
    """``log1p`` of each row scaled to ``library_size`` (float32); all-zero rows stay 0.

    Dense unless ``dense=False`` and ``x`` is sparse (training keeps large data sparse; batches are
    densified row by row).
    """
    x = normalize_total(x, library_size)
    if sparse.issparse(x):
        if not dense:
            x = sparse.csr_matrix(x, dtype=np.float32)
            x.data = np.log1p(x.data)
            return x
        x = x.toarray()
    return np.log1p(x).astype(np.float32)


class NetworkRows:
    """Samples x genes on the networks' scale (:func:`log_normalize`), read and normalised a batch at a time.

    Training never holds a normalised copy of the data: each batch reads its rows from the stored matrix
    (in memory, or from the file of a backed AnnData: only those rows), scales them by the library sizes
    computed once (chunk by chunk when backed) and takes ``log1p``, element by element as
    :func:`log_normalize` with ``dense=False`` does (float32 ``log1p`` for sparse data, float64 for dense), so
    a batch equals the same rows of the whole normalised matrix.

    Parameters
    ----------
    adata
        The AnnData whose genes are the model's (in its order); in memory or backed (``backed="r"``).
    layer
        Layer with the values; ``.X`` when ``None``.
    library_size
        Total each sample is scaled to.
    """

    def __init__(self, adata: AnnData, layer: str | None = None, *,
                 library_size: float = NETWORK_LIBRARY_SIZE) -> None:
        self.adata, self.layer = adata, layer
        self.backed = is_backed(adata)
        x = None if self.backed else get_matrix(adata, layer)
        #: each sample's total as stored (dtype of the sum), e.g. for the generated library sizes
        self.totals = row_sums(adata, layer) if self.backed else np.asarray(x.sum(axis=1)).ravel()
        if x is not None and sparse.issparse(x) and x.format != "csr":  # rows come from CSR, as they did
            x = sparse.csr_matrix(x)
        self._x = x
        totals = self.totals.astype(np.float64)
        self.scale = np.divide(library_size, totals, out=np.zeros_like(totals), where=totals > 0)
        self.shape = (int(adata.n_obs), int(adata.n_vars))

    def raw(self, idx: np.ndarray):
        """Rows ``idx`` (any order, repeats allowed) as stored, in memory."""
        if self._x is not None:
            return self._x[idx]
        return read_rows(self.adata, self.layer, idx)

    def read(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` on the networks' scale: dense float32, shape ``(len(idx), n_genes)``."""
        idx = np.asarray(idx, dtype=np.int64)
        rows, scale = self.raw(idx), self.scale[idx]
        if sparse.issparse(rows):
            rows = sparse.csr_matrix(rows)
            data = (rows.data.astype(np.float64) * np.repeat(scale, np.diff(rows.indptr))).astype(np.float32)
            out = sparse.csr_matrix((np.log1p(data), rows.indices, rows.indptr), shape=rows.shape)
            return out.toarray()
        return np.log1p(np.asarray(rows, dtype=np.float64) * scale[:, None]).astype(np.float32)

    def take(self, rows: np.ndarray) -> SampleRows:
        """The samples ``rows`` of these (no copy of any values)."""
        return SampleRows(self, np.asarray(rows, dtype=np.int64))


class SampleRows:
    """Some samples of a :class:`NetworkRows` (a training stage's modality), read as it reads them."""

    def __init__(self, source: NetworkRows, rows: np.ndarray) -> None:
        self.source, self.rows = source, rows
        self.shape = (len(rows), source.shape[1])

    def read(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (positions among these samples) on the networks' scale."""
        return self.source.read(self.rows[np.asarray(idx, dtype=np.int64)])


def is_count_matrix(adata: AnnData, layer: str | None, rows: np.ndarray | None = None, *,
                    chunk_size: int = CHUNK_ROWS) -> bool:
    """:func:`~scsynth.model._inputs.detect_count_data` over ``rows`` (all when ``None``), a chunk at a time.

    The same answer as on the whole matrix (whole numbers in every chunk), without a copy of it: backed data
    is read ``chunk_size`` rows at a time, in-memory data is sliced.
    """
    n_obs = adata.n_obs
    if rows is not None and len(rows) == n_obs and (np.asarray(rows) == np.arange(n_obs)).all():
        rows = None
    if rows is None and not is_backed(adata):
        return detect_count_data(get_matrix(adata, layer))  # as stored: no copy
    total = n_obs if rows is None else len(rows)
    for start in range(0, total, chunk_size):
        stop = min(start + chunk_size, total)
        part = slice(start, stop) if rows is None else np.asarray(rows)[start:stop]
        if not detect_count_data(read_rows(adata, layer, part)):
            return False
    return True


def draw_sets(rng: np.random.Generator, pool: np.ndarray, n_sets: int, size: int) -> np.ndarray:
    """``n_sets`` sets of ``size`` members of ``pool``: distinct within a set unless the pool is smaller."""
    if len(pool) < size:
        return rng.choice(pool, size=(n_sets, size))
    keys = rng.random((n_sets, len(pool)))
    return pool[np.argpartition(keys, size - 1, axis=1)[:, :size]]


#: ``mdata.uns`` key where :meth:`RNAGAN.setup_mudata` records its arguments (as scvi-tools records its own
#: setup under ``_scvi_uuid``), so ``RNAGAN(mdata)`` rebuilds the stacked input without any global state
MUDATA_SETUP_KEY = "_scsynth_rnagan_setup"


def mudata_modalities(modalities: Mapping[str, str] | None) -> dict[str, str] | None:
    """scvi-tools' direction, ``{"sc": <MuData modality>, "bulk": <MuData modality>}``, as name -> kind.

    The 0.2 direction (``{"rna": "sc"}``, MuData modality -> kind) still works with a ``FutureWarning``.
    """
    if modalities is None:
        return None
    modalities = dict(modalities)
    if set(modalities) <= set(MODALITIES):
        if len(set(modalities.values())) != len(modalities):
            raise ValueError(f"modalities must map 'sc' and 'bulk' each to a different MuData modality; got "
                             f"{modalities}.")
        return {name: kind for kind, name in modalities.items()}
    if set(modalities.values()) <= set(MODALITIES):
        from .._deprecation import warn_renamed

        new = {kind: name for name, kind in modalities.items()}
        warn_renamed(f"modalities={modalities}", f"modalities={new} (scvi-tools' direction: kind -> MuData "
                     "modality)", where="RNAGAN.setup_mudata", stacklevel=4)
        return modalities
    raise ValueError(f"modalities must map 'sc' and/or 'bulk' to MuData modality names, e.g. "
                     f"{{'sc': 'rna', 'bulk': 'tissue'}}; got {modalities}.")


def stack_mudata(
    mdata: Any, layer: str | None, groupby: str | None, modalities: Mapping[str, str] | None
) -> AnnData:
    """The AnnData that :meth:`RNAGAN.setup_mudata` registers: the modalities stacked over their shared genes.

    Checks the MuData, its modalities, ``groupby`` and ``layer``; ``uns["rnagan_input"]`` holds the summary.
    """
    if not isinstance(getattr(mdata, "mod", None), Mapping):
        raise TypeError(f"`mdata` must be a MuData, got {type(mdata).__name__}; use RNAGAN.setup_anndata "
                        "for an AnnData.")
    mods = dict(mdata.mod)
    if modalities is None:
        if not set(mods) <= set(MODALITIES):
            raise ValueError(f"The MuData's modalities are {sorted(mods)}: say which is which, e.g. "
                             f"modalities={{'sc': {next(iter(mods))!r}}} (keys 'sc' or 'bulk').")
        modalities = {m: m for m in mods}
    missing = sorted(set(modalities) - set(mods))
    if missing:
        raise KeyError(f"Modalities {missing} are not in the MuData (it has {sorted(mods)}).")
    bad = {m: t for m, t in modalities.items() if t not in MODALITIES}
    if bad or len(set(modalities.values())) != len(modalities):
        raise ValueError(f"modalities must map 'sc' and 'bulk' each to a different MuData modality; got "
                         f"{ {t: m for m, t in modalities.items()} }.")
    if groupby is None:
        raise ValueError("RNAGAN learns from groups of samples: pass labels_key=<obs column> (e.g. cell type).")
    for name in modalities:
        check_obs_key(mods[name], groupby, what=f"labels_key (modality {name!r})")
        if layer is not None and layer not in mods[name].layers:
            raise KeyError(f"Modality {name!r} has no layer {layer!r} (layers: {list(mods[name].layers)}).")
    names = list(modalities)
    shared = pd.Index(mods[names[0]].var_names.astype(str))
    for name in names[1:]:
        shared = shared[shared.isin(mods[name].var_names.astype(str))]
    n_genes = {name: int(mods[name].n_vars) for name in names}
    if len(shared) == 0:
        raise ValueError(f"The modalities share no gene names ({n_genes} genes each); use gene symbols in all "
                         "of them.")
    summary = {"modalities": dict(modalities), "n_genes": n_genes, "n_shared_genes": int(len(shared))}
    logger.info("RNAGAN.setup_mudata: %d genes shared by %s", len(shared),
                ", ".join(f"{m} ({n})" for m, n in n_genes.items()))
    if len(shared) < 0.5 * min(n_genes.values()):
        warnings.warn(f"The modalities share only {len(shared)} genes ({n_genes} each); the model uses those.",
                      stacklevel=3)
    parts = []
    for name, kind in modalities.items():
        sub = mods[name]
        x = genes_by_name(sub, shared, layer, what=f"modality {name!r}", name=f"mdata.mod[{name!r}]")
        x = sparse.csr_matrix(x, dtype=np.float32) if sparse.issparse(x) else np.asarray(x, dtype=np.float32)
        obs = pd.DataFrame({groupby: sub.obs[groupby].astype(str).to_numpy(), MUDATA_MODALITY_KEY: kind},
                           index=[f"{name}:{o}" for o in sub.obs_names])
        parts.append(AnnData(x, obs=obs, var=pd.DataFrame(index=shared)))
    if any(sparse.issparse(p.X) for p in parts):  # one storage for the stack
        for p in parts:
            p.X = sparse.csr_matrix(p.X)
    combined = parts[0] if len(parts) == 1 else ad_concat(parts)
    combined.obs[groupby] = pd.Categorical(combined.obs[groupby])
    combined.uns["rnagan_input"] = summary
    return combined
