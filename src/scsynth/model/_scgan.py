"""ScGAN / cscGAN: the user-facing model."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from lightning.pytorch.callbacks import Callback
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField

from .._constants import DEFAULT_LIBRARY_SIZE, SCSYNTH_KEYS
from .._settings import settings
from ..data import check_expression, check_label_sizes, check_obs_key, get_matrix
from ..data._matrix import as_anndata, is_backed, row_sums
from ..data._validate import check_anndata, check_int, examples
from ..module import ScGANModule
from ..nn import init_output_at_data
from ..train import CountNoiseWarmup
from ._base import GANModelBase
from ._generated import GeneratedCells, check_n_obs, provenance, resolve_condition
from ._inputs import resolve_is_count_data
from ._marginals import fit_count_units, fit_scgan_marginals
from ._profile_stats import profile_stats


class ScGAN(GANModelBase):
    """scGAN (Marouf et al. 2020): a Wasserstein GAN that simulates single cells; cscGAN with labels.

    The generator maps 128-d noise through ``Linear -> BatchNorm -> ReLU`` blocks (256, 512, 1024)
    to a ReLU output that is library-size normalised (LSN) to ``library_size``; the critic is
    ``genes -> 1024 -> 512 -> 256 -> 1``. With ``labels_key`` set in :meth:`setup_anndata` the model
    is the conditional cscGAN: conditional BatchNorm in the generator and a projection critic.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    registry
        Used by :meth:`load` to build a model without data; leave ``None``.
    n_latent
        Size of the noise vector.
    generator_hidden
        Widths of the generator's hidden blocks.
    critic_hidden
        Widths of the critic's hidden blocks.
    library_size
        Total per cell after normalisation (training and ``layers["normalized"]`` of generated cells).
    critic_input
        ``"none"`` (default) gives the critic the normalised values, as the original scGAN; ``"log1p"``
        gives it their log1p (the earlier default; less realistic cells in ``benchmarks/realism.py``).
    output_init
        ``"data"`` (default) starts the generator's output at the training cells' mean profile and zero
        fractions (and, for cscGAN, each label's mean profile through a per-label output bias), just before
        the first training (:func:`~scsynth.nn.init_output_at_data`); ``"random"`` keeps the original
        scGAN's random output layer (models saved before this option load with it).
    output_noise
        ``"poisson"`` (default): each generated cell is drawn as counts at a count unit from the training
        cells' (per label for cscGAN), picked by the cell's first latent value so the generator shapes the
        cell to its depth, in training and in generation (:class:`~scsynth.nn.CountNoise` with
        ``latent_levels``): the generator models each cell's expected profile and the per-gene noise is
        independent, as in real cells (far harder to tell from them on a ``log1p`` scale, and at the 240-s
        budget of ``benchmarks/realism.py`` on the published scale too). ``"none"``: generated cells are the
        generator's output, as the original scGAN (the earlier default; models saved before this option
        load with ``"none"``; ``"poisson"`` models saved before the latent tie keep independent units).
    output_noise_warmup
        With ``output_noise="poisson"``: the share of the first training's generator steps run without the
        draw (:class:`~scsynth.train.CountNoiseWarmup`); the generator first learns the cells' expected
        profiles from clean gradients, then trains on counts for the rest. 0 draws from the first step
        (models saved before this option load with 0). Generation always draws.

    Examples
    --------
    >>> import scsynth
    >>> adata = scsynth.data.pbmc68k_normalized()
    >>> scsynth.model.ScGAN.setup_anndata(adata, labels_key="bulk_labels", is_count_data=False)
    >>> model = scsynth.model.ScGAN(adata)
    >>> model.train(max_steps=200)  # doctest: +SKIP
    >>> cells = model.generate(500, condition="CD14+ Monocyte")  # doctest: +SKIP
    """

    #: what the model can do (``tl`` and the CLI check this, never the class name)
    jobs = ("generate",)
    #: what ``generate(condition=...)`` takes (``None``: no condition)
    condition_kind: str | None = "label"
    _module_cls = ScGANModule
    # scGAN used 1e-4 over 1e6 GPU steps; over 1e3-1e4 CPU steps 5e-4 with the original critic input gives far
    # more realistic cells (benchmarks/realism.py --steps 600, docs/models/scgan.md)
    _default_plan_kwargs = {"lr": 5e-4}
    _calibrates_marginals = True
    # models saved before these options: a random output layer, no count noise
    _legacy_init_defaults = {"output_init": "random", "output_noise": "none", "output_noise_warmup": 0.0}

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        *,
        n_latent: int = 128,
        generator_hidden: Sequence[int] = (256, 512, 1024),
        critic_hidden: Sequence[int] = (1024, 512, 256),
        library_size: float = DEFAULT_LIBRARY_SIZE,
        critic_input: str = "none",
        output_init: str = "data",
        output_noise: str = "poisson",
        output_noise_warmup: float = 0.5,
    ) -> None:
        super().__init__(adata, registry)
        if output_init not in ("data", "random"):
            raise ValueError(f"output_init must be 'data' or 'random', got {output_init!r}.")
        if output_noise not in ("none", "poisson"):
            raise ValueError(f"output_noise must be 'none' or 'poisson', got {output_noise!r}.")
        if isinstance(output_noise_warmup, bool) or not isinstance(output_noise_warmup, Real) or not (
            0 <= output_noise_warmup < 1
        ):
            raise ValueError(
                f"output_noise_warmup must be a fraction in [0, 1), got {output_noise_warmup!r}."
            )
        self.output_init = output_init
        self.output_noise = output_noise
        self.output_noise_warmup = float(output_noise_warmup)
        n_labels = int(self.summary_stats.n_labels)
        with torch.random.fork_rng():  # seeded weights without touching the caller's RNG
            torch.manual_seed(settings.seed)
            self.module = self._module_cls(
                int(self.summary_stats.n_vars),
                n_labels=n_labels,
                n_latent=n_latent,
                generator_hidden=tuple(generator_hidden),
                critic_hidden=tuple(critic_hidden),
                library_size=library_size,
                critic_input=critic_input,
                label_output_bias=output_init == "data",
            )
        if adata is not None:
            self.var_names_ = np.asarray(adata.var_names, dtype=str)
        self.train_library_sizes_: np.ndarray | None = None
        self.train_label_codes_: np.ndarray | None = None
        self.n_generator_steps_ = 0
        kind = f"conditional on {n_labels} labels (cscGAN)" if self.module.conditional else "unconditional"
        self._model_summary_string = (
            f"ScGAN ({kind}) with n_latent: {n_latent}, generator: {tuple(generator_hidden)}, "
            f"critic: {tuple(critic_hidden)}, library size: {library_size:g}."
        )
        self.init_params_ = self._get_init_params(locals())

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        labels_key: str | None = None,
        *,
        is_count_data: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Register an AnnData for :class:`ScGAN`.

        Parameters
        ----------
        adata
            Cells x genes. Counts (or non-negative normalised expression with ``is_count_data=False``),
            dense or sparse; each cell is library-size normalised inside the model.
            May be backed (``anndata.read_h5ad(path, backed="r")``) or an AnnCollection: cells are then
            read from disk batch by batch, never all at once (see :doc:`/scale`).
        layer
            Layer holding the values; ``adata.X`` when ``None``.
        labels_key
            Column of ``adata.obs`` with a cell label (cell type, condition); makes the model the
            conditional cscGAN.
        is_count_data
            Whether the values are raw counts; ``None`` detects it (all values whole numbers), as every
            scsynth model does. ``True`` with non-integer values raises; generated ``.X`` holds counts for
            count data, else values on the input's scale.

        Raises
        ------
        ValueError
            Empty AnnData, NaN/inf, negative values, non-integer counts, genes or cells with no
            expression, missing labels.
        KeyError
            ``layer`` or ``labels_key`` not found.
        """
        adata = as_anndata(adata)  # an AnnCollection: scvi's adapter, reading cells from its files
        check_anndata(adata)
        is_count_data = resolve_is_count_data(adata, layer, is_count_data)
        setup_method_args = cls._get_setup_method_args(**locals())
        check_expression(adata, layer=layer, is_count_data=is_count_data)
        if labels_key is not None:
            check_obs_key(adata, labels_key)
        fields = [
            # values were validated above; scvi's own count check fails on scipy sparse arrays
            LayerField(SCSYNTH_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(SCSYNTH_KEYS.LABELS_KEY, labels_key),
        ]
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    # -- registry accessors (work with or without data) ------------------------------------------
    @property
    def labels_key(self) -> str | None:
        """The ``obs`` column the model is conditioned on, or ``None``."""
        return self.registry_["setup_args"].get("labels_key")

    @property
    def label_categories(self) -> list[str]:
        """Label names in the order of the model's label codes."""
        state = self.registry_["field_registries"][SCSYNTH_KEYS.LABELS_KEY]["state_registry"]
        return [str(c) for c in state["categorical_mapping"]]

    @property
    def is_count_data(self) -> bool:
        """Whether the model was trained on raw counts (generated ``.X`` then holds integer counts)."""
        return bool(self.registry_["setup_args"].get("is_count_data", True))

    # -- training hooks --------------------------------------------------------------------------
    def _label_codes(self) -> np.ndarray:
        return np.asarray(self.adata_manager.get_from_registry(SCSYNTH_KEYS.LABELS_KEY)).ravel()

    def _split_strata(self) -> np.ndarray | None:
        return self._label_codes() if self.module.conditional else None

    def _check_training_cells(self, train_indices: np.ndarray) -> None:
        if self.module.conditional:
            names = np.asarray(self.label_categories)[self._label_codes()[train_indices]]
            check_label_sizes(names, min_cells=self._min_cells_per_label, key=self.labels_key)

    def _before_first_training(self, train_indices: np.ndarray) -> None:
        if self.output_noise == "poisson":
            fit_count_units(self, train_indices, settings.seed)
        if self.output_init != "data":
            return
        gen = self.module.generator
        codes = self._label_codes() if self.module.conditional else None
        mean, fraction, label_means = profile_stats(
            self.adata, self.registry_["setup_args"].get("layer"), train_indices,
            self.module.normalize.library_size, codes, gen.n_labels,
        )
        init_output_at_data(gen.output, mean, fraction, label_bias=gen.label_bias, label_means=label_means)

    def _training_callbacks(self) -> list[Callback]:
        if self.output_noise == "poisson" and self.output_noise_warmup > 0 and not self.is_trained_:
            return [CountNoiseWarmup(self.output_noise_warmup)]
        return []

    def _on_trained(self, train_indices: np.ndarray) -> None:
        layer = self.registry_["setup_args"].get("layer")
        if is_backed(self.adata):  # on disk: one pass in chunks of cells
            totals = row_sums(self.adata, layer)[train_indices].astype(np.float32)
        else:
            totals = np.asarray(get_matrix(self.adata, layer)[train_indices].sum(axis=1)).ravel().astype(np.float32)
        self.train_library_sizes_ = totals
        self.train_label_codes_ = self._label_codes()[train_indices].astype(np.int64)

    def _fit_marginals(self, train_indices: np.ndarray, seed: int, *, fit: bool) -> None:
        if fit:
            fit_scgan_marginals(self, train_indices, seed)
        else:
            self.module.marginals.reset()

    # -- generation ------------------------------------------------------------------------------
    def _calibrated(self, raw: torch.Tensor, codes: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Generator outputs normalised to the library size and mapped by the module's marginal calibration."""
        lib_size = self.module.normalize.library_size
        totals = raw.sum(1, keepdim=True, dtype=torch.float64)
        normalized = (raw * (lib_size / torch.where(totals > 0, totals, 1.0))).float()
        uniforms = torch.from_numpy(rng.random(tuple(raw.shape), dtype=np.float32))
        return self.module.marginals(normalized, torch.as_tensor(codes), uniforms=uniforms)

    def _resolve_labels(self, n_obs: int, labels, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Label code and library size for each generated cell."""
        codes_train, libs = self.train_label_codes_, self.train_library_sizes_
        if labels is None:
            pick = rng.integers(0, len(libs), size=n_obs)  # a training cell's label and depth, jointly
            return codes_train[pick], libs[pick]
        if not self.module.conditional:
            raise ValueError("This ScGAN is unconditional (no labels_key at setup); call generate() without a "
                             "condition.")
        if isinstance(labels, str):
            names = [labels] * n_obs
        elif isinstance(labels, Sequence | np.ndarray | pd.Series | pd.Index) and np.ndim(labels) == 1:
            names = [str(lab) for lab in labels]
        else:
            raise TypeError(f"condition must be a label name or a sequence of n_obs label names, got "
                            f"{type(labels).__name__}.")
        if len(names) != n_obs:
            raise ValueError(f"condition has {len(names)} labels but n_obs={n_obs}; pass one label or n_obs labels.")
        known = {name: i for i, name in enumerate(self.label_categories)}
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"Unknown labels {examples(unknown)} for obs[{self.labels_key!r}]; known: "
                             f"{examples(sorted(known), 20)}.")
        codes = np.array([known[n] for n in names], dtype=np.int64)
        out = np.empty(n_obs, dtype=np.float32)
        for code in np.unique(codes):
            pool = libs[codes_train == code]
            if len(pool) == 0:
                raise ValueError(f"Label {self.label_categories[code]!r} had no training cells; cannot generate it.")
            where = codes == code
            out[where] = rng.choice(pool, size=int(where.sum()))
        return codes, out

    def generate(
        self,
        n_obs: int,
        *,
        condition: str | Sequence[str] | None = None,
        seed: int | None = None,
        batch_size: int = 8192,
        **deprecated: Any,
    ) -> AnnData:
        """Generate cells.

        Each generated cell gets a library size drawn from the training cells (of its label), and
        its normalised profile is scaled to it; for count data the values are then stochastically
        rounded to integers (unbiased: ``E[count] = profile * library size``).

        Parameters
        ----------
        n_obs
            Number of cells.
        condition
            The label(s) to generate (cscGAN). ``None`` draws labels with their training frequencies; one
            label generates only that label; a sequence of ``n_obs`` labels sets each cell's label.
            (Formerly ``labels=``, still accepted with a ``FutureWarning``.)
        seed
            Seed of the noise, labels, library sizes and rounding (``scsynth.settings.seed`` when ``None``):
            the same seed gives identical cells.
        batch_size
            Cells per generator forward pass.

        Returns
        -------
        AnnData with ``.X`` (counts, or values on the input scale, sparse), ``layers["counts"]`` (count
        data only), ``layers["normalized"]`` (each cell summing to 1e4), ``obs[labels_key]``
        for a conditional model, ``obs["library_size"]``, ``var_names`` = training genes and
        ``uns["scsynth"]`` (model, version, seed, parameters).
        """
        labels = resolve_condition(condition, deprecated, "labels", where="ScGAN.generate")
        self._check_trained()
        n_obs = check_n_obs(n_obs)
        batch_size = check_int(batch_size, "batch_size")
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        codes, library = self._resolve_labels(n_obs, labels, rng)
        gen = torch.Generator().manual_seed(seed)
        lab_tensor = torch.as_tensor(codes) if self.module.conditional else None
        lib_size = self.module.normalize.library_size
        # each batch is sparsified as it is generated; the rounding uniforms continue rng's stream (after the
        # labels and library sizes), one per positive entry in cell order
        cells = GeneratedCells(n_obs, self.module.n_input, counts=self.is_count_data, model_name=type(self).__name__)
        # the calibration's uniforms come from their own stream: the rest is as without a calibration
        calibration_rng = np.random.default_rng([seed, 1]) if self.module.marginals.is_fitted else None

        def add(start: int, raw: torch.Tensor) -> None:
            if calibration_rng is not None:
                raw = self._calibrated(raw, codes[start:start + len(raw)], calibration_rng)
            cells.add_profiles(raw, library[start:start + len(raw)], rng=rng)

        self.module.sample(n_obs, lab_tensor, generator=gen, batch_size=batch_size, normalize=False, on_batch=add)
        obs = pd.DataFrame({"library_size": library}, index=[f"gen-{i}" for i in range(n_obs)])
        if self.module.conditional:
            obs.insert(0, self.labels_key, pd.Categorical.from_codes(codes, categories=self.label_categories))
        uns = provenance(self, seed, {
            "n_obs": n_obs,
            "labels_key": self.labels_key or "",
            "library_size": float(lib_size),
            "is_count_data": self.is_count_data,
            "n_generator_steps": int(self.n_generator_steps_),
            "calibrated": self.module.marginals.is_fitted,
        })
        return cells.anndata(var_names=self.var_names_, obs=obs, uns=uns)
