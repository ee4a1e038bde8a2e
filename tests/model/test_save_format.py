"""The model directory: tensors and JSON only, exact round trips, overwrite that deletes nothing foreign."""

from __future__ import annotations

import json
import os
import stat
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scsynth.model import ScGAN
from scsynth.model._save_load import (
    ARRAYS_FILE,
    ATTRIBUTES_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    saved_attributes,
)
from scsynth.model._serialize import decode, encode


def assert_same(a, b, where="value"):
    """Exact equality of saved attributes: same types, dtypes, values (NaN equal to NaN).

    numpy strings are saved as plain strings on purpose (they print as ``np.str_('X')`` in messages).
    """
    a = str(a) if isinstance(a, np.str_) else a
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b, exact=True)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        if isinstance(a, defaultdict):
            assert a.default_factory is b.default_factory, where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, (where, a, b)


def _assert_same_attributes(model, loaded):
    attrs, back = saved_attributes(model), saved_attributes(loaded)
    attrs.pop("registry_"), back.pop("registry_")  # rebuilt by setup_anndata on load
    assert_same(dict(sorted(attrs.items())), dict(sorted(back.items())))


def _roundtrip(value):
    arrays: dict = {}
    text = json.dumps(encode(value, arrays), allow_nan=False)  # strict JSON: NaN/inf are tagged
    return decode(json.loads(text), arrays)


def test_encode_round_trips_every_kind_of_attribute_exactly():
    frame = pd.DataFrame(
        {"loss": np.array([1.5, np.nan, -np.inf], dtype=np.float32), "step": np.array([1, 2, 3]),
         "label": pd.Categorical(["a", "b", "a"], categories=["b", "a"]), "name": ["x", "y", "z"],
         "nullable": pd.array([1, None, 3], dtype="Int64")},
        index=pd.Index([10, 20, 30], name="epoch"),
    )
    value = {
        "none": None, "flag": True, "n": 3, "x": 0.1, "nan": float("nan"), "inf": float("-inf"), "s": "GATA2",
        "tuple": (1, "a", (2.5,)), "list": [1, [2, 3]], "set": {"b", "a"},
        "int_keys": {(0, 1): ["a", "b"], 3: "c"}, "tagged": {"@type": "not a tag"},
        "ordered": OrderedDict(b=1, a=2), "default": defaultdict(dict, {"x": {"y": 1}}),
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3), "bools": np.array([True, False]),
        "empty": np.zeros((0, 4)), "strings": np.array(["A", "BB"]), "objects": np.array(["a", 1, None], dtype=object),
        "scalar": np.int64(7), "f_scalar": np.float32(0.25), "np_str": np.str_("SPI1"),
        "frame": frame, "series": pd.Series([1.0, 2.0], index=["g1", "g2"], name="mean"),
        "range": pd.RangeIndex(0, 10, 2), "tensor": torch.tensor([[1.0, 2.0]]), "path": Path("/tmp/grn.tsv"),
    }
    out = _roundtrip(value)
    assert out["np_str"] == "SPI1" and type(out["np_str"]) is str  # plain strings in messages
    out["np_str"] = value["np_str"] = "SPI1"
    assert_same(value, out)


def test_encode_refuses_objects_a_file_cannot_hold():
    class Custom:
        pass

    with pytest.raises(TypeError, match=r"Cannot save attrs\['thing'\].*Custom"):
        encode({"thing": Custom()}, {}, "attrs")
    with pytest.raises(TypeError, match="MultiIndex"):
        encode(pd.DataFrame({"a": [1]}, index=pd.MultiIndex.from_tuples([(1, 2)])), {})
    with pytest.raises(TypeError, match="default factory"):
        encode(defaultdict(lambda: 1), {})


def test_decode_knows_only_its_own_tags():
    with pytest.raises(ValueError, match="Unknown entry type 'os.system'"):
        decode({"@type": "os.system", "args": ["touch /tmp/x"]}, {})
    with pytest.raises(ValueError, match="Unexpected dtype"):
        decode({"@type": "ndarray", "dtype": "object", "shape": [1], "values": [{"@type": "scalar",
                "dtype": "O", "value": 1}]}, {})


