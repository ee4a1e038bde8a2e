"""Benchmark results files: processes writing one file keep each other's rows; ``--merge`` joins files."""

from __future__ import annotations

import json
import multiprocessing
import sys
import warnings
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.append(str(BENCHMARKS))  # appended: shadows nothing
import _common  # noqa: E402
import realism  # noqa: E402


@pytest.fixture
def results(tmp_path, monkeypatch):
    for module in (_common, realism):
        monkeypatch.setattr(module, "RESULTS", tmp_path)
    return tmp_path


def _write_rows(folder: str, seed: int, n: int) -> None:
    _common.RESULTS = Path(folder)
    for i in range(n):
        _common.update_runs("shared", [{"seed": seed, "i": i}], ("seed", "i"), machine={"seed": seed})


def test_processes_writing_one_file_keep_each_others_rows(results):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_rows, args=(str(results), seed, 25)) for seed in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 4
    runs = json.loads((results / "shared.json").read_text())["runs"]
    assert sorted((r["seed"], r["i"]) for r in runs) == [(s, i) for s in range(4) for i in range(25)]
    assert not list(results.glob("*.tmp"))


def test_same_key_replaces_and_payload_updates_only_its_entries(results):
    _common.update_runs("r", [{"seed": 0, "v": 1}, {"seed": 1, "v": 1}], ("seed",), machine="a", folds=3)
    runs = _common.update_runs("r", [{"seed": 1, "v": 2}], ("seed",), machine="b")
    assert runs == [{"seed": 0, "v": 1}, {"seed": 1, "v": 2}]
    stored = json.loads((results / "r.json").read_text())
    assert stored == {"machine": "b", "folds": 3, "runs": runs}


def test_a_failed_write_leaves_the_previous_file_whole(results):
    _common.write_json("r", {"runs": [1]})
    with pytest.raises(TypeError):
        _common.write_json("r", {"runs": [object()]})
    assert json.loads((results / "r.json").read_text()) == {"runs": [1]}
    assert not list(results.glob("*.tmp"))


def test_merge_joins_files_written_apart(results, monkeypatch):
    import scsynth

    # main() quiets scsynth and warnings for the whole process: undo both after the test
    monkeypatch.setattr(scsynth.settings, "verbosity", scsynth.settings.verbosity)
    stored = json.loads((BENCHMARKS / "results" / "realism_immune_poisson_800steps.json").read_text())
    rows = [r for r in stored["runs"] if r["model"] == "ScGAN"]
    assert len(rows) == 3
    for seed, row in enumerate(rows):
        (results / f"part{seed}.json").write_text(json.dumps({"machine": stored["machine"], "runs": [row]}))
    monkeypatch.setattr(sys, "argv", ["realism.py", "--merge", "part0", "part1", "part2", "--out", "all",
                                      "--steps", "800", "--summarize"])
    with warnings.catch_warnings():
        realism.main()
    merged = json.loads((results / "all.json").read_text())
    assert sorted(r["seed"] for r in merged["runs"]) == [0, 1, 2]
    assert merged["machine"] == stored["machine"]
    assert "| immune_559 | 800 steps | ScGAN | 3 |" in (results / "all.md").read_text()
    monkeypatch.setattr(sys, "argv", ["realism.py", "--merge", "part0", "nothing", "--summarize"])
    with pytest.raises(SystemExit), warnings.catch_warnings():
        realism.main()
