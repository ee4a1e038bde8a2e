"""``scsynth data NAME``: a bundled, offline dataset to .h5ad (with a held-out part), to try every command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._io import check_out_file

__all__ = ["DATASETS", "MYOBLAST_BLUEPRINT", "write_dataset"]

#: Bundled dataset -> (loader in scsynth.data, label column, what the values are)
DATASETS = {
    "pbmc68k": ("pbmc68k_normalized", "bulk_labels", "normalised expression (train with --normalized)"),
    "myoblast": ("hsmm_myoblast", "label", "FPKM, normalised (GeneSys detects it)"),
    "geuvadis": ("geuvadis_lcl", "sex", "bulk RNA-seq counts"),
}
#: The myoblast time course's lineage blueprint (as in the GeneSys tutorial): one row per trajectory.
MYOBLAST_BLUEPRINT = {
    "myotube": ["State1", "State2", "State2", "State2"],
    "mesenchymal": ["State1", "State3", "State3", "State3"],
    "proliferating": ["State1", "State1", "State1", "State1"],
}


def write_dataset(args: argparse.Namespace) -> None:
    """``scsynth data``: write the dataset (training part), its held-out part and the myoblast blueprint."""
    import numpy as np

    from .. import data

    outputs = [(args.output, "-o/--output"), (args.held_out, "--held-out"), (args.blueprint, "--blueprint")]
    for path, flag in outputs:
        if path is not None:
            check_out_file(path, args.overwrite, flag)
    if args.blueprint is not None and args.name != "myoblast":
        raise ValueError("--blueprint is for the myoblast time course (GeneSys); drop it for this dataset.")
    loader, key, kind = DATASETS[args.name]
    adata = getattr(data, loader)()
    train = np.arange(adata.n_obs)
    if args.held_out is not None:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(train, test_size=args.fraction, random_state=args.seed,
                                       stratify=adata.obs[key].astype(str))
        train, test = np.sort(train), np.sort(test)
    if args.n_top_genes is not None and args.n_top_genes < adata.n_vars:
        import scanpy as sc

        # chosen on the training part only (Seurat flavour on log1p of per-cell normalised values)
        scaled = sc.AnnData(data.normalize_total(adata.X[train], 1e4))
        sc.pp.log1p(scaled)
        hvg = sc.pp.highly_variable_genes(scaled, n_top_genes=args.n_top_genes, inplace=False)
        adata = adata[:, hvg["highly_variable"].to_numpy()].copy()
    parts = {args.output: adata[train].copy()}
    if args.held_out is not None:
        parts[args.held_out] = adata[test].copy()
    for path, part in parts.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        part.write_h5ad(path)
        groups = part.obs[key].astype(str).value_counts()
        print(f"Wrote {path}: {part.n_obs} {'samples' if args.name == 'geuvadis' else 'cells'} x {part.n_vars} "
              f"genes, {kind}; obs[{key!r}] has {len(groups)} groups "
              f"({', '.join(f'{g} {n}' for g, n in groups.head(4).items())}{', ...' if len(groups) > 4 else ''})")
    if args.blueprint is not None:
        lines = ["\t".join([name, *labels]) for name, labels in MYOBLAST_BLUEPRINT.items()]
        Path(args.blueprint).write_text("\n".join(lines) + "\n")
        print(f"Wrote {args.blueprint}: the lineage blueprint, {len(lines)} trajectories x 4 time steps, named in "
              f"its first column ({', '.join(MYOBLAST_BLUEPRINT)}): train with --blueprint-row-names")
