import anndata
import numpy as np
import pandas as pd

from scsynth.cli import main
from scsynth.model import GRouNdGAN

from ..conftest import DATA


def test_train_groundgan_perturb_and_generate_from_the_shell(tmp_path, capsys):
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    tfs = ["YBX1", "SON"]
    grn = pd.DataFrame([(tf, g) for g in adata.var_names if g not in tfs for tf in tfs], columns=["source", "target"])
    grn.to_csv(tmp_path / "grn.tsv", sep="\t", index=False)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    assert main(["train", "groundgan", str(data), "--grn", str(tmp_path / "grn.tsv"), "--out", str(tmp_path / "m"),
                 "--controller-steps", "2", "--max-steps", "2", "--batch-size", "32", "--no-calibration"]) == 0
    model = GRouNdGAN.load(tmp_path / "m")
    assert model.controller_steps_ == 2 and model.n_generator_steps_ == 2
    assert not model.module.marginals.is_fitted  # calibrated by default (tests/model/test_groundgan_calibration.py)
    assert main(["perturb", str(tmp_path / "m"), "--knockout", "YBX1", "--overexpress", "SON=2", "-n", "30",
                 "-o", str(tmp_path / "ko.h5ad")]) == 0
    ko = anndata.read_h5ad(tmp_path / "ko.h5ad")
    assert ko.n_obs == 60 and set(ko.obs["condition"]) == {"control", "KO(YBX1)+x2(SON)"}
    assert "effects" in ko.uns["perturbation"]
    assert main(["generate", str(tmp_path / "m"), "-n", "15", "-o", str(tmp_path / "sim.h5ad")]) == 0
    assert anndata.read_h5ad(tmp_path / "sim.h5ad").shape == (15, 300)
    # bad input: one clear line, exit 1, before any training
    capsys.readouterr()
    assert main(["perturb", str(tmp_path / "m"), "--knockout", "CD74", "-o", str(tmp_path / "x.h5ad")]) == 1
    assert "target gene of the GRN" in capsys.readouterr().err
    assert main(["perturb", str(tmp_path / "m"), "--overexpress", "SON", "-o", str(tmp_path / "x.h5ad")]) == 1
    assert "TF=NUMBER" in capsys.readouterr().err
    assert main(["train", "groundgan", str(data), "--grn", "missing.tsv", "--out", str(tmp_path / "n")]) == 1
    assert "no such file" in capsys.readouterr().err
    np.testing.assert_array_equal(ko.obs["pair"][:30], np.arange(30))


def test_train_groundgan_with_the_controllers_noise_from_the_shell(tmp_path):
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    grn = pd.DataFrame([("YBX1", g) for g in adata.var_names if g != "YBX1"], columns=["source", "target"])
    grn.to_csv(tmp_path / "grn.tsv", sep="\t", index=False)
    adata.write_h5ad(tmp_path / "cells.h5ad")
    assert main(["train", "groundgan", str(tmp_path / "cells.h5ad"), "--grn", str(tmp_path / "grn.tsv"), "--out",
                 str(tmp_path / "m"), "--controller-steps", "2", "--max-steps", "2", "--batch-size", "32",
                 "--target-noise", "controller"]) == 0
    assert GRouNdGAN.load(tmp_path / "m").module.target_noise == "controller"
    ko_path = str(tmp_path / "ko.h5ad")
    assert main(["perturb", str(tmp_path / "m"), "--knockout", "YBX1", "-n", "20", "-o", ko_path]) == 0
    ko = anndata.read_h5ad(tmp_path / "ko.h5ad")
    assert ko.n_obs == 40 and ko.layers["pre_lsn"][20:, list(ko.var_names).index("YBX1")].nnz == 0
