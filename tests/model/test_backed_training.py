"""Training ScGAN and GeneSys from disk: a backed ``.h5ad`` and an AnnCollection, never loading ``.X``."""

from __future__ import annotations

import anndata
import numpy as np
import pytest
import torch
from anndata.abc import CSRDataset
from anndata.experimental import AnnCollection
from scipy import sparse

from scsynth.data import check_expression
from scsynth.data._matrix import BackedRows, iter_row_chunks, read_rows, row_sums
from scsynth.model import GeneSys, ScGAN
from scsynth.model._inputs import resolve_is_count_data

from ..conftest import BRANCHING_BLUEPRINT, SMALL, SMALL_GS, branching_counts


def _write(adata: anndata.AnnData, path) -> anndata.AnnData:
    adata = adata.copy()
    adata.X = sparse.csr_matrix(adata.X, dtype=np.float32)
    adata.write_h5ad(path)
    return anndata.read_h5ad(path, backed="r")


@pytest.fixture
def branching(tmp_path):
    """150 cells x 40 genes (counts, 5 label/time groups): in memory and the same cells backed."""
    memory = branching_counts()
    memory.X = sparse.csr_matrix(memory.X, dtype=np.float32)
    return memory, _write(memory, tmp_path / "branching.h5ad")


def _no_dense_copy(model, adata) -> None:
    assert adata.isbacked and isinstance(adata.X, CSRDataset)  # still on disk after setup and training
    held = sum(v.nbytes for v in vars(model).values() if isinstance(v, np.ndarray))
    assert held < adata.n_obs * adata.n_vars * 4 / 4  # the model keeps per-cell values at most, never X


# -- readers ------------------------------------------------------------------------------------------------
def test_row_readers_equal_in_memory(branching):
    memory, backed = branching
    idx = np.array([7, 3, 3, 140, 0, 7])  # unsorted, with repeats
    np.testing.assert_array_equal(read_rows(backed, None, idx).toarray(), memory.X[idx].toarray())
    np.testing.assert_array_equal(BackedRows(backed)[idx].toarray(), memory.X[idx].toarray())
    chunks = list(iter_row_chunks(backed, chunk_size=40))
    assert [s for s, _ in chunks] == [0, 40, 80, 120]
    np.testing.assert_array_equal(sparse.vstack([c for _, c in chunks]).toarray(), memory.X.toarray())
    np.testing.assert_array_equal(row_sums(backed, chunk_size=40), np.asarray(memory.X.sum(1)).ravel())
    assert len(list(iter_row_chunks(memory))) == 1  # in memory: one pass, as stored


@pytest.mark.parametrize("is_count_data", [True, False])
def test_count_detection_reads_in_chunks(tmp_path, branching, is_count_data):
    memory, backed = branching
    if not is_count_data:
        memory = memory.copy()
        memory.X = memory.X * 0.5
        backed = _write(memory, tmp_path / "half.h5ad")
    assert resolve_is_count_data(backed, None, None) is resolve_is_count_data(memory, None, None) is is_count_data


@pytest.mark.parametrize("defect", ["nan", "negative", "fraction", "zero_gene", "zero_cell"])
def test_backed_checks_give_the_in_memory_messages(tmp_path, defect):
    memory = branching_counts()
    x = memory.X.astype(np.float32)
    if defect == "nan":
        x[[5, 120], 3] = np.nan
    elif defect == "negative":
        x[100, 2] = -2
    elif defect == "fraction":
        x[130, 1] = 0.5
    elif defect == "zero_gene":
        x[:, 4] = 0
    else:
        x[110] = 0
    memory.X = sparse.csr_matrix(x)
    backed = _write(memory, tmp_path / "bad.h5ad")
    with pytest.raises(ValueError) as expected:
        check_expression(memory)
    with pytest.raises(ValueError) as got:
        check_expression(backed, chunk_size=32)  # the defect sits in a later chunk
    assert str(got.value) == str(expected.value)


def test_clear_errors_for_what_backed_cannot_do(branching):
    _, backed = branching
    with pytest.raises(ValueError, match="view of a backed AnnData.*to_memory"):
        ScGAN.setup_anndata(backed[:100])
    with pytest.raises(KeyError, match="not in the file.*layer=None"):
        GeneSys.setup_anndata(backed, layer="counts", is_count_data=True)
    with pytest.raises(KeyError, match="not in the file"):
        GeneSys.setup_anndata(backed, layer="counts")


