"""Reading what scsynth functions record in ``AnnData.uns``, with one clear error when it is missing."""

from __future__ import annotations

from typing import Any

import pandas as pd


def perturbation_info(adata: Any) -> dict:
    """``uns["perturbation"]`` of the AnnData returned by ``model.perturb`` / ``scsynth.tl.perturb``."""
    uns = getattr(adata, "uns", None)
    if uns is None:
        raise TypeError(
            "Expected the AnnData returned by model.perturb / scsynth.tl.perturb (or its "
            f"uns['perturbation']['effects'] DataFrame), got {type(adata).__name__}."
        )
    info = uns.get("perturbation")
    if not isinstance(info, dict) or not isinstance(info.get("effects"), pd.DataFrame):
        raise KeyError(
            "No per-gene effect table in uns['perturbation']['effects']; run model.perturb(...) or "
            "scsynth.tl.perturb(model, ...) to create it."
        )
    return info
