import anndata
import numpy as np
from scipy import io, sparse

from scsynth.cli import main
from scsynth.model import GeneSys

from ..conftest import BRANCHING_BLUEPRINT, branching_counts

FAST = ["--epochs", "3", "--batch-size", "16", "--n-hidden", "32", "--n-latent", "8"]


def _write_lineage(path):
    # the original format: tab-separated, no header, no row names
    BRANCHING_BLUEPRINT.to_csv(path, sep="\t", header=False, index=False)


def test_train_genesys_from_h5ad_and_generate_trajectories(tmp_path, capsys):
    data = tmp_path / "cells.h5ad"
    branching_counts().write_h5ad(data)
    _write_lineage(tmp_path / "lineage.txt")
    assert main(["train", "genesys", str(data), "--blueprint", str(tmp_path / "lineage.txt"), "--out",
                 str(tmp_path / "m"), *FAST]) == 0
    assert "Saved GeneSys (3 epochs" in capsys.readouterr().out
    model = GeneSys.load(tmp_path / "m")
    assert model.blueprint.trajectories == ["trajectory_0", "trajectory_1"]
    assert main(["generate", str(tmp_path / "m"), "--per-trajectory", "4", "--trajectory", "trajectory_1",
                 "-o", str(tmp_path / "sim.h5ad")]) == 0
    sim = anndata.read_h5ad(tmp_path / "sim.h5ad")
    assert sim.shape == (4 * 3, 40) and set(sim.obs["trajectory"]) == {"trajectory_1"}
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "m"), "-n", "10", "-o", str(tmp_path / "x.h5ad")]) == 1
    assert "--per-trajectory" in capsys.readouterr().err


def test_train_genesys_from_10x_directory_and_annotations(tmp_path, capsys):
    adata = branching_counts()
    folder = tmp_path / "10x"
    folder.mkdir()
    io.mmwrite(folder / "matrix.mtx", sparse.csr_matrix(adata.X.T.astype(np.int64)))
    (folder / "genes.tsv").write_text("".join(f"ENSG{i}\t{g}\n" for i, g in enumerate(adata.var_names)))
    (folder / "barcodes.tsv").write_text("".join(f"{b}\n" for b in adata.obs_names))
    rows = adata.obs.sample(frac=1.0, random_state=0)  # annotations in another order than the barcodes
    (tmp_path / "annotations.txt").write_text(
        "barcode\tlabel\ttime\n" + "".join(f"{b}\t{r.label}\t{float(r.time)}\n" for b, r in rows.iterrows())
    )
    _write_lineage(tmp_path / "lineage.txt")
    assert main(["train", "genesys", str(folder), "--anno", str(tmp_path / "annotations.txt"), "--blueprint",
                 str(tmp_path / "lineage.txt"), "--out", str(tmp_path / "m"), *FAST]) == 0
    assert GeneSys.load(tmp_path / "m").n_epochs_trained_ == 3
    capsys.readouterr()
    assert main(["train", "genesys", str(folder), "--blueprint", str(tmp_path / "lineage.txt"), "--out",
                 str(tmp_path / "n")]) == 1
    assert "--anno" in capsys.readouterr().err
    (tmp_path / "bad.txt").write_text("Pro genitor\tfate_A\tfate_C\n")
    assert main(["train", "genesys", str(tmp_path / "10x"), "--anno", str(tmp_path / "annotations.txt"),
                 "--blueprint", str(tmp_path / "bad.txt"), "--out", str(tmp_path / "n")]) == 1
    assert "fate_C" in capsys.readouterr().err
