"""Train GeneSys with Lightning DDP on 2 CPU processes from a backed ``.h5ad`` (run by test_backed_training.py).

Each process opens the file read-only (``backed="r"``) and reads its batches' cells from disk; prints per
rank whether ``.X`` is still backed and a checksum of the weights (DDP keeps them identical).
"""

import sys

import anndata
import pandas as pd

import scsynth

if __name__ == "__main__":
    data_path, blueprint_path, out_dir = sys.argv[1:4]
    adata = anndata.read_h5ad(data_path, backed="r")
    blueprint = pd.read_csv(blueprint_path, sep="\t", index_col=0)
    scsynth.model.GeneSys.setup_anndata(adata, is_count_data=True)
    model = scsynth.model.GeneSys(adata, blueprint=blueprint, n_latent=8, n_hidden=32, n_layers=1)
    model.train(max_epochs=2, batch_size=16, accelerator="cpu", devices=2, enable_progress_bar=False)
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    weights = sum(float(p.double().sum()) for p in model.module.parameters())
    print(f"RANK{rank} of {world} backed {adata.isbacked} weights {weights:.6f}", flush=True)
    if rank == 0:
        model.save(out_dir, overwrite=True)
        print(f"RANK0 epochs: {model.n_epochs_trained_}")
