"""RNAGAN's ``markers``: integrated-gradient attributions of genes and pathways, with statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .._settings import settings
from ..data import check_obs_key
from ..data._validate import check_anndata, check_int, examples
from ._rnagan_inputs import draw_sets


class MarkersMixin:
    """:meth:`markers` of :class:`~scsynth.model.RNAGAN`."""

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
                             f"{examples(sorted(set(labels)), 10)}).")
        others = [reference] if isinstance(reference, str) else list(reference or sorted(set(labels) - {group}))
        unknown = sorted(set(map(str, others)) - set(labels))
        if unknown:
            raise ValueError(f"Reference groups {examples(unknown)} are not in obs[{groupby!r}].")
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
