import anndata
import numpy as np
import pytest
from scipy import io, sparse

from scsynth.cli import main
from scsynth.model import GeneSys

from ..conftest import BRANCHING_BLUEPRINT, branching_counts

FAST = ["--max-epochs", "3", "--batch-size", "16", "--n-hidden", "32", "--n-latent", "8"]


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
    # -n counts whole trajectories per blueprint row for GeneSys; --condition names them
    assert main(["generate", str(tmp_path / "m"), "-n", "4", "--condition", "trajectory_1",
                 "-o", str(tmp_path / "sim.h5ad")]) == 0
    sim = anndata.read_h5ad(tmp_path / "sim.h5ad")
    assert sim.shape == (4 * 3, 40) and set(sim.obs["trajectory"]) == {"trajectory_1"}
    assert main(["generate", str(tmp_path / "m"), "-n", "2", "--condition", "trajectory_1,trajectory_0",
                 "-o", str(tmp_path / "both.h5ad")]) == 0
    assert anndata.read_h5ad(tmp_path / "both.h5ad").obs["trajectory"].value_counts().to_dict() == {
        "trajectory_0": 6, "trajectory_1": 6}
    # the old flags still work, with a FutureWarning each, and give the same cells
    with pytest.warns(FutureWarning) as record:
        assert main(["generate", str(tmp_path / "m"), "--per-trajectory", "4", "--trajectory", "trajectory_1",
                     "-o", str(tmp_path / "old.h5ad")]) == 0
    renamed = [str(w.message) for w in record if str(w.message).startswith("scsynth generate: `")]
    assert sorted(m.split("`")[1] for m in renamed) == ["--per-trajectory", "--trajectory"]
    assert np.array_equal(anndata.read_h5ad(tmp_path / "old.h5ad").X.toarray(), sim.X.toarray())


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


TINY = ["--max-epochs", "2", "--batch-size", "16", "--n-hidden", "16", "--n-latent", "4"]


def test_train_genesys_named_trajectories(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from scsynth import pl

    data = tmp_path / "cells.h5ad"
    real = branching_counts()
    real.write_h5ad(data)
    _write_lineage(tmp_path / "lineage.txt")
    args = ["train", "genesys", str(data), "--blueprint", str(tmp_path / "lineage.txt"), *TINY]
    # names in row order, comma-separated (spaces inside a name are kept)
    assert main([*args, "--out", str(tmp_path / "m"), "--trajectory-names", "to_A, to B"]) == 0
    out = capsys.readouterr().out
    assert "Trajectories: to_A, to B\n" in out
    assert GeneSys.load(tmp_path / "m").blueprint.trajectories == ["to_A", "to B"]
    assert main(["generate", str(tmp_path / "m"), "-n", "3", "--condition", "to B",
                 "-o", str(tmp_path / "b.h5ad")]) == 0
    assert set(anndata.read_h5ad(tmp_path / "b.h5ad").obs["trajectory"]) == {"to B"}
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "m"), "-n", "3", "--condition", "trajectory_1",
                 "-o", str(tmp_path / "x.h5ad")]) == 1
    assert "Unknown trajectory 'trajectory_1'" in (err := capsys.readouterr().err) and "'to B'" in err
    # the generated file carries the named blueprint: the real cells are drawn per fate
    assert main(["generate", str(tmp_path / "m"), "-n", "3", "-o", str(tmp_path / "all.h5ad")]) == 0
    sim = anndata.read_h5ad(tmp_path / "all.h5ad")
    assert list(sim.uns["blueprint"].index) == ["to_A", "to B"]
    fig = pl.plot_trajectory(sim, reference=real, basis="pca", genes=["g0"], n_hvg=20)
    (gax,) = [a for a in fig.axes if a.get_label() == "gene:g0"]
    lines = {ln.get_gid(): ln for ln in gax.lines}
    for name in ["to_A", "to B"]:
        assert lines[f"reference:g0:{name}"].get_color() == lines[f"gene:g0:{name}"].get_color()

    # or the names in the first column of lineage.txt
    named = BRANCHING_BLUEPRINT.rename(index={"to B": "to_B"})
    named.to_csv(tmp_path / "named.txt", sep="\t", header=False, index=True)
    named_args = ["train", "genesys", str(data), "--blueprint", str(tmp_path / "named.txt"), *TINY]
    assert main([*named_args, "--out", str(tmp_path / "n"), "--blueprint-row-names"]) == 0
    assert GeneSys.load(tmp_path / "n").blueprint.trajectories == ["to_A", "to_B"]
    capsys.readouterr()
    # forgetting the flag: the names read as labels at time 1, and the error says what to pass
    assert main([*named_args, "--out", str(tmp_path / "o")]) == 1
    assert "--blueprint-row-names" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "o"), "--trajectory-names", "A,B,C"]) == 1
    assert "--trajectory-names 'A,B,C' gives 3 name(s)" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "o"), "--trajectory-names", "A,A"]) == 1
    assert "Duplicated trajectory names" in capsys.readouterr().err
    assert main([*named_args, "--out", str(tmp_path / "o"), "--trajectory-names", "A,B",
                 "--blueprint-row-names"]) == 1
    assert "not both" in capsys.readouterr().err
