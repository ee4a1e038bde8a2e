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

from ..data import check_obs_key, normalize_total
from ._base import genes_by_name

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
