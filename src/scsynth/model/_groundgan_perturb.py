"""GRouNdGAN's in-silico TF perturbation (``perturb``) and the checks and ``var`` it shares with ``generate``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .._settings import settings
from ..data._validate import check_int
from ._generated import check_n_obs, generated_anndata, provenance, scale_to_library
from ._perturbation import Perturbation, perturbation_effects


class PerturbMixin:
    """:meth:`perturb` of :class:`~scsynth.model.GRouNdGAN`, with the helpers ``generate`` shares."""

    def _check_generator_trained(self) -> None:
        if self.n_generator_steps_ == 0 or self.train_library_sizes_ is None:
            raise RuntimeError(
                "The target generators are not trained yet (only the controller may be); call model.train(max_steps=...)."
            )

    @staticmethod
    def _calibration_uniforms(shape: tuple[int, ...], seed: int) -> torch.Tensor:
        """Where the generator has zeros, the calibration's draws: their own stream, so the rest is as without it."""
        return torch.from_numpy(np.random.default_rng([seed, 1]).random(tuple(shape), dtype=np.float32))

    def _var(self) -> pd.DataFrame:
        grn = self.grn
        role = pd.Series("target", index=pd.Index(grn.genes, dtype=str))
        role[list(grn.tfs)] = "TF"
        n_regs = dict(zip(grn.targets, [len(r) for r in grn.regulators], strict=True))
        noise_only = [g for g, n in n_regs.items() if n == 0]
        role[noise_only] = "noise-only"
        return pd.DataFrame({"grn_role": pd.Categorical(role, categories=["TF", "target", "noise-only"]),
                             "n_regulators": [n_regs.get(g, 0) for g in role.index]}, index=role.index)

    def perturb(
        self,
        *,
        knockout: str | Sequence[str] | None = None,
        overexpress: dict[str, float] | None = None,
        set_to: dict[str, float] | None = None,
        n_obs: int = 1000,
        seed: int | None = None,
        batch_size: int = 8192,
        name: str | None = None,
    ) -> AnnData:
        """In-silico TF perturbation on paired cells (deterministic mode).

        Generates ``n_obs`` control cells, keeps their controller noise, TF values, per-gene noise and
        library-size scale, then regenerates the same cells with the TFs changed (with
        ``target_noise="controller"``: moves each target of a changed TF from its conditional quantile given
        the old TFs to the same quantile given the new ones). Only TFs can be
        perturbed (they are the roots of the causal graph); several can be perturbed at once. With the
        model's marginal calibration, both cells of a pair go through it with the same draws (genes the
        perturbation does not reach stay exactly unchanged in ``pre_lsn``) and the perturbed TFs take the
        perturbation of their calibrated control values; the control cells are :meth:`generate`'s for the same seed.

        Parameters
        ----------
        knockout
            TFs set to 0.
        overexpress
            ``{TF: factor}``: TF values multiplied by ``factor`` (0.5 is a knock-down).
        set_to
            ``{TF: value}``: TF set to ``value`` in normalised units (of ``library_size``) in every cell.
        n_obs
            Number of cell pairs (any number; generated in batches).
        seed
            Seed (``scsynth.settings.seed`` when ``None``).
        batch_size
            Cells per forward pass (does not change the result).
        name
            Name of the perturbed condition (default built from the perturbation, e.g. ``"KO(SPI1)"``).

        Returns
        -------
        AnnData with ``2 * n_obs`` cells: ``obs["condition"]`` (``"control"`` or ``name``),
        ``obs["pair"]`` (control and perturbed cell of a pair share it), ``obs["library_size"]``;
        ``.X`` counts (or input-scale values) where each pair shares library size and rounding draws;
        ``layers["normalized"]`` (each cell summing to 1e4) and
        ``layers["pre_lsn"]`` (the perturbed cell scaled by its control's normalisation factor, i.e.
        before the final library-size step: genes not downstream of a perturbed TF are exactly
        unchanged there); ``uns["perturbation"]`` with the perturbation and the per-gene ``effects``
        table (see :func:`~scsynth.model._perturbation.perturbation_effects`).

        Examples
        --------
        >>> ko = model.perturb(knockout="SPI1", n_obs=2000)  # doctest: +SKIP
        >>> ko.uns["perturbation"]["effects"].sort_values("pval").head()  # doctest: +SKIP
        """
        self._check_generator_trained()
        n_obs = check_n_obs(n_obs)
        batch_size = check_int(batch_size, "batch_size")
        grn = self.grn
        spec = Perturbation.build(knockout=knockout, overexpress=overexpress, set_to=set_to, tfs=list(grn.tfs),
                                  genes=list(grn.genes), name=name)
        seed = settings.seed if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        library = rng.choice(self.train_library_sizes_, size=n_obs).astype(np.float32)
        gen = torch.Generator().manual_seed(seed)
        control_raw, perturbed_raw, start = [], [], 0
        ties = None  # target_noise="controller": where a target ties with several quantile draws (zeros); own stream
        if self.module.target_noise == "controller":
            ties = torch.from_numpy(np.random.default_rng([seed, 2]).random((n_obs, self.module.n_targets), np.float32))
        for parts in self.module.sample_parts(n_obs, generator=gen, batch_size=batch_size):
            scale = self.module.normalize.scale(parts.raw)
            tf_values = spec.apply(parts.tf_values, scale)
            control_raw.append(parts.raw)
            batch_ties = None if ties is None else ties[start : start + len(parts.raw)]
            perturbed_raw.append(self.module.counterfactual(parts, tf_values, batch_ties))
            start += len(parts.raw)
        control_raw, perturbed_raw = torch.cat(control_raw), torch.cat(perturbed_raw)
        lsn = self.module.normalize
        control_scale = lsn.scale(control_raw)
        control = control_raw * control_scale
        pre_lsn = perturbed_raw * control_scale
        if self.module.marginals.is_fitted:
            control, pre_lsn = self._calibrate_pair(control, pre_lsn, spec, seed)
            perturbed = lsn(pre_lsn)
        else:
            perturbed = lsn(perturbed_raw)
        lib_size = lsn.library_size
        uniforms = torch.rand(control.shape, generator=gen) if self.is_count_data else None
        both_lib = np.concatenate([library, library])
        both_u = torch.cat([uniforms, uniforms]) if uniforms is not None else None
        normalized = torch.cat([control, perturbed])
        values = scale_to_library(normalized, both_lib, lib_size, counts=self.is_count_data, uniforms=both_u)
        obs = pd.DataFrame({
            "condition": pd.Categorical(["control"] * n_obs + [spec.name] * n_obs, categories=["control", spec.name]),
            "pair": np.tile(np.arange(n_obs), 2),
            "library_size": both_lib,
        }, index=[f"ctrl-{i}" for i in range(n_obs)] + [f"pert-{i}" for i in range(n_obs)])
        uns = provenance(self, seed, {"n_obs": n_obs, "library_size": float(lib_size),
                                      "is_count_data": self.is_count_data,
                                      "n_generator_steps": int(self.n_generator_steps_),
                                      "calibrated": self.module.marginals.is_fitted})
        out = generated_anndata(values, normalized, var_names=self.var_names_, obs=obs, counts=self.is_count_data,
                                uns=uns, layers={"pre_lsn": torch.cat([control, pre_lsn])})
        out.var = self._var()
        effects = perturbation_effects(control.numpy(), perturbed.numpy(), pre_lsn.numpy(), genes=grn.genes,
                                       edges=grn.edges, perturbed_tfs=spec.tfs)
        out.uns["perturbation"] = {**spec.to_dict(), "n_pairs": n_obs, "seed": seed, "effects": effects}
        return out

    def _calibrate_pair(self, control: torch.Tensor, pre_lsn: torch.Tensor, spec: Perturbation,
                        seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Control and perturbed cells (both on the control's normalisation) through the marginal calibration with
        the same uniforms, so that a gene unchanged before it stays exactly unchanged, and again both on the
        calibrated control's normalisation; the perturbed TFs then take the perturbation of their calibrated
        control values (a knockout stays exactly 0, ``set_to`` is exact in normalised units)."""
        uniforms = self._calibration_uniforms(control.shape, seed)
        control, pre_lsn = (self.module.marginals(x, uniforms=uniforms) for x in (control, pre_lsn))
        scale = self.module.normalize.scale(control)
        control, pre_lsn = control * scale, pre_lsn * scale
        tfs = self.module.tf_positions.cpu()
        pre_lsn[:, tfs] = spec.apply(control[:, tfs], torch.ones(len(control), 1))
        return control, pre_lsn
