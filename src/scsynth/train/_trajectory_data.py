"""Batches of blueprint trajectories drawn from precomputed (trajectory, time) cell pools."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning
import numpy as np
import torch
from scipy import sparse
from torch.utils.data import DataLoader, IterableDataset

from ..data._matrix import BackedRows
from ..module._genesys import LIBRARY_KEY, TRAJECTORY_KEY, X_KEY


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class TrajectoryBatches(IterableDataset):
    """Yields ``n_batches`` batches of ``batch_size`` trajectories per pass, split over DDP ranks.

    Each trajectory is a blueprint row drawn uniformly (so every fate is trained equally, whatever its
    cell count) and, at every time step, one random cell of that row's pool. Draws come from a NumPy
    generator seeded with ``(seed, rank, pass)``: re-runs are identical, ranks draw different
    trajectories and every pass draws new ones. With ``fixed=True`` every pass yields the same batches
    (a stable validation set).

    Parameters
    ----------
    x
        Cells x genes (dense or CSR), all cells of the AnnData, or
        :class:`~scsynth.data._matrix.BackedRows` for cells on disk (the same batches, read per batch).
    pools
        ``pools[r][t]`` = indices (into ``x``) of the cells that may stand at step ``t`` of row ``r``.
    rows
        Blueprint rows to draw from.
    n_batches
        Batches per pass over all ranks.
    batch_size
        Trajectories per batch.
    seed
        Seed of the draws.
    start_pass
        Pass counter to start at (continued training draws new trajectories).
    fixed
        Draw the same batches on every pass.
    """

    def __init__(
        self,
        x,
        pools: Sequence[Sequence[np.ndarray]],
        rows: Sequence[int],
        *,
        n_batches: int,
        batch_size: int,
        seed: int,
        start_pass: int = 0,
        fixed: bool = False,
    ) -> None:
        super().__init__()
        # backed cells (BackedRows) stay on disk; each batch reads its rows (in file order, then reordered)
        self.x = x if isinstance(x, BackedRows) else sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)
        self.pools, self.rows = pools, np.asarray(rows, dtype=np.int64)
        self.n_batches, self.batch_size = int(n_batches), int(batch_size)
        self.seed, self.passes, self.fixed = int(seed), int(start_pass), fixed

    def __len__(self) -> int:
        return -(-self.n_batches // rank_and_world()[1])

    def draw(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One batch: rows, and the cell index at each step of each row."""
        rows = rng.choice(self.rows, size=self.batch_size)
        n_times = len(self.pools[0])
        cells = np.empty((self.batch_size, n_times), dtype=np.int64)
        for t in range(n_times):
            for r in np.unique(rows):
                where = rows == r
                cells[where, t] = rng.choice(self.pools[r][t], size=int(where.sum()))
        x = self.x[cells.ravel()]
        x = x.toarray() if sparse.issparse(x) else x
        x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(self.batch_size, n_times, -1)
        return {X_KEY: x, TRAJECTORY_KEY: torch.as_tensor(rows), LIBRARY_KEY: x.sum(-1)}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rank, _ = rank_and_world()
        rng = np.random.default_rng([self.seed, rank, 0 if self.fixed else self.passes])
        self.passes += 1
        for _ in range(len(self)):
            yield self.draw(rng)


class TrajectoryDataModule(lightning.LightningDataModule):
    """Train / validation trajectory loaders with the attributes scvi's ``TrainRunner`` reads."""

    def __init__(
        self,
        train: TrajectoryBatches,
        validation: TrajectoryBatches | None,
        *,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        test_idx: np.ndarray,
    ) -> None:
        super().__init__()
        self.train_set, self.validation_set = train, validation
        self.train_idx, self.val_idx, self.test_idx = train_idx, val_idx, test_idx
        self.n_train, self.n_val = len(train_idx), len(val_idx) if validation is not None else 0

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=None)

    def val_dataloader(self) -> DataLoader | list:
        return DataLoader(self.validation_set, batch_size=None) if self.validation_set is not None else []
