import shutil
import subprocess
import sys

import anndata
import numpy as np
import pytest

from scsynth.cli import main
from scsynth.model import ScGAN

from ..conftest import DATA, SMALL


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "generate", "evaluate", "demo"):
        assert command in out


def test_console_script_is_installed():
    exe = shutil.which("scsynth") or str(__import__("pathlib").Path(sys.executable).with_name("scsynth"))
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("scsynth ")


def test_train_then_generate_roundtrip_with_python(tmp_path, capsys):
    data = tmp_path / "cells.h5ad"
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    adata.obs["group"] = np.where(np.arange(adata.n_obs) % 2, "a", "b")
    adata.write_h5ad(data)
    assert main(["train", "scgan", str(data), "--out", str(tmp_path / "m"), "--labels-key", "group",
                 "--max-steps", "2", "--batch-size", "32"]) == 0
    model = ScGAN.load(tmp_path / "m")  # CLI output loads in Python
    assert model.n_generator_steps_ == 2 and model.labels_key == "group"
    assert model.module.marginals.is_fitted  # calibrated by default; --no-calibration keeps the generator's values
    assert main(["train", "scgan", str(data), "--out", str(tmp_path / "plain"), "--max-steps", "2", "--batch-size",
                 "32", "--no-calibration", "--output-noise", "none", "--output-noise-warmup", "0.25"]) == 0
    plain = ScGAN.load(tmp_path / "plain")
    assert not plain.module.marginals.is_fitted and plain.output_noise_warmup == 0.25
    assert plain.output_noise == "none" and not plain.module.count_noise.is_fitted
    # counts drawn after a warm-up by default, as in Python
    assert model.output_noise == "poisson" and model.module.count_noise.is_fitted
    assert model.output_noise_warmup == 0.5
    assert main(["generate", str(tmp_path / "m"), "-n", "25", "-o", str(tmp_path / "sim.h5ad"),
                 "--condition", "a"]) == 0
    sim = anndata.read_h5ad(tmp_path / "sim.h5ad")
    assert sim.shape == (25, adata.n_vars) and (sim.obs["group"] == "a").all()
    assert "Wrote 25 generated cells" in capsys.readouterr().out


def test_generate_from_a_python_saved_model(tmp_path, counts):
    ScGAN.setup_anndata(counts)
    model = ScGAN(counts, **SMALL)
    model.train(max_steps=1, batch_size=32, enable_progress_bar=False)
    model.save(tmp_path / "py_model")
    assert main(["generate", str(tmp_path / "py_model"), "-n", "10", "-o", str(tmp_path / "o.h5ad")]) == 0
    expected = model.generate(10, seed=0)
    got = anndata.read_h5ad(tmp_path / "o.h5ad")
    assert np.array_equal(got.X.toarray(), expected.X.toarray())


