"""RNAGAN: one pathway-aware adversarial model on single-cell and bulk RNA-seq (the user-facing model)."""

from __future__ import annotations

import logging
import math
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from anndata import concat as ad_concat
from scipy import sparse
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField

from .._constants import SCSYNTH_KEYS, UNS_KEY
from .._settings import settings
from ..data import (
    MatchedGeneSets,
    check_expression,
    check_obs_key,
    get_matrix,
    match_gene_sets,
    normalize_total,
)
from ..data._validate import _examples, check_anndata, check_int
from ..module import RNAGANNetworks
from ..nn import PathwayLinear
from ..train import (
    DivergenceGuard,
    EpisodeBatches,
    RNAGANTrainingPlan,
    TrajectoryDataModule,
)
from ..train._progress import BatchProgressBar
from ..train._quiet import quiet_lightning
from ._base import ScsynthModelBase, genes_by_name
from ._generated import check_finite_output, provenance, scale_to_library

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
_MODALITY_WORDS = {"sc": "single-cell", "bulk": "bulk"}
#: epoch metrics shown next to RNAGAN's progress bars
_BAR_METRICS = {"episode_accuracy_train": "accuracy", "discriminator_loss_train": "d_loss",
                "generator_loss_train": "g_loss"}


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


def _is_integer(x) -> bool:
    values = x.data if sparse.issparse(x) else np.asarray(x)
    return bool(np.array_equal(values, np.round(values)))


