"""GeneSys: developmental trajectories from a lineage blueprint (the user-facing model)."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField, NumericalObsField

from .._constants import SCSYNTH_KEYS, UNS_KEY
from .._settings import settings
from ..data import Blueprint, as_time_steps, check_expression, check_obs_key, get_matrix, read_blueprint
from ..data._validate import _examples, check_anndata, check_int
from ..module import GeneSysModule
from ..module._genesys import ENCODER_LIBRARY_SIZE
from ..train import (
    BestStateTracker,
    DivergenceGuard,
    EpochProgressBar,
    GeneSysTrainingPlan,
    TrajectoryBatches,
    TrajectoryDataModule,
)
from ..train._quiet import quiet_lightning
from ._base import ScsynthModelBase, genes_by_name
from ._generated import check_finite_output, provenance

TIME_KEY = "time"


def _split_groups(groups: np.ndarray, train_size: float, validation_size: float, seed: int) -> list[np.ndarray]:
    """Train / validation / test cells, stratified by group; a group of >= 2 cells keeps one validation cell."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for g in np.unique(groups):
        perm = rng.permutation(np.flatnonzero(groups == g))
        n = len(perm)
        n_val = int(np.floor(validation_size * n + 1e-9))  # 1 - 0.8 is 0.19999...: do not lose a cell to rounding
        if validation_size > 0 and n >= 2:
            n_val = max(n_val, 1)
        n_train = min(max(int(np.ceil(train_size * n - 1e-9)), 1), n - n_val)
        for part, chunk in zip(parts, (perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]),
                               strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]


