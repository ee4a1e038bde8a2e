"""RNAGAN's generator matches its group's distribution: what the distribution-matching term measures."""

import numpy as np
import torch

from scsynth.train import EpisodeBatches
from scsynth.train._rnagan_plan import group_mmd

from .test_rnagan_plan import _groups


def _batch(seed=0):
    x, labels = _groups(n_per_group=60)
    data = EpisodeBatches(x, labels, n_refs=(5, 10), n_batches=1, batch_size=64, seed=seed)
    return data.draw(np.random.default_rng(seed))


def test_group_mmd_is_near_zero_for_real_members_and_grows_for_means_and_exaggerations():
    batch = _batch()
    real = batch["negative"]  # members of other groups: a wrong group is far
    # other members of each episode's own group, drawn afresh: the same distribution
    own = _batch(seed=1)
    order = [int(np.flatnonzero(own["group"].numpy() == g)[i % (own["group"] == g).sum()])
             for i, g in enumerate(batch["group"].numpy())]
    same = own["target"][order]
    means = torch.log1p((torch.expm1(batch["refs"]) * batch["mask"].unsqueeze(-1)).sum(1)
                        / batch["mask"].sum(1, keepdim=True))  # what an untrained generator returns
    exaggerated = batch["target"].clone()
    for g in range(4):  # the group's own genes twice as far from the rest as in real members
        rows = batch["group"] == g
        genes = slice(5 * g, 5 * g + 5)
        exaggerated[rows, genes] += exaggerated[rows, genes] - batch["negative"][:, genes].mean(0)
    scores = {name: float(group_mmd(fake, batch)) for name, fake in
              (("same", same), ("means", means), ("exaggerated", exaggerated), ("other group", real))}
    assert abs(scores["same"]) < 0.1  # sampling noise of 16 profiles a group
    assert scores["means"] > 4 * max(scores["same"], 0.01)
    assert scores["exaggerated"] > 4 * max(scores["same"], 0.01)
    assert scores["other group"] > scores["exaggerated"]


def test_group_mmd_gradient_spreads_collapsed_samples():
    batch = _batch()
    fake = torch.log1p((torch.expm1(batch["refs"]) * batch["mask"].unsqueeze(-1)).sum(1)
                       / batch["mask"].sum(1, keepdim=True)).requires_grad_(True)
    opt = torch.optim.Adam([fake], lr=0.05)
    spread = []
    for _ in range(60):
        opt.zero_grad()
        group_mmd(fake, batch).backward()
        opt.step()
        spread.append(float(fake.detach()[batch["group"] == 0].var(0).mean()))
    real = float(batch["target"][batch["group"] == 0].var(0).mean())
    assert spread[0] < 0.5 * real < spread[-1]  # the variance of the means grows towards the members'
