"""Every CLI failure: one ``error:`` line on stderr, a non-zero exit, and no long work before it."""

import anndata
import numpy as np
import pytest

import scsynth.cli as cli
from scsynth.cli import _jobs, main
from scsynth.model import ScGAN

from ..conftest import DATA, SMALL, branching_counts
from ..model.test_rnagan import _samples

BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256)) * 4


def _err(capsys) -> str:
    """What the command printed to stderr, checked to be exactly one ``error:`` line."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


@pytest.fixture
def no_training(monkeypatch):
    """Record any training call: the checks under test must fail before it."""
    import scsynth.model as models

    calls = []
    for cls in ("ScGAN", "GRouNdGAN", "GeneSys", "RNAGAN"):
        monkeypatch.setattr(getattr(models, cls), "train",
                            lambda self, *a, **k: calls.append(type(self).__name__))
    return calls


@pytest.fixture(scope="module")
def saved_scgan(tmp_path_factory):
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    ScGAN.setup_anndata(adata)
    model = ScGAN(adata, **SMALL)
    model.train(max_steps=1, batch_size=32, enable_progress_bar=False)
    path = tmp_path_factory.mktemp("models") / "scgan"
    model.save(path)
    return path


# --- NaN, infinite and negative values are errors, not "no expression" --------------------------------------

def _poison(x, kind):
    if kind == "one NaN":
        x[3, 5] = np.nan
    elif kind == "NaN column":
        x[:, 0] = np.nan
    elif kind == "inf":
        x[0, 0] = np.inf
    else:
        x[1, 1] = -1.0
    return x


TRAIN_ARGS = [["scgan"], ["groundgan", "--grn", "collectri"], ["rnagan", "--labels-key", "g"]]


@pytest.mark.parametrize("kind", ["one NaN", "NaN column", "inf", "negative"])
@pytest.mark.parametrize("command", TRAIN_ARGS)
def test_non_finite_or_negative_input_fails_before_dropping(tmp_path, capsys, no_training, kind, command):
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    adata.X = _poison(adata.X.toarray(), kind)
    adata.write_h5ad(tmp_path / "bad.h5ad")
    out = tmp_path / "m"
    with _no_drop_warning():
        assert main(["train", command[0], str(tmp_path / "bad.h5ad"), *command[1:], "--out", str(out)]) == 1
    err = _err(capsys)
    assert str(tmp_path / "bad.h5ad") in err and ".X" in err
    assert ("NaN or infinite" if kind != "negative" else "negative values") in err
    assert not out.exists() and no_training == []


class _no_drop_warning:
    """Fail if the CLI warns that it drops genes/cells: nothing may be dropped before the value check."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings(record=True)
        self._log = self._ctx.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        assert not [w for w in self._log if "Dropping" in str(w.message)]


def test_sparse_nan_is_caught_too(tmp_path, capsys, no_training):
    adata = anndata.read_h5ad(DATA / "immune_small_counts.h5ad")
    adata.X = adata.X.tocsr().astype(np.float32)
    adata.X.data[:3] = np.nan
    adata.write_h5ad(tmp_path / "bad.h5ad")
    assert main(["train", "scgan", str(tmp_path / "bad.h5ad"), "--out", str(tmp_path / "m")]) == 1
    assert "3 NaN or infinite values" in _err(capsys)
    assert no_training == []


# --- outputs are checked before any long work ---------------------------------------------------------------

TRAIN = {
    "scgan": [],
    "groundgan": ["--grn", "collectri"],
    "genesys": ["--blueprint", "lineage.txt"],
    "rnagan": ["--labels-key", "group"],
}


@pytest.mark.parametrize("model", TRAIN)
def test_existing_out_is_reported_before_reading_the_input(tmp_path, capsys, model):
    out = tmp_path / "scgan_model"
    out.mkdir()
    # the input does not even exist: the --out check comes first
    args = ["train", model, str(tmp_path / "missing.h5ad"), *TRAIN[model], "--out", str(out)]
    assert main(args) == 1
    err = _err(capsys)
    assert err == (f"error: --out {out} already exists; pass --overwrite to replace it, "
                   "or choose another --out.\n")
    assert "overwrite=True" not in err

    # --overwrite replaces only a saved model: a directory without scsynth.json is refused, naming it
    assert main([*args, "--overwrite"]) == 1
    err = _err(capsys)
    assert f"--out {out} exists and is not a scsynth model directory (no scsynth.json)" in err

    (tmp_path / "file").write_text("x")
    assert main(["train", model, str(tmp_path / "missing.h5ad"), *TRAIN[model], "--out",
                 str(tmp_path / "file"), "--overwrite"]) == 1
    assert "is an existing file" in _err(capsys)


def test_overwrite_replaces_a_saved_model(tmp_path, saved_scgan, capsys):
    import shutil

    out = tmp_path / "m"
    shutil.copytree(saved_scgan, out)
    data = tmp_path / "cells.h5ad"
    anndata.read_h5ad(DATA / "immune_small_counts.h5ad").write_h5ad(data)
    assert main(["train", "scgan", str(data), "--out", str(out), "--max-steps", "2", "--batch-size", "32",
                 "--overwrite"]) == 0
    assert ScGAN.load(out).n_generator_steps_ == 2


