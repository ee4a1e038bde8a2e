"""GeneSys' training: the stratified cell split, cycles of Lightning training, library-size pools."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from .._settings import settings
from ..data._validate import check_int
from ..module._genesys import N_QUANTILES
from ..nn._marginal_calibration import zero_fraction_and_quantiles
from ..train import (
    REALISM_KEY,
    BestStateTracker,
    DivergenceGuard,
    EpochProgressBar,
    GeneSysTrainingPlan,
    TrajectoryBatches,
    TrajectoryDataModule,
    TrajectoryRealismCheckpoint,
)
from ..train._realism_checkpoint import seeded_eval
from ._training import MONITOR_CELLS, REFERENCE_CELLS, file_realism, monitor_every

#: training cells whose generated counterparts and values fit the marginal calibration
CALIBRATION_CELLS = 5000


def split_groups(groups: np.ndarray, train_size: float, validation_size: float, seed: int) -> list[np.ndarray]:
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


def cells_at_steps(pools: list[list[np.ndarray]], rows, rng: np.random.Generator) -> np.ndarray:
    """``(cell, row, step)`` of every cell in ``pools[row][step]`` for ``rows``, each cell once (a cell in several
    trajectories' steps, a progenitor or a fallback neighbour, at a random one of them), by cell index."""
    cells = [(c, r, t) for r in rows for t, pool in enumerate(pools[r]) for c in pool]
    if not cells:
        return np.empty((0, 3), dtype=np.int64)
    cells = np.asarray(cells, dtype=np.int64)[rng.permutation(len(cells))]
    return cells[np.unique(cells[:, 0], return_index=True)[1]]


def dense_rows(x, cells: np.ndarray) -> np.ndarray:
    """Rows ``cells`` (sorted) of a dense, sparse or backed matrix as a dense float32 array."""
    rows = x[cells]
    return np.asarray(rows.toarray() if sparse.issparse(rows) else rows, dtype=np.float32)


class GeneSysTrainMixin:
    """:meth:`train` of :class:`~scsynth.model.GeneSys` and its helpers."""

    def train(
        self,
        max_epochs: int = 200,
        *,
        batch_size: int = 128,
        train_size: float = 0.8,
        validation_size: float | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        n_epochs_kl_warmup: int | None = 50,
        lr_patience: int = 10,
        lr_factor: float = 0.5,
        lr_threshold: float = 0.0,
        monitor: str = "train_loss",
        early_stopping: bool | None = None,
        early_stopping_patience: int = 30,
        max_cycles: int = 1,
        gradient_clip_val: float = 5.0,
        accelerator: str | None = None,
        devices: int | list[int] | str = "auto",
        strategy: str | None = None,
        seed: int | None = None,
        init_decoder: bool = True,
        monitor_realism: bool | int = False,
        realism_metric: str = "mmd",
        calibrate_marginals: bool = True,
        plan_kwargs: dict[str, Any] | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        """Train on random blueprint trajectories; keep the weights of the epoch with the best ``monitor``.

        An epoch is ``ceil(n_train_cells / batch_size)`` batches of freshly drawn trajectories (as
        GeneSys). Validation trajectories are built only from validation cells (train and validation
        cells are disjoint, split stratified by label and time) and are the same every epoch. The
        learning rate halves after ``lr_patience`` epochs without a ``lr_threshold`` relative
        improvement of ``monitor``. By default that is the training loss and all ``max_epochs`` run, as
        in GeneSys: on small data the validation loss is lowest after a few epochs, long before the
        generated cells are realistic (see :doc:`/models/genesys`). With ``monitor="validation_loss"``
        the schedule, the kept weights and early stopping (after ``early_stopping_patience`` epochs
        without improvement) follow the validation loss. With ``max_cycles > 1`` training restarts from
        the best weights with a fresh optimiser and schedule (GeneSys' cycles) until a cycle no longer
        improves. Calling ``train`` again continues from the current weights (without KL warm-up).

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
            AdamW options (GeneSys: ``lr=1e-3``; 3e-3 reaches realistic cells in fewer steps).
        n_epochs_kl_warmup
            Epochs over which the KL weight rises from 0 to 1 (first training only).
        lr_patience, lr_factor, lr_threshold
            Plateau schedule (GeneSys' ``--patience``, ``--factor``, ``--threshold``; relative threshold).
            GeneSys' threshold of 0.05 (a 5% improvement every ``lr_patience`` epochs) halves the rate
            every few epochs when epochs are short (small data) and freezes training early; 0 halves it
            only when ``monitor`` has not improved at all.
        monitor
            ``"train_loss"`` (GeneSys) or ``"validation_loss"`` (needs validation cells): what the
            schedule follows and which epoch's weights are kept.
        early_stopping
            Stop when the validation loss stops improving; default: when ``monitor="validation_loss"``.
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
        init_decoder
            Before the first training, start the decoder of continuous data (not counts) at the training
            cells' per-gene distribution (:meth:`~scsynth.module.GeneSysModule.init_decoder`).
        monitor_realism
            Every this many training steps (batches; ``True``: 100), roll out as many cells as there are
            validation cells (up to 1000), at their blueprint (trajectory, time) steps, and score them against
            those cells (:class:`~scsynth.train.TrajectoryRealismCheckpoint`); at the end the weights of the
            best check are restored (in place of those of the best ``monitor`` epoch). The checks go to
            ``histories_["train"]["realism_validation"]`` and the best to ``realism_best_`` (plotted by
            :func:`scsynth.pl.realism_curve`). Needs validation cells and ``max_cycles=1``.
        realism_metric
            ``"mmd"`` or ``"rf_auroc"`` (see :class:`~scsynth.metrics.RealismScorer`).
        calibrate_marginals
            After training on continuous values (not counts), map generated positive values gene by gene onto
            the training cells' distribution (:meth:`~scsynth.module.GeneSysModule.calibrate`, fitted on
            cells generated at the training cells' blueprint steps; zeros and the order of values are kept).
            ``False`` removes a calibration.
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
        train_idx, val_idx, test_idx = split_groups(groups, train_size, validation_size, seed)
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
        if monitor not in ("train_loss", "validation_loss"):
            raise ValueError(f"monitor must be 'train_loss' or 'validation_loss', got {monitor!r}.")
        if monitor == "validation_loss" and not has_val:
            raise ValueError("monitor='validation_loss' needs validation trajectories; set train_size < 1 or "
                             "monitor='train_loss'.")
        early_stopping = monitor == "validation_loss" if early_stopping is None else early_stopping
        if early_stopping and not has_val:
            raise ValueError("early_stopping needs validation trajectories; set train_size < 1 or early_stopping=False.")
        x = self._matrix()  # backed data stays on disk: batches read their cells
        realism = self._realism_checkpoint(x, val_pools, val_rows if has_val else [], train_idx, monitor_realism,
                                           realism_metric, seed, max_cycles)
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
        if first_time and init_decoder:
            self._init_decoder(x, train_idx)
        previous = self.best_loss_ if self.best_loss_.get("monitor") == monitor else {}
        best_overall = float(previous.get("value", float("inf")))
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
            extra = [guard] if realism is None else [guard, realism]
            run_kwargs = {**trainer_kwargs, "callbacks": [*trainer_kwargs.get("callbacks", []), *extra]}
            if realism is not None:
                run_kwargs["history_extras"] = lambda: {REALISM_KEY: realism.frame()}
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
        if realism is not None and realism.restored:
            self.module.load_state_dict(realism.best_state)
        if realism is not None:
            file_realism(self, self.default_stage, realism, 0)
        self.best_loss_ = {"monitor": monitor, "value": float(best_overall)}
        if has_val and "validation_loss" in (self.history_ or {}):
            val = self.history_["validation_loss"].iloc[:, 0].to_numpy(dtype=float)
            self.best_validation_loss_ = float(np.nanmin(val)) if np.isfinite(val).any() else float("inf")
        self._store_library_pools(train_pools, x)
        if self.module.likelihood != "nb" and not guard.diverged:
            if calibrate_marginals:
                self._calibrate_marginals(x, train_pools, seed)
            else:
                self.module.marginal_model.zero_()
        self.module.eval()
        guard.raise_if_diverged()

    def _run(self, plan, data, tracker, max_epochs, early_stopping, patience, clip, accelerator, devices, seed,
             trainer_kwargs, cycle, max_cycles, has_val) -> None:
        title = "Training GeneSys" + (f" (cycle {cycle + 1}/{max_cycles})" if max_cycles > 1 else "")
        if has_val:
            trainer_kwargs.setdefault("check_val_every_n_epoch", 1)
        else:
            trainer_kwargs.setdefault("limit_val_batches", 0)
        if early_stopping:
            trainer_kwargs.setdefault("early_stopping_monitor", "validation_loss")
            trainer_kwargs.setdefault("early_stopping_patience", patience)
            trainer_kwargs.setdefault("early_stopping_mode", "min")
        self.run_training(
            self.default_stage, training_plan=plan, data_splitter=data, max_epochs=max_epochs, seed=seed,
            accelerator=accelerator, devices=devices, progress_bar=EpochProgressBar(title),
            callbacks=[*trainer_kwargs.pop("callbacks", []), tracker],
            early_stopping=early_stopping, gradient_clip_val=clip, **trainer_kwargs,
        )

    def _realism_checkpoint(self, x, val_pools, val_rows, train_idx, monitor_realism, metric, seed, max_cycles):
        """The realism checks of ``train(monitor_realism=...)`` (``None`` when off); raises before training."""
        every = monitor_every(monitor_realism)
        if not every:
            return None
        if max_cycles > 1:
            raise ValueError("monitor_realism keeps the weights of the best check of one run; use max_cycles=1.")
        rng = np.random.default_rng(seed)  # its own stream: which cells are checked does not move training's draws
        cells = cells_at_steps(val_pools, val_rows, rng)
        if len(cells) < 10:
            raise ValueError(f"monitor_realism scores generated cells against validation cells, and this split has "
                             f"{len(cells)} in complete validation trajectories; lower train_size (e.g. 0.8) so that "
                             "at least 10 cells are held out.")
        cells = cells[np.sort(rng.choice(len(cells), min(len(cells), MONITOR_CELLS), replace=False))]
        reference = np.sort(rng.choice(train_idx, min(len(train_idx), REFERENCE_CELLS), replace=False))
        return TrajectoryRealismCheckpoint(dense_rows(x, cells[:, 0]), cells[:, 1], cells[:, 2],
                                           reference=dense_rows(x, reference), counts=self.is_count_data,
                                           every=every, metric=metric, seed=seed)

    @torch.no_grad()
    def _calibrate_marginals(self, x, train_pools: list[list[np.ndarray]], seed: int) -> None:
        """Fit :meth:`~scsynth.module.GeneSysModule.calibrate` on training cells (continuous data only).

        Trajectories are rolled out and decoded at the training cells' blueprint steps (up to
        ``CALIBRATION_CELLS`` cells, each step repeated to at least as many generated cells), so generated
        and real cells have the same (trajectory, time) composition;
        each gene's positive values of both give its quantiles. A gene with fewer than 2 positive values
        on either side keeps its values.
        """
        module = self.module
        rng = np.random.default_rng(seed)
        cells = cells_at_steps(train_pools, range(len(train_pools)), rng)
        cells = cells[np.sort(rng.choice(len(cells), min(len(cells), CALIBRATION_CELLS), replace=False))]
        real = x[cells[:, 0]]  # as stored (sparse stays sparse): densified a block of genes at a time
        # at least CALIBRATION_CELLS generated cells (each training cell's step repeated): precise model quantiles
        steps = np.tile(cells[:, 1:], (-(-CALIBRATION_CELLS // len(cells)), 1))
        n_genes = module.n_input
        fake = np.empty((len(steps), n_genes), np.float32)
        chunk = max(1, 2**21 // n_genes)  # cells decoded at once: the sampler's temporaries stay small on wide data
        with seeded_eval(module, seed):
            states = module.states_at(steps[:, 0], steps[:, 1])
            for start in range(0, len(steps), chunk):
                params = module.decode(states[start:start + chunk], None)
                fake[start:start + chunk] = module.sample_values(params)[0].cpu().numpy()
        levels = np.linspace(0, 1, N_QUANTILES)
        identity = np.linspace(0, 1e9, N_QUANTILES)  # the same table on both sides: values unchanged
        tables = np.empty((2, n_genes, N_QUANTILES))
        for start in range(0, n_genes, 1024):
            block = slice(start, min(start + 1024, n_genes))
            rows = real[:, block]
            rows = np.asarray(rows.toarray() if sparse.issparse(rows) else rows, dtype=np.float32)
            _, model_q, n_model = zero_fraction_and_quantiles(fake[:, block], levels)
            _, data_q, n_data = zero_fraction_and_quantiles(rows, levels)
            fit = ((n_model >= 2) & (n_data >= 2))[:, None]
            tables[0, block], tables[1, block] = np.where(fit, model_q, identity), np.where(fit, data_q, identity)
        module.set_calibration(torch.as_tensor(tables[0]), torch.as_tensor(tables[1]))

    def _init_decoder(self, x, cells: np.ndarray, chunk: int = 4096) -> None:
        """Per-gene ``log1p`` statistics of the training cells, read ``chunk`` cells at a time (backed data)."""
        if self.module.likelihood == "nb":
            return
        hurdle = self.module.likelihood == "hurdle"
        n, total, squares = (np.zeros(x.shape[1]) for _ in range(3))
        cells = np.sort(cells)
        for i in range(0, len(cells), chunk):
            rows = x[cells[i:i + chunk]]
            y = np.log1p(np.asarray(rows.toarray() if sparse.issparse(rows) else rows, dtype=np.float64))
            n += (y > 0).sum(0) if hurdle else len(y)
            total += y.sum(0)  # zeros add nothing: the sums are over the positive values for the hurdle
            squares += (y**2).sum(0)
        mean = total / np.maximum(n, 1)
        var = (squares - n * mean**2) / np.maximum(n - 1, 1)
        sd = np.where(n > 1, np.sqrt(np.maximum(var, 0)), 1.0)  # a gene with < 2 positive cells: unit scale
        self.module.init_decoder(torch.as_tensor(mean), torch.as_tensor(sd),
                                 torch.as_tensor(1 - n / len(cells)) if hurdle else None)

    def _store_library_pools(self, train_pools: list[list[np.ndarray]], x) -> None:
        """Training-cell library sizes per (trajectory, step): generated cells draw their depth from these."""
        totals = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
        self.library_pools_ = [[totals[pool] for pool in row] for row in train_pools]
