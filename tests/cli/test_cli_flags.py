"""One spelling per flag across subcommands: renamed flags still work (with a FutureWarning), --help shows the
new names only, the shared flags are worded alike, and generate maps --condition by what a model accepts."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from scsynth.cli import _jobs, _rnagan, _train, build_parser, main
from scsynth.cli._jobs import condition_kwarg, generate_kwargs
from scsynth.cli._rnagan import labels_key_kwarg

PACKAGE = Path(_jobs.__file__).parent


def _commands(parser: argparse.ArgumentParser | None = None, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its name, e.g. ``"train rnagan"``."""
    parser = parser or build_parser()
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub, f"{prefix}{name} ")
                out.update(nested or {f"{prefix}{name}": sub})
    return out


def _help(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_help().split())


# --- renamed flags: same value in the new flag's place, one FutureWarning naming both -----------------------

MINIMAL = {
    "train rnagan": ["train", "rnagan", "x.h5ad", "--out", "m"],
    "train genesys": ["train", "genesys", "x.h5ad", "--blueprint", "b", "--out", "m"],
    "generate": ["generate", "m", "-o", "x.h5ad"],
}
RENAMED = [  # (command, old flag + value, new dest, expected value, new flag)
    ("train rnagan", ["--groupby", "group"], "labels_key", "group", "--labels-key"),
    ("train genesys", ["--epochs", "7"], "max_epochs", 7, "--max-epochs"),
    ("train genesys", ["--patience", "3"], "lr_patience", 3, "--lr-patience"),
    ("train genesys", ["--factor", "0.25"], "lr_factor", 0.25, "--lr-factor"),
    ("train genesys", ["--threshold", "0.1"], "lr_threshold", 0.1, "--lr-threshold"),
    ("generate", ["-n", "2", "--label", "B cell"], "condition", ["B cell"], "--condition"),
    ("generate", ["-n", "2", "--trajectory", "to A", "--trajectory", "to B"], "condition", ["to A", "to B"],
     "--condition"),
    ("generate", ["--per-trajectory", "4"], "n_obs", 4, "-n/--n-obs"),
]
COMMANDS = {"train rnagan": (_rnagan, "train_rnagan"), "train genesys": (_train, "train_genesys"),
            "generate": (_jobs, "generate")}


@pytest.mark.parametrize(("command", "old", "dest", "value", "new"), RENAMED, ids=lambda v: str(v))
def test_renamed_flag_still_works_and_warns(monkeypatch, command, old, dest, value, new):
    seen = []
    module, name = COMMANDS[command]
    monkeypatch.setattr(module, name, seen.append)
    with pytest.warns(FutureWarning) as record:
        assert main([*MINIMAL[command], *old]) == 0
    assert getattr(seen[0], dest) == value
    messages = [str(w.message) for w in record if f"scsynth {command}: `" in str(w.message)]
    assert messages == [f"scsynth {command}: `{old[-2]}` is deprecated and will be removed in scsynth 0.4; use "
                        f"`{new}` instead."]


def test_new_flags_do_not_warn(monkeypatch, recwarn):
    seen = []
    monkeypatch.setattr(_rnagan, "train_rnagan", seen.append)
    monkeypatch.setattr(_jobs, "generate", seen.append)
    assert main([*MINIMAL["train rnagan"], "--labels-key", "g"]) == 0
    assert main([*MINIMAL["generate"], "-n", "3", "--condition", "a, b", "--condition", "c"]) == 0
    assert seen[0].labels_key == "g" and seen[1].condition == ["a", "b", "c"] and seen[1].n_obs == 3
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_old_and_new_spellings_combine(monkeypatch):
    seen = []
    monkeypatch.setattr(_jobs, "generate", seen.append)
    with pytest.warns(FutureWarning, match="`--label`"):
        assert main([*MINIMAL["generate"], "-n", "3", "--condition", "a", "--label", "b,c"]) == 0
    assert seen[0].condition == ["a", "b,c"]  # the old flag takes its value as one label, as it did


@pytest.mark.parametrize(("command", "flag"), [("train rnagan", "--labels-key"), ("generate", "-n/--n-obs")])
def test_required_flag_fails_in_argparse(capsys, command, flag):
    with pytest.raises(SystemExit) as exc:
        main(MINIMAL[command])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"scsynth {command}: error: the following arguments are required: {flag}" in err


def test_condition_values_must_not_be_empty(capsys):
    with pytest.raises(SystemExit):
        main([*MINIMAL["generate"], "-n", "1", "--condition", "a,,b"])
    assert "argument --condition: expected comma-separated non-empty values" in capsys.readouterr().err