class GeneSys(ScsynthModelBase):
    """GeneSys (Hsu et al. 2025): a temporal VAE that generates developmental trajectories from a lineage blueprint.

    The blueprint (:func:`~scsynth.data.read_blueprint`) lists, for each trajectory (fate), the cell
    label to sample at each time step. Training trajectories are assembled per batch from random
    cells of those (label, time) groups. The model encodes each cell, runs a *causal* LSTM belief
    over the time steps (the belief at ``t`` never sees later cells), and learns a latent
    transition conditioned on the trajectory, a decoder (negative binomial with library size for
    counts; a Gaussian on ``log1p`` values for normalised input such as FPKM) and a trajectory
    classifier on the belief; see :class:`~scsynth.module.GeneSysModule`.

    Compared with the original: the belief is forward-only (the original's bidirectional LSTM saw
    the future), generation is a true rollout from the prior rather than one-step predictions from
    real test trajectories, the ELBO and classification losses are summed (not a coin flip), every
    time pair enters the loss, counts keep their scale, and the blueprint, labels, genes and
    preprocessing are saved with the model.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    registry
        Used by :meth:`load` to build a model without data; leave ``None``.
    blueprint
        Lineage blueprint: a path to GeneSys' ``lineage.txt``, a DataFrame (rows = trajectories,
        columns = time steps) or a :class:`~scsynth.data.Blueprint`.
    fallback
        ``"raise"`` when a blueprint (label, time) has no cell; ``"neighbors"`` draws those steps from
        the same label at the previous and next time steps (the original's behaviour, made explicit).
    n_latent
        Size of the latent state.
    n_hidden
        Width of the encoder, belief LSTM and decoder (256 in GeneSys).
    n_layers
        Layers of the belief LSTM (2 in GeneSys).
    dropout_rate
        Dropout (0.2 in GeneSys).
    classification_weight
        Weight of the trajectory classification loss next to the per-trajectory ELBO.
    context_dropout
        Probability of hiding the past from the posterior in training (lets single cells be embedded).

    Examples
    --------
    >>> import scsynth
    >>> adata = scsynth.data.hsmm_myoblast()  # doctest: +SKIP
    >>> import pandas as pd
    >>> table = pd.DataFrame([["State1", "State2", "State2", "State2"], ["State1", "State3", "State3", "State3"]],
    ...                      index=["myotube", "mesenchymal"])
    >>> blueprint = scsynth.data.read_blueprint(table)
    >>> scsynth.model.GeneSys.setup_anndata(adata, labels_key="label", time_key="time")  # doctest: +SKIP
    >>> model = scsynth.model.GeneSys(adata, blueprint=blueprint)  # doctest: +SKIP
    >>> model.train(max_epochs=200, batch_size=32)  # doctest: +SKIP
    >>> cells = model.generate(100)  # doctest: +SKIP
    """

    _module_cls = GeneSysModule

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        *,
        blueprint: Blueprint | pd.DataFrame | str | os.PathLike | dict,
        fallback: Literal["raise", "neighbors"] = "raise",
        n_latent: int = 32,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.2,
        classification_weight: float = 50.0,
        context_dropout: float = 0.2,
    ) -> None:
        super().__init__(adata, registry)
        bp = Blueprint.from_dict(blueprint) if isinstance(blueprint, dict) else read_blueprint(blueprint)
        if fallback not in ("raise", "neighbors"):
            raise ValueError(f"fallback must be 'raise' or 'neighbors', got {fallback!r}.")
        if adata is not None:
            self.var_names_ = np.asarray(adata.var_names, dtype=str)
            # clear errors about the blueprint before any training
            self.blueprint_steps_ = bp.check_against(self._cell_labels(), self._cell_times(), fallback=fallback,
                                            where=f"obs[{self.labels_key!r}] / obs[{self.time_key!r}]")
        with torch.random.fork_rng():
            torch.manual_seed(settings.seed)
            self.module = self._module_cls(
                int(self.summary_stats.n_vars),
                bp.n_trajectories,
                bp.n_times,
                n_latent=n_latent,
                n_hidden=n_hidden,
                n_layers=n_layers,
                dropout_rate=dropout_rate,
                likelihood="nb" if self.is_count_data else "normal",
                classification_weight=classification_weight,
                context_dropout=context_dropout,
            )
        self.blueprint_ = bp.to_dict()
        self.n_epochs_trained_ = 0
        self.best_validation_loss_ = float("inf")
        self.library_pools_: list[list[np.ndarray]] | None = None
        kind = "negative binomial on counts" if self.is_count_data else "Gaussian on log1p values"
        self._model_summary_string = (
            f"GeneSys: {bp.n_trajectories} trajectories x {bp.n_times} time steps, n_latent: {n_latent}, "
            f"n_hidden: {n_hidden}, belief: {n_layers}-layer causal LSTM, likelihood: {kind}."
        )
        blueprint = self.blueprint_  # saved as plain data, so load() does not need the original file
        self.init_params_ = self._get_init_params(locals())

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        labels_key: str = "label",
        time_key: str = "time",
        *,
        is_count_data: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Register an AnnData for :class:`GeneSys`.

        Parameters
        ----------
        adata
            Cells x genes: raw counts, or non-negative normalised values (FPKM/TPM, normalised
            counts), dense or sparse.
        layer
            Layer holding the values; ``adata.X`` when ``None``.
        labels_key
            Column of ``adata.obs`` with the cell labels named in the blueprint (any strings).
        time_key
            Column of ``adata.obs`` with the time step of each cell: whole numbers from 1 (time 1 is
            the blueprint's first column).
        is_count_data
            Whether the values are raw counts (negative binomial likelihood, integer output). ``None``
            decides from the data: integer values mean counts.

        Raises
        ------
        KeyError
            ``layer``, ``labels_key`` or ``time_key`` not found.
        ValueError
            Invalid values (NaN, negative, non-integer counts), missing labels, time steps that are not
            whole numbers from 1.
        """
        x = get_matrix(adata, layer)
        if is_count_data is None:
            values = x.data if sparse.issparse(x) else np.asarray(x)
            is_count_data = bool(np.array_equal(values, np.round(values)))
        check_expression(adata, layer=layer, is_count_data=is_count_data)
        check_obs_key(adata, labels_key)
        as_time_steps(check_obs_key(adata, time_key, what="time_key"), key=time_key)
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(SCSYNTH_KEYS.X_KEY, layer, is_count_data=False),  # checked above (scvi's check fails on csr_array)
            CategoricalObsField(SCSYNTH_KEYS.LABELS_KEY, labels_key),
            NumericalObsField(TIME_KEY, time_key),
        ]
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    # -- registry accessors ------------------------------------------------------------------------
    @property
    def blueprint(self) -> Blueprint:
        """The lineage blueprint the model was built with."""
        return Blueprint.from_dict(self.blueprint_)

    @property
    def labels_key(self) -> str:
        return self.registry_["setup_args"]["labels_key"]

    @property
    def time_key(self) -> str:
        return self.registry_["setup_args"]["time_key"]

    @property
    def is_count_data(self) -> bool:
        """Whether the model was trained on raw counts (generated ``.X`` then holds integer counts)."""
        return bool(self.registry_["setup_args"]["is_count_data"])

    def _cell_labels(self) -> np.ndarray:
        return np.asarray(self.adata.obs[self.labels_key].astype(str))

    def _cell_times(self) -> np.ndarray:
        return as_time_steps(self.adata.obs[self.time_key], key=self.time_key)

    def _pools(self, cells: np.ndarray) -> list[list[np.ndarray]]:
        """``pools[r][t]``: which of ``cells`` may stand at step ``t`` (0-based) of blueprint row ``r``."""
        labels, times = self._cell_labels(), self._cell_times()
        bp = self.blueprint
        in_split = np.zeros(len(labels), dtype=bool)
        in_split[cells] = True
        pools = []
        for r in range(bp.n_trajectories):
            row = []
            for t in range(1, bp.n_times + 1):
                label, steps = self.blueprint_steps_[(r, t)]
                row.append(np.flatnonzero(in_split & (labels == label) & np.isin(times, steps)))
            pools.append(row)
        return pools

    def _matrix(self):
        x = get_matrix(self.adata, self.registry_["setup_args"].get("layer"))
        return sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)

    # -- training ------------------------------------------------------------------------------------
    def train(
        self,
        max_epochs: int = 200,
        *,
        batch_size: int = 128,
        train_size: float = 0.8,
        validation_size: float | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        n_epochs_kl_warmup: int | None = 50,
        lr_patience: int = 10,
        lr_factor: float = 0.5,
        lr_threshold: float = 0.05,
        early_stopping: bool | None = None,
        early_stopping_patience: int = 30,
        max_cycles: int = 1,
        gradient_clip_val: float = 5.0,
        accelerator: str | None = None,
        devices: int | list[int] | str = "auto",
        strategy: str | None = None,
        seed: int | None = None,
        plan_kwargs: dict[str, Any] | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        """Train on random blueprint trajectories; keep the weights of the best validation epoch.

        An epoch is ``ceil(n_train_cells / batch_size)`` batches of freshly drawn trajectories (as
        GeneSys). Validation trajectories are built only from validation cells (train and validation
        cells are disjoint, split stratified by label and time) and are the same every epoch. The
        learning rate halves after ``lr_patience`` epochs without a ``lr_threshold`` relative
        improvement of the validation loss; training stops early after ``early_stopping_patience``
        epochs without improvement. With ``max_cycles > 1`` training restarts from the best weights
        with a fresh optimiser and schedule (GeneSys' cycles) until a cycle no longer improves.
        Calling ``train`` again continues from the current weights (without KL warm-up).

        Parameters
        ----------
        max_epochs
            Epochs per cycle.
        batch_size
            Trajectories per batch.
        train_size, validation_size
            Fractions of each (label, time) group's cells for training and validation (the rest is
            a test set, ``model.test_indices``); ``validation_size`` defaults to ``1 - train_size``.
        lr, weight_decay
            AdamW options.
        n_epochs_kl_warmup
            Epochs over which the KL weight rises from 0 to 1 (first training only).
        lr_patience, lr_factor, lr_threshold
            Plateau schedule (GeneSys' ``--patience``, ``--factor``, ``--threshold``; relative threshold).
        early_stopping
            Stop when the validation loss stops improving; default: when there are validation cells.
        early_stopping_patience
            Epochs without improvement before stopping.
        max_cycles
            Restart cycles (GeneSys' ``--max_cycles``).
        gradient_clip_val
            Gradient norm clipping (5 in GeneSys).
        accelerator, devices, strategy
            Lightning options; ``devices > 1`` runs DDP, each rank drawing different trajectories.
        seed
            Seed of the split and the trajectory draws (``scsynth.settings.seed`` when ``None``).
        plan_kwargs
            More options of :class:`~scsynth.train.GeneSysTrainingPlan`.
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
        if max_cycles < 1 or max_epochs < 1:
            raise ValueError(f"max_epochs and max_cycles must be >= 1, got {max_epochs} and {max_cycles}.")
        validation_size = 1 - train_size if validation_size is None else validation_size
        if not 0 < train_size <= 1 or validation_size < 0 or train_size + validation_size > 1 + 1e-9:
            raise ValueError(f"Need 0 < train_size <= 1 and train_size + validation_size <= 1, got {train_size} and "
                             f"{validation_size}.")
        groups = pd.factorize(pd.Series(self._cell_labels()) + "\x00" + pd.Series(self._cell_times()).astype(str))[0]
        train_idx, val_idx, test_idx = _split_groups(groups, train_size, validation_size, seed)
        train_pools = self._pools(train_idx)
        empty = [(self.blueprint.trajectories[r], t + 1) for r, row in enumerate(train_pools)
                 for t, pool in enumerate(row) if len(pool) == 0]
        if empty:
            raise ValueError(f"No training cells for blueprint steps {empty[:10]} after the split; raise train_size "
                             "or use fallback='neighbors'.")
        val_pools = self._pools(val_idx)
        val_rows = [r for r, row in enumerate(val_pools) if all(len(p) for p in row)]
        if len(val_idx) and len(val_rows) < len(val_pools):
            skipped = [self.blueprint.trajectories[r] for r in range(len(val_pools)) if r not in val_rows]
            warnings.warn(f"Trajectories {skipped} lack validation cells at some time step; they are left out of "
                          "the validation loss.", UserWarning, stacklevel=2)
        has_val = len(val_idx) > 0 and len(val_rows) > 0
        early_stopping = has_val if early_stopping is None else early_stopping
        if early_stopping and not has_val:
            raise ValueError("early_stopping needs validation trajectories; set train_size < 1 or early_stopping=False.")
        monitor = "validation_loss" if has_val else "train_loss"
        x = self._matrix()
        n_batches = max(1, -(-len(train_idx) // batch_size))
        train_set = TrajectoryBatches(x, train_pools, range(len(train_pools)), n_batches=n_batches,
                                      batch_size=batch_size, seed=seed, start_pass=self.n_epochs_trained_)
        val_set = (TrajectoryBatches(x, val_pools, val_rows, n_batches=max(1, -(-len(val_idx) // batch_size)),
                                     batch_size=batch_size, seed=seed + 1, fixed=True) if has_val else None)
        if isinstance(devices, int) and devices > 1 and strategy is None:
            strategy = "ddp_find_unused_parameters_true"  # scvi's DecoderSCVI keeps heads a gene-wise NB does not use
        if strategy is not None:
            trainer_kwargs["strategy"] = strategy
        first_time = self.n_epochs_trained_ == 0
        best_overall = self.best_validation_loss_ if has_val else float("inf")
        best_state = copy.deepcopy(self.module.state_dict())
        was_trained = bool(self.is_trained_)
        for cycle in range(max_cycles):
            kwargs = {"lr": lr, "weight_decay": weight_decay, "lr_patience": lr_patience, "lr_factor": lr_factor,
                      "lr_threshold": lr_threshold, **(plan_kwargs or {})}
            if not (first_time and cycle == 0):
                kwargs["n_epochs_kl_warmup"] = kwargs["n_steps_kl_warmup"] = None  # warm-up happens once
            else:
                kwargs.setdefault("n_epochs_kl_warmup", n_epochs_kl_warmup)
            plan = GeneSysTrainingPlan(self.module, lr_scheduler_metric=monitor, **kwargs)
            tracker = BestStateTracker(monitor)
            train_set.passes = self.n_epochs_trained_
            data = TrajectoryDataModule(train_set, val_set, train_idx=train_idx, val_idx=val_idx, test_idx=test_idx)
            hint = (f"Lower the learning rate, e.g. train(lr={min(plan.lr / 10, 1e-3):g}) (it was {plan.lr:g}), "
                    f"or clip gradients harder, e.g. gradient_clip_val={(gradient_clip_val or 5) / 5:g}.")
            guard = DivergenceGuard("GeneSys", f"cycle {cycle + 1}/{max_cycles}" if max_cycles > 1 else None,
                                    hint=hint)
            run_kwargs = {**trainer_kwargs, "callbacks": [*trainer_kwargs.get("callbacks", []), guard]}
            self._run(plan, data, tracker, max_epochs, early_stopping, early_stopping_patience, gradient_clip_val,
                      accelerator, devices, seed + cycle, run_kwargs, cycle, max_cycles, has_val)
            self.n_epochs_trained_ += int(self.trainer.current_epoch)
            if guard.diverged:
                # keep the guard's last finite weights (at worst those the cycle started from); no more cycles
                self.is_trained_ = was_trained or cycle > 0 or guard.kept_step > 0
                break
            improved = tracker.state is not None and tracker.best < best_overall
            if improved:
                best_overall, best_state = tracker.best, tracker.state
            self.module.load_state_dict(best_state)
            if cycle > 0 and not improved:
                break
        self.best_validation_loss_ = float(best_overall)
        self.history_ = {k: v.apply(pd.to_numeric, errors="coerce") for k, v in (self.history_ or {}).items()}
        self._store_library_pools(train_pools, x)
        self.module.eval()
        guard.raise_if_diverged()

    def _run(self, plan, data, tracker, max_epochs, early_stopping, patience, clip, accelerator, devices, seed,
             trainer_kwargs, cycle, max_cycles, has_val) -> None:
        import lightning
        from scvi.train import TrainRunner

        lightning.seed_everything(seed, verbose=False)
        callbacks = [*trainer_kwargs.pop("callbacks", []), tracker]
        show = trainer_kwargs.pop("enable_progress_bar", settings.progress)
        if show:
            title = "Training GeneSys" + (f" (cycle {cycle + 1}/{max_cycles})" if max_cycles > 1 else "")
            callbacks.append(EpochProgressBar(title))
        if has_val:
            trainer_kwargs.setdefault("check_val_every_n_epoch", 1)
        else:
            trainer_kwargs.setdefault("limit_val_batches", 0)
        if early_stopping:
            trainer_kwargs.setdefault("early_stopping_monitor", "validation_loss")
            trainer_kwargs.setdefault("early_stopping_patience", patience)
            trainer_kwargs.setdefault("early_stopping_mode", "min")
        with quiet_lightning():
            runner = TrainRunner(
                self, training_plan=plan, data_splitter=data, max_epochs=max_epochs,
                accelerator=accelerator or settings.accelerator, devices=devices, early_stopping=early_stopping,
                gradient_clip_val=clip, enable_progress_bar=show, simple_progress_bar=False,
                enable_model_summary=False, callbacks=callbacks, **trainer_kwargs,
            )
            runner()

    def _store_library_pools(self, train_pools: list[list[np.ndarray]], x) -> None:
        """Training-cell library sizes per (trajectory, step): generated cells draw their depth from these."""
        totals = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
        self.library_pools_ = [[totals[pool] for pool in row] for row in train_pools]

    # -- jobs ------------------------------------------------------------------------------------------
    def _rows(self, trajectories: str | int | Sequence[str | int] | None) -> list[int]:
        names = self.blueprint.trajectories
        if trajectories is None:
            return list(range(len(names)))
        items = [trajectories] if isinstance(trajectories, str | int | np.integer) else list(trajectories)
        rows = []
        for item in items:
            if isinstance(item, int | np.integer) and not isinstance(item, bool) and 0 <= item < len(names):
                rows.append(int(item))
            elif str(item) in names:
                rows.append(names.index(str(item)))
            else:
                raise ValueError(f"Unknown trajectory {item!r}; the blueprint has {_examples(names, 20)}.")
        if not rows:
            raise ValueError(f"No trajectory requested (trajectories={trajectories!r}); pass names of {names} "
                             "or None.")
        return rows

    def generate(
        self,
        n_per_trajectory: int,
        *,
        trajectories: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> AnnData:
        """Generate whole trajectories by rolling the latent state forward from the prior.

        For every requested trajectory ``r``, ``n_per_trajectory`` latent paths are drawn
        (``z_1 ~ p(z | r)``, ``z_t ~ p(z_t | z_{t-1}, r, t)``) and each state is decoded to a cell. For
        count data each cell gets a library size drawn from the training cells of its blueprint
        (label, time) and negative binomial counts; otherwise values are drawn on the ``log1p`` scale
        and returned on the input's scale.

        Parameters
        ----------
        n_per_trajectory
            Generated trajectories per blueprint row.
        trajectories
            Names (or row numbers) of the trajectories to generate; all when ``None``.
        seed
            Seed (``scsynth.settings.seed`` when ``None``): the same seed gives identical cells.

        Returns
        -------
        AnnData with one cell per (generated trajectory, time step): ``.X`` (counts, or values on the
        input scale, sparse), ``layers["counts"]`` (count data), ``layers["normalized"]`` (expected
        expression: each cell summing to 1e4 for counts, ``expm1`` of the mean otherwise),
        ``obs["trajectory"]``, ``obs["time"]``, ``obs["label"]`` (from the blueprint),
        ``obs["trajectory_id"]``, ``uns["blueprint"]`` and ``uns["scsynth"]``.

        Examples
        --------
        >>> cells = model.generate(50, seed=1)  # doctest: +SKIP
        >>> cells.obs.groupby(["trajectory", "time"]).size()  # doctest: +SKIP
        """
        self._check_trained()
        if isinstance(n_per_trajectory, bool) or not isinstance(n_per_trajectory, int | np.integer) \
                or n_per_trajectory < 1:
            raise ValueError(f"n_per_trajectory must be a positive integer, got {n_per_trajectory!r}.")
        seed = settings.seed if seed is None else int(seed)
        bp = self.blueprint
        rows = np.repeat(self._rows(trajectories), int(n_per_trajectory))
        n, n_times = len(rows), bp.n_times
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.module.eval()
        z = self.module.rollout(torch.as_tensor(rows), generator=gen)
        if self.is_count_data:
            library = np.empty((n, n_times), dtype=np.float32)
            for r in np.unique(rows):
                for t in range(n_times):
                    library[rows == r, t] = rng.choice(self.library_pools_[r][t], size=int((rows == r).sum()))
            with torch.inference_mode():
                params = self.module.decode(z, torch.as_tensor(library).to(z.device))
            rate = params["rate"].cpu().numpy().reshape(n * n_times, -1).astype(np.float64)
            theta = params["theta"].cpu().numpy().astype(np.float64)
            values = rng.poisson(rng.gamma(theta, rate / theta)).astype(np.float32)
            normalized = params["scale"].cpu().numpy().reshape(n * n_times, -1) * ENCODER_LIBRARY_SIZE
            lib_obs = library.ravel()
        else:
            with torch.inference_mode():
                params = self.module.decode(z, None)
            mean = params["mean"].cpu().numpy().reshape(n * n_times, -1)
            scale = params["scale"].cpu().numpy()
            values = np.clip(np.expm1(mean + scale * rng.standard_normal(mean.shape)), 0, None).astype(np.float32)
            normalized = np.clip(np.expm1(mean), 0, None)
            lib_obs = values.sum(1)
        names = np.asarray(bp.trajectories)
        traj = np.repeat(rows, n_times)
        steps = np.tile(np.arange(1, n_times + 1), n)
        labels = bp.table.to_numpy()[traj, steps - 1].astype(str)
        obs = pd.DataFrame({
            "trajectory": pd.Categorical(names[traj], categories=bp.trajectories),
            "time": steps.astype(np.int64),
            "label": pd.Categorical(labels, categories=bp.labels),
            "trajectory_id": np.repeat([f"traj-{i}" for i in range(n)], n_times),
            "library_size": lib_obs.astype(np.float32),
        }, index=[f"gen-{i}" for i in range(n * n_times)])
        check_finite_output(values, type(self).__name__)
        x = sparse.csr_matrix(values)
        out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(self.var_names_, dtype=str)))
        if self.is_count_data:
            out.layers["counts"] = x.copy()
        out.layers["normalized"] = sparse.csr_matrix(normalized.astype(np.float32))
        out.uns["blueprint"] = bp.table.copy()
        out.uns["blueprint"].columns = out.uns["blueprint"].columns.astype(str)
        out.uns[UNS_KEY] = provenance(self, seed, {
            "n_per_trajectory": int(n_per_trajectory),
            "trajectories": [str(names[r]) for r in np.unique(rows)],
            "is_count_data": self.is_count_data,
            "n_epochs_trained": int(self.n_epochs_trained_),
        })
        return out

    def _input_matrix(self, adata: AnnData | None, layer: str | None) -> np.ndarray | sparse.csr_matrix:
        """Cells x model genes (matched by name) of ``adata`` (the training data when ``None``)."""
        if adata is None:
            self._check_has_data("embed or classify its own cells")
            return self._matrix()
        strict = layer is not None  # a layer the user names must exist; the training layer may be in .X
        layer = self.registry_["setup_args"].get("layer") if layer is None and adata is not self.adata else layer
        x = genes_by_name(adata, self.var_names_, layer, strict_layer=strict)
        return sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)

    def _per_cell(self, fn, x, batch_size: int) -> np.ndarray:
        self.module.eval()
        out = []
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start:start + batch_size]
            chunk = chunk.toarray() if sparse.issparse(chunk) else chunk
            out.append(fn(torch.as_tensor(np.asarray(chunk, dtype=np.float32))).cpu().numpy())
        return np.concatenate(out)

    def get_latent_representation(
        self, adata: AnnData | None = None, *, layer: str | None = None, batch_size: int = 1024
    ) -> np.ndarray:
        """Latent state of each cell on its own (posterior mean without trajectory context).

        Parameters
        ----------
        adata
            Cells with the model's genes (matched by name), on the training data's scale; the
            training data when ``None``.
        layer
            Layer of ``adata`` to read (the training layer when present, else ``.X``).
        batch_size
            Cells per forward pass.
        """
        self._check_trained()
        batch_size = check_int(batch_size, "batch_size")
        return self._per_cell(self.module.embed, self._input_matrix(adata, layer), batch_size)

    def classify(
        self,
        adata: AnnData | None = None,
        *,
        layer: str | None = None,
        key_added: str = "genesys_trajectory",
        batch_size: int = 1024,
    ) -> pd.DataFrame:
        """Trajectory probabilities of each cell, from the classifier on the cell's own belief.

        A cell whose label and time are shared by several trajectories (a progenitor) gets its
        probability spread over them.

        Parameters
        ----------
        adata
            Cells with the model's genes; written to ``obsm[key_added + "_probabilities"]`` (a
            DataFrame, one column per trajectory) and ``obs[key_added]`` (the most likely one).
            The training data when ``None`` (then nothing is written).
        layer, batch_size
            As in :meth:`get_latent_representation`.
        key_added
            Where to write.

        Returns
        -------
        The probabilities, cells x trajectories.
        """
        self._check_trained()
        batch_size = check_int(batch_size, "batch_size")
        probs = self._per_cell(self.module.classify_cells, self._input_matrix(adata, layer), batch_size)
        names = self.blueprint.trajectories
        target = self.adata if adata is None else adata
        frame = pd.DataFrame(probs, index=target.obs_names, columns=names)
        if adata is not None:
            adata.obsm[f"{key_added}_probabilities"] = frame
            adata.obs[key_added] = pd.Categorical(np.asarray(names)[probs.argmax(1)], categories=names)
        return frame

    def trajectory_accuracy(self, cells: np.ndarray | None = None, *, n_trajectories: int = 200,
                            seed: int | None = None) -> pd.DataFrame:
        """Classifier accuracy on trajectories assembled from ``cells`` (default: the test cells), per time step.

        Returns a table with the accuracy after seeing steps ``1..t`` for each ``t`` (the belief
        grows along the trajectory, so accuracy should rise as the fates diverge). Trajectories that
        cannot be assembled from ``cells`` (no cell at some step) are left out with a warning; the
        evaluated ones are in ``table.attrs["trajectories"]``.
        """
        self._check_trained()
        self._check_has_data("assemble trajectories")
        n_trajectories = check_int(n_trajectories, "n_trajectories")
        cells = np.asarray(self.test_indices if cells is None else cells)
        pools = self._pools(cells)
        rows = [r for r, row in enumerate(pools) if all(len(p) for p in row)]
        if not rows:
            raise ValueError("No trajectory has a cell at every time step among these cells.")
        names = self.blueprint.trajectories
        if len(rows) < len(names):
            skipped = [names[r] for r in range(len(names)) if r not in rows]
            warnings.warn(f"Trajectories {skipped} have no cell at some time step among these cells; the accuracy "
                          f"is over {[names[r] for r in rows]} only (chance at a shared step: 1/{len(rows)}).",
                          UserWarning, stacklevel=2)
        seed = settings.seed if seed is None else int(seed)
        batches = TrajectoryBatches(self._matrix(), pools, rows, n_batches=1, batch_size=n_trajectories, seed=seed)
        batch = batches.draw(np.random.default_rng(seed))
        self.module.eval()
        probs = self.module.classify_paths(batch["X"]).cpu().numpy()
        truth = batch["trajectory"].numpy()
        acc = (probs.argmax(-1) == truth[:, None]).mean(0)
        out = pd.DataFrame({"time": np.arange(1, probs.shape[1] + 1), "accuracy": acc,
                            "n_trajectories": n_trajectories})
        out.attrs["trajectories"] = [names[r] for r in rows]
        return out

    def rank_genes(
        self,
        adata: AnnData | None = None,
        *,
        n_samples: int = 200,
        n_top: int | None = None,
        seed: int | None = None,
        key_added: str = "genesys_rank_genes",
    ) -> pd.DataFrame:
        """Genes that drive each trajectory and each time transition, scored through the model.

        Two kinds of scores (GeneSys' gene-prioritisation use):

        - ``"trajectory"``: how much each gene pushes the classifier towards the trajectory — gradient
          x input of the log-odds ``log p(r) - log(1 - p(r))`` of trajectory ``r`` given the whole
          trajectory, with respect to the cells' log-normalised expression, averaged over ``n_samples`` training trajectories and their time steps
          (positive: evidence *for* the trajectory).
        - ``"transition"``: the model's expected log2 fold change of each gene (``log1p`` of expression
          normalised to 1e4 for counts, of the values otherwise) from step ``t`` to ``t + 1`` along
          ``n_samples`` prior rollouts of the trajectory (positive: rises).

        Parameters
        ----------
        adata
            Where to write the table (``uns[key_added]``); nothing is written when ``None``.
        n_samples
            Trajectories sampled per trajectory for each score.
        n_top
            Keep the top ``n_top`` genes of each (trajectory, kind, transition), by score for
            ``"trajectory"`` and by absolute score for ``"transition"``; all genes when ``None``.
        seed
            Seed (``scsynth.settings.seed`` when ``None``).
        key_added
            Key of ``adata.uns``.

        Returns
        -------
        Tidy table with columns ``trajectory``, ``kind``, ``time_from``, ``time_to``, ``gene``,
        ``score``, ``rank`` (1 = strongest), sorted by trajectory, kind, transition and rank.

        Examples
        --------
        >>> table = model.rank_genes(n_top=20)  # doctest: +SKIP
        >>> table.query("kind == 'transition' and time_from == 1")  # doctest: +SKIP
        """
        self._check_trained()
        self._check_has_data("rank genes (it draws training trajectories)")
        if adata is not None:
            check_anndata(adata)
        n_samples = check_int(n_samples, "n_samples")
        if n_top is not None:
            n_top = check_int(n_top, "n_top")
        seed = settings.seed if seed is None else int(seed)
        bp, module = self.blueprint, self.module
        module.eval()
        genes = np.asarray(self.var_names_)
        pools = self._pools(np.asarray(self.train_indices))
        x = self._matrix()
        frames = []
        for r, name in enumerate(bp.trajectories):
            draw = TrajectoryBatches(x, pools, [r], n_batches=1, batch_size=n_samples, seed=seed)
            batch = draw.draw(np.random.default_rng([seed, r]))
            attribution = self._trajectory_attribution(batch["X"], r)
            frames.append(self._ranked(name, "trajectory", 1, bp.n_times, genes, attribution, by_abs=False))
            log_expr = self._rollout_log_expression(r, n_samples, seed)
            for t in range(bp.n_times - 1):
                lfc = (log_expr[t + 1] - log_expr[t]) / np.log(2)
                frames.append(self._ranked(name, "transition", t + 1, t + 2, genes, lfc, by_abs=True))
        table = pd.concat(frames, ignore_index=True)
        if n_top is not None:
            table = table[table["rank"] <= n_top].reset_index(drop=True)
        table["trajectory"] = pd.Categorical(table["trajectory"], categories=bp.trajectories)
        table["kind"] = pd.Categorical(table["kind"], categories=["trajectory", "transition"])
        if adata is not None:
            adata.uns[key_added] = table
        return table

    def _trajectory_attribution(self, x: torch.Tensor, row: int) -> np.ndarray:
        module = self.module
        device = next(module.parameters()).device
        with torch.enable_grad():
            log_x = module.encoder_input(x.to(device)).detach().requires_grad_(True)
            e = module.encoder(log_x.reshape(-1, module.n_input)).reshape(*log_x.shape[:2], -1)
            logits = module.classifier(module.beliefs(e))[:, -1]
            others = torch.cat([logits[:, :row], logits[:, row + 1:]], 1)
            # log-odds of the trajectory: unlike log p, its gradient does not vanish once p is close to 1
            log_odds = logits[:, row] - torch.logsumexp(others, 1)
            (grad,) = torch.autograd.grad(log_odds.sum(), log_x)
        return (grad * log_x).mean((0, 1)).detach().cpu().numpy()

    def _rollout_log_expression(self, row: int, n_samples: int, seed: int) -> np.ndarray:
        """Mean log1p expected expression per time step (time, genes) over prior rollouts of one trajectory."""
        gen = torch.Generator().manual_seed(seed + row)
        z = self.module.rollout(torch.full((n_samples,), row, dtype=torch.long), generator=gen)
        with torch.inference_mode():
            params = self.module.decode(z, None)
        if self.is_count_data:
            log_expr = torch.log1p(params["scale"] * ENCODER_LIBRARY_SIZE)
        else:
            log_expr = params["mean"].clamp_min(0)
        return log_expr.mean(0).cpu().numpy()

    @staticmethod
    def _ranked(trajectory: str, kind: str, time_from: int, time_to: int, genes: np.ndarray, score: np.ndarray,
                *, by_abs: bool) -> pd.DataFrame:
        order = np.argsort(-(np.abs(score) if by_abs else score), kind="stable")
        return pd.DataFrame({
            "trajectory": trajectory, "kind": kind, "time_from": time_from, "time_to": time_to,
            "gene": genes[order], "score": score[order].astype(np.float64), "rank": np.arange(1, len(order) + 1),
        })