JOBS = {
    "generate": ["-n", "5"],
    "perturb": ["--knockout", "GATA1"],
    "stratify": ["input.h5ad"],
}


@pytest.mark.parametrize("command", JOBS)
def test_existing_output_file_is_reported_before_loading_the_model(tmp_path, capsys, command):
    out = tmp_path / "out.h5ad"
    out.write_text("old")
    args = [command, str(tmp_path / "no_model"), *JOBS[command], "-o", str(out)]
    assert main(args) == 1
    assert _err(capsys) == (
        f"error: -o/--output {out} already exists; pass --overwrite to replace it, or choose another "
        "-o/--output.\n"
    )
    # with --overwrite the check passes and the next problem (no model there) is reported instead
    assert main([*args, "--overwrite"]) == 1
    assert "already exists" not in _err(capsys)
    assert out.read_text() == "old"


@pytest.mark.parametrize("command", JOBS)
def test_output_path_that_is_a_directory(tmp_path, capsys, command):
    for overwrite in ([], ["--overwrite"]):
        args = [command, str(tmp_path / "no_model"), *JOBS[command], "-o", str(tmp_path), *overwrite]
        assert main(args) == 1
        assert f"-o/--output {tmp_path} is a directory" in _err(capsys)


def test_generate_overwrite_replaces_the_file(tmp_path, saved_scgan, capsys):
    out = tmp_path / "sim.h5ad"
    assert main(["generate", str(saved_scgan), "-n", "4", "-o", str(out)]) == 0
    assert main(["generate", str(saved_scgan), "-n", "6", "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["generate", str(saved_scgan), "-n", "6", "-o", str(out), "--overwrite"]) == 0
    assert anndata.read_h5ad(out).n_obs == 6


def test_evaluate_refuses_to_overwrite_a_report(tmp_path, capsys):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "report.md").write_text("old")
    args = ["evaluate", str(tmp_path / "missing_real.h5ad"), str(tmp_path / "missing_sim.h5ad"), "--report",
            str(rep)]
    assert main(args) == 1
    assert f"--report {rep} already holds report.md; pass --overwrite" in _err(capsys)
    assert main([*args, "--overwrite"]) == 1  # past the check: the missing input is next
    assert "missing_real.h5ad does not exist" in _err(capsys)
    assert main([*args[:-1], str(rep / "report.md")]) == 1
    assert "is an existing file" in _err(capsys)


# --- damaged files: one line naming the file ----------------------------------------------------------------

def _damaged(path, kind):
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not hdf5":
        path.write_bytes(b"this is not an HDF5 file\n" * 20)
    else:
        anndata.AnnData(np.ones((20, 5), dtype=np.float32)).write_h5ad(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize("kind", ["empty", "not hdf5", "truncated"])
def test_corrupt_truncated_or_empty_h5ad(tmp_path, capsys, kind):
    bad = _damaged(tmp_path / "cells.h5ad", kind)
    good = tmp_path / "good.h5ad"
    anndata.AnnData(np.ones((5, 3), dtype=np.float32)).write_h5ad(good)
    for args in (["train", "scgan", str(bad), "--out", str(tmp_path / "m")],
                 ["train", "rnagan", str(bad), "--labels-key", "g", "--out", str(tmp_path / "m")],
                 ["evaluate", str(good), str(bad), "--report", str(tmp_path / "rep")]):
        assert main(args) == 1
        err = _err(capsys)
        assert f"error: {bad} " in err
        assert ("empty (0 bytes)" if kind == "empty" else "truncated or corrupt") in err
    assert not (tmp_path / "m").exists()


def test_corrupt_h5mu(tmp_path, capsys):
    bad = _damaged(tmp_path / "both.h5mu", "not hdf5")
    assert main(["train", "rnagan", str(bad), "--labels-key", "g", "--out", str(tmp_path / "m")]) == 1
    assert f"{bad} could not be read as an .h5mu file" in _err(capsys)


def test_binary_grn_and_tf_list(tmp_path, capsys, no_training):
    data = tmp_path / "cells.h5ad"
    anndata.read_h5ad(DATA / "immune_small_counts.h5ad").write_h5ad(data)
    (tmp_path / "grn.tsv").write_bytes(BINARY)
    assert main(["train", "groundgan", str(data), "--grn", str(tmp_path / "grn.tsv"), "--out",
                 str(tmp_path / "m")]) == 1
    err = _err(capsys)
    assert f"The GRN file '{tmp_path / 'grn.tsv'}' could not be read as a text table" in err
    (tmp_path / "tfs.txt").write_bytes("GATA1\nSPI1 \xe9\n".encode("latin-1"))  # not UTF-8
    assert main(["train", "groundgan", str(data), "--grn", "infer", "--tfs", str(tmp_path / "tfs.txt"),
                 "--out", str(tmp_path / "m")]) == 1
    assert f"TF list '{tmp_path / 'tfs.txt'}' is not a UTF-8 text file" in _err(capsys)
    assert no_training == []


def test_binary_blueprint_and_annotations(tmp_path, capsys, no_training):
    data = tmp_path / "cells.h5ad"
    branching_counts().write_h5ad(data)
    (tmp_path / "lineage.txt").write_bytes(BINARY)
    assert main(["train", "genesys", str(data), "--blueprint", str(tmp_path / "lineage.txt"), "--out",
                 str(tmp_path / "m")]) == 1
    err = _err(capsys)
    assert f"Lineage blueprint file '{tmp_path / 'lineage.txt'}' is not a UTF-8 text file" in err
    (tmp_path / "anno.txt").write_bytes(BINARY)
    (tmp_path / "lineage.txt").write_text("Pro genitor\tfate_A\tfate_A\n")  # a valid one: the blueprint is read first
    assert main(["train", "genesys", str(data), "--anno", str(tmp_path / "anno.txt"), "--blueprint",
                 str(tmp_path / "lineage.txt"), "--out", str(tmp_path / "m")]) == 1
    assert f"Annotation file '{tmp_path / 'anno.txt'}' could not be read" in _err(capsys)
    assert no_training == []


@pytest.mark.parametrize("name", ["sets.gmt", "sets.gmt.gz"])
def test_binary_gmt(tmp_path, capsys, no_training, name):
    data = tmp_path / "samples.h5ad"
    _samples().write_h5ad(data)
    (tmp_path / name).write_bytes(BINARY)
    assert main(["train", "rnagan", str(data), "--labels-key", "group", "--gene-sets", str(tmp_path / name),
                 "--out", str(tmp_path / "m")]) == 1
    assert f"{tmp_path / name} could not be read as a UTF-8 GMT text file" in _err(capsys)
    assert no_training == []


# --- numeric flags are checked by argparse, at once ---------------------------------------------------------

@pytest.mark.parametrize("args, flag", [
    (["train", "scgan", "x.h5ad", "--out", "m", "--batch-size", "0"], "--batch-size"),
    (["train", "scgan", "x.h5ad", "--out", "m", "--max-steps", "-3"], "--max-steps"),
    (["train", "scgan", "x.h5ad", "--out", "m", "--output-noise-warmup", "1"], "--output-noise-warmup"),
    (["train", "groundgan", "x.h5ad", "--grn", "infer", "--out", "m", "--top-k", "0"], "--top-k"),
    (["train", "genesys", "x.h5ad", "--blueprint", "b", "--out", "m", "--max-epochs", "0"], "--max-epochs"),
    (["train", "genesys", "x.h5ad", "--blueprint", "b", "--out", "m", "--lr", "nan"], "--lr"),
    (["train", "genesys", "x.h5ad", "--blueprint", "b", "--out", "m", "--train-size", "1.5"], "--train-size"),
    (["train", "rnagan", "x.h5ad", "--labels-key", "g", "--out", "m", "--batch-size", "two"], "--batch-size"),
    (["generate", "m", "-n", "0", "-o", "x.h5ad"], "-n/--n-obs"),
    (["perturb", "m", "--knockout", "A", "-n", "-1", "-o", "x.h5ad"], "-n/--n-obs"),
    (["stratify", "m", "x.h5ad", "--n-draws", "0", "-o", "y.h5ad"], "--n-draws"),
    (["stratify", "m", "x.h5ad", "--n-refs", "0", "-o", "y.h5ad"], "--n-refs"),
    (["evaluate", "a", "b", "--report", "r", "--n-obs", "0"], "-n/--n-obs"),
])
def test_non_positive_numeric_flags_fail_in_argparse(capsys, args, flag):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: expected " in err and "Traceback" not in err


# --- anything unexpected is one line too; --debug / SCSYNTH_DEBUG show the traceback ------------------------

def _boom(args):
    raise ZeroDivisionError("boom\nsecond line")


def test_unexpected_exception_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setattr(_jobs, "generate", _boom)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["generate", "m", "-n", "3", "-o", "x.h5ad"]) == 1
    err = _err(capsys)
    assert err.startswith("error: unexpected ZeroDivisionError: boom second line")
    assert "SCSYNTH_DEBUG=1 for the traceback" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "generate", "m", "-n", "3", "-o", "x.h5ad"])
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        main(["generate", "m", "-n", "3", "-o", "x.h5ad"])


def test_messages_print_gene_names_as_plain_strings(monkeypatch, capsys):
    def fail(args):
        raise KeyError(f"Genes not in the data: {[np.str_('GATA2'), np.str_('SPI1')]}")

    monkeypatch.setattr(_jobs, "generate", fail)
    assert main(["generate", "m", "-n", "3", "-o", "x.h5ad"]) == 1
    assert capsys.readouterr().err == "error: Genes not in the data: ['GATA2', 'SPI1']\n"


def test_help_documents_debug(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--debug" in out and "SCSYNTH_DEBUG=1" in out


def test_damaged_manifest(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "scsynth.json").write_bytes(BINARY)
    assert main(["generate", str(tmp_path / "m"), "-n", "3", "-o", str(tmp_path / "x.h5ad")]) == 1
    assert f"{tmp_path / 'm' / 'scsynth.json'} is damaged" in _err(capsys)
