"""Sanity check of RNAGAN's pathway layer: its gene-set activities next to decoupler's scores of the same sets.

For the samples given, RNAGAN's activity of each matched gene set (``model.pathway_activities``, the
pathway layer's output) is compared with decoupler's score of that set (ULM by default, or AUCell) on
the same samples, normalised as RNAGAN's input (1e4 per sample, log1p). Per set, the Spearman
correlation across samples; reported: the median over sets and the fraction of sets with a positive
correlation. It is a sanity check, not a contest: the layer starts as the mean of each set's genes and
is then trained for the discriminator, so the activities should still rank samples like an enrichment
score of the set does (median correlation clearly above 0), without being one.

Used by ``rnagan.py`` (the pbmc and bulk parts); alone, on a small RNAGAN trained on pbmc68k_reduced::

    python benchmarks/rnagan_decoupler.py               # 300 single-cell steps, about 1 min
    python benchmarks/rnagan_decoupler.py --steps 20    # a quick check of the script
"""

from __future__ import annotations

import argparse
import warnings

import anndata
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import spearmanr

import scsynth
from scsynth.model import RNAGAN


def decoupler_scores(adata: anndata.AnnData, net: pd.DataFrame, *, method: str = "ulm") -> pd.DataFrame:
    """decoupler's scores (samples x sets) on log1p of 1e4-normalised values of ``adata``."""
    import decoupler as dc

    x = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X, dtype=np.float64)
    x = np.log1p(np.asarray(scsynth.data.normalize_total(x, 1e4), dtype=np.float64))
    frame = pd.DataFrame(x, index=adata.obs_names.astype(str), columns=adata.var_names.astype(str))
    sizes = net.groupby("source").size()
    run = {"ulm": dc.mt.ulm, "aucell": dc.mt.aucell}[method]
    out = run(frame, net, tmin=int(sizes.min()))
    return out[0] if isinstance(out, tuple) else out


def pathway_agreement(model: RNAGAN, adata: anndata.AnnData, *, method: str = "ulm") -> dict:
    """Spearman correlation, per matched set across ``adata``'s samples, of RNAGAN's activity and decoupler's."""
    matched = model.gene_sets
    genes = list(matched.genes)
    net = pd.DataFrame({"source": [matched.sets[r] for r in matched.rows],
                        "target": [genes[c] for c in matched.cols]})
    ours = model.pathway_activities(adata)
    theirs = decoupler_scores(adata[:, genes], net, method=method)
    rows = []
    for name in matched.sets:
        if name not in theirs.columns or ours[name].nunique() < 2 or theirs[name].nunique() < 2:
            continue  # constant on these samples: no ranking to compare
        rho = spearmanr(ours[name].to_numpy(), theirs.loc[ours.index.astype(str), name].to_numpy())[0]
        rows.append({"gene set": name, "spearman": float(rho)})
    rhos = np.array([r["spearman"] for r in rows])
    return {"method": f"decoupler.mt.{method}", "n_samples": adata.n_obs, "n_sets": len(rows),
            "gene_sets": matched.provenance.get("label"),
            "median_spearman": float(np.median(rhos)) if len(rhos) else float("nan"),
            "fraction_positive": float((rhos > 0).mean()) if len(rhos) else float("nan"),
            "per_set": sorted(rows, key=lambda r: -r["spearman"])}


def render_agreement(res: dict, where: str) -> list[str]:
    """Markdown lines: the summary, then the three best and worst sets."""
    per_set = res["per_set"]
    shown = per_set[:3] + per_set[-3:] if len(per_set) > 6 else per_set
    return [f"Pathway activities vs {res['method']} ({where}, {res['n_samples']} samples, {res['n_sets']} sets of "
            f"{res['gene_sets']}): median Spearman {res['median_spearman']:.3f}, "
            f"{res['fraction_positive']:.0%} of sets positive; best and worst: "
            + ", ".join(f"{r['gene set']} {r['spearman']:.2f}" for r in shown), ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="single-cell training batches")
    parser.add_argument("--method", choices=["ulm", "aucell"], default="ulm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scsynth.settings.verbosity = "warning"
    scsynth.settings.seed = args.seed
    warnings.filterwarnings("ignore")
    adata = scsynth.data.pbmc68k_normalized()
    adata = adata[:, np.asarray((adata.X > 0).sum(0)).ravel() > 0].copy()
    rng = np.random.default_rng(args.seed)
    test = rng.random(adata.n_obs) < 0.3
    train = adata[~test].copy()
    RNAGAN.setup_anndata(train, labels_key="bulk_labels", is_count_data=False)
    model = RNAGAN(train, gene_sets="hallmark")
    model.train(max_steps={"sc": args.steps}, batch_size=64, seed=args.seed, enable_progress_bar=False)
    res = pathway_agreement(model, adata[test].copy(), method=args.method)
    print("\n".join(render_agreement(res, f"pbmc68k_reduced held-out cells, {args.steps} steps")))


if __name__ == "__main__":
    main()
