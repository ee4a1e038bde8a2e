"""The README's command-line block runs as written on the bundled data (with small training budgets)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from scsynth.cli import main

README = Path(__file__).parents[2] / "README.md"
#: Appended to each training command: argparse keeps the last value, so the README's own flags stay as written.
QUICK = {
    ("train", "scgan"): ["--max-steps", "3", "--batch-size", "32"],
    ("train", "groundgan"): ["--controller-steps", "2", "--max-steps", "2", "--batch-size", "32"],
    ("train", "genesys"): ["--max-epochs", "2", "--batch-size", "16"],
    ("train", "rnagan"): ["--bulk-steps", "4", "--batch-size", "8"],
    ("evaluate",): ["--n-obs", "100"],
}


def readme_cli_commands() -> list[list[str]]:
    """The ``scsynth ...`` lines of the README's bash block after "The command line does the same"."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```bash", text.index("The command line does the same from a shell"))
    block = text[start + len("```bash"): text.index("```", start + 7)]
    return [shlex.split(line, comments=True) for line in block.strip().splitlines() if line.strip()]


def test_readme_block_is_found():
    commands = readme_cli_commands()
    assert len(commands) >= 10 and all(c[0] == "scsynth" for c in commands)
    used = {c[1] for c in commands}
    assert {"data", "train", "generate", "evaluate", "perturb", "stratify"} <= used


@pytest.mark.slow
def test_readme_cli_block_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in readme_cli_commands():
        args = argv[1:]
        extra = QUICK.get(tuple(args[:2])) or QUICK.get(tuple(args[:1])) or []
        code = main(args + extra)
        out = capsys.readouterr()
        assert code == 0, f"`{shlex.join(argv)}` failed: {out.err.strip()}"
    assert (tmp_path / "report" / "report.md").is_file()
    assert (tmp_path / "stratified.h5ad").is_file() and (tmp_path / "knockout.h5ad").is_file()
    assert (tmp_path / "trajectories.h5ad").is_file()