# -- ScGAN ------------------------------------------------------------------------------------------------
def test_scgan_trains_from_a_backed_file(branching, tmp_path):
    memory, backed = branching
    models = []
    for adata in (memory, backed):
        ScGAN.setup_anndata(adata, labels_key="label")
        model = ScGAN(adata, **SMALL)
        model.train(max_steps=3, batch_size=16, seed=0, plan_kwargs={"n_critic": 2}, validate_every=1,
                    enable_progress_bar=False)
        models.append(model)
    in_memory, from_disk = models
    _no_dense_copy(from_disk, backed)
    # the same split, labels and library sizes; batches hold the same cells, but scvi-tools reads a backed
    # batch in increasing cell order (h5py), so the weights match the in-memory run only up to that order
    np.testing.assert_array_equal(from_disk.train_indices, in_memory.train_indices)
    np.testing.assert_array_equal(from_disk.train_library_sizes_, in_memory.train_library_sizes_)
    np.testing.assert_array_equal(from_disk.train_label_codes_, in_memory.train_label_codes_)
    assert from_disk.n_generator_steps_ == 3
    assert "wasserstein_validation" in from_disk.history  # the validation cells were read from disk too
    assert all(torch.isfinite(p).all() for p in from_disk.module.parameters())
    # the model file holds no cells; generate works after loading without data
    with pytest.raises(ValueError, match="on disk .*branching.h5ad.*backed='r'"):
        from_disk.save(tmp_path / "scgan", save_anndata=True)  # would copy the whole file
    assert not (tmp_path / "scgan").exists()
    from_disk.save(tmp_path / "scgan")
    assert not (tmp_path / "scgan" / "adata.h5ad").exists()
    assert sum(f.stat().st_size for f in (tmp_path / "scgan").iterdir()) < 5 * 2**20
    loaded = ScGAN.load(tmp_path / "scgan")
    cells = loaded.generate(20, condition="fate_A", seed=1)
    assert cells.shape == (20, memory.n_vars) and np.isfinite(cells.X.toarray()).all()
    reloaded = ScGAN.load(tmp_path / "scgan", adata=anndata.read_h5ad(backed.filename, backed="r"))
    reloaded.train(max_steps=1, batch_size=16, enable_progress_bar=False)  # continues from disk


def test_scgan_backed_batches_hold_the_in_memory_cells(branching):
    memory, backed = branching
    seen = []
    for adata in (memory, backed):
        ScGAN.setup_anndata(adata, labels_key="label")
        model = ScGAN(adata, **SMALL)
        from scvi.dataloaders import DataSplitter

        splitter = DataSplitter(model.adata_manager, batch_size=16, external_indexing=[
            np.arange(120), np.arange(120, 150), np.array([], dtype=np.int64)], drop_last=True)
        splitter.setup()
        torch.manual_seed(0)
        seen.append([np.sort(np.asarray(b["X"]).sum(1)) for b in splitter.train_dataloader()])
    for got, want in zip(*seen[::-1], strict=True):
        np.testing.assert_array_equal(got, want)


# -- GeneSys ----------------------------------------------------------------------------------------------
def _genesys(adata, **train):
    GeneSys.setup_anndata(adata)
    model = GeneSys(adata, blueprint=BRANCHING_BLUEPRINT, **SMALL_GS)
    model.train(max_epochs=2, batch_size=16, seed=3, enable_progress_bar=False, **train)
    return model


def test_genesys_from_a_backed_file_equals_in_memory(branching, tmp_path):
    memory, backed = branching
    in_memory, from_disk = _genesys(memory), _genesys(backed)
    _no_dense_copy(from_disk, backed)
    # GeneSys' own loader reads each batch's cells from disk in the in-memory order: identical training
    for (name, want), got in zip(in_memory.module.state_dict().items(), from_disk.module.state_dict().values(),
                                 strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)
    for want_row, got_row in zip(in_memory.library_pools_, from_disk.library_pools_, strict=True):
        for want, got in zip(want_row, got_row, strict=True):
            np.testing.assert_array_equal(got, want)
    assert from_disk.best_validation_loss_ == in_memory.best_validation_loss_
    # jobs on the training data read it from disk too
    np.testing.assert_array_equal(from_disk.get_latent_representation(), in_memory.get_latent_representation())
    from_disk.save(tmp_path / "genesys")
    assert not (tmp_path / "genesys" / "adata.h5ad").exists()
    cells = GeneSys.load(tmp_path / "genesys").generate(3, seed=0)
    assert cells.shape == (3 * 2 * 3, memory.n_vars)


# -- AnnCollection ----------------------------------------------------------------------------------------
def test_ann_collection_of_two_files_trains_both_models(tmp_path):
    memory = branching_counts()
    first = _write(memory[::2], tmp_path / "a.h5ad")
    second = _write(memory[1::2], tmp_path / "b.h5ad")
    collection = AnnCollection([first, second], join_vars="inner", label="file", index_unique="-")
    joined = anndata.concat([memory[::2], memory[1::2]])
    joined.X = sparse.csr_matrix(joined.X, dtype=np.float32)
    ScGAN.setup_anndata(collection, labels_key="label")
    scgan = ScGAN(collection, **SMALL)
    scgan.train(max_steps=2, batch_size=16, enable_progress_bar=False)
    want = np.asarray(joined.X.sum(1)).ravel()[scgan.train_indices]
    np.testing.assert_array_equal(scgan.train_library_sizes_, want)
    assert first.isbacked and second.isbacked
    genesys = _genesys(collection)
    in_memory = _genesys(joined)
    for want, got in zip(in_memory.module.state_dict().values(), genesys.module.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert genesys.generate(2, seed=0).n_obs == 2 * 2 * 3


# -- DDP --------------------------------------------------------------------------------------------------
def test_genesys_ddp_two_cpu_processes_from_a_backed_file(tmp_path, branching):
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    _, backed = branching
    BRANCHING_BLUEPRINT.to_csv(tmp_path / "blueprint.tsv", sep="\t")
    script = Path(__file__).with_name("ddp_genesys_backed_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(backed.filename), str(tmp_path / "blueprint.tsv"), str(tmp_path / "gs")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = re.findall(r"RANK(\d) of 2 backed True weights (\S+)", proc.stdout)
    assert {r for r, _ in ranks} == {"0", "1"} and len({w for _, w in ranks}) == 1
    assert "RANK0 epochs: 2" in proc.stdout
    assert GeneSys.load(tmp_path / "gs").generate(3, seed=0).shape == (2 * 3 * 3, 40)
