"""RNAGAN from a backed ``.h5ad`` (rows read per batch) and the no-copy in-memory path: the same numbers."""

from __future__ import annotations

import anndata
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from scipy import sparse

import scsynth
from scsynth.model import RNAGAN
from scsynth.model._rnagan_inputs import NetworkRows, is_count_matrix, log_normalize
from scsynth.train import EpisodeBatches

from ..conftest import GENE_SETS, SMALL_RG
from ..conftest import rnagan_samples as _samples

pytestmark = pytest.mark.filterwarnings("ignore:RNAGAN's sc stage ended at chance")

TRAIN = {"max_steps": {"sc": 8}, "batch_size": 8, "n_refs": (3, 5), "seed": 0, "enable_progress_bar": False}


def _backed(adata: anndata.AnnData, tmp_path) -> anndata.AnnData:
    path = tmp_path / "samples.h5ad"
    adata.write_h5ad(path)
    return anndata.read_h5ad(path, backed="r")


def _trained(adata: anndata.AnnData) -> RNAGAN:
    scsynth.settings.seed = 0
    RNAGAN.setup_anndata(adata, labels_key="group")
    model = RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)
    model.train(**TRAIN)
    return model


def _assert_same_model(a: RNAGAN, b: RNAGAN) -> None:
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.best_epochs_ == b.best_epochs_ and a.episode_accuracy_ == b.episode_accuracy_
    for mod, libraries in a.train_libraries_.items():
        for group, sizes in libraries.items():
            np.testing.assert_array_equal(sizes, b.train_libraries_[mod][group])


def _matrices():
    x = _samples().X.toarray()
    x[3] = 0  # a sample without counts stays 0
    yield "csr float32", sparse.csr_matrix(x.astype(np.float32))
    yield "csr float64", sparse.csr_matrix(x.astype(np.float64))
    yield "csc float32", sparse.csc_matrix(x.astype(np.float32))
    yield "dense float32", x.astype(np.float32)
    yield "dense int64", x.astype(np.int64)


@pytest.mark.parametrize("kind", [k for k, _ in _matrices()])
def test_network_rows_equal_the_normalised_matrix(kind):
    x = dict(_matrices())[kind]
    whole = log_normalize(x, dense=False)  # what training used to hold in memory
    whole = whole.toarray() if sparse.issparse(whole) else whole
    rows = NetworkRows(anndata.AnnData(x))
    idx = np.random.default_rng(0).integers(0, x.shape[0], 50)
    np.testing.assert_array_equal(rows.read(idx), whole[idx])
    np.testing.assert_array_equal(rows.take(np.arange(10, 40)).read([0, 5, 5]), whole[[10, 15, 15]])
    np.testing.assert_array_equal(rows.totals, np.asarray(x.sum(1)).ravel())


def test_episodes_from_a_row_reader_equal_episodes_from_the_matrix():
    adata = _samples()
    groups = adata.obs["group"].cat.codes.to_numpy()
    plain = EpisodeBatches(log_normalize(adata.X, dense=False), groups, n_batches=2, batch_size=6, seed=3)
    lazy = EpisodeBatches(NetworkRows(adata), groups, n_batches=2, batch_size=6, seed=3)
    for a, b in zip(plain, lazy, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_in_memory_training_equals_the_copying_path(monkeypatch):
    """Rows normalised per batch give the very model the whole normalised copy gave (same seed)."""
    new = _trained(_samples())

    class WholeCopy:  # the previous implementation: the whole normalised matrix in memory, subset per stage
        def __init__(self, model):
            self.x = model._network_input(model.adata, dense=False)
            self.totals = np.asarray(model.adata.X.sum(1)).ravel()

        def take(self, rows):
            return self.x[rows]

        def read(self, rows):  # the calibration's rows (dense)
            return self.x[rows].toarray()

    monkeypatch.setattr(RNAGAN, "_training_rows", lambda self: WholeCopy(self))
    _assert_same_model(new, _trained(_samples()))


def test_backed_training_reads_only_batch_rows_and_matches_in_memory(tmp_path, monkeypatch):
    adata = _samples()
    backed = _backed(adata, tmp_path)
    dataset_cls = type(backed.X)
    reads: list[object] = []
    original = dataset_cls.__getitem__

    def recording(self, index):
        reads.append(index)
        return original(self, index)

    def refuse(self, *args, **kwargs):
        raise AssertionError("the whole backed X was loaded")

    monkeypatch.setattr(dataset_cls, "__getitem__", recording)
    monkeypatch.setattr(dataset_cls, "to_memory", refuse)
    model = _trained(backed)
    assert backed.isbacked and isinstance(backed.X, dataset_cls) and model.is_trained_
    assert sum(model.steps_.values()) == 8
    batch_rows = TRAIN["batch_size"] * (TRAIN["n_refs"][1] + 2)
    fancy = [np.asarray(i) for i in reads if not isinstance(i, slice | tuple)]
    assert fancy and all(i.ndim == 1 and len(i) <= batch_rows for i in fancy)  # a batch's rows, no more
    assert all(np.all(np.diff(i) > 0) for i in fancy)  # sorted, distinct (h5py's fast path)
    # full passes (count check, value check, library sizes) go chunk by chunk: three of them here
    assert sum(isinstance(i, slice) and i.stop is not None and i.start == 0 for i in reads) <= 4
    _assert_same_model(model, _trained(adata))


def test_backed_setup_checks_and_refuses_what_it_cannot_do(tmp_path):
    adata = _samples()
    adata.X = adata.X.toarray()
    adata.X[0, 0] = 0.5
    backed = _backed(adata, tmp_path)
    assert not is_count_matrix(backed, None)
    with pytest.raises(ValueError, match="non-integer"):
        RNAGAN.setup_anndata(backed, labels_key="group", is_count_data=True)
    both = _samples(modality="sc")
    both.obs["modality"] = np.where(np.arange(both.n_obs) % 2 == 0, "sc", "bulk")
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="one modality"):
        RNAGAN.setup_anndata(_backed(both, tmp_path / "b"), labels_key="group", modality_key="modality")


def test_train_passes_the_users_callbacks():
    seen = []

    class Count(Callback):
        def on_train_batch_end(self, *args) -> None:
            seen.append(1)

    adata = _samples()
    RNAGAN.setup_anndata(adata, labels_key="group")
    model = RNAGAN(adata, gene_sets=GENE_SETS, **SMALL_RG)
    model.train(**TRAIN, callbacks=[Count()])
    assert len(seen) == 8
