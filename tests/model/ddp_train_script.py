"""Train an ScGAN with Lightning DDP on 2 CPU processes (run by test_ddp.py in a subprocess).

Lightning's ``ddp`` strategy re-executes this script once per rank, hence the ``__main__`` guard.
"""

import sys

import anndata

import scsynth

if __name__ == "__main__":
    data_path, out_dir = sys.argv[1], sys.argv[2]
    adata = anndata.read_h5ad(data_path)
    scsynth.model.ScGAN.setup_anndata(adata)
    model = scsynth.model.ScGAN(adata, n_latent=16, generator_hidden=(32, 64), critic_hidden=(64, 32))
    model.train(max_steps=3, batch_size=32, accelerator="cpu", devices=2, enable_progress_bar=False)
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    print(f"RANK{rank} of {world} backend {dist.get_backend() if world > 1 else 'none'}", flush=True)
    if rank == 0:
        model.save(out_dir, overwrite=True)
        print(f"RANK0 generator steps: {model.n_generator_steps_}")
