"""The package's layout rules (DESIGN.md), checked on the source so they stay true."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "scsynth"
MODULES = sorted(p for p in SRC.rglob("*.py"))
MAX_LINES = 420  # "no module over ~400 lines"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_names_imported_across_modules(path):
    """A module's private names stay in it: other modules import public names (private *modules* are fine)."""
    tree = ast.parse(path.read_text())
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            source = _resolve(path, node)
            if not source.startswith("scsynth"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and not _is_module(f"{source}.{alias.name}"):
                    bad.append(f"{source}.{alias.name} (line {node.lineno})")
    assert not bad, f"{path.relative_to(SRC)} imports private names: {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path):
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= MAX_LINES, f"{path.relative_to(SRC)} has {n_lines} lines; split it (one concept per file)."
