"""Train GeneSys with Lightning DDP on 2 CPU processes (run by test_ddp.py in a subprocess).

Prints, per rank, a checksum of the first training batch (ranks must draw different trajectories)
and of the weights after training (DDP keeps them identical).
"""

import sys

import anndata
import lightning
import pandas as pd

import scsynth


class FirstBatch(lightning.Callback):
    def __init__(self):
        self.checksum = None

    def on_train_batch_start(self, trainer, plan, batch, batch_idx):
        if self.checksum is None:
            self.checksum = float(batch["X"].sum()) + 1000 * float(batch["trajectory"].float().sum())


if __name__ == "__main__":
    data_path, blueprint_path, out_dir = sys.argv[1:4]
    adata = anndata.read_h5ad(data_path)
    blueprint = pd.read_csv(blueprint_path, sep="\t", index_col=0)
    scsynth.model.GeneSys.setup_anndata(adata)
    model = scsynth.model.GeneSys(adata, blueprint=blueprint, n_latent=8, n_hidden=32, n_layers=1)
    first = FirstBatch()
    model.train(max_epochs=2, batch_size=16, accelerator="cpu", devices=2, enable_progress_bar=False,
                callbacks=[first])
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    weights = sum(float(p.double().sum()) for p in model.module.parameters())
    print(f"RANK{rank} of {world} first batch {first.checksum:.3f} weights {weights:.6f}", flush=True)
    if rank == 0:
        model.save(out_dir, overwrite=True)
        print(f"RANK0 epochs: {model.n_epochs_trained_}")