def test_saved_directory_holds_only_tensors_and_json(trained_conditional, tmp_path):
    trained_conditional.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == sorted([WEIGHTS_FILE, ATTRIBUTES_FILE, ARRAYS_FILE, MANIFEST_FILE])
    manifest = json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())
    assert manifest["model"] == "ScGAN" and manifest["format"] == 2
    json.loads((tmp_path / "m" / ATTRIBUTES_FILE).read_text())  # strict JSON
    for name in files:
        assert b"\x80\x04" not in (tmp_path / "m" / name).read_bytes()[:2]  # no pickle protocol header
    loaded = ScGAN.load(tmp_path / "m")
    _assert_same_attributes(trained_conditional, loaded)
    state = trained_conditional.module.state_dict()
    assert all(torch.equal(v, loaded.module.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize("fixture", ["trained_groundgan", "trained_genesys", "trained_rnagan"])
def test_other_models_round_trip_exactly(fixture, request, tmp_path):
    model = request.getfixturevalue(fixture)
    model = model[0] if isinstance(model, tuple) else model  # trained_rnagan: (model, held-out samples)
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    _assert_same_attributes(model, loaded)
    assert all(torch.equal(v, loaded.module.state_dict()[k]) for k, v in model.module.state_dict().items())


class _RunsCode:
    """Unpickling this calls ``Path.touch``: what a crafted model file could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _legacy_dir(path: Path, payload) -> Path:
    path.mkdir()
    torch.save(payload, path / LEGACY_MODEL_FILE)
    (path / MANIFEST_FILE).write_text(json.dumps({"model": "ScGAN"}))
    return path


def test_loading_never_runs_code_from_a_file(tmp_path):
    marker = tmp_path / "pwned"
    bad = _legacy_dir(tmp_path / "bad", {"model_state_dict": {}, "attr_dict": {"x": _RunsCode(marker)}})
    with pytest.raises(ValueError, match="pickled model file.*trust=True"):
        ScGAN.load(bad)
    assert not marker.exists()
    from scsynth.cli import main

    assert main(["generate", str(bad), "-n", "5", "-o", str(tmp_path / "out.h5ad")]) != 0
    assert not marker.exists()


def test_legacy_pickled_models_load_with_trust(trained_conditional, tmp_path):
    """A model saved by scsynth 0.1 (torch.save of the attributes) loads with trust=True and converts."""
    model = trained_conditional
    legacy = _legacy_dir(tmp_path / "old", {"model_state_dict": model.module.state_dict(),
                                            "var_names": np.asarray(model.var_names_, dtype=str),
                                            "attr_dict": saved_attributes(model)})
    with pytest.raises(ValueError, match="trust=True"):
        ScGAN.load(legacy)
    loaded = ScGAN.load(legacy, trust=True)
    loaded.save(legacy, overwrite=True)
    assert not (legacy / LEGACY_MODEL_FILE).exists() and (legacy / WEIGHTS_FILE).exists()
    again = ScGAN.load(legacy)
    np.testing.assert_array_equal(again.generate(20, seed=1).X.toarray(), model.generate(20, seed=1).X.toarray())


def test_damaged_directories_give_clear_errors(trained_conditional, tmp_path):
    trained_conditional.save(tmp_path / "m")
    (tmp_path / "m" / ARRAYS_FILE).write_bytes(b"truncated")
    with pytest.raises(ValueError, match="could not be read as a saved model"):
        ScGAN.load(tmp_path / "m")
    (tmp_path / "m" / MANIFEST_FILE).unlink()
    with pytest.raises(ValueError, match="interrupted"):
        ScGAN.load(tmp_path / "m")


def test_overwrite_refuses_directories_without_a_model(trained_conditional, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "results.csv").write_text("precious")
    with pytest.raises(FileExistsError, match="holds no scsynth model.*results.csv"):
        trained_conditional.save(project, overwrite=True)
    assert (project / "results.csv").read_text() == "precious"
    monkeypatch.chdir(project)
    with pytest.raises(FileExistsError, match="holds no scsynth model"):
        trained_conditional.save(".", overwrite=True)
    assert sorted(os.listdir(project)) == ["results.csv"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        trained_conditional.save(tmp_path / "file", overwrite=True)


def test_overwrite_replaces_only_the_models_files(trained_conditional, tmp_path):
    target = tmp_path / "m"
    trained_conditional.save(target, save_anndata=True)
    (target / "notes.txt").write_text("mine")
    trained_conditional.save(target, overwrite=True)  # without the AnnData this time
    assert (target / "notes.txt").read_text() == "mine"
    assert not (target / "adata.h5ad").exists()  # the model's own old file goes
    assert ScGAN.load(target).adata is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_save_is_atomic_with_normal_permissions_and_no_leftovers(trained_conditional, tmp_path, monkeypatch):
    target = tmp_path / "m"
    trained_conditional.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask
    # a save that fails half-way leaves the old model in place and no temporary directory
    import scsynth.model._save_load as save_load

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(save_load, "save_arrays", broken)
    with pytest.raises(OSError, match="disk full"):
        trained_conditional.save(target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    # a killed save (whose process is gone) leaves a temporary directory that the next save removes
    stale = tmp_path / ".m.tmp-999999999-abc"
    stale.mkdir()
    monkeypatch.undo()
    trained_conditional.save(target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_exchange_falls_back_to_two_renames(trained_conditional, tmp_path, monkeypatch):
    import ctypes

    target = tmp_path / "m"
    trained_conditional.save(target)
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: (_ for _ in ()).throw(OSError("no libc")))
    trained_conditional.save(target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert ScGAN.load(target).n_generator_steps_ == trained_conditional.n_generator_steps_



def test_cli_upgrade_converts_a_trusted_legacy_model(trained_conditional, tmp_path, capsys):
    from scsynth.cli import main

    model = trained_conditional
    legacy = _legacy_dir(tmp_path / "old", {"model_state_dict": model.module.state_dict(),
                                            "var_names": np.asarray(model.var_names_, dtype=str),
                                            "attr_dict": saved_attributes(model)})
    (legacy / "notes.txt").write_text("mine")
    assert main(["upgrade", str(legacy)]) == 0
    assert "Converted" in capsys.readouterr().out
    assert sorted(p.name for p in legacy.iterdir()) == sorted(
        [WEIGHTS_FILE, ATTRIBUTES_FILE, ARRAYS_FILE, MANIFEST_FILE, "notes.txt"])
    assert main(["upgrade", str(legacy)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["upgrade", str(tmp_path / "empty")]) == 1