def test_warning_is_one_line_on_stderr(tmp_path):
    """From a shell (``python -m scsynth.cli``): the FutureWarning is one ``warning:`` line, then the error."""
    proc = subprocess.run([sys.executable, "-m", "scsynth.cli", "generate", str(tmp_path / "none"), "-n", "2",
                           "--label", "a", "-o", str(tmp_path / "x.h5ad")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == ("warning: scsynth generate: `--label` is deprecated and will be removed in scsynth 0.4; "
                        "use `--condition` instead.")
    assert lines[1].startswith("error: ") and len(lines) == 2


# --- --help: the new names, not the old; the shared flags worded alike --------------------------------------

NEW_FLAGS = {
    "train scgan": ["--labels-key", "--max-steps", "--batch-size", "--layer", "--normalized", "--seed"],
    "train groundgan": ["--max-steps", "--controller-steps", "--batch-size", "--layer", "--normalized", "--seed"],
    "train genesys": ["--labels-key", "--max-epochs", "--lr-patience", "--lr-factor", "--lr-threshold",
                      "--batch-size", "--layer", "--normalized", "--seed"],
    "train rnagan": ["--labels-key", "--sc-steps", "--bulk-steps", "--batch-size", "--layer", "--normalized",
                     "--seed"],
    "generate": ["-n N, --n-obs N", "--condition", "--modality", "--seed", "--overwrite"],
    "stratify": ["--groupby", "--references", "--seed", "--overwrite"],
    "perturb": ["-n N, --n-obs N", "--seed", "--overwrite"],
    "evaluate": ["-n N, --n-obs N", "--labels-key", "--layer", "--scale", "--seed", "--overwrite"],
    "data": ["--seed", "--overwrite"],
    "demo": ["--max-steps", "--batch-size", "--seed"],
    "upgrade": [],
}
OLD_FLAGS = ["--groupby", "--epochs", "--patience", "--factor", "--threshold", "--label", "--trajectory",
             "--per-trajectory"]


def test_every_subcommand_is_checked():
    assert set(_commands()) == set(NEW_FLAGS)


@pytest.mark.parametrize("command", NEW_FLAGS)
def test_help_lists_the_new_flags_only(command):
    text = _help(_commands()[command])
    for flag in NEW_FLAGS[command]:
        assert flag in text, (command, flag)
    hidden = [f for f in OLD_FLAGS if f not in NEW_FLAGS[command]]
    for flag in hidden:
        assert f"{flag} " not in text.replace("--trajectory-names", ""), (command, flag)


def test_stratify_groupby_help_says_it_is_a_reference_column():
    text = _help(_commands()["stratify"])
    assert "--groupby GROUPBY with --references FILE.h5ad: the obs column of that file" in text
    assert "scanpy's groupby" in text


#: how each shared flag's help starts, in every subcommand that has it
WORDING = {
    "--seed": "random seed",
    "--overwrite": "replace ",
    "--layer": "layer of ",
    "--normalized": "the values are normalised (log-normalised, FPKM...), not counts (default: ",
    "--batch-size": None,  # "<unit> per training batch (default: N)"
}


@pytest.mark.parametrize("flag", WORDING)
def test_shared_flags_are_spelled_and_worded_alike(flag):
    found = 0
    for command, parser in _commands().items():
        for action in parser._actions:
            if flag in action.option_strings:
                found += 1
                assert action.option_strings == [flag], (command, action.option_strings)
                if WORDING[flag] is None:
                    assert " per training batch" in action.help and action.help.endswith(f"(default: {action.default})")
                else:
                    assert action.help.startswith(WORDING[flag]), (command, action.help)
                if flag in ("--seed", "--batch-size"):
                    assert action.type.__name__ in ("a non-negative integer", "a positive integer"), command
    assert found >= 4


# --- generate: --condition goes to the keyword the model's generate() takes ---------------------------------

class _Model:
    """Stand-ins with today's (and the coming) generate() signatures; their class names are never looked at."""


def _model(signature: str) -> object:
    namespace: dict = {}
    exec(f"def generate(self, n_obs, *, {signature}): pass", namespace)  # noqa: S102 - test signatures only
    return type("AnyName", (_Model,), {"generate": namespace["generate"]})()


def _args(condition=None, modality=None) -> argparse.Namespace:
    return argparse.Namespace(condition=condition, modality=modality, seed=3, model_dir="m")


@pytest.mark.parametrize(("signature", "key"), [
    ("labels=None, seed=None, batch_size=8192", "labels"),  # ScGAN today
    ("trajectories=None, seed=None", "trajectories"),  # GeneSys today
    ("condition=None, seed=None, labels=None", "condition"),  # the coming API, old names kept as aliases
])
def test_condition_maps_to_the_accepted_keyword(signature, key):
    model = _model(signature)
    assert generate_kwargs(model, _args(["a"])) == {key: "a", "seed": 3}
    assert generate_kwargs(model, _args(["a", "b"])) == {key: ["a", "b"], "seed": 3}
    assert generate_kwargs(model, _args()) == {"seed": 3}
    assert condition_kwarg(model, ["x", "y"]) == {key: ["x", "y"]}


def test_required_condition_and_modality():
    model = _model("group, modality=None, n_refs=10, seed=None")  # RNAGAN today
    assert generate_kwargs(model, _args(["B"], "bulk")) == {"group": "B", "seed": 3, "modality": "bulk"}
    with pytest.raises(ValueError, match=r"m holds a AnyName, which generates one condition at a time: pass "
                       r"--condition GROUP \(and --modality sc\|bulk\)"):
        generate_kwargs(model, _args())


def test_a_model_without_condition_says_to_drop_it():
    model = _model("seed=None, batch_size=8192")  # GRouNdGAN
    assert generate_kwargs(model, _args()) == {"seed": 3}
    with pytest.raises(ValueError, match="generates without a condition: drop --condition"):
        generate_kwargs(model, _args(["a"]))


def test_labels_key_kwarg_follows_the_setup_signature():
    assert labels_key_kwarg(lambda adata, *, groupby=None, layer=None: None, "g") == {"groupby": "g"}
    assert labels_key_kwarg(lambda adata, *, labels_key=None, **kwargs: None, "g") == {"labels_key": "g"}


# --- the package itself ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_modules_are_short_and_import_no_private_names(path):
    text = path.read_text()
    assert len(text.splitlines()) < 400
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            base = path.parent.joinpath(*[".."] * (node.level - 1)).resolve()
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")
                       and not (node.module is None and (base / f"{a.name}.py").is_file())]  # `from . import _x`
            assert not private, f"{path.name} imports {private} from {node.module}"
