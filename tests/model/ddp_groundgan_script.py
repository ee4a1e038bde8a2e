"""Train a GRouNdGAN (both stages) with Lightning DDP on 2 CPU processes (run by test_ddp.py)."""

import sys

import anndata
import pandas as pd

import scsynth

if __name__ == "__main__":
    data_path, grn_path, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    adata = anndata.read_h5ad(data_path)
    scsynth.model.GRouNdGAN.setup_anndata(adata)
    model = scsynth.model.GRouNdGAN(adata, grn=pd.read_csv(grn_path, sep="\t"), n_latent=16,
                                    controller_hidden=(32, 64), critic_hidden=(64, 32), labeler_hidden=(32,))
    model.train(controller_steps=2, max_steps=2, batch_size=32, accelerator="cpu", devices=2,
                enable_progress_bar=False)
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    print(f"RANK{rank} of {world}", flush=True)
    if rank == 0:
        model.save(out_dir, overwrite=True)
        print(f"RANK0 steps: {model.controller_steps_} + {model.n_generator_steps_}")
