"""Episodes for RNAGAN: a target, a reference set of its group, and a target of another group."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from scipy import sparse
from torch.utils.data import IterableDataset

from .._constants import EPISODE_GROUP, EPISODE_MASK, EPISODE_NEGATIVE, EPISODE_REFS, EPISODE_TARGET
from ._trajectory_data import rank_and_world

TARGET, REFS, MASK, NEGATIVE, GROUP = EPISODE_TARGET, EPISODE_REFS, EPISODE_MASK, EPISODE_NEGATIVE, EPISODE_GROUP


class EpisodeBatches(IterableDataset):
    """Yields ``n_batches`` batches of episodes per pass (split over DDP ranks).

    Each episode draws a group uniformly (rare groups count as much as common ones), a target of
    that group, ``n`` *other* members of it as references (``n`` uniform in ``n_refs``, padded to the
    largest size and masked, so one model learns every set size) and a negative target from another
    group. Draws come from a NumPy generator seeded with ``(seed, rank, pass)``.

    Parameters
    ----------
    x
        Samples x genes, already on the networks' scale (``log1p`` of normalised expression), dense or
        sparse; or a row reader (an object with ``shape`` and ``read(idx)`` returning those rows, dense
        float32, on that scale), so that data too large for memory (a backed AnnData) are read batch by batch.
    groups
        Integer group code of each sample (``-1``: not used).
    n_refs
        Smallest and largest reference-set size.
    n_batches, batch_size
        Batches per pass and episodes per batch.
    seed
        Seed of the draws.
    """

    def __init__(
        self,
        x,
        groups: np.ndarray,
        *,
        n_refs: tuple[int, int] = (5, 20),
        n_batches: int,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        if callable(getattr(x, "read", None)):  # a row reader: nothing is copied, rows are read per batch
            self.x = x
        elif sparse.issparse(x):
            self.x = sparse.csr_matrix(x, dtype=np.float32)
        else:
            self.x = np.asarray(x, dtype=np.float32)
        groups = np.asarray(groups)
        self.members = {int(g): np.flatnonzero(groups == g) for g in np.unique(groups) if g >= 0}
        eligible = [g for g, m in self.members.items() if len(m) >= 2]
        if len(eligible) < 2:
            raise ValueError(
                f"Episodes need at least 2 groups with 2 or more samples; got {len(eligible)} "
                f"(group sizes: { {g: len(m) for g, m in self.members.items()} })."
            )
        self.eligible = np.asarray(eligible)
        lo, hi = n_refs
        if not 1 <= lo <= hi:
            raise ValueError(f"n_refs must be (min, max) with 1 <= min <= max, got {n_refs}.")
        self.n_refs = (int(lo), int(hi))
        self.n_batches, self.batch_size, self.seed, self.passes = int(n_batches), int(batch_size), int(seed), 0

    def __len__(self) -> int:
        return -(-self.n_batches // rank_and_world()[1])

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        if callable(getattr(self.x, "read", None)):
            return np.asarray(self.x.read(idx), dtype=np.float32)
        rows = self.x[idx]
        return rows.toarray() if sparse.issparse(rows) else rows

    def draw(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One batch of episodes."""
        b, n_max = self.batch_size, self.n_refs[1]
        groups = rng.choice(self.eligible, size=b)
        targets = np.empty(b, dtype=np.int64)
        negatives = np.empty(b, dtype=np.int64)
        refs = np.zeros((b, n_max), dtype=np.int64)
        mask = np.zeros((b, n_max), dtype=bool)
        for i, g in enumerate(groups):
            members = self.members[int(g)]
            target = rng.choice(members)
            others = members[members != target]
            n = min(int(rng.integers(self.n_refs[0], n_max + 1)), n_max)
            picked = rng.choice(others, size=n, replace=len(others) < n)
            refs[i, :n], mask[i, :n] = picked, True
            targets[i] = target
            other_group = rng.choice(self.eligible[self.eligible != g])
            negatives[i] = rng.choice(self.members[int(other_group)])
        genes = self.x.shape[1]
        # one read for the batch (a backed file is read once, in row order); the same rows as three reads
        rows = self._rows(np.concatenate([targets, refs.ravel(), negatives]))
        ref_x = rows[b: b + b * n_max].reshape(b, n_max, genes)
        return {
            TARGET: torch.as_tensor(rows[:b]),
            REFS: torch.as_tensor(ref_x),
            MASK: torch.as_tensor(mask),
            NEGATIVE: torch.as_tensor(rows[b + b * n_max:]),
            GROUP: torch.as_tensor(groups.astype(np.int64)),
        }

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rank, _ = rank_and_world()
        rng = np.random.default_rng([self.seed, rank, self.passes])
        self.passes += 1
        for _ in range(len(self)):
            yield self.draw(rng)
