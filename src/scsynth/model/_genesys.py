"""GeneSys: developmental trajectories from a lineage blueprint (the user-facing model)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField, NumericalObsField

from .._constants import SCSYNTH_KEYS
from .._deprecation import renamed_kwarg
from .._settings import settings
from ..data import Blueprint, as_time_steps, check_expression, check_obs_key, get_matrix, read_blueprint
from ..data._matrix import BackedRows, as_anndata, is_backed
from ..data._validate import check_anndata, examples
from ..module import GeneSysModule
from ._base import ScsynthModelBase
from ._generated import check_n_obs, provenance, resolve_condition
from ._genesys_jobs import GeneSysJobsMixin
from ._genesys_train import GeneSysTrainMixin
from ._inputs import resolve_is_count_data

TIME_KEY = "time"


class GeneSys(GeneSysTrainMixin, GeneSysJobsMixin, ScsynthModelBase):
    """GeneSys (Hsu et al. 2025): a temporal VAE that generates developmental trajectories from a lineage blueprint.

    The blueprint (:func:`~scsynth.data.read_blueprint`) lists, for each trajectory (fate), the cell
    label to sample at each time step. Training trajectories are assembled per batch from random
    cells of those (label, time) groups. The model encodes each cell, runs a *causal* LSTM belief
    over the time steps (the belief at ``t`` never sees later cells), and learns a latent
    transition conditioned on the trajectory, a decoder (negative binomial with library size for
    counts; for normalised input such as FPKM a hurdle: zeros, and a Gaussian on ``log1p`` of the
    positive values) and a trajectory
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
        Size of the latent state (8: with more, on small data the latent also encodes each training
        cell's noise, and cells generated from the prior are under-dispersed; see :doc:`/models/genesys`).
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
    continuous_likelihood
        Decoder likelihood for values that are not counts (FPKM/TPM, normalised counts): ``"hurdle"``
        models each gene's zeros (``P(x = 0)`` per cell) and its positive values (a Gaussian on
        ``log1p``, truncated at 0); ``"normal"`` is a plain Gaussian on ``log1p`` values, whose cells
        have too few zeros and too low totals where the data have many zeros (see :doc:`/models/genesys`).

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

    #: what the model can do (``tl`` and the CLI check this, never the class name)
    jobs = ("generate", "embed", "classify", "rank_genes")
    #: what ``generate(condition=...)`` takes (``None``: no condition)
    condition_kind: str | None = "trajectory"
    _module_cls = GeneSysModule

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        *,
        blueprint: Blueprint | pd.DataFrame | str | os.PathLike | dict,
        fallback: Literal["raise", "neighbors"] = "raise",
        n_latent: int = 8,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.2,
        classification_weight: float = 50.0,
        context_dropout: float = 0.2,
        continuous_likelihood: Literal["hurdle", "normal"] = "hurdle",
    ) -> None:
        super().__init__(adata, registry)
        if continuous_likelihood not in ("hurdle", "normal"):
            raise ValueError(f"continuous_likelihood must be 'hurdle' or 'normal', got {continuous_likelihood!r}.")
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
                likelihood="nb" if self.is_count_data else continuous_likelihood,
                classification_weight=classification_weight,
                context_dropout=context_dropout,
            )
        self.blueprint_ = bp.to_dict()
        self.n_epochs_trained_ = 0
        self.best_validation_loss_ = float("inf")  # the lowest validation loss in the history
        self.best_loss_: dict = {}  # monitor and value of the kept weights
        self.library_pools_: list[list[np.ndarray]] | None = None
        kind = ("negative binomial on counts" if self.is_count_data else "hurdle (zeros + truncated Gaussian "
                "on log1p values)" if continuous_likelihood == "hurdle" else "Gaussian on log1p values")
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
            counts), dense or sparse. May be backed (``anndata.read_h5ad(path, backed="r")``) or an
            AnnCollection: cells are then read from disk batch by batch (see :doc:`/scale`).
        layer
            Layer holding the values; ``adata.X`` when ``None``.
        labels_key
            Column of ``adata.obs`` with the cell labels named in the blueprint (any strings).
        time_key
            Column of ``adata.obs`` with the time step of each cell: whole numbers from 1 (time 1 is
            the blueprint's first column).
        is_count_data
            Whether the values are raw counts (negative binomial likelihood, integer output). ``None``
            detects it (all values whole numbers), as every scsynth model does.

        Raises
        ------
        KeyError
            ``layer``, ``labels_key`` or ``time_key`` not found.
        ValueError
            Invalid values (NaN, negative, non-integer counts), missing labels, time steps that are not
            whole numbers from 1.
        """
        adata = as_anndata(adata)  # an AnnCollection: scvi's adapter, reading cells from its files
        check_anndata(adata)
        is_count_data = resolve_is_count_data(adata, layer, is_count_data)
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
        """The training cells' values: in memory as stored, or for backed data the cells on disk, read on demand."""
        layer = self.registry_["setup_args"].get("layer")
        if is_backed(self.adata):
            return BackedRows(self.adata, layer)
        x = get_matrix(self.adata, layer)
        return sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)

    # -- generation ------------------------------------------------------------------------------------
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
                raise ValueError(f"Unknown trajectory {item!r}; the blueprint has {examples(names, 20)}.")
        if not rows:
            raise ValueError(f"No trajectory requested (trajectories={trajectories!r}); pass names of {names} "
                             "or None.")
        return rows

    def generate(
        self,
        n_obs: int,
        *,
        condition: str | int | Sequence[str | int] | None = None,
        seed: int | None = None,
        **deprecated: Any,
    ) -> AnnData:
        """Generate whole trajectories by rolling the latent state forward from the prior.

        For every requested trajectory ``r``, ``n_obs`` latent paths are drawn
        (``z_1 ~ p(z | r)``, ``z_t ~ p(z_t | z_{t-1}, r, t)``) and each state is decoded to a cell. For
        count data each cell gets a library size drawn from the training cells of its blueprint
        (label, time) and negative binomial counts; otherwise values are drawn from the decoder's
        likelihood (by default zeros with their probability, else a positive ``log1p`` value), returned on
        the input's scale and, after ``train(calibrate_marginals=True)`` (the default), mapped gene by gene
        onto the training cells' distribution of positive values (zeros and the order of values kept).

        Parameters
        ----------
        n_obs
            Generated trajectories per blueprint row (each gives one cell per time step). Formerly
            ``n_per_trajectory``.
        condition
            Names (or row numbers) of the trajectories to generate; all when ``None``. (Formerly
            ``trajectories=``, still accepted with a ``FutureWarning``.)
        seed
            Seed (``scsynth.settings.seed`` when ``None``): the same seed gives identical cells.

        Returns
        -------
        AnnData with one cell per (generated trajectory, time step): ``.X`` (counts, or values on the
        input scale, sparse), ``layers["counts"]`` (count data), ``layers["normalized"]`` (expected
        expression, each cell summing to 1e4),
        ``obs["trajectory"]``, ``obs["time"]``, ``obs["label"]`` (from the blueprint),
        ``obs["trajectory_id"]``, ``uns["blueprint"]`` and ``uns["scsynth"]``.

        Examples
        --------
        >>> cells = model.generate(50, seed=1)  # 50 trajectories per blueprint row  # doctest: +SKIP
        >>> cells.obs.groupby(["trajectory", "time"]).size()  # doctest: +SKIP
        """
        n_obs = renamed_kwarg(deprecated, "n_per_trajectory", "n_obs", where="GeneSys.generate", current=n_obs)
        trajectories = resolve_condition(condition, deprecated, "trajectories", where="GeneSys.generate")
        self._check_trained()
        n_per_trajectory = check_n_obs(n_obs)
        seed = settings.seed if seed is None else int(seed)
        bp = self.blueprint
        rows = np.repeat(self._rows(trajectories), int(n_per_trajectory))
        n, n_times = len(rows), bp.n_times
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.module.eval()
        z = self.module.rollout(torch.as_tensor(rows), generator=gen)
        library = None
        if self.is_count_data:
            library = np.empty((n, n_times), dtype=np.float32)
            for r in np.unique(rows):
                for t in range(n_times):
                    library[rows == r, t] = rng.choice(self.library_pools_[r][t], size=int((rows == r).sum()))
        cells, lib_obs = self._generated_cells(z, library, generator=gen, rng=rng)
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
        uns = provenance(self, seed, {
            "n_obs": int(n_per_trajectory),
            "trajectories": [str(names[r]) for r in np.unique(rows)],
            "is_count_data": self.is_count_data,
            "n_epochs_trained": int(self.n_epochs_trained_),
        })
        out = cells.anndata(var_names=self.var_names_, obs=obs, uns=uns)
        out.uns["blueprint"] = bp.table.copy()
        out.uns["blueprint"].columns = out.uns["blueprint"].columns.astype(str)
        return out
