"""RNAGAN's generation, embedding and pathway activities."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .._settings import settings
from ..data._validate import check_anndata, check_int, examples
from ._generated import check_n_obs, generated_anndata, provenance, resolve_condition, scale_to_library
from ._rnagan_inputs import MODALITIES, NETWORK_LIBRARY_SIZE, draw_sets
from ._rnagan_marginals import is_calibrated, normalized_pseudo_samples, pseudo_expression
from ._rnagan_stratify import InputRows, dense_rows


class GenerateEmbedMixin:
    """:meth:`generate`, :meth:`get_latent_representation` and :meth:`pathway_activities` of
    :class:`~scsynth.model.RNAGAN`."""

    @torch.inference_mode()
    def get_latent_representation(
        self, adata: AnnData | None = None, *, layer: str | None = None, n_draws: int = 10, n_refs: int = 10,
        seed: int | None = None, batch_size: int = 2048,
    ) -> np.ndarray:
        """Per-sample vector: the discriminator's relation embedding against random training references.

        Averaged over ``n_draws`` reference sets of ``n_refs`` training samples (all groups mixed, drawn
        once and shared by every sample), so it places each sample relative to the same background
        ("vectorization"); each set and each sample is encoded once.
        """
        self._check_trained()
        self._check_has_data("draw background references")
        adata = self.adata if adata is None else check_anndata(adata)
        n_draws, n_refs = check_int(n_draws, "n_draws"), check_int(n_refs, "n_refs")
        batch_size = check_int(batch_size, "batch_size")
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        target_x = self._network_input(adata, layer)
        table = rng.integers(0, self.adata.n_obs, size=(n_draws, n_refs))
        used, local = np.unique(table, return_inverse=True)
        ref_x = dense_rows(InputRows(self, self.adata), used)  # only the references drawn
        choice = np.broadcast_to(np.arange(n_draws), (adata.n_obs, n_draws))
        latent = self._embed_table(target_x, ref_x, local.reshape(table.shape), choice, batch_size)
        return latent.astype(np.float32)

    def _embed_table(self, target_x, ref_x, table, choice, batch_size, *, factorised: bool | None = None):
        """Mean embedding of each target against its sets ``table[choice]`` (factorised or per episode)."""
        factorised = self._factorised if factorised is None else factorised
        disc = self.module.discriminator
        self.module.eval()
        parts = codes = None
        if factorised:
            parts = disc.first_layer_parts()
            codes = self._encode(lambda t: disc.target_codes(t, parts), target_x, batch_size)
        return self._score_table(disc, target_x, codes, parts, ref_x, table, choice, batch_size, logit=False)

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
        condition: str | None = None,
        seed: int | None = None,
        modality: Literal["sc", "bulk"] | None = None,
        n_refs: int = 10,
        **deprecated: Any,
    ) -> AnnData:
        """Pseudo-samples of one group: the generator applied to random reference sets of that group.

        Each sample gets its own reference set (``n_refs`` training samples of the group and
        modality) and noise; the profile is mapped gene by gene onto the group's training samples (after
        ``train(calibrate_marginals=True)``, the default; ``uns["scsynth"]["params"]["calibrated"]`` says
        whether it was), then scaled to a library size drawn from the same samples and, where the modality
        holds counts, rounded stochastically to integers.

        Parameters
        ----------
        n_obs
            Number of samples.
        condition
            The group (a value of ``obs[labels_key]``) to generate; required. (Formerly ``group=``, still
            accepted with a ``FutureWarning``.)
        seed
            Seed of the reference sets, noise, library sizes and rounding (``scsynth.settings.seed`` when
            ``None``).
        modality
            ``"sc"`` or ``"bulk"``: which training samples the reference sets and library sizes come from
            (default: the first modality trained).
        n_refs
            Reference samples per generated sample.

        Returns
        -------
        AnnData with ``.X`` (counts or values), ``layers["normalized"]`` (summing to 1e4),
        ``obs[labels_key]``, ``obs["modality"]``, ``uns["scsynth"]``.
        """
        group = resolve_condition(condition, deprecated, "group", where="RNAGAN.generate")
        self._check_trained()
        self._check_has_data("draw reference sets")
        n_obs, n_refs = check_n_obs(n_obs), check_int(n_refs, "n_refs")
        if group is None:
            known = sorted(next(iter(self.train_libraries_.values()), {}))
            raise TypeError(f"RNAGAN generates one group at a time: pass condition=<group> (on the command "
                            f"line: --condition GROUP), e.g. one of {examples(known, 10)}.")
        if not isinstance(group, str):
            raise TypeError(f"condition must be the name of one group (a str), got {type(group).__name__}.")
        seed = settings.seed if seed is None else int(seed)
        modality = modality or next(iter(self.train_libraries_))
        if modality not in self.train_libraries_:
            raise ValueError(f"The model was not trained on {modality!r} samples (trained: {list(self.train_libraries_)}).")
        libraries = self.train_libraries_[modality]
        if group not in libraries:
            raise ValueError(
                f"Unknown group {group!r} for {modality}; known: {examples(sorted(libraries), 20)}."
            )
        rng = np.random.default_rng(seed)
        modalities = self._modalities(self.adata)
        labels = self.adata.obs[self.labels_key].astype(str).to_numpy()
        members = np.flatnonzero((labels == group) & (modalities == modality))
        if getattr(self, "held_out_", None):  # samples held out of training stay out of the reference sets
            members = members[~np.isin(self.adata.obs_names[members], self.held_out_)]
        ref_x = self._network_input(self.adata[members])
        picks = draw_sets(rng, np.arange(len(members)), n_obs, n_refs)
        gen = torch.Generator().manual_seed(seed)
        self.module.eval()
        expr = pseudo_expression(self.module, ref_x, picks, gen)
        normalized = normalized_pseudo_samples(self, expr, modality, group, seed)
        library = rng.choice(libraries[group], size=n_obs)
        counts = self.is_count_data.get(modality, False)
        uniforms = torch.rand(normalized.shape, generator=gen) if counts else None
        values = scale_to_library(normalized, library, NETWORK_LIBRARY_SIZE, counts=counts, uniforms=uniforms)
        obs = pd.DataFrame({self.labels_key: pd.Categorical([group] * n_obs),
                            "modality": pd.Categorical([modality] * n_obs, categories=list(MODALITIES)),
                            "library_size": library}, index=[f"gen-{i}" for i in range(n_obs)])
        uns = provenance(self, seed, {"n_obs": n_obs, "group": group, "modality": modality, "n_refs": n_refs,
                                      "calibrated": is_calibrated(self, modality, group)})
        out = generated_anndata(values, normalized, var_names=self.var_names_, obs=obs, counts=counts, uns=uns)
        return out
