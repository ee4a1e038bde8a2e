"""A known causal TF -> target model of UMI counts, and its exact knockout effects (benchmark/test data).

Each cell has a latent level ``t_j`` of every TF (log-normal) and a size factor ``s`` (log-normal). A target
``g`` regulated by TFs ``R_g`` with signed weights ``w_gr`` has mean ``base_g * prod_r (1 + w_gr * h_r)`` for
activators and ``base_g * prod_r 1 / (1 + |w_gr| * h_r)`` for repressors, where ``h_r = t_r / (t_r + K_r)`` is
a Hill function with ``K_r`` the TF's median level. Counts are Poisson of ``s`` times the mean (TFs:
``s * t_j``). A knockout sets ``t_j = 0``; its true effect is the difference of the mean
``log2(x + 1)`` of library-size-normalised cells with and without it, computed on many cells drawn with
common random numbers: exactly what :meth:`scsynth.model.GRouNdGAN.perturb` reports as ``lfc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata
import numpy as np
import pandas as pd
from scipy import sparse, stats


@dataclass
class CausalModel:
    """Parameters of the simulator (see the module docstring)."""

    tf_median: np.ndarray  #: median latent level of each TF (counts at size factor 1)
    tf_sigma: float  #: log-normal spread of the TF levels
    base: np.ndarray  #: per-target expression with every regulator at 0
    regulators: list[np.ndarray]  #: TF indices of each target
    weights: list[np.ndarray]  #: signed weights, parallel to ``regulators``
    size_sigma: float  #: log-normal spread of the size factors
    tfs: list[str]
    targets: list[str]

    @property
    def genes(self) -> list[str]:
        return [*self.tfs, *self.targets]

    @property
    def grn(self) -> pd.DataFrame:
        """The true GRN in decoupler's long format (``weight`` = +1 activator, -1 repressor)."""
        rows = [(self.tfs[r], t, float(np.sign(w)))
                for t, regs, ws in zip(self.targets, self.regulators, self.weights, strict=True)
                for r, w in zip(regs, ws, strict=True)]
        return pd.DataFrame(rows, columns=["source", "target", "weight"])

    def means(self, t: np.ndarray) -> np.ndarray:
        """Mean expression of every gene (TFs then targets) for latent TF levels ``t``, ``(n, n_genes)``."""
        h = t / (t + self.tf_median)
        out = np.empty((t.shape[0], len(self.targets)))
        for g, (regs, ws) in enumerate(zip(self.regulators, self.weights, strict=True)):
            factor = np.ones(t.shape[0])
            for r, w in zip(regs, ws, strict=True):
                factor *= 1 + w * h[:, r] if w > 0 else 1 / (1 - w * h[:, r])
            out[:, g] = self.base[g] * factor
        return np.hstack([t, out])

    def draw_latent(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TF levels, size factors and the uniforms that drive the Poisson draws (common random numbers)."""
        t = self.tf_median * np.exp(self.tf_sigma * rng.standard_normal((n, len(self.tfs))))
        s = np.exp(self.size_sigma * rng.standard_normal((n, 1)))
        return t, s, rng.random((n, len(self.genes)))

    def counts(self, t: np.ndarray, s: np.ndarray, u: np.ndarray, knockout: int | None = None) -> np.ndarray:
        """Poisson counts by inversion of the uniforms ``u`` (the same ``u`` pairs control and knockout cells)."""
        t = t.copy()
        if knockout is not None:
            t[:, knockout] = 0.0
        return stats.poisson.ppf(u, s * self.means(t))

    def sample(self, n: int, seed: int = 0) -> anndata.AnnData:
        """``n`` cells of raw counts (CSR float32), genes TFs then targets."""
        x = self.counts(*self.draw_latent(n, np.random.default_rng(seed)))
        adata = anndata.AnnData(sparse.csr_matrix(x.astype(np.float32)))
        adata.var_names, adata.obs_names = self.genes, [f"cell{i}" for i in range(n)]
        return adata

    def knockout_lfc(self, tf: str, *, library_size: float, n: int = 20_000, seed: int = 1) -> pd.Series:
        """True post-normalisation effect of knocking out ``tf``: mean log2(x+1) difference per gene."""
        t, s, u = self.draw_latent(n, np.random.default_rng(seed))
        logs = []
        for ko in (None, self.tfs.index(tf)):
            x = self.counts(t, s, u, ko)
            x = x * library_size / np.maximum(x.sum(1, keepdims=True), 1)
            logs.append(np.log2(x + 1).mean(0))
        return pd.Series(logs[1] - logs[0], index=self.genes, name=tf)


def causal_model(
    n_tfs: int = 10, n_targets: int = 60, *, regulators_per_target: int = 2, repressor_fraction: float = 0.0,
    seed: int = 0,
) -> CausalModel:
    """A random instance: TF medians 20-60 counts, target bases 1-6, |weights| 1-4."""
    rng = np.random.default_rng(seed)
    regulators = [np.sort(rng.choice(n_tfs, regulators_per_target, replace=False)) for _ in range(n_targets)]
    weights = [rng.uniform(1, 4, regulators_per_target) * np.where(rng.random(regulators_per_target)
                                                                   < repressor_fraction, -1, 1)
               for _ in range(n_targets)]
    return CausalModel(
        tf_median=rng.uniform(20, 60, n_tfs), tf_sigma=0.6, base=rng.uniform(1, 6, n_targets),
        regulators=regulators, weights=weights, size_sigma=0.3,
        tfs=[f"TF{i}" for i in range(n_tfs)], targets=[f"T{i}" for i in range(n_targets)],
    )


def real_tf_knockout_lfc(model, cells: anndata.AnnData, tf: str, *, seed: int = 0) -> pd.Series:
    """Post-normalisation lfc of knocking out ``tf`` in real ``cells``' TF values (the controller bypassed).

    What the target generators alone do with the knockout: each cell is regenerated from its own
    normalised TF values, with and without the TF, with the same per-gene noise.
    """
    import torch

    module = model.module
    x = module.inference(torch.as_tensor(cells.X.toarray(), dtype=torch.float32))["x_real"]
    tfs = x[:, module.tf_positions]
    noise = torch.randn(len(x), module.n_targets, module.noise_per_gene, generator=torch.Generator().manual_seed(seed))
    knocked = tfs.clone()
    knocked[:, list(np.asarray(model.var_names_)[module.tf_positions.numpy()]).index(tf)] = 0
    logs = [torch.log2(module.normalize(module.regenerate(t, noise)) + 1).mean(0).numpy() for t in (tfs, knocked)]
    return pd.Series(logs[1] - logs[0], index=np.asarray(model.var_names_))


def knockout_fidelity(
    model, truth: CausalModel, *, n_obs: int = 2000, seed: int = 0, real_cells: anndata.AnnData | None = None,
    true_effects: dict[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """Per knocked-out TF: AUROC of |lfc| for its true targets, Pearson r and sign agreement with the truth.

    ``model`` is a trained :class:`scsynth.model.GRouNdGAN`; each TF of ``truth`` is knocked out in turn,
    in ``n_obs`` generated cells (:meth:`~scsynth.model.GRouNdGAN.perturb`), or with ``real_cells`` in
    those cells' own TF values (:func:`real_tf_knockout_lfc`: stage 2 alone, without the controller).
    ``true_effects`` (TF -> :meth:`CausalModel.knockout_lfc`) saves recomputing the truth (seconds per TF).
    """
    from sklearn.metrics import roc_auc_score

    rows = []
    for tf in truth.tfs:
        if real_cells is None:
            lfc = model.perturb(knockout=tf, n_obs=n_obs, seed=seed).uns["perturbation"]["effects"]["lfc"]
        else:
            lfc = real_tf_knockout_lfc(model, real_cells, tf, seed=seed)
        true = (true_effects or {}).get(tf)
        if true is None:
            true = truth.knockout_lfc(tf, library_size=model.module.normalize.library_size)
        genes = [g for g in truth.genes if g != tf]
        is_target = np.isin(genes, truth.grn.loc[truth.grn["source"] == tf, "target"])
        m, t = lfc.loc[genes].to_numpy(), true.loc[genes].to_numpy()
        rows.append({"TF": tf, "targets": int(is_target.sum()),
                     "AUROC": float(roc_auc_score(is_target, np.abs(m))),
                     "pearson_r": float(np.corrcoef(m, t)[0, 1]),
                     "sign_agreement": float(np.mean(np.sign(m[is_target]) == np.sign(t[is_target]))),
                     "slope": float(np.polyfit(t, m, 1)[0])})
    return pd.DataFrame(rows)
