"""Behaviour shared by scsynth's models (atomic save, data-optional load) and its GANs (training in generator steps)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Self

import anndata
import numpy as np
import torch
from anndata import AnnData
from scvi.dataloaders import DataSplitter
from scvi.model._utils import use_distributed_sampler
from scvi.model.base import BaseModelClass

from .._settings import settings
from ..data._matrix import as_anndata
from ..data._validate import check_int
from ..train import REALISM_KEY, DivergenceGuard, GeneratorStepProgressBar, WGANGPTrainingPlan

# detect_count_data and resolve_is_count_data are re-exported: GRouNdGAN's model imports them from here
from ._inputs import (  # noqa: F401
    check_same_genes,
    detect_count_data,
    genes_by_name,
    resolve_is_count_data,
    split_indices,
)
from ._save_load import ADATA_FILE, read_model_dir, write_model_dir
from ._training import TrainingMixin, file_realism, realism_callbacks


def _gan_divergence_hint(plan: WGANGPTrainingPlan, kwargs_name: str) -> str:
    lr, lr_critic = float(plan.lr), float(plan.lr_critic)
    lower = lambda rate: min(rate / 10, 1e-4)  # noqa: E731 (1e-4 is the plan's default)
    rates = f"{{'lr': {lower(lr):g}" + ("" if lr == lr_critic else f", 'lr_critic': {lower(lr_critic):g}") + "}"
    was = f"lr={lr:g}" + ("" if lr == lr_critic else f", lr_critic={lr_critic:g}")
    return (f"Lower the learning rate, e.g. {kwargs_name}={rates} (it was {was}), or clip gradients with "
            f"{kwargs_name}={{'gradient_clip_val': 1.0}}.")


class ScsynthModelBase(TrainingMixin, BaseModelClass):
    """What every scsynth model shares: clear errors without data or training, atomic save, data-optional load."""

    #: init options added after a model could be saved, with the value that rebuilds models saved without them
    _legacy_init_defaults: dict[str, Any] = {}

    @staticmethod
    def _get_setup_method_args(**setup_locals) -> dict:
        """scvi-tools' setup record, keeping only the setup method's own parameters.

        Our setup methods validate (and may resolve, e.g. ``is_count_data``) before recording, so their
        ``locals()`` also hold working variables such as the expression matrix, which must not be saved.
        """
        record = BaseModelClass._get_setup_method_args(**setup_locals)
        method = getattr(setup_locals["cls"], record["setup_method_name"] or "setup_anndata")
        params = set(inspect.signature(method).parameters)
        record["setup_args"] = {k: v for k, v in record["setup_args"].items() if k in params}
        return record

    def __init__(self, adata: AnnData | None = None, registry: dict | None = None) -> None:
        super().__init__(as_anndata(adata), registry)  # an AnnCollection trains through its scvi adapter
        self.histories_: dict[str, dict] = {}

    # -- the one input path of every job ---------------------------------------------------------------
    def _job_input(self, adata: AnnData, layer: str | None = None, *, what: str = "cells", name: str = "adata"):
        """``adata``'s values of the model's genes, in the model's order, checked like training data.

        Every job that reads cells or samples (embed, classify, rank_genes, stratify, markers, pathway
        activities) goes through here: genes are matched by name (extra or reordered genes are fine), the
        values come from ``layer``, else the layer registered at setup when ``adata`` has it, else ``.X``,
        and NaN, infinite, negative or misnamed values raise before any work (:func:`genes_by_name`).
        """
        strict = layer is not None  # a layer the user names must exist; the training layer may be in .X
        layer = self.registry_["setup_args"].get("layer") if layer is None else layer
        return genes_by_name(adata, self.var_names_, layer, what=what, name=name, strict_layer=strict)

    # -- helpers ---------------------------------------------------------------------------------
    def _check_has_data(self, action: str) -> None:
        if self.adata is None:
            raise ValueError(
                f"This {type(self).__name__} was loaded without data, so it cannot {action}; "
                f"load it with {type(self).__name__}.load(dir_path, adata=<training AnnData>)."
            )

    def _check_trained(self) -> None:
        if not self.is_trained_:
            raise RuntimeError(f"This {type(self).__name__} is not trained yet; call model.train() first.")

    # -- save / load -----------------------------------------------------------------------------
    def save(
        self, dir_path: str | os.PathLike, *, overwrite: bool = False, save_anndata: bool = False, **kwargs: Any
    ) -> None:
        """Save the model atomically (written to a temporary directory, then moved into place).

        Parameters
        ----------
        dir_path
            Directory to write. It holds only tensors and JSON: ``model.safetensors`` (weights),
            ``attributes.json`` + ``arrays.safetensors`` (genes, history, registry and the model's inputs such
            as its GRN, blueprint or gene sets), ``scsynth.json`` (manifest) and, with ``save_anndata``,
            ``adata.h5ad``.
        overwrite
            Replace the model saved in an existing directory. Only the model's own files are replaced; a
            directory that holds no scsynth model is refused (``FileExistsError``), whatever ``overwrite``.
        save_anndata
            Also save the training AnnData, so ``load`` needs no ``adata``.
        """
        if kwargs:
            raise TypeError(f"Unexpected arguments to save(): {sorted(kwargs)}.")
        write_model_dir(self, dir_path, overwrite=overwrite, save_anndata=save_anndata)

    @classmethod
    def load(
        cls,
        dir_path: str | os.PathLike,
        adata: AnnData | None = None,
        *,
        accelerator: str = "auto",
        device: str | int = "auto",
        trust: bool = False,
    ) -> Self:
        """Load a saved model; the AnnData is optional (generation does not need it).

        Parameters
        ----------
        dir_path
            Directory written by ``save``.
        adata
            AnnData with exactly the model's genes, needed only to continue training. When ``None``
            the saved ``adata.h5ad`` is used if present, otherwise the model is loaded without data.
        accelerator, device
            Where to put the module (``"auto"`` picks a GPU when there is one).
        trust
            Also read models saved by scsynth 0.1, whose ``model.pt`` is a pickle that can run code when
            loaded. Only for files you made yourself; save the model again to convert it to the safe format.

        Returns
        -------
        The model, in eval mode, with its training history, library sizes and label categories.

        Examples
        --------
        >>> model = scsynth.model.ScGAN.load("scgan_pbmc")  # doctest: +SKIP
        >>> cells = model.generate(100)  # doctest: +SKIP
        """
        saved = read_model_dir(dir_path, trust=trust)
        attrs = dict(saved["attr_dict"])
        registry = attrs.pop("registry_")
        init_params = attrs.pop("init_params_")
        name = registry.get("model_name")
        if name != cls.__name__:
            raise ValueError(f"{dir_path} holds a {name}, not a {cls.__name__}; load it with that class.")
        saved_adata = Path(dir_path) / ADATA_FILE
        if adata is None and saved_adata.is_file():
            adata = anndata.read_h5ad(saved_adata)
        if adata is not None:
            check_same_genes(adata, np.asarray(saved["var_names"], dtype=str))
            cls.setup_anndata(adata, source_registry=registry, **registry["setup_args"])
        kwargs = {**init_params.get("non_kwargs", {})}
        for extra in init_params.get("kwargs", {}).values():
            kwargs.update(extra)
        for key, value in cls._legacy_init_defaults.items():  # options newer than the saved model
            kwargs.setdefault(key, value)
        model = cls(adata, registry=None if adata is not None else registry, **kwargs)
        for key, value in attrs.items():
            setattr(model, key, value)
        model.upgrade_loaded_attributes()
        model.module.load_state_dict(saved["model_state_dict"])
        use_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        model.to_device(device if device != "auto" else ("cuda" if use_gpu else "cpu"))
        model.module.eval()
        return model


class GANModelBase(ScsynthModelBase):
    """Training, saving and loading shared by scsynth's GAN models.

    Subclasses build ``self.module`` (a module following the :class:`~scsynth.train.WGANGPTrainingPlan`
    protocol) in ``__init__`` and may override :meth:`_on_trained`.
    """

    _training_plan_cls = WGANGPTrainingPlan
    _data_splitter_cls = DataSplitter
    _default_max_steps = 2000
    #: Model-specific defaults of the training plan; ``plan_kwargs`` given to ``train`` win.
    _default_plan_kwargs: dict[str, Any] = {}
    _min_cells_per_label = 5
    #: whether the model has a marginal calibration (``train(calibrate_marginals=...)``) and fits it by default
    _calibrates_marginals = False

    def __init__(self, adata: AnnData | None = None, registry: dict | None = None) -> None:
        super().__init__(adata, registry)
        #: generator step (of its ``train()`` call) of the best realism check, with ``monitor_realism``
        self.best_generator_step_: int | None = None
        #: per stage: the best realism check (metric, generator_step, value, control, every, restored)
        self.realism_best_: dict[str, dict[str, Any]] = {}

    # -- hooks ---------------------------------------------------------------------------------------
    def _on_trained(self, train_indices: np.ndarray) -> None:
        """Hook run after each ``train()`` with the training-cell indices."""

    def _fit_marginals(self, train_indices: np.ndarray, seed: int, *, fit: bool) -> None:
        """Fit (or, ``fit=False``, remove) the marginal calibration after a finite ``train()``."""

    # -- training --------------------------------------------------------------------------------
    def train(
        self,
        max_steps: int | None = None,
        *,
        max_epochs: int | None = None,
        batch_size: int = 128,
        train_size: float = 0.9,
        validation_size: float | None = None,
        validate_every: int = 100,
        accelerator: str | None = None,
        devices: int | list[int] | str = "auto",
        strategy: str | None = None,
        seed: int | None = None,
        early_stopping: bool = False,
        ema_decay: float | None = None,
        monitor_realism: bool | int = False,
        realism_metric: str = "mmd",
        calibrate_marginals: bool | None = None,
        plan_kwargs: dict[str, Any] | None = None,
        datasplitter_kwargs: dict[str, Any] | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        """Train with the WGAN-GP plan, budgeted in generator steps.

        Parameters
        ----------
        max_steps
            Number of generator steps (each follows ``n_critic`` critic steps). Training stops after
            exactly this many. When both this and ``max_epochs`` are ``None`` the model's default is used.
        max_epochs
            Train for a number of passes over the training cells instead.
        batch_size
            Cells per critic / generator step.
        train_size
            Fraction of cells used for training; the rest (or ``validation_size``) is for validation.
        validation_size
            Fraction of cells used for validation.
        validate_every
            Estimate the validation Wasserstein distance about every this many generator steps.
        accelerator
            Lightning accelerator (``scsynth.settings.accelerator`` when ``None``).
        devices
            Lightning devices; more than one runs DDP (``ddp_find_unused_parameters_true`` by default).
        strategy
            Lightning strategy.
        seed
            Seed of the split, the initial noise and the training draws (``scsynth.settings.seed`` when ``None``).
        early_stopping
            Stop when the validation loss stops improving: ``wasserstein_validation``, or
            ``generator_conditional_validation`` in GRouNdGAN's conditional stage 2 (Lightning
            ``EarlyStopping`` options go through ``early_stopping_patience`` etc. in ``trainer_kwargs``).
        ema_decay
            Keep an exponential moving average of the generator's weights with this decay (e.g. 0.999) and
            make it the generator at the end of training (:class:`~scsynth.train.GeneratorEMA`); ``None`` or
            0: off, the generator keeps its last weights.
        monitor_realism
            Every this many generator steps (``True``: 100), generate as many cells as there are validation
            cells (up to 1000) and score them against those held-out cells
            (:class:`~scsynth.train.RealismCheckpoint`); at the end the generator of the best check (the
            averaged one with ``ema_decay``) is restored. The checks go to ``histories_[stage]
            ["realism_validation"]``, the best to ``best_generator_step_`` and ``realism_best_`` (plotted by
            :func:`scsynth.pl.realism_curve`); ``n_generator_steps_`` then counts the steps behind the
            restored weights. Needs validation cells (``train_size < 1``).
        realism_metric
            Score of the checks: ``"mmd"`` (MMD² in a PCA space, lower is better) or ``"rf_auroc"`` (a small
            random forest, closer to 0.5 is better); see :class:`~scsynth.metrics.RealismScorer`.
        calibrate_marginals
            After training, fit a per-gene map of generated values onto the training cells' distribution
            (:class:`~scsynth.nn.MarginalCalibration`: zero fraction and positive quantiles, per label for
            cscGAN, on whole cells after GRouNdGAN's stage 2) that ``generate`` (and ``perturb``) apply.
            ``None``: the model's default (``True``); ``False`` removes a calibration.
        plan_kwargs
            Options of :class:`~scsynth.train.WGANGPTrainingPlan` (``lr``, ``n_critic``, ``lambda_gp``, ...),
            on top of the model's defaults.
        datasplitter_kwargs
            Options of :class:`scvi.dataloaders.DataSplitter`.
        **trainer_kwargs
            Options of :class:`scvi.train.Trainer` / :class:`lightning.pytorch.Trainer`.

        Raises
        ------
        scsynth.train.TrainingDivergedError
            A loss or weight became NaN or infinite. Training stops, the model keeps its last finite
            weights and the message says which step and what to change (see :doc:`/reliability`).
        """
        batch_size = check_int(batch_size, "batch_size")
        self._check_has_data("train")
        if calibrate_marginals is None:
            calibrate_marginals = self._calibrates_marginals
        elif not isinstance(calibrate_marginals, bool | np.bool_):
            raise TypeError(f"calibrate_marginals must be True, False or None, got {calibrate_marginals!r}.")
        elif calibrate_marginals and not self._calibrates_marginals:
            raise ValueError(f"{type(self).__name__} has no marginal calibration; drop calibrate_marginals=True.")
        if max_steps is None and max_epochs is None:
            max_steps = self._default_max_steps
        seed = settings.seed if seed is None else seed
        plan_kwargs = {**self._default_plan_kwargs, **(plan_kwargs or {}), "max_generator_steps": max_steps}
        n_critic = int(plan_kwargs.get("n_critic", 5))
        splits = split_indices(self.adata.n_obs, train_size, validation_size, seed, self._split_strata())
        n_train, n_val = len(splits[0]), len(splits[1])
        if n_train < batch_size:
            raise ValueError(
                f"Only {n_train} training cells for batch_size={batch_size}; lower batch_size (e.g. "
                f"{max(2, n_train // 2)}) or provide more cells."
            )
        self._check_training_cells(splits[0])
        batches_per_epoch = max(1, n_train // batch_size)
        if max_epochs is None:
            max_epochs = 10**9  # the plan stops after exactly max_steps generator steps
        if isinstance(devices, int) and devices > 1 and strategy is None:
            strategy = "ddp_find_unused_parameters_true"
        if strategy is not None:
            trainer_kwargs["strategy"] = strategy
        if n_val > 0:
            every = max(1, round(validate_every * n_critic / batches_per_epoch))
            trainer_kwargs.setdefault("check_val_every_n_epoch", every)
        elif early_stopping:
            raise ValueError("early_stopping needs validation cells; set train_size < 1.")
        if early_stopping:
            trainer_kwargs.setdefault("early_stopping_monitor", self._early_stopping_monitor())
            trainer_kwargs.setdefault("early_stopping_mode", "min")
        callbacks = list(trainer_kwargs.pop("callbacks", []))
        data_splitter = self._data_splitter_cls(
            self.adata_manager,
            batch_size=batch_size,
            external_indexing=splits,
            distributed_sampler=use_distributed_sampler(strategy or ""),
            drop_last=True,  # a last batch of 1 cell would break BatchNorm
            **(datasplitter_kwargs or {}),
        )
        if not self.is_trained_:
            self._before_first_training(np.asarray(splits[0]))
        plan = self._training_plan_cls(self.module, **plan_kwargs)
        ema, realism = realism_callbacks(self, splits, ema_decay=ema_decay, monitor_realism=monitor_realism,
                                         metric=realism_metric, seed=seed)
        stage, kwargs_name = self._training_stage()
        guard = DivergenceGuard(type(self).__name__, stage, hint=_gan_divergence_hint(plan, kwargs_name))
        was_trained = bool(self.is_trained_)
        self.run_training(
            self._history_stage(), training_plan=plan, data_splitter=data_splitter, max_epochs=max_epochs, seed=seed,
            accelerator=accelerator, devices=devices, progress_bar=GeneratorStepProgressBar(self._progress_title()),
            callbacks=[*callbacks, guard, *self._training_callbacks(), *(c for c in (ema, realism) if c)],
            early_stopping=early_stopping,
            history_extras=None if realism is None else lambda: {REALISM_KEY: realism.frame()}, **trainer_kwargs,
        )
        kept = guard.kept_generator_steps(plan.generator_steps)  # steps behind the kept weights
        if realism is not None:
            kept = file_realism(self, self._history_stage(), realism, kept)
        self._record_steps(kept)
        self._on_trained(np.asarray(self.train_indices))
        if self._calibrates_marginals and (not guard.diverged or guard.kept_step > 0):
            # a diverged run's weights from within the run are left uncalibrated; weights from before keep theirs
            self._fit_marginals(np.asarray(self.train_indices), seed, fit=calibrate_marginals and not guard.diverged)
        if guard.diverged:
            # trained = holds the weights of some finite training, from an earlier call or from this one
            self.is_trained_ = was_trained or guard.kept_step > 0
        guard.raise_if_diverged()

    def _early_stopping_monitor(self) -> str:
        """Validation metric that ``train(early_stopping=True)`` watches (lower is better)."""
        return "wasserstein_validation"

    def _training_stage(self) -> tuple[str | None, str]:
        """Stage named in a divergence error, and the ``train`` argument taking this stage's plan options."""
        return None, "plan_kwargs"

    def _progress_title(self) -> str:
        return f"Training {type(self).__name__}"

    def _history_stage(self) -> str:
        """Key of ``histories_`` this ``train()`` call's history goes under."""
        return self.default_stage

    def _record_steps(self, n_steps: int) -> None:
        """Count the generator steps of a finished ``train()``."""
        self.n_generator_steps_ = int(getattr(self, "n_generator_steps_", 0)) + n_steps

    def _check_training_cells(self, train_indices: np.ndarray) -> None:
        """Model-specific checks of the training split, before any training starts."""

    def _before_first_training(self, train_indices: np.ndarray) -> None:
        """Data-dependent initialisation, once, just before a model's first training (after every check)."""

    def _training_callbacks(self) -> list:
        """Model-specific Lightning callbacks of this ``train()`` call (built before it starts)."""
        return []

    def _split_strata(self) -> np.ndarray | None:
        """Per-cell group to stratify the train/validation split by (``None``: no stratification)."""
        return None