class RNAGAN(ScsynthModelBase):
    """RNAGAN ("train one and get four"): an episode discriminator and a reference-set generator.

    An *episode* is a target sample and a set of reference samples of one group. The discriminator
    scores whether the target belongs with the references; the generator makes a new sample of the
    references' group from them and noise. Both see each sample's genes next to its pathway
    activities (:class:`~scsynth.nn.PathwayLinear`: MSigDB gene sets matched to the data, plus
    learned pathways), through one shared pathway layer. Samples are normalised to 1e4 and log1p
    transformed, whatever the modality. See :class:`~scsynth.module.RNAGANNetworks`.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    registry
        Used by :meth:`load` to build a model without data; leave ``None``.
    gene_sets
        Gene sets for the pathway layer: a name (``"hallmark"``, bundled), a DataFrame, a GMT path, or a
        matched set from :func:`~scsynth.data.match_gene_sets`.
    min_genes_per_set
        Sets with fewer genes in the data are dropped.
    n_learned
        Learned pathways (trained on single cells, frozen for bulk fine-tuning).
    hidden
        Hidden widths of both networks.
    n_latent, n_noise
        Generator bottleneck and noise sizes.
    dropout
        Dropout after the first hidden layer.
    """

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        *,
        gene_sets: Any = "hallmark",
        min_genes_per_set: int = 5,
        n_learned: int = 8,
        hidden: Sequence[int] = (256, 64),
        n_latent: int = 16,
        n_noise: int = 16,
        dropout: float = 0.1,
    ) -> None:
        if adata is not None and not isinstance(adata, AnnData):  # a MuData registered with setup_mudata
            combined = self._mudata_inputs.get(adata)
            if combined is None:
                raise ValueError(f"Register the {type(adata).__name__} first with RNAGAN.setup_mudata(mdata, "
                                 "groupby=...).")
            adata = combined
        super().__init__(adata, registry)
        if isinstance(gene_sets, dict):
            matched = MatchedGeneSets.from_dict(gene_sets)
        elif isinstance(gene_sets, MatchedGeneSets):
            matched = gene_sets
        else:
            if adata is None:
                raise ValueError("Building an RNAGAN without data needs the matched gene sets of a saved model.")
            matched = match_gene_sets(gene_sets, adata.var_names, min_genes_per_set=min_genes_per_set)
        if adata is not None and list(matched.genes) != [str(g) for g in adata.var_names]:
            raise ValueError("The gene sets were matched to other genes than this AnnData's; match them again.")
        with torch.random.fork_rng():
            torch.manual_seed(settings.seed)
            pathways = PathwayLinear(matched.rows, matched.cols, n_genes=matched.n_genes, n_sets=matched.n_sets,
                                     n_learned=n_learned, seed=settings.seed)
            self.module = RNAGANNetworks(pathways, hidden=tuple(hidden), n_latent=n_latent, n_noise=n_noise,
                                         dropout=dropout)
        self.var_names_ = np.asarray(matched.genes, dtype=str)
        self.gene_sets_ = matched.to_dict()
        self.pathway_names_ = pathways.output_names(list(matched.sets))
        self.histories_: dict[str, dict[str, pd.DataFrame]] = {}
        self.steps_: dict[str, int] = {}
        #: per stage, the history row whose weights were kept (best episode accuracy)
        self.best_epochs_: dict[str, int] = {}
        #: per stage, the episode accuracy of the kept weights (the best history row)
        self.episode_accuracy_: dict[str, float] = {}
        #: per stage, whether that accuracy is below CHANCE_ACCURACY (the model cannot tell groups apart)
        self.at_chance_: dict[str, bool] = {}
        self.train_libraries_: dict[str, dict[str, np.ndarray]] = {}
        #: how a MuData input was combined (modalities, genes per modality, shared genes); empty otherwise
        self.input_summary_: dict[str, Any] = dict(adata.uns.get("rnagan_input", {})) if adata is not None else {}
        self._model_summary_string = (
            f"RNAGAN: {matched.n_sets} gene sets ({matched.n_memberships} memberships) + {n_learned} learned "
            f"pathways over {matched.n_genes} genes; hidden {tuple(hidden)}, latent {n_latent}, noise {n_noise}."
        )
        gene_sets = self.gene_sets_  # saved as plain data: load() needs neither the GMT file nor the network
        self.init_params_ = self._get_init_params(locals())

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        groupby: str | None = None,
        modality_key: str | None = None,
        *,
        modality: Literal["sc", "bulk"] = "sc",
        is_count_data: bool | dict[str, bool] | None = None,
        **kwargs: Any,
    ) -> None:
        """Register an AnnData for :class:`RNAGAN`.

        Parameters
        ----------
        adata
            Samples (cells or bulk samples) x genes (symbols, to match the gene sets): counts or
            non-negative normalised values (TPM, FPKM, CP10k), dense or sparse.
        layer
            Layer with the values; ``.X`` when ``None``.
        groupby
            ``obs`` column with the group of each sample (cell type, condition, subtype) that episodes
            are built from.
        modality_key
            ``obs`` column saying ``"sc"`` or ``"bulk"`` per sample; without it every sample has
            ``modality``.
        modality
            The modality of all samples when ``modality_key`` is ``None``.
        is_count_data
            Whether each modality holds counts (generated samples are then counts): a bool for all, a
            dict per modality, or ``None`` to detect it. Modalities that disagree must be stated.
        """
        x = get_matrix(adata, layer)
        if groupby is None:
            raise ValueError("RNAGAN learns from groups of samples: pass groupby=<obs column> (e.g. cell type).")
        check_obs_key(adata, groupby, what="groupby")
        if modality_key is not None:
            values = check_obs_key(adata, modality_key, what="modality_key").astype(str)
            bad = sorted(set(values) - set(MODALITIES))
            if bad:
                raise ValueError(f"obs[{modality_key!r}] holds {bad}; modalities must be 'sc' or 'bulk'.")
            present = sorted(set(values), key=MODALITIES.index)
        else:
            if modality not in MODALITIES:
                raise ValueError(f"modality must be 'sc' or 'bulk', got {modality!r}.")
            values, present = pd.Series(modality, index=adata.obs_names), [modality]
        counts: dict[str, bool] = {}
        for mod in present:
            rows = np.flatnonzero(values.to_numpy() == mod)
            detected = _is_integer(x[rows])
            given = is_count_data.get(mod) if isinstance(is_count_data, dict) else is_count_data
            counts[mod] = detected if given is None else bool(given)
        if is_count_data is None and len(set(counts.values())) > 1:
            kinds = ", ".join(f"{m} holds {'counts' if c else 'normalised values'}" for m, c in counts.items())
            raise ValueError(
                f"The modalities differ: {kinds}. Say so explicitly, e.g. is_count_data={{'sc': True, 'bulk': "
                "False}: both are normalised the same way for the networks, but generated samples are counts "
                "only where the input was."
            )
        check_expression(adata, layer=layer, is_count_data=False)
        for mod, is_counts in counts.items():
            if is_counts:  # non-integer values in a modality declared as counts
                check_expression(adata[np.flatnonzero(values.to_numpy() == mod)], layer=layer, is_count_data=True)
        is_count_data = counts
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(SCSYNTH_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(SCSYNTH_KEYS.LABELS_KEY, groupby),
        ]
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    #: MuData registered with :meth:`setup_mudata` -> the AnnData built from it (dropped with the MuData)
    _mudata_inputs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def setup_mudata(
        cls,
        mdata: Any,
        layer: str | None = None,
        groupby: str | None = None,
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
        The MuData itself is not modified.

        Parameters
        ----------
        mdata
            MuData; each used modality has samples x genes and ``obs[groupby]``.
        layer
            Layer with the values in every modality; ``.X`` when ``None``.
        groupby
            ``obs`` column (of each modality) with the group of each sample.
        modalities
            MuData modality name -> ``"sc"`` or ``"bulk"``, e.g. ``{"rna": "sc", "tcga": "bulk"}``.
            Default: modalities named ``sc`` and ``bulk``. Modalities not listed are ignored.
        is_count_data
            As in :meth:`setup_anndata`, keyed by ``"sc"``/``"bulk"``.

        Returns
        -------
        The stacked, registered AnnData.

        Examples
        --------
        >>> mdata = mudata.MuData({"sc": cells, "bulk": samples})  # doctest: +SKIP
        >>> RNAGAN.setup_mudata(mdata, groupby="cell_type")  # doctest: +SKIP
        >>> model = RNAGAN(mdata)  # doctest: +SKIP
        """
        if not isinstance(getattr(mdata, "mod", None), Mapping):
            raise TypeError(f"`mdata` must be a MuData, got {type(mdata).__name__}; use RNAGAN.setup_anndata "
                            "for an AnnData.")
        mods = dict(mdata.mod)
        if modalities is None:
            if not set(mods) <= set(MODALITIES):
                raise ValueError(f"The MuData's modalities are {sorted(mods)}: say which is which, e.g. "
                                 f"modalities={{{next(iter(mods))!r}: 'sc'}} (values 'sc' or 'bulk').")
            modalities = {m: m for m in mods}
        missing = sorted(set(modalities) - set(mods))
        if missing:
            raise KeyError(f"Modalities {missing} are not in the MuData (it has {sorted(mods)}).")
        bad = {m: t for m, t in modalities.items() if t not in MODALITIES}
        if bad or len(set(modalities.values())) != len(modalities):
            raise ValueError(f"modalities must map each MuData modality to a different one of 'sc' and 'bulk'; "
                             f"got {dict(modalities)}.")
        if groupby is None:
            raise ValueError("RNAGAN learns from groups of samples: pass groupby=<obs column> (e.g. cell type).")
        for name in modalities:
            check_obs_key(mods[name], groupby, what=f"groupby (modality {name!r})")
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
                          stacklevel=2)
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
        cls.setup_anndata(combined, groupby=groupby, modality_key=MUDATA_MODALITY_KEY, is_count_data=is_count_data,
                          **kwargs)
        cls._mudata_inputs[mdata] = combined
        return combined

    # -- registry accessors ----------------------------------------------------------------------------
    @property
    def groupby(self) -> str:
        return self.registry_["setup_args"]["groupby"]

    @property
    def is_count_data(self) -> dict[str, bool]:
        """Per modality, whether the model was trained on counts."""
        return dict(self.registry_["setup_args"]["is_count_data"])

    @property
    def gene_sets(self) -> MatchedGeneSets:
        """The gene sets of the pathway layer, as matched to the training genes (with their provenance)."""
        return MatchedGeneSets.from_dict(self.gene_sets_)

    def _modalities(self, adata: AnnData) -> np.ndarray:
        args = self.registry_["setup_args"]
        if args.get("modality_key") is not None and args["modality_key"] in adata.obs:
            return adata.obs[args["modality_key"]].astype(str).to_numpy()
        return np.full(adata.n_obs, args.get("modality", "sc"))

    def _network_input(
        self, adata: AnnData, layer: str | None = None, *, dense: bool = True, name: str = "adata"
    ):
        """log1p-normalised values of ``adata``'s samples over the model's genes (matched by name, checked)."""
        strict = layer is not None  # a layer the user names must exist; the training layer may be in .X
        layer = self.registry_["setup_args"].get("layer") if layer is None else layer
        x = genes_by_name(adata, self.var_names_, layer, what="samples", name=name, strict_layer=strict)
        return log_normalize(x, dense=dense)

    # -- training ------------------------------------------------------------------------------------------
    def train(
        self,
        sc_steps: int = DEFAULT_STEPS["sc"],
        bulk_steps: int = DEFAULT_STEPS["bulk"],
        *,
        batch_size: int = 64,
        n_refs: tuple[int, int] = (5, 20),
        warmup_steps: int | None = None,
        accelerator: str | None = None,
        devices: int | list[int] | str = "auto",
        seed: int | None = None,
        plan_kwargs: dict[str, Any] | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        """Train on single cells, then fine-tune on bulk, each with its own step budget.

        A stage is skipped when its modality has no samples (or its budget is 0). The first stage
        that runs starts with ``warmup_steps`` discriminator-only steps (the original's first stage;
        default: half of that stage's budget: on 85 bulk samples membership was learned only after
        about 300 such steps, and an earlier adversarial phase stopped it). Learned pathways are frozen for the bulk stage.
        Each stage ends with the weights of its history row (about 50 batches) with the best episode
        accuracy (``model.best_epochs_``): a late adversarial collapse of the discriminator is not kept.
        ``model.histories_`` holds each stage's per-epoch history (:data:`~scsynth.train.RNAGAN_HISTORY_KEYS`).

        Before training, the plan (:meth:`training_plan`: stages and steps each) is logged at INFO level;
        a budget other than the default for a modality the data do not have warns
        (:class:`RNAGANTrainingWarning`) that it is ignored. One progress bar per stage counts its steps.
        After training, ``model.episode_accuracy_`` holds each stage's kept accuracy and
        ``model.at_chance_`` whether it is below :data:`CHANCE_ACCURACY` (0.6; chance is 0.5); a modality
        whose last stage is at chance warns (:class:`RNAGANTrainingWarning`) with what to do.

        Parameters
        ----------
        sc_steps, bulk_steps
            Batches of episodes (steps) per stage; the first stage's budget includes its warm-up.
        batch_size
            Episodes per batch.
        n_refs
            Smallest and largest reference-set size drawn per episode.
        warmup_steps
            Discriminator-only steps at the start of the first stage.
        accelerator, devices
            Lightning options.
        seed
            Seed of the episode draws and the noise (``scsynth.settings.seed`` when ``None``).
        plan_kwargs
            Options of :class:`~scsynth.train.RNAGANTrainingPlan`.
        **trainer_kwargs
            Options of :class:`scvi.train.Trainer`.

        Raises
        ------
        scsynth.train.TrainingDivergedError
            A loss or weight became NaN or infinite. Training stops, the model keeps its last finite
            weights and the message says which step and what to change (see :doc:`/reliability`).
        """
        batch_size = check_int(batch_size, "batch_size")
        self._check_has_data("train")
        seed = settings.seed if seed is None else int(seed)
        x = self._network_input(self.adata, dense=False)  # sparse stays sparse: 100k cells fit in memory
        groups = np.asarray(self.adata_manager.get_from_registry(SCSYNTH_KEYS.LABELS_KEY)).ravel()
        modalities = self._modalities(self.adata)
        labels = self.adata.obs[self.groupby].astype(str).to_numpy()
        for mod in MODALITIES:
            sizes = pd.Series(labels[modalities == mod]).value_counts()
            if (sizes < 2).any():
                warnings.warn(f"{mod} groups with a single sample take no part in training (no reference set can "
                              f"be drawn for them): {sorted(sizes.index[sizes < 2])}.", stacklevel=2)
        budget = {"sc": int(sc_steps), "bulk": int(bulk_steps)}
        stages = self._stages(budget, warmup_steps)
        if not stages:
            raise ValueError(f"Nothing to train: no modality has both samples and steps (budgets {budget}, "
                             f"modalities present: {sorted(set(modalities))}).")
        for mod in MODALITIES:  # a budget the user chose for data that are not there: say so
            if budget[mod] > 0 and budget[mod] != DEFAULT_STEPS[mod] and not (modalities == mod).any():
                runs = " and ".join(f"{m}_steps" for m in dict.fromkeys(s[0] for s in stages))
                warnings.warn(f"{mod}_steps={budget[mod]} is ignored: the data hold no "
                              f"{_MODALITY_WORDS[mod]} samples. The stage that runs is budgeted by {runs}.",
                              RNAGANTrainingWarning, stacklevel=2)
        first = stages[0][0]
        if warmup_steps is not None and int(warmup_steps) > budget[first] > 0:
            warnings.warn(f"warmup_steps={warmup_steps} exceeds {first}_steps={budget[first]}: the {first} stage "
                          f"runs {budget[first]} discriminator warm-up steps and no adversarial ones (its "
                          f"generator is not trained); raise {first}_steps or lower warmup_steps.",
                          RNAGANTrainingWarning, stacklevel=2)
        logger.info("%s", self.training_plan(sc_steps, bulk_steps, warmup_steps=warmup_steps,
                                             batch_size=batch_size))
        last: dict[str, str] = {}  # modality -> its last stage in this call (whose weights the model keeps)
        for modality, name, n_batches, epochs, extra in stages:
            rows = np.flatnonzero(modalities == modality)
            pathways = self.module.features.pathways
            pathways.freeze("learned") if modality == "bulk" else pathways.unfreeze("learned")
            data = EpisodeBatches(x[rows], groups[rows], n_refs=n_refs, n_batches=n_batches,
                                  batch_size=batch_size, seed=seed + len(self.steps_))
            plan = RNAGANTrainingPlan(self.module, **{**(plan_kwargs or {}), **extra})
            guard = self._run_stage(name, plan, data, rows, epochs, accelerator, devices, seed,
                                    dict(trainer_kwargs))
            last[modality] = name
            n_steps = guard.kept_step if guard.diverged else data.n_batches * epochs  # steps behind the weights
            if n_steps:
                self.steps_[name] = self.steps_.get(name, 0) + n_steps
            totals = np.asarray(get_matrix(self.adata, self.registry_["setup_args"].get("layer"))[rows].sum(1)).ravel()
            labels = self.adata.obs[self.groupby].astype(str).to_numpy()[rows]
            self.train_libraries_[modality] = {g: totals[labels == g].astype(np.float32) for g in np.unique(labels)}
            if guard.diverged:  # later stages do not run; trained = holds weights of some finite training
                self.module.eval()
                self.is_trained_ = any(n > 0 for n in self.steps_.values())
                guard.raise_if_diverged()
        self.module.eval()
        for modality, name in last.items():
            if self.at_chance_.get(name):
                warnings.warn(self._chance_message(modality, name, budget[modality], plan_kwargs),
                              RNAGANTrainingWarning, stacklevel=2)

    def _stages(self, budget: dict[str, int], warmup_steps: int | None) -> list[tuple]:
        """(modality, stage name, batches per epoch, epochs, plan options) of each stage :meth:`train` runs.

        A stage runs when its modality has samples and steps. The first stage that runs starts with the
        discriminator alone, so that it learns membership before easy-to-spot early fakes can dominate it.
        """
        modalities = self._modalities(self.adata)
        present = [m for m in MODALITIES if budget[m] > 0 and (modalities == m).any()]
        if not present:
            return []
        first = present[0]
        warmup = budget[first] // 2 if warmup_steps is None else min(int(warmup_steps), budget[first])
        stages = [(first, f"{first}_warmup", warmup, {"fake_weight": 0.0, "train_generator": False}),
                  (first, first, budget[first] - warmup, {})] + [(m, m, budget[m], {}) for m in present[1:]]
        out = []
        for modality, name, steps, extra in stages:
            if steps <= 0:
                continue
            epochs = math.ceil(steps / 50)  # history rows of about 50 batches; steps rounded up to fill them
            out.append((modality, name, math.ceil(steps / epochs), epochs, extra))
        return out

    def training_plan(
        self,
        sc_steps: int = DEFAULT_STEPS["sc"],
        bulk_steps: int = DEFAULT_STEPS["bulk"],
        *,
        warmup_steps: int | None = None,
        batch_size: int = 64,
        option_names: Mapping[str, str] | None = None,
    ) -> str:
        """One line saying which stages :meth:`train` runs with these budgets, with how many steps each.

        :meth:`train` logs it (``logging.INFO``) before it starts; the CLI prints it. A step is one batch
        of ``batch_size`` episodes. Budgets of a modality the data do not have are ignored, and said so.

        Parameters
        ----------
        sc_steps, bulk_steps, warmup_steps, batch_size
            As in :meth:`train`.
        option_names
            How the line names the budgets, ``{"sc": "sc_steps", "bulk": "bulk_steps"}`` by default
            (the CLI passes its flags).

        Examples
        --------
        >>> model.training_plan(sc_steps=200, bulk_steps=200)  # doctest: +SKIP
        'RNAGAN plan: bulk only: sc_steps ignored (no single-cell samples); bulk stage: 100 discriminator
        warm-up + 100 adversarial steps of 64 episodes.'
        """
        self._check_has_data("plan training")
        names = {"sc": "sc_steps", "bulk": "bulk_steps", **dict(option_names or {})}
        budget = {"sc": int(sc_steps), "bulk": int(bulk_steps)}
        counts = pd.Series(self._modalities(self.adata)).value_counts()
        have = [m for m in MODALITIES if counts.get(m, 0) > 0]
        head = (f"{_MODALITY_WORDS[have[0]]} only" if len(have) == 1 else
                f"{counts['sc']} single-cell + {counts['bulk']} bulk samples")
        notes = [f"{names[m]} ignored (no {_MODALITY_WORDS[m]} samples)" for m in MODALITIES
                 if m not in have and budget[m] > 0]
        notes += [f"{m} stage skipped ({names[m]} is 0)" for m in have if budget[m] == 0]
        stages = self._stages(budget, warmup_steps)
        parts = []
        for m in have:
            steps = {name: n * epochs for mod, name, n, epochs, _ in stages if mod == m}
            if not steps:
                continue
            kinds = [f"{steps[k]} {what}" for k, what in ((f"{m}_warmup", "discriminator warm-up"),
                                                           (m, "adversarial")) if k in steps]
            text = f"{m} stage: {' + '.join(kinds)} steps"
            if sum(steps.values()) != budget[m]:
                text += f" ({names[m]} {budget[m]} rounded up to whole history rows of about 50 steps)"
            if m == "bulk" and stages[0][0] == "sc":
                text += " (fine-tuning, learned pathways frozen)"
            parts.append(text)
        body = "; then ".join(parts) if parts else "nothing to train"
        return (f"RNAGAN plan: {head}" + (f": {'; '.join(notes)}" if notes else "")
                + f"; {body}" + (f", of {batch_size} episodes each." if parts else "."))

    def _chance_message(self, modality: str, name: str, steps: int, plan_kwargs: dict | None) -> str:
        """What a stage that ended at chance means and what to do, for :meth:`train`'s warning."""
        lr = float((plan_kwargs or {}).get("lr_discriminator", 1e-3))
        more = max(4 * steps, DEFAULT_STEPS[modality])
        return (
            f"RNAGAN's {modality} stage ended at chance: its kept weights get "
            f"{self.episode_accuracy_[name]:.2f} of the training episodes right (chance is 0.5; below "
            f"{CHANCE_ACCURACY} counts as chance), so the model cannot tell the groups of "
            f"obs[{self.groupby!r}] apart: stratify's groups are close to arbitrary (often one for all "
            f"samples). Train longer (e.g. {modality}_steps={more}; it was {steps}), check that the groups "
            f"of obs[{self.groupby!r}] differ in expression, or, if the accuracy rose and then fell "
            f"(model.histories_[{name!r}]), lower the learning rate "
            f"(plan_kwargs={{'lr_discriminator': {lr / 3:.2g}}})."
        )

    def _run_stage(self, name, plan, data, rows, max_epochs, accelerator, devices, seed,
                   trainer_kwargs) -> DivergenceGuard:
        import lightning
        from scvi.train import TrainRunner

        lightning.seed_everything(seed, verbose=False)
        from ..train import BestStateTracker

        # adversarial training can leave the discriminator in a worse state than it reached (a late collapse
        # flattens its logits): keep the weights of the history row where it told episodes apart best
        best = BestStateTracker("episode_accuracy_train", mode="max")
        rates = (f"{{'lr_discriminator': {min(plan.lr_discriminator / 10, 1e-3):g}, "  # at most the defaults
                 f"'lr_generator': {min(plan.lr_generator / 10, 1e-4):g}}}")
        guard = DivergenceGuard("RNAGAN", f"stage {name}", hint=(
            f"Lower the learning rates, e.g. plan_kwargs={rates} (they were lr_discriminator="
            f"{plan.lr_discriminator:g}, lr_generator={plan.lr_generator:g})."))
        callbacks = [*trainer_kwargs.pop("callbacks", []), best, guard]
        show = trainer_kwargs.pop("enable_progress_bar", settings.progress)
        if show:  # per batch: a history row of ~50 batches can take minutes on large data
            modality, _, kind = name.partition("_")
            title = f"RNAGAN {modality} {'warm-up' if kind == 'warmup' else 'adversarial'}"
            callbacks.append(BatchProgressBar(title, total=data.n_batches * max_epochs,
                                              postfix_keys=_BAR_METRICS))
        module = TrajectoryDataModule(data, None, train_idx=rows, val_idx=np.array([], dtype=int),
                                      test_idx=np.array([], dtype=int))
        self.is_trained_ = False  # scvi then replaces history_ instead of appending: one history per stage
        with quiet_lightning():
            TrainRunner(self, training_plan=plan, data_splitter=module, max_epochs=max_epochs,
                        accelerator=accelerator or settings.accelerator, devices=devices, limit_val_batches=0,
                        enable_progress_bar=show, simple_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks, **trainer_kwargs)()
        self.episode_accuracy_.pop(name, None)
        self.at_chance_.pop(name, None)
        if best.state is not None and not guard.diverged:  # after a divergence the guard's weights stay
            self.module.load_state_dict(best.state)
            self.best_epochs_[name] = int(best.epoch)
            self.episode_accuracy_[name] = float(best.best)
            self.at_chance_[name] = bool(best.best < CHANCE_ACCURACY)
        history = {k: v.apply(pd.to_numeric, errors="coerce") for k, v in (self.history_ or {}).items()}
        old = self.histories_.get(name, {})
        self.histories_[name] = {k: pd.concat([old[k], v]) if k in old else v for k, v in history.items()}
        self.is_trained_ = True
        return guard

    # -- jobs ----------------------------------------------------------------------------------------------
    def _reference_pool(self, references: AnnData | str | None, adata: AnnData, groupby: str | None,
                        adata_x: np.ndarray | None = None):
        """(log-normalised reference matrix, group names per reference, reference index in adata or -1).

        ``adata_x``, the network input of ``adata`` when already computed, is reused where the references
        are ``adata``'s own samples.
        """
        if references is None:
            self._check_has_data("draw references from its training data (pass references=)")
            same = adata is self.adata and adata_x is not None
            ref_x = adata_x if same else self._network_input(self.adata)
            labels = self.adata.obs[self.groupby].astype(str).to_numpy()
            own = np.full(len(labels), -1)
            if adata is self.adata:
                own = np.arange(len(labels))
            return ref_x, labels, own
        if isinstance(references, str):
            if references not in adata.obs:
                raise KeyError(f"references={references!r} is not a column of adata.obs.")
            col = adata.obs[references]
            keep = col.notna().to_numpy()
            ref_x = adata_x[keep] if adata_x is not None else self._network_input(adata[keep])
            return ref_x, col[keep].astype(str).to_numpy(), np.flatnonzero(keep)
        key = groupby or self.groupby
        col = check_obs_key(references, key, what="groupby")
        ref_x = self._network_input(references, name="references")
        return ref_x, col.astype(str).to_numpy(), np.full(references.n_obs, -1)

    def stratify(
        self,
        adata: AnnData,
        *,
        references: AnnData | str | None = None,
        groupby: str | None = None,
        n_draws: int = 20,
        n_refs: int = 5,
        calibrate: bool = True,
        key_added: str = "rnagan",
        seed: int | None = None,
        batch_size: int = 2048,
    ) -> pd.DataFrame:
        """Score every sample against every group's reference sets; the best group wins.

        For each sample and group, ``n_draws`` reference sets of ``n_refs`` samples of that group are
        drawn (never containing the sample itself) and the discriminator's logits are averaged; a
        softmax over groups turns the mean logits into probabilities. Groups need not have been seen in
        training: any labelled references work, down to ``n_refs`` samples per group.

        The discriminator's logits are not probabilities (membership of one set, not a choice among
        groups), so by default they are calibrated: each reference (up to 50 per group) is scored
        against the groups with itself left out, and one temperature is fitted to their known labels
        by maximum likelihood. It changes the probabilities, never the winning group.

        A result not to trust warns (:class:`RNAGANTrainingWarning`, with what to do): every sample assigned
        to one group (with more samples than groups), or a model whose training ended at chance
        (``model.at_chance_``).

        Parameters
        ----------
        adata
            Samples to stratify (genes matched by name).
        references
            Labelled references: an AnnData with ``obs[groupby]``, the name of an ``adata.obs`` column
            (samples with a label are the references; the others are only scored), or ``None`` for the
            training samples and groups.
        groupby
            Group column of a reference AnnData (default: the model's ``groupby``).
        n_draws, n_refs
            Reference sets per (sample, group) and their size.
        calibrate
            Fit the softmax temperature on the references (leave one out); ``False``: temperature 1.
        key_added
            ``obs[key_added]`` (best group), ``obsm[key_added + "_scores"]`` (probabilities),
            ``uns[key_added]["params"]`` (including the fitted ``temperature``).
        seed, batch_size
            Seed of the draws; episodes per forward pass.

        Returns
        -------
        The probabilities, samples x groups.
        """
        self._check_trained()
        check_anndata(adata)
        if references is not None and not isinstance(references, str):
            check_anndata(references, "references")
        n_draws, n_refs = check_int(n_draws, "n_draws"), check_int(n_refs, "n_refs")
        batch_size = check_int(batch_size, "batch_size")
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        target_x = self._network_input(adata)
        ref_x, ref_labels, ref_own = self._reference_pool(references, adata, groupby, target_x)
        names = sorted(set(ref_labels))
        sizes = {g: int((ref_labels == g).sum()) for g in names}
        small = {g: n for g, n in sizes.items() if n < n_refs}
        if small:
            raise ValueError(f"Groups with fewer references than n_refs={n_refs}: {small}; lower n_refs or add "
                             "references.")
        if len(names) < 2:
            raise ValueError(f"Stratifying needs references of at least 2 groups; got only {names}.")
        own_of_target = np.full(adata.n_obs, -1)
        if references is None and adata is self.adata or isinstance(references, str):
            own_of_target[ref_own[ref_own >= 0]] = np.flatnonzero(ref_own >= 0)
        logits = self._group_logits(target_x, own_of_target, ref_x, ref_labels, names, n_draws, n_refs, rng,
                                    batch_size)
        temperature = 1.0
        if calibrate:
            temperature = self._fit_temperature(ref_x, ref_labels, names, n_draws, n_refs, rng, batch_size)
        logits = logits / temperature
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        frame = pd.DataFrame(probs, index=adata.obs_names, columns=names)
        winners = np.unique(probs.argmax(1))
        one_group = names[winners[0]] if len(winners) == 1 and adata.n_obs > len(names) else None
        message = self._stratify_warning(adata.n_obs, one_group, len(names))
        if message:
            warnings.warn(message, RNAGANTrainingWarning, stacklevel=2)
        adata.obs[key_added] = pd.Categorical(np.asarray(names)[probs.argmax(1)], categories=names)
        adata.obsm[f"{key_added}_scores"] = frame
        adata.uns[key_added] = {"params": {"n_draws": n_draws, "n_refs": n_refs, "seed": seed,
                                           "calibrate": calibrate, "temperature": temperature,
                                           "references": references if isinstance(references, str) else
                                           ("training data" if references is None else "AnnData")}}
        return frame

    def _stratify_warning(self, n_obs: int, one_group: str | None, n_groups: int) -> str | None:
        """Why not to trust :meth:`stratify`'s result (all samples in ``one_group``, a model at chance)."""
        last = {name.partition("_")[0]: name for name in self.at_chance_}  # each modality's latest stage
        chance = ", ".join(f"{k} {self.episode_accuracy_[k]:.2f}" for k in last.values()
                           if self.at_chance_[k])
        if one_group is None and not chance:
            return None
        fix = ("Train longer (more sc_steps/bulk_steps in model.train; CLI --sc-steps/--bulk-steps) and "
               "check that the reference groups differ in expression.")
        verdict = f"training ended at chance (episode accuracy {chance}; see model.at_chance_)"
        if one_group is None:
            return f"This RNAGAN's {verdict}: its group assignments are close to arbitrary. {fix}"
        return (f"stratify assigned all {n_obs} samples to {one_group!r} although the references hold "
                f"{n_groups} groups: {verdict if chance else 'the model may be at chance'}. {fix} If these "
                "samples are all of one group, ignore this warning.")

    def _group_logits(self, target_x, own_of_target, ref_x, ref_labels, names, n_draws, n_refs, rng, batch_size):
        """Mean discriminator logit of each target against ``n_draws`` sets of each group (own row left out)."""
        logits = np.zeros((len(target_x), len(names)), dtype=np.float64)
        self.module.eval()
        for j, g in enumerate(names):
            members = np.flatnonzero(ref_labels == g)
            picks = np.empty((len(target_x), n_draws, n_refs), dtype=np.int64)
            for i in range(len(target_x)):
                pool = members[members != own_of_target[i]]
                picks[i] = draw_sets(rng, pool, n_draws, n_refs)
            logits[:, j] = self._over_draws(self.module.discriminator, target_x, ref_x, picks, batch_size)
        return logits

    def _fit_temperature(self, ref_x, ref_labels, names, n_draws, n_refs, rng, batch_size, per_group: int = 50):
        """Softmax temperature that maximises the likelihood of the references' own labels (leave one out)."""
        from scipy.optimize import minimize_scalar
        from scipy.special import log_softmax

        rows = np.concatenate([rng.permutation(np.flatnonzero(ref_labels == g))[:per_group] for g in names])
        logits = self._group_logits(ref_x[rows], rows, ref_x, ref_labels, names, n_draws, n_refs, rng, batch_size)
        truth = np.searchsorted(names, ref_labels[rows])

        def nll(log_t: float) -> float:
            return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(rows)), truth].mean()

        return float(np.exp(minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded").x))

    @torch.inference_mode()
    def _over_draws(self, fn, target_x: np.ndarray, ref_x: np.ndarray, picks: np.ndarray, batch_size: int):
        """``fn(target, refs)`` for every (sample, draw) of ``picks`` (samples, draws, n_refs), averaged over draws."""
        n, draws, k = picks.shape
        flat_t, flat_r = np.repeat(np.arange(n), draws), picks.reshape(n * draws, k)
        device = next(self.module.parameters()).device
        out = [fn(torch.as_tensor(target_x[flat_t[sl]], device=device),
                  torch.as_tensor(ref_x[flat_r[sl]], device=device)).double().cpu().numpy()
               for sl in (slice(s, s + batch_size) for s in range(0, n * draws, batch_size))]
        out = np.concatenate(out)
        return out.reshape(n, draws, *out.shape[1:]).mean(1)

    @torch.inference_mode()
    def get_latent_representation(
        self, adata: AnnData | None = None, *, layer: str | None = None, n_draws: int = 10, n_refs: int = 10,
        seed: int | None = None, batch_size: int = 2048,
    ) -> np.ndarray:
        """Per-sample vector: the discriminator's relation embedding against random training references.

        Averaged over ``n_draws`` reference sets of ``n_refs`` training samples (all groups mixed), so
        it places each sample relative to the same background ("vectorization").
        """
        self._check_trained()
        self._check_has_data("draw background references")
        adata = self.adata if adata is None else check_anndata(adata)
        n_draws, n_refs = check_int(n_draws, "n_draws"), check_int(n_refs, "n_refs")
        batch_size = check_int(batch_size, "batch_size")
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        target_x, ref_x = self._network_input(adata, layer), self._network_input(self.adata)
        picks = rng.integers(0, ref_x.shape[0], size=(adata.n_obs, n_draws, n_refs))
        self.module.eval()
        return self._over_draws(self.module.discriminator.embed, target_x, ref_x, picks, batch_size).astype(np.float32)

    @torch.inference_mode()
    def pathway_activities(self, adata: AnnData, *, layer: str | None = None) -> pd.DataFrame:
        """Pathway-layer output of each sample (gene sets, then learned pathways), columns named."""
        self.module.eval()
        x = torch.as_tensor(self._network_input(adata, layer), device=next(self.module.parameters()).device)
        values = self.module.features.pathways(x).cpu().numpy()
        return pd.DataFrame(values, index=adata.obs_names, columns=self.pathway_names_)

    @torch.inference_mode()
    def generate(
        self,
        n_obs: int,
        *,
        group: str,
        modality: Literal["sc", "bulk"] | None = None,
        n_refs: int = 10,
        seed: int | None = None,
    ) -> AnnData:
        """Pseudo-samples of ``group``: the generator applied to random reference sets of that group.

        Each sample gets its own reference set (``n_refs`` training samples of the group and
        modality) and noise; the profile is scaled to a library size drawn from the same samples and,
        where the modality holds counts, rounded stochastically to integers.

        Returns
        -------
        AnnData with ``.X`` (counts or values), ``layers["normalized"]`` (summing to 1e4),
        ``obs[groupby]``, ``obs["modality"]``, ``uns["scsynth"]``.
        """
        self._check_trained()
        self._check_has_data("draw reference sets")
        n_obs, n_refs = check_int(n_obs, "n_obs"), check_int(n_refs, "n_refs")
        if not isinstance(group, str):
            raise TypeError(f"group must be the name of one group (a str), got {type(group).__name__}.")
        seed = settings.seed if seed is None else int(seed)
        modality = modality or next(iter(self.train_libraries_))
        if modality not in self.train_libraries_:
            raise ValueError(f"The model was not trained on {modality!r} samples (trained: {list(self.train_libraries_)}).")
        libraries = self.train_libraries_[modality]
        if group not in libraries:
            raise ValueError(
                f"Unknown group {group!r} for {modality}; known: {_examples(sorted(libraries), 20)}."
            )
        rng = np.random.default_rng(seed)
        modalities = self._modalities(self.adata)
        labels = self.adata.obs[self.groupby].astype(str).to_numpy()
        members = np.flatnonzero((labels == group) & (modalities == modality))
        ref_x = self._network_input(self.adata[members])
        picks = draw_sets(rng, np.arange(len(members)), n_obs, n_refs)
        gen = torch.Generator().manual_seed(seed)
        self.module.eval()
        device = next(self.module.parameters()).device
        log_x = self.module.generator(torch.as_tensor(ref_x[picks], device=device), generator=gen).cpu()
        expr = torch.expm1(log_x).clamp_min(0)
        normalized = expr / expr.sum(1, keepdim=True).clamp_min(1e-12) * NETWORK_LIBRARY_SIZE
        library = rng.choice(libraries[group], size=n_obs)
        counts = self.is_count_data.get(modality, False)
        uniforms = torch.rand(normalized.shape, generator=gen) if counts else None
        values = scale_to_library(normalized, library, NETWORK_LIBRARY_SIZE, counts=counts, uniforms=uniforms)
        obs = pd.DataFrame({self.groupby: pd.Categorical([group] * n_obs),
                            "modality": pd.Categorical([modality] * n_obs, categories=list(MODALITIES)),
                            "library_size": library}, index=[f"gen-{i}" for i in range(n_obs)])
        check_finite_output(values, type(self).__name__)
        out = AnnData(sparse.csr_matrix(values.numpy()), obs=obs, var=pd.DataFrame(index=self.var_names_))
        if counts:
            out.layers["counts"] = out.X.copy()
        out.layers["normalized"] = sparse.csr_matrix(normalized.numpy())
        out.uns[UNS_KEY] = provenance(self, seed, {"n_obs": n_obs, "group": group, "modality": modality,
                                                   "n_refs": n_refs})
        return out

    def markers(
        self,
        adata: AnnData,
        *,
        groupby: str,
        group: str,
        reference: str | Sequence[str] | None = None,
        n_draws: int = 10,
        n_refs: int = 10,
        n_steps: int = 20,
        key_added: str | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Genes and pathways that make samples of ``group`` belong to it rather than to the reference groups.

        For every sample of ``group`` and each of ``n_draws`` draws, two episodes share the sample as
        target: one against ``n_refs`` other samples of ``group``, one against ``n_refs`` samples of the
        reference groups. The attribution of a feature (gene or pathway activity, both inputs of the
        discriminator) is its integrated gradient (``n_steps``, from an all-zero profile) of the margin
        ``D(own group) - D(reference)``, averaged over samples and draws: positive features make the
        sample look like its group. Alongside: the log2 fold change (genes: of mean normalised
        expression; pathways: difference of mean activity, in log2 units), a two-sided Mann-Whitney U
        p-value on the log values and its Benjamini-Hochberg FDR.

        Parameters
        ----------
        adata
            Labelled samples (genes matched by name).
        groupby, group
            ``obs`` column and the group to characterise.
        reference
            Group(s) to contrast with; all other groups when ``None``.
        n_draws, n_refs, n_steps
            Reference draws per sample, their size, integration steps.
        key_added
            ``uns`` key for the table (``"rnagan_markers"`` when ``None``).
        seed
            Seed of the draws.

        Returns
        -------
        Tidy table sorted by attribution: ``feature``, ``kind`` (``gene``/``pathway``), ``attribution``,
        ``log2fc``, ``pval``, ``fdr``.
        """
        from scipy.stats import false_discovery_control, mannwhitneyu

        self._check_trained()
        check_anndata(adata)
        n_draws, n_refs, n_steps = (check_int(n_draws, "n_draws"), check_int(n_refs, "n_refs"),
                                    check_int(n_steps, "n_steps"))
        labels = check_obs_key(adata, groupby, what="groupby").astype(str).to_numpy()
        x = torch.as_tensor(self._network_input(adata))  # checks the samples before any work
        if group not in set(labels):
            raise ValueError(f"Group {group!r} is not in obs[{groupby!r}] (groups: "
                             f"{_examples(sorted(set(labels)), 10)}).")
        others = [reference] if isinstance(reference, str) else list(reference or sorted(set(labels) - {group}))
        unknown = sorted(set(map(str, others)) - set(labels))
        if unknown:
            raise ValueError(f"Reference groups {_examples(unknown)} are not in obs[{groupby!r}].")
        pos, neg = np.flatnonzero(labels == group), np.flatnonzero(np.isin(labels, others))
        for name, idx, need in (("group", pos, 2), ("reference", neg, 1)):
            if len(idx) < need:
                raise ValueError(f"The {name} has {len(idx)} samples; markers need at least {need}.")
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        d = self.module.discriminator
        self.module.eval()
        with torch.no_grad():
            feats = self.module.features(x)
            baseline = self.module.features(torch.zeros(1, x.shape[1]))[0]
        total = torch.zeros(feats.shape[1], dtype=torch.float64)
        for i in pos:
            own = draw_sets(rng, pos[pos != i], n_draws, n_refs)
            ref = draw_sets(rng, neg, n_draws, n_refs)
            alphas = torch.linspace(1.0 / n_steps, 1.0, n_steps)
            path = (baseline + alphas[:, None] * (feats[i] - baseline)).repeat_interleave(n_draws, 0)
            path.requires_grad_(True)
            with torch.enable_grad():
                margin = d.head(d.embed_features(path, feats[own].repeat(n_steps, 1, 1))) \
                    - d.head(d.embed_features(path, feats[ref].repeat(n_steps, 1, 1)))
                (grad,) = torch.autograd.grad(margin.sum(), path)
            total += ((feats[i] - baseline) * grad.mean(0)).double()
        attribution = (total / len(pos)).numpy()
        values = feats.numpy()
        n_genes = len(self.var_names_)
        mean_pos, mean_neg = values[pos].mean(0), values[neg].mean(0)
        expr = np.expm1(values[:, :n_genes])
        lfc = np.concatenate([np.log2((expr[pos].mean(0) + 1) / (expr[neg].mean(0) + 1)),
                              (mean_pos - mean_neg)[n_genes:] / np.log(2)])
        pval = mannwhitneyu(values[pos], values[neg], axis=0).pvalue
        pval = np.where(np.isnan(pval), 1.0, pval)  # constant features
        table = pd.DataFrame({
            "feature": [*self.var_names_, *self.pathway_names_],
            "kind": pd.Categorical(["gene"] * n_genes + ["pathway"] * len(self.pathway_names_),
                                   categories=["gene", "pathway"]),
            "attribution": attribution, "log2fc": lfc, "pval": pval,
            "fdr": false_discovery_control(pval, method="bh"),
        }).sort_values("attribution", ascending=False, ignore_index=True)
        table.attrs["params"] = {"groupby": groupby, "group": group, "reference": others, "n_draws": n_draws,
                                 "n_refs": n_refs, "n_steps": n_steps, "seed": seed}
        adata.uns[key_added or "rnagan_markers"] = table
        return table
