"""In-silico TF perturbations: what to change, and the per-gene effect table of paired cells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..data._validate import examples


def _values_by_tf(values, what: str, unit: str) -> dict[str, float]:
    """``{TF: number}`` from a mapping, with a clear error for anything else."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} must be a dict {{TF: {unit}}}, got {type(values).__name__}.")
    out = {}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            raise TypeError(f"{what}[{str(k)!r}] must be a number ({unit}), got {type(v).__name__} {v!r}.")
        out[str(k)] = float(v)
    return out


@dataclass(frozen=True)
class Perturbation:
    """A validated perturbation of TFs: knockouts, fold changes and fixed values (normalised units)."""

    knockout: tuple[str, ...]
    overexpress: dict[str, float]
    set_to: dict[str, float]
    name: str
    tf_index: dict[str, int] = field(repr=False)

    @property
    def tfs(self) -> list[str]:
        """Every perturbed TF."""
        return [*self.knockout, *self.overexpress, *self.set_to]

    @classmethod
    def build(
        cls,
        *,
        knockout: str | Sequence[str] | None,
        overexpress: dict[str, float] | None,
        set_to: dict[str, float] | None,
        tfs: list[str],
        genes: list[str],
        name: str | None = None,
    ) -> Perturbation:
        """Validate the request against the model's TFs, before any generation."""
        if knockout is not None and not isinstance(knockout, str | Sequence | np.ndarray | pd.Index):
            raise TypeError(
                f"knockout must be a TF name or a list of TF names, got {type(knockout).__name__}."
            )
        knockout = (knockout,) if isinstance(knockout, str) else tuple(str(g) for g in (knockout or ()))
        overexpress = _values_by_tf(overexpress, "overexpress", "factor")
        set_to = _values_by_tf(set_to, "set_to", "value")
        requested = [*knockout, *overexpress, *set_to]
        if not requested:
            raise ValueError("Nothing to perturb: pass knockout=[...], overexpress={TF: factor} or set_to={TF: value}.")
        dup = sorted({g for g in requested if requested.count(g) > 1})
        if dup:
            raise ValueError(f"TFs perturbed more than once: {examples(dup)}; use one of knockout / "
                             "overexpress / set_to per TF.")
        tf_index = {g: i for i, g in enumerate(tfs)}
        gene_set = set(genes)
        for g in requested:
            if g not in tf_index:
                what = "a target gene of the GRN (only TFs, the roots of the causal graph, can be perturbed)" \
                    if g in gene_set else "not a gene of the model"
                raise ValueError(
                    f"{g!r} is {what}. The model's TFs include {examples(sorted(tf_index), 10)}."
                )
        for kind, values in (("overexpress factors", overexpress), ("set_to values", set_to)):
            bad = {k: v for k, v in values.items() if not np.isfinite(v) or v < 0}
            if bad:
                raise ValueError(f"{kind} must be finite and >= 0, got {bad}.")
        if name is None:
            parts = [f"KO({g})" for g in knockout] + [f"x{v:g}({g})" for g, v in overexpress.items()]
            parts += [f"set({g}={v:g})" for g, v in set_to.items()]
            name = "+".join(parts)
        if name == "control":
            raise ValueError("name='control' is reserved for the unperturbed cells.")
        return cls(knockout, overexpress, set_to, name, {g: tf_index[g] for g in requested})

    def apply(self, tf_values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Perturbed copy of TF values (before normalisation); ``scale`` converts ``set_to`` from normalised units."""
        out = tf_values.clone()
        for g in self.knockout:
            out[:, self.tf_index[g]] = 0.0
        for g, factor in self.overexpress.items():
            out[:, self.tf_index[g]] *= factor
        safe = torch.where(scale > 0, scale, torch.ones_like(scale)).squeeze(1)
        for g, value in self.set_to.items():
            out[:, self.tf_index[g]] = torch.where(scale.squeeze(1) > 0, value / safe, torch.zeros_like(safe))
        return out

    def to_dict(self) -> dict:
        """JSON/h5ad-safe description."""
        return {"name": self.name, "perturbed": list(self.tfs), "knockout": list(self.knockout),
                "overexpress": dict(self.overexpress), "set_to": dict(self.set_to)}


def _paired_test(control: np.ndarray, perturbed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean per-pair log2 fold change, Wilcoxon signed-rank p-value and BH FDR per gene."""
    lfc = (np.log2(perturbed + 1.0) - np.log2(control + 1.0)).mean(axis=0)
    diff = perturbed.astype(np.float64) - control
    pval = np.ones(diff.shape[1])
    changed = (diff != 0).any(axis=0)  # an exactly unchanged gene has nothing to test
    if changed.any():
        pval[changed] = stats.wilcoxon(diff[:, changed], axis=0, zero_method="wilcox").pvalue
    pval = np.nan_to_num(pval, nan=1.0)
    return lfc, pval, stats.false_discovery_control(pval, method="bh")


def perturbation_effects(
    control: np.ndarray,
    perturbed: np.ndarray,
    pre_lsn: np.ndarray,
    *,
    genes: Sequence[str],
    edges: pd.DataFrame,
    perturbed_tfs: Sequence[str],
) -> pd.DataFrame:
    """Per-gene effect of a perturbation on paired cells.

    Columns: ``mean_control``, ``mean_perturbed`` (normalised units); ``lfc``, ``pval``, ``fdr`` after
    the final library-size normalisation (what a sequencer would see); ``lfc_pre_lsn``,
    ``pval_pre_lsn``, ``fdr_pre_lsn`` before it (the causal effect: exactly 0 / p = 1 for genes not
    downstream of a perturbed TF); ``perturbed`` (the gene is a perturbed TF) and
    ``direct_target`` (a target of a perturbed TF in the imposed GRN). ``lfc`` is the mean over
    pairs of ``log2(perturbed + 1) - log2(control + 1)``; p-values are paired Wilcoxon signed-rank
    tests, FDR is Benjamini-Hochberg.
    """
    lfc, pval, fdr = _paired_test(control, perturbed)
    lfc_pre, pval_pre, fdr_pre = _paired_test(control, pre_lsn)
    targets = set(edges.loc[edges["source"].isin(list(perturbed_tfs)), "target"])
    genes = pd.Index(np.asarray(genes, dtype=str), name="gene")
    return pd.DataFrame({
        "mean_control": control.mean(axis=0), "mean_perturbed": perturbed.mean(axis=0),
        "lfc": lfc, "pval": pval, "fdr": fdr,
        "lfc_pre_lsn": lfc_pre, "pval_pre_lsn": pval_pre, "fdr_pre_lsn": fdr_pre,
        "perturbed": genes.isin(list(perturbed_tfs)), "direct_target": genes.isin(list(targets)),
    }, index=genes)
