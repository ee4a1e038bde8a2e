"""RNAGAN's MuData input: ``setup_mudata`` (scvi-tools' ``modalities`` direction) and rebuilding it in ``RNAGAN(mdata)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anndata import AnnData

from .._deprecation import renamed_kwarg
from ._rnagan_inputs import MUDATA_MODALITY_KEY, MUDATA_SETUP_KEY, mudata_modalities, stack_mudata


class MuDataMixin:
    """:meth:`setup_mudata` of :class:`~scsynth.model.RNAGAN`; no state outside the MuData's own ``uns``."""

    @classmethod
    def setup_mudata(
        cls,
        mdata: Any,
        layer: str | None = None,
        labels_key: str | None = None,
        *,
        modalities: Mapping[str, str] | None = None,
        is_count_data: bool | dict[str, bool] | None = None,
        **kwargs: Any,
    ) -> AnnData:
        """Register a MuData with one modality per data type (single-cell and/or bulk) for :class:`RNAGAN`.

        The modalities are stacked into one AnnData over the genes they share (matched by symbol;
        the intersection is logged and kept in ``uns["rnagan_input"]`` and the model's
        ``input_summary_``), with ``obs["modality"]`` saying ``"sc"`` or ``"bulk"``, then registered
        with :meth:`setup_anndata`. ``RNAGAN(mdata)`` trains on it; the stacked AnnData is also returned.
        The MuData's data are not modified; as scvi-tools' setup does, the arguments are recorded in
        ``mdata.uns["_scsynth_rnagan_setup"]``, from which ``RNAGAN(mdata)`` rebuilds the stack.

        Parameters
        ----------
        mdata
            MuData; each used modality has samples x genes and ``obs[labels_key]``.
        layer
            Layer with the values in every modality; ``.X`` when ``None``.
        labels_key
            ``obs`` column (of each modality) with the group of each sample. (Formerly ``groupby=``.)
        modalities
            Data type -> MuData modality name, as scvi-tools' ``setup_mudata``: e.g.
            ``{"sc": "rna", "bulk": "tcga"}``. Default: modalities named ``sc`` and ``bulk``. Modalities
            not listed are ignored. (The 0.2 direction, ``{"rna": "sc"}``, warns.)
        is_count_data
            As in :meth:`setup_anndata`, keyed by ``"sc"``/``"bulk"``.

        Returns
        -------
        The stacked, registered AnnData.

        Examples
        --------
        >>> mdata = mudata.MuData({"rna": cells, "tcga": samples})  # doctest: +SKIP
        >>> RNAGAN.setup_mudata(mdata, labels_key="cell_type", modalities={"sc": "rna", "bulk": "tcga"})  # doctest: +SKIP
        >>> model = RNAGAN(mdata)  # doctest: +SKIP
        """
        labels_key = renamed_kwarg(kwargs, "groupby", "labels_key", where="RNAGAN.setup_mudata", current=labels_key)
        by_name = mudata_modalities(modalities)
        combined = stack_mudata(mdata, layer, labels_key, by_name)
        cls.setup_anndata(combined, labels_key=labels_key, modality_key=MUDATA_MODALITY_KEY,
                          is_count_data=is_count_data, **kwargs)
        mdata.uns[MUDATA_SETUP_KEY] = {
            "layer": layer or "", "labels_key": labels_key, "is_count_data": is_count_data,
            "modalities": {} if by_name is None else {kind: name for name, kind in by_name.items()},
        }
        return combined

    @classmethod
    def _registered_mudata(cls, mdata: Any) -> AnnData:
        """The stacked AnnData of a MuData registered with :meth:`setup_mudata`, rebuilt from its record."""
        record = getattr(mdata, "uns", {}).get(MUDATA_SETUP_KEY)
        if record is None:
            raise ValueError(f"Register the {type(mdata).__name__} first with RNAGAN.setup_mudata(mdata, "
                             "labels_key=...).")
        record = dict(record)
        is_counts = record.get("is_count_data")
        if isinstance(is_counts, Mapping):  # h5mu round trip stores dict values as numpy bools
            is_counts = {k: bool(v) for k, v in is_counts.items()}
        combined = stack_mudata(mdata, record.get("layer") or None, record["labels_key"],
                                mudata_modalities(dict(record.get("modalities") or {})) or None)
        cls.setup_anndata(combined, labels_key=record["labels_key"], modality_key=MUDATA_MODALITY_KEY,
                          is_count_data=is_counts)
        return combined
