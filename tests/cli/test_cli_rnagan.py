import warnings

import anndata
import numpy as np
import pandas as pd
import pytest

from scsynth.cli import main
from scsynth.model import RNAGAN

from ..model.test_rnagan import GENE_SETS, _samples

FAST = ["--sc-steps", "40", "--batch-size", "16", "--n-learned", "2"]


def _gmt(path):
    with open(path, "w") as f:
        for name, genes in GENE_SETS.groupby("source")["target"]:
            f.write("\t".join([name, "test set", *genes]) + "\n")


def test_train_rnagan_stratify_and_generate(tmp_path, capsys):
    data, gmt = tmp_path / "samples.h5ad", tmp_path / "sets.gmt"
    _samples().write_h5ad(data)
    _gmt(gmt)
    assert main(["train", "rnagan", str(data), "--labels-key", "group", "--gene-sets", str(gmt), "--out",
                 str(tmp_path / "m"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "4 gene sets" in out and "Saved RNAGAN (sc_warmup: 20 steps, sc: 20 steps; episode accuracy of the kept weights" in out
    loaded = RNAGAN.load(tmp_path / "m")
    assert loaded.gene_sets.n_sets == 4 and loaded.module.marginals.is_fitted  # calibrated by default

    # references from a column of the input: labelled samples are the references, the rest are scored
    new = _samples(seed=4)
    labels = new.obs["group"].astype(str).to_numpy().astype(object)
    labels[np.arange(new.n_obs) % 4 != 0] = None
    new.obs["known"] = pd.Series(labels, index=new.obs_names)
    new.write_h5ad(tmp_path / "new.h5ad")
    assert main(["stratify", str(tmp_path / "m"), str(tmp_path / "new.h5ad"), "--references", "known",
                 "--n-draws", "4", "-o", str(tmp_path / "out.h5ad")]) == 0
    assert "Stratified 120 samples into 4 groups" in capsys.readouterr().out
    result = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert result.obsm["rnagan_scores"].shape == (120, 4) and result.uns["rnagan"]["params"]["temperature"] > 0
    # default references: the training data saved with the model; agreement with the truth is printed
    assert main(["stratify", str(tmp_path / "m"), str(tmp_path / "new.h5ad"), "--n-draws", "4", "--no-calibrate",
                 "-o", str(tmp_path / "out2.h5ad")]) == 0
    assert "Agreement with obs['group']" in capsys.readouterr().out

    assert main(["generate", str(tmp_path / "m"), "-n", "5", "--condition", "type 1", "-o",
                 str(tmp_path / "gen.h5ad")]) == 0
    gen = anndata.read_h5ad(tmp_path / "gen.h5ad")
    assert gen.shape == (5, 40) and (gen.obs["group"] == "type 1").all()
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "m"), "-n", "5", "-o", str(tmp_path / "gen2.h5ad")]) == 1
    assert "--condition GROUP" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:var_names are not unique")
def test_train_rnagan_from_h5mu_and_clear_errors(tmp_path, capsys):
    import mudata

    mudata.set_options(pull_on_update=False)
    gmt = tmp_path / "sets.gmt"
    _gmt(gmt)
    mudata.MuData({"rna": _samples(seed=0), "tissue": _samples(n_per_group=6, seed=1)[:, 2:].copy()}).write_h5mu(
        tmp_path / "both.h5mu")
    args = ["train", "rnagan", str(tmp_path / "both.h5mu"), "--labels-key", "group", "--gene-sets", str(gmt)]
    assert main([*args, "--out", str(tmp_path / "m"), *FAST]) == 1
    assert "say which is which" in capsys.readouterr().err
    assert main([*args, "--modalities", "rna=sc", "tissue=bulk", "--bulk-steps", "10", "--out", str(tmp_path / "m"),
                 *FAST]) == 0
    out = capsys.readouterr().out
    assert "38 genes shared" in out and "bulk: 10 steps" in out
    assert main([*args, "--modalities", "rna=cells", "--out", str(tmp_path / "m2")]) == 1
    assert "NAME=sc or NAME=bulk" in capsys.readouterr().err
    assert main(["train", "rnagan", str(tmp_path / "both.h5mu"), "--labels-key", "group", "--gene-sets", "nope.gmt",
                 "--out", str(tmp_path / "m3")]) == 1
    assert "nope.gmt" in capsys.readouterr().err
    assert main(["stratify", str(tmp_path / "m"), str(tmp_path / "both.h5mu"), "-o", str(tmp_path / "x.h5ad")]) == 1
    assert "MuData file" in capsys.readouterr().err


def test_train_rnagan_prints_its_plan_and_a_chance_warning(tmp_path, capsys):
    data, gmt = tmp_path / "samples.h5ad", tmp_path / "sets.gmt"
    _samples(n_per_group=10).write_h5ad(data)
    _gmt(gmt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", "rnagan", str(data), "--labels-key", "group", "--gene-sets", str(gmt), "--modality",
                     "bulk", "--sc-steps", "200", "--bulk-steps", "4", "--batch-size", "16", "--n-learned", "2",
                     "--no-calibration", "--out", str(tmp_path / "m")]) == 0
    captured = capsys.readouterr()
    assert ("RNAGAN plan: bulk only: --sc-steps ignored (no single-cell samples); bulk stage: 2 discriminator "
            "warm-up + 2 adversarial steps, of 16 episodes each.") in captured.out
    # 4 steps: at chance, said once, with the CLI's flags (not as a Python warning with a source path)
    assert "warning: the bulk stage ended at chance" in captured.err and "--bulk-steps 1000" in captured.err
    assert "RNAGAN bulk adversarial" in captured.err and "UserWarning" not in captured.err
    assert not [w for w in caught if "RNAGAN" in type(w.message).__name__]
    assert captured.out.count("RNAGAN plan") == 1 and "RNAGAN plan" not in captured.err
    assert not RNAGAN.load(tmp_path / "m").module.marginals.is_fitted  # --no-calibration: 10 samples a group would be
