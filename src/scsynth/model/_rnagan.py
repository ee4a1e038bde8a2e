"""RNAGAN: one pathway-aware adversarial model on single-cell and bulk RNA-seq (the user-facing model)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField

from .._constants import SCSYNTH_KEYS
from .._deprecation import renamed_kwarg, warn_renamed
from .._settings import settings
from ..data import MatchedGeneSets, check_expression, check_obs_key, get_matrix, match_gene_sets
from ..data._matrix import check_backed, check_values, is_backed
from ..data._validate import check_anndata, check_int, check_not_empty, check_unique_var_names
from ..module import RNAGANNetworks
from ..nn import PathwayLinear
from ..train import EpisodeBatches, RNAGANTrainingPlan
from ._base import ScsynthModelBase
from ._rnagan_inputs import (
    CHANCE_ACCURACY,
    DEFAULT_STEPS,
    MODALITIES,
    MUDATA_MODALITY_KEY,
    NETWORK_LIBRARY_SIZE,
    NetworkRows,
    RNAGANTrainingWarning,
    draw_sets,
    is_count_matrix,
    log_normalize,
)
from ._rnagan_jobs import GenerateEmbedMixin
from ._rnagan_marginals import fit_rnagan_marginals, label_categories
from ._rnagan_markers import MarkersMixin
from ._rnagan_mudata import MuDataMixin
from ._rnagan_realism import RNAGAN_MONITOR_EVERY, realism_checks, training_mask
from ._rnagan_stages import StagesMixin, renamed_step_budgets, stage_budget
from ._rnagan_stratify import StratifyMixin
from ._training import monitor_every

# the names this module has always offered (the definitions now live in _rnagan_inputs)
__all__ = [
    "CHANCE_ACCURACY", "DEFAULT_STEPS", "MODALITIES", "MUDATA_MODALITY_KEY", "NETWORK_LIBRARY_SIZE", "RNAGAN",
    "RNAGANTrainingWarning", "draw_sets", "log_normalize",
]

logger = logging.getLogger(__name__)


class RNAGAN(MuDataMixin, StratifyMixin, MarkersMixin, GenerateEmbedMixin, StagesMixin, ScsynthModelBase):
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
        Gene sets for the pathway layer: a name (``"hallmark"``: MSigDB through decoupler, or the bundled snapshot offline), a DataFrame, a GMT path, or a
        matched set from :func:`~scsynth.data.match_gene_sets`.
    min_genes_per_set
        Sets with fewer genes in the data are dropped.
    n_learned
        Learned pathways (trained on single cells, frozen for bulk fine-tuning).
    hidden
        Hidden widths of both networks.
    n_latent, n_noise
        Generator bottleneck and noise sizes (64 noise dimensions, formerly 16: pseudo-samples vary
        along more directions, as real members do).
    dropout
        Dropout after the first hidden layer.
    """

    #: what the model can do (``tl`` and the CLI check this, never the class name)
    jobs = ("generate", "embed", "stratify", "markers")
    #: what ``generate(condition=...)`` takes (``None``: no condition)
    condition_kind: str | None = "group"

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
        n_noise: int = 64,
        dropout: float = 0.1,
    ) -> None:
        if adata is not None and not isinstance(adata, AnnData):  # a MuData registered with setup_mudata
            adata = self._registered_mudata(adata)
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
                                         dropout=dropout, n_groups=len(MODALITIES) * len(label_categories(self)))
        self.var_names_ = np.asarray(matched.genes, dtype=str)
        self.gene_sets_ = matched.to_dict()
        self.pathway_names_ = pathways.output_names(list(matched.sets))
        self.steps_: dict[str, int] = {}
        #: per stage, the history row whose weights were kept (best episode accuracy)
        self.best_epochs_: dict[str, int] = {}
        #: names of the samples held out of training (``train(train_size=...)``)
        self.held_out_: list[str] = []
        #: per adversarial stage: its best realism check (``train(monitor_realism=...)``)
        self.realism_best_: dict[str, dict[str, Any]] = {}
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
        labels_key: str | None = None,
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
        labels_key
            ``obs`` column with the group of each sample (cell type, condition, subtype) that episodes
            are built from. (Formerly ``groupby=``, still accepted with a ``FutureWarning``.)
        modality_key
            ``obs`` column saying ``"sc"`` or ``"bulk"`` per sample; without it every sample has
            ``modality``.
        modality
            The modality of all samples when ``modality_key`` is ``None``.
        is_count_data
            Whether each modality holds counts (generated samples are then counts): a bool for all, a
            dict per modality, or ``None`` to detect it. Modalities that disagree must be stated.
        """
        if "groupby" in kwargs and "source_registry" in kwargs:  # loading a model saved by scsynth 0.2
            labels_key = kwargs.pop("groupby") if labels_key is None else labels_key
        labels_key = renamed_kwarg(kwargs, "groupby", "labels_key", where="RNAGAN.setup_anndata", current=labels_key)
        check_anndata(adata)
        check_backed(adata, layer)  # backed (read_h5ad(path, backed="r")): read a chunk of rows at a time
        if not is_backed(adata):
            get_matrix(adata, layer)  # the error naming the layers
        if labels_key is None:
            raise ValueError("RNAGAN learns from groups of samples: pass labels_key=<obs column> (e.g. cell type).")
        check_obs_key(adata, labels_key, what="labels_key")
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
        if is_backed(adata) and len(present) > 1:
            raise ValueError("A backed AnnData trains one modality at a time: subset it to the single-cell or "
                             "the bulk samples and load that part into memory (adata[rows].to_memory()).")
        for mod in present:
            rows = np.flatnonzero(values.to_numpy() == mod)
            # every sample of one modality: the matrix as stored (no copy); else those rows, chunk by chunk
            detected = is_count_matrix(adata, layer, None if len(rows) == adata.n_obs else rows)
            given = is_count_data.get(mod) if isinstance(is_count_data, dict) else is_count_data
            counts[mod] = detected if given is None else bool(given)
        if is_count_data is None and len(set(counts.values())) > 1:
            kinds = ", ".join(f"{m} holds {'counts' if c else 'normalised values'}" for m, c in counts.items())
            raise ValueError(
                f"The modalities differ: {kinds}. Say so explicitly, e.g. is_count_data={{'sc': True, 'bulk': "
                "False}: both are normalised the same way for the networks, but generated samples are counts "
                "only where the input was."
            )
        detected_counts = is_count_data is None and len(counts) == 1 and all(counts.values())
        if not detected_counts:  # whole-number values in one modality: its count check below checks all of this
            check_expression(adata, layer=layer, is_count_data=False)
        for mod, is_counts in counts.items():
            if is_counts:  # non-integer values in a modality declared as counts
                rows = np.flatnonzero(values.to_numpy() == mod)
                part = adata if len(rows) == adata.n_obs else adata[rows]
                check_expression(part, layer=layer, is_count_data=True)
        is_count_data = counts
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(SCSYNTH_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(SCSYNTH_KEYS.LABELS_KEY, labels_key),
        ]
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    # -- registry accessors ----------------------------------------------------------------------------
    @property
    def labels_key(self) -> str:
        """The ``obs`` column with the group of each training sample."""
        args = self.registry_["setup_args"]
        return args.get("labels_key") or args["groupby"]  # "groupby": models saved by scsynth 0.2

    @property
    def groupby(self) -> str:
        """Deprecated: :attr:`labels_key`."""
        warn_renamed("groupby", "labels_key", where="RNAGAN")
        return self.labels_key

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
        x = self._job_input(adata, layer, what="samples", name=name)
        return log_normalize(x, dense=dense)

    def _training_rows(self) -> NetworkRows:
        """The training samples on the networks' scale, read batch by batch (checked as :meth:`_network_input`)."""
        layer = self.registry_["setup_args"].get("layer")
        adata = self.adata
        if is_backed(adata):
            check_backed(adata, layer)  # values were checked, a chunk at a time, by setup_anndata
            return NetworkRows(adata, layer)
        if list(adata.var_names) == list(self.var_names_):  # the registered genes, the model's order: no copy
            check_not_empty(adata)
            check_unique_var_names(adata)
            where = f"adata.layers[{layer!r}]" if layer is not None else "adata.X"
            check_values(get_matrix(adata, layer), where)
            return NetworkRows(adata, layer)
        # genes changed since setup: the model's genes, matched by name (a copy), as every job reads them
        x = self._job_input(adata, what="samples")
        rows = NetworkRows(AnnData(x), None)
        rows.totals = np.asarray(get_matrix(adata, layer).sum(1)).ravel()  # libraries: all stored genes
        return rows

    # -- training ------------------------------------------------------------------------------------------
    def train(
        self,
        max_steps: int | Mapping[str, int] | None = None,
        *,
        batch_size: int = 64,
        n_refs: tuple[int, int] = (5, 20),
        warmup_steps: int | None = None,
        accelerator: str | None = None,
        devices: int | list[int] | str = "auto",
        seed: int | None = None,
        train_size: float = 1.0,
        monitor_realism: bool | int = False,
        realism_metric: str = "mmd",
        calibrate_marginals: bool = True,
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
        max_steps
            Batches of episodes (steps) per modality's stage: ``{"sc": n, "bulk": m}`` (a modality left out
            keeps its default, 2000 for ``"sc"`` and 1000 for ``"bulk"``), or one number for every stage
            that runs. The first stage's budget includes its warm-up. (Formerly ``sc_steps=``/``bulk_steps=``,
            still accepted with a ``FutureWarning``.)
        batch_size
            Episodes per batch.
        n_refs
            Smallest and largest reference-set size drawn per episode.
        warmup_steps
            Discriminator-only steps at the start of the first stage.
        accelerator, devices
            Lightning options.
        seed
            Seed of the episode draws, the noise and the held-out split (``scsynth.settings.seed`` when ``None``).
        train_size
            Fraction of each (modality, group) that trains; the rest is held out (``model.held_out_``, sample
            names) for ``monitor_realism`` or your own checks. 1 (default): all samples train.
        monitor_realism
            Every this many generator steps (``True``: 50), generate one pseudo-sample per held-out sample (up
            to 1000), from 10 training samples of its group, and score them against the held-out samples
            (:class:`~scsynth.train.SampleRealismCheckpoint`); at the end of each adversarial stage the weights
            of its best check are restored (in place of those of the best episode-accuracy row). The checks go
            to ``histories_[stage]["realism_validation"]``, the best to ``realism_best_`` (plotted by
            :func:`scsynth.pl.realism_curve`). Needs at least 10 held-out samples per modality trained.
        realism_metric
            ``"mmd"`` or ``"rf_auroc"`` (see :class:`~scsynth.metrics.RealismScorer`).
        calibrate_marginals
            After training, fit a per-gene map of the generator's values (before normalisation) for each
            (modality, group) onto its training samples' distribution (:class:`~scsynth.nn.MarginalCalibration`;
            groups with fewer than 10 training samples are left as generated) that ``generate`` applies;
            ``False`` removes a calibration.
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
        max_steps = renamed_step_budgets(max_steps, trainer_kwargs)
        if not isinstance(calibrate_marginals, bool | np.bool_):
            raise TypeError(f"calibrate_marginals must be True or False, got {calibrate_marginals!r}.")
        budget = stage_budget(max_steps)
        # budgets the user set for one modality by name (an absent modality's is then worth a warning)
        chosen = set(max_steps) if isinstance(max_steps, Mapping) else set()
        batch_size = check_int(batch_size, "batch_size")
        self._check_has_data("train")
        seed = settings.seed if seed is None else int(seed)
        x = self._training_rows()  # rows are read and normalised per batch: no copy of the data, backed or not
        groups = np.asarray(self.adata_manager.get_from_registry(SCSYNTH_KEYS.LABELS_KEY)).ravel()
        modalities = self._modalities(self.adata)
        labels = self.adata.obs[self.labels_key].astype(str).to_numpy()
        train = training_mask(modalities, labels, train_size, seed)
        stages = self._check_stages(budget, warmup_steps, chosen, modalities[train], labels[train])
        adversarial = list(dict.fromkeys(m for m, _, _, _, extra in stages if extra.get("train_generator", True)))
        every = RNAGAN_MONITOR_EVERY if monitor_realism is True else monitor_every(monitor_realism)
        checks = realism_checks(x, modalities, labels, train, adversarial, every=every, metric=realism_metric,
                                seed=seed) if every else {}
        self.held_out_ = [str(n) for n in self.adata.obs_names[~train]]
        logger.info("%s", self.training_plan(budget, warmup_steps=warmup_steps, batch_size=batch_size))
        last: dict[str, str] = {}  # modality -> its last stage in this call (whose weights the model keeps)
        moved = False  # whether weights of this call are kept (a calibration fitted before then no longer fits)
        for modality, name, n_batches, epochs, extra in stages:
            rows = np.flatnonzero((modalities == modality) & train)
            pathways = self.module.features.pathways
            pathways.freeze("learned") if modality == "bulk" else pathways.unfreeze("learned")
            data = EpisodeBatches(x.take(rows), groups[rows], n_refs=n_refs, n_batches=n_batches,
                                  batch_size=batch_size, seed=seed + len(self.steps_))
            plan = RNAGANTrainingPlan(self.module, **{**(plan_kwargs or {}), **extra})
            guard = self._run_stage(name, plan, data, rows, epochs, accelerator, devices, seed,
                                    dict(trainer_kwargs), checks.get(modality) if name == modality else None)
            last[modality] = name
            n_steps = guard.kept_step if guard.diverged else data.n_batches * epochs  # steps behind the weights
            if n_steps:
                self.steps_[name], moved = self.steps_.get(name, 0) + n_steps, True
            totals = x.totals[rows]  # as stored, all genes (computed once, chunk by chunk when backed)
            self.train_libraries_[modality] = {g: totals[labels[rows] == g].astype(np.float32)
                                               for g in np.unique(labels[rows])}
            if guard.diverged:  # later stages do not run; trained = holds weights of some finite training
                self.module.eval()
                if moved:  # the kept weights are this call's: uncalibrated (weights of before keep theirs)
                    self.module.marginals.reset()
                self.is_trained_ = any(n > 0 for n in self.steps_.values())
                guard.raise_if_diverged()
        self.module.eval()
        fit_rnagan_marginals(self, x, train, seed) if calibrate_marginals else self.module.marginals.reset()
        self._warn_at_chance(last, budget, plan_kwargs)
