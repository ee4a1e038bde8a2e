import lightning
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from scsynth.module import RNAGANNetworks
from scsynth.nn import PathwayLinear
from scsynth.train import EpisodeBatches, RNAGANTrainingPlan


def _groups(n_per_group=30, n_groups=4, n_genes=40, seed=0):
    """log1p-normalised Poisson profiles; group g has genes 5g..5g+4 up 4-fold."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 3.0, size=n_genes)
    xs, labels = [], []
    for g in range(n_groups):
        mean = base.copy()
        mean[5 * g: 5 * g + 5] *= 4
        counts = rng.poisson(mean * rng.lognormal(0, 0.2, size=(n_per_group, 1)))
        xs.append(np.log1p(counts / counts.sum(1, keepdims=True) * 1e3))
        labels += [g] * n_per_group
    return np.vstack(xs).astype(np.float32), np.asarray(labels)


def _networks(n_genes=40, seed=0):
    torch.manual_seed(seed)
    rows = np.repeat(np.arange(4), 5)
    cols = np.arange(20)  # pathway k = the 5 genes of group k
    return RNAGANNetworks(PathwayLinear(rows, cols, n_genes=n_genes, n_sets=4, n_learned=2, seed=seed),
                          hidden=(64, 16), n_latent=8, n_noise=4, dropout=0.0)


def test_episodes_hold_one_group_and_a_negative_from_another():
    x, labels = _groups()
    batches = EpisodeBatches(x, labels, n_refs=(3, 6), n_batches=2, batch_size=16, seed=0)
    batch = batches.draw(np.random.default_rng(0))
    assert batch["refs"].shape == (16, 6, 40) and batch["mask"].sum(1).min() >= 3
    rows = {tuple(np.round(r, 5)): i for i, r in enumerate(x)}
    for i in range(16):
        group = int(batch["group"][i])
        target = rows[tuple(np.round(batch["target"][i].numpy(), 5))]
        negative = rows[tuple(np.round(batch["negative"][i].numpy(), 5))]
        refs = [rows[tuple(np.round(r.numpy(), 5))] for r in batch["refs"][i][batch["mask"][i]]]
        assert labels[target] == group and labels[negative] != group
        assert all(labels[r] == group for r in refs) and target not in refs
    again = EpisodeBatches(x, labels, n_refs=(3, 6), n_batches=2, batch_size=16, seed=0)
    assert torch.equal(next(iter(again))["target"], next(iter(EpisodeBatches(
        x, labels, n_refs=(3, 6), n_batches=2, batch_size=16, seed=0)))["target"])
    with pytest.raises(ValueError, match="at least 2 groups"):
        EpisodeBatches(x, np.zeros(len(x), dtype=int), n_batches=1, batch_size=4, seed=0)


def test_adversarial_training_learns_group_membership_and_group_profiles():
    x, labels = _groups()
    train = np.arange(len(x)) % 3 != 0
    nets = _networks()
    plan = RNAGANTrainingPlan(nets, lr_discriminator=2e-3, lr_generator=1e-3)
    data = EpisodeBatches(x[train], labels[train], n_refs=(3, 10), n_batches=20, batch_size=32, seed=0)
    lightning.seed_everything(0, verbose=False)
    trainer = lightning.Trainer(max_epochs=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(plan, DataLoader(data, batch_size=None))
    nets.eval()
    held_out = EpisodeBatches(x[~train], labels[~train], n_refs=(5, 5), n_batches=1, batch_size=200, seed=1)
    batch = held_out.draw(np.random.default_rng(1))
    with torch.no_grad():
        pos = nets.discriminator(batch["target"], batch["refs"], batch["mask"])
        neg = nets.discriminator(batch["negative"], batch["refs"], batch["mask"])
        fake = nets.generator(batch["refs"], batch["mask"], generator=torch.Generator().manual_seed(0))
    accuracy = 0.5 * ((pos > 0).float().mean() + (neg < 0).float().mean())
    assert accuracy > 0.9  # membership of unseen samples against unseen references
    for g in range(4):  # generated samples carry their references' group programme
        own = fake[batch["group"] == g][:, 5 * g: 5 * g + 5].mean()
        other = fake[batch["group"] != g][:, 5 * g: 5 * g + 5].mean()
        assert own > other + 0.5
    assert "generator_loss_train" in trainer.logged_metrics