def test_cli_errors_are_one_clear_line(tmp_path, capsys, pbmc):
    assert main(["train", "scgan", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "m")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing.h5ad'} does not exist (expected an .h5ad file).\n"
    bad = pbmc.copy()  # normalised values are detected as such; a negative value is refused
    bad.X = np.asarray(bad.X.toarray() if hasattr(bad.X, "toarray") else bad.X)
    bad.X[0, 0] = -1.0
    bad.write_h5ad(tmp_path / "neg.h5ad")
    assert main(["train", "scgan", str(tmp_path / "neg.h5ad"), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "negative" in err and err.count("\n") == 1
    assert main(["generate", str(tmp_path), "-n", "3", "-o", str(tmp_path / "x.h5ad")]) == 1
    assert "is not a saved scsynth" in capsys.readouterr().err


def test_train_drops_empty_genes_with_a_warning(tmp_path):
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    adata.X = adata.X.toarray()
    adata.X[:, :4] = 0
    adata.write_h5ad(tmp_path / "z.h5ad")
    with pytest.warns(UserWarning, match="Dropping 4 genes"):
        assert main(["train", "scgan", str(tmp_path / "z.h5ad"), "--out", str(tmp_path / "m"),
                     "--max-steps", "1", "--batch-size", "32"]) == 0
    assert ScGAN.load(tmp_path / "m").var_names_.shape == (adata.n_vars - 4,)


def test_evaluate_on_the_log_scale(tmp_path, pbmc, capsys):
    pbmc[:350].write_h5ad(tmp_path / "real.h5ad")
    pbmc[350:].write_h5ad(tmp_path / "sim.h5ad")
    files = [str(tmp_path / "real.h5ad"), str(tmp_path / "sim.h5ad")]
    assert main(["evaluate", *files, "--report", str(tmp_path / "rep"), "-n", "60", "--scale", "log1p"]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "here the forest, the MMD and the centroid distances too" in report
    with pytest.raises(SystemExit):
        main(["evaluate", *files, "--report", str(tmp_path / "other"), "--scale", "log2"])
    assert "invalid choice: 'log2'" in capsys.readouterr().err


def test_evaluate_offers_the_scales_of_the_metric():
    from scsynth.cli._parser import build_parser
    from scsynth.metrics._preprocess import SCALES

    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    scale = next(a for a in evaluate._actions if a.dest == "scale")
    assert tuple(scale.choices) == SCALES and scale.default == SCALES[0]


def test_evaluate_writes_a_report(tmp_path, pbmc, capsys):
    real, sim = pbmc[:350].copy(), pbmc[350:].copy()  # two halves of real cells: a realistic "simulator"
    real.write_h5ad(tmp_path / "real.h5ad")
    sim.write_h5ad(tmp_path / "sim.h5ad")
    assert main(["evaluate", str(tmp_path / "real.h5ad"), str(tmp_path / "sim.h5ad"), "--report",
                 str(tmp_path / "rep"), "--labels-key", "bulk_labels", "--n-obs", "100"]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| rf_auroc |" in report and "| mmd |" in report and "real_vs_generated.png" in report
    table = __import__("pandas").read_csv(tmp_path / "rep" / "realism.csv").set_index("metric")
    assert table.loc["rf_auroc", "value"] < 0.8  # halves of the same data are hard to tell apart
    png = __import__("matplotlib.image").image.imread(tmp_path / "rep" / "real_vs_generated.png")
    assert png.ndim == 3 and png.shape[0] > 100
    out = capsys.readouterr().out
    assert "report.md" in out
    # the terminal gets the verdicts and the table, not only where the report went
    assert out.splitlines()[0].startswith("Overall: ")
    assert "- rf_auroc (good): Generated cells are hard to tell from real ones" in out
    header = next(line for line in out.splitlines() if line.startswith("metric "))
    assert header.split() == ["metric", "generated", "control", "ratio", "verdict"]
    rf_line = next(line for line in out.splitlines() if line.startswith("rf_auroc "))
    assert rf_line.split()[-1] == "good" and f"{table.loc['rf_auroc', 'value']:.3g}" in rf_line
    # the report leads with the verdicts and says how many genes were compared (765 < 1000 asked for)
    assert report.startswith("# scsynth realism report\n\n**Overall: ")
    assert "| rf_auroc | good |" in report
    assert "all 765 genes (the data have fewer than the 1000 highly variable genes asked for)" in report
    assert "the forest, the MMD and the centroid distances see the scaled values themselves" in report
    assert "every cell is scaled so that its values add up to 20,000" in report


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--max-steps", "3"]) == 0
    for name in ("report.md", "realism.csv", "real_vs_generated.png", "history.png", "generated.h5ad",
                 "real_test.h5ad"):
        assert (out / name).is_file(), name
    generated, real = anndata.read_h5ad(out / "generated.h5ad"), anndata.read_h5ad(out / "real_test.h5ad")
    assert generated.shape == real.shape
    assert (generated.obs["bulk_labels"].astype(str).value_counts().sort_index()
            == real.obs["bulk_labels"].astype(str).value_counts().sort_index()).all()
    assert ScGAN.load(out / "model").n_generator_steps_ == 3
    out = capsys.readouterr().out
    assert "| rf_auroc |" in out
    assert "**Overall: " in out and "- rf_auroc (" in out  # the verdicts are printed with the report head
