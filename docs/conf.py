"""Sphinx configuration of the scsynth documentation (builds offline, warnings as errors)."""

from __future__ import annotations

import filecmp
import shutil
import sys
import warnings
from datetime import datetime
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "extensions"))

# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates (a Python warning, not a build one)
warnings.filterwarnings("ignore", message=r".*_RstSnippetParser\.set_application.*is deprecated")

# -- Project -----------------------------------------------------------------------------------------
project = "scsynth"
author = "scsynth developers"
copyright = f"{datetime.now():%Y}, {author}"
release = _version("scsynth")
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinxcontrib.bibtex",
    "typed_returns",  # docs/extensions: free-text numpydoc "Returns" sections (scverse convention)
]
# No intersphinx: the documentation builds without network access.

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
templates_path = ["_templates"]
# generated/*.md are snippets written below and {include}d by pages, not pages themselves
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store", "generated/*.md"]
default_role = "literal"

# -- MyST / myst-nb ----------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 4
nb_execution_mode = "off"  # notebooks are committed already executed
nb_merge_streams = True

# -- autodoc / autosummary / napoleon / typehints ----------------------------------------------------
autosummary_generate = True
# Inherited members are off by default: "inherited-members" is simply left out, which means False. Writing
# "inherited-members": False would be the same for every class *except* that Sphinx lets a non-string
# default override the directive's own option, so the model template's ":inherited-members: BaseModelClass"
# (document GANModelBase.train/save/load on ScGAN, but nothing of scvi-tools' BaseModelClass) would be lost.
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autoclass_content = "class"
autodoc_inherit_docstrings = False  # our own docs only: Lightning/torch docstrings cite labels of their sites
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
typehints_defaults = "comma"
typehints_use_signature = False
typehints_document_rtype = True
always_document_param_types = False

# -- bibliography ------------------------------------------------------------------------------------
bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# -- warnings ----------------------------------------------------------------------------------------
# Nothing needs silencing today. Without intersphinx, references to external types (numpy, anndata, torch,
# scvi-tools, Lightning) cannot resolve; with nitpicky = False they render as plain code and do not warn.
# Docstrings of scvi-tools / Lightning / torch base classes never reach the build: inherited members are
# off and autodoc_inherit_docstrings = False. Add entries here only for external noise, with a reason.
nitpicky = False
suppress_warnings: list[str] = []
nitpick_ignore: list[tuple[str, str]] = []

# -- HTML --------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"scsynth {release}"
html_static_path: list[str] = []
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "navigation_with_keys": False,
}


# -- generated snippets ------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    """Backslash-escape markdown punctuation so free text is safe inside a table cell."""
    return "".join("\\" + ch if ch in "\\`*_[]|<>#" else ch for ch in text)


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it already holds it (keeps incremental builds incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _write_history_keys_table() -> None:
    """Write the table of ``scsynth.train.HISTORY_KEYS`` included by models/scgan.md (never drifts)."""
    from scsynth.train import HISTORY_KEYS

    lines = ["| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {_md_escape(meaning)} |" for key, meaning in HISTORY_KEYS.items()]
    _write_if_changed(HERE / "generated" / "history_keys.md", "\n".join(lines) + "\n")


def _write_cli_help() -> None:
    """Write the ``--help`` text of ``scsynth`` and each subcommand, included by cli.md (never drifts)."""
    import argparse
    import os

    from scsynth.cli import build_parser

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    parser = build_parser()
    pages = {"scsynth": parser}
    for name, sub in subparsers(parser).items():
        pages[f"scsynth {name}"] = sub
        for name2, sub2 in subparsers(sub).items():
            pages[f"scsynth {name} {name2}"] = sub2
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width; fix it for reproducible pages
    try:
        for title, p in pages.items():
            text = f"$ {title} --help\n{p.format_help()}"
            _write_if_changed(HERE / "generated" / "cli" / f"{title.replace(' ', '_')}.txt", text)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _copy_benchmark_tables() -> None:
    """Copy the markdown tables the benchmark scripts wrote into generated/, for the model pages to include."""
    results = HERE.parent / "benchmarks" / "results"
    # table -> the command that writes it
    tables = {name: f"python benchmarks/{name}.py" for name in
              ("groundgan_speed", "groundgan_grn", "groundgan_realism", "groundgan_perturb_speed", "genesys", "rnagan",
               "rnagan_realism", "groundgan_independence")}
    tables["genesys_realism"] = "python benchmarks/genesys.py --part realism"
    tables["genesys_order"] = ("python benchmarks/genesys.py --part realism --budget 100000 --max-epochs 220 --seeds 0 1 2 "
                               "--variants after --no-scvi --threads 1 --out genesys_order")
    tables["groundgan_grn_fidelity"] = "python benchmarks/groundgan_grn.py --only-fidelity"
    tables["groundgan_grn_fidelity_tf_input"] = ("python benchmarks/groundgan_grn.py --only-fidelity --objectives "
                                                 "conditional --tf-inputs log1p normalized --name "
                                                 "groundgan_grn_fidelity_tf_input")
    tables["groundgan_stage2"] = "python benchmarks/groundgan_realism.py --stage2"
    for name in ("realism", "realism_pbmc68k_reduced", "realism_immune_559", "realism_myoblast", "realism_geuvadis"):
        tables[name] = "python benchmarks/realism.py"
    tables["realism_steps"] = "python benchmarks/realism.py --steps 600 --datasets pbmc68k_reduced immune_559"
    tables["realism_genesys_calibration"] = (
        "python benchmarks/realism.py --budgets 240 --datasets myoblast --models GeneSys 'GeneSys uncalibrated' "
        "NB-copula --variant 'GeneSys uncalibrated' GeneSys '{\"calibrated\": false}' --out realism_genesys_calibration")
    tables["realism_genesys_ablation"] = "python benchmarks/realism.py --datasets myoblast --out realism_genesys_ablation"
    tables["realism_scgan_calibration"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced immune_559 --models ScGAN "
        "'ScGAN uncalibrated' cscGAN 'cscGAN uncalibrated' NB-copula --variant 'ScGAN uncalibrated' ScGAN "
        "'{\"calibrated\": false}' --variant 'cscGAN uncalibrated' cscGAN '{\"calibrated\": false}' "
        "--out realism_scgan_calibration")
    tables["realism_groundgan_calibration"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced immune_559 --models GRouNdGAN "
        "'GRouNdGAN uncalibrated' ScGAN --variant 'GRouNdGAN uncalibrated' GRouNdGAN '{\"calibrated\": false}' "
        "--out realism_groundgan_calibration")
    tables["groundgan_grn_fidelity_calibration"] = (
        "python benchmarks/groundgan_grn.py --only-fidelity --objectives conditional --name "
        "groundgan_grn_fidelity_calibration")
    tables["realism_groundgan_split"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced immune_559 --models 'GRouNdGAN, half "
        "on stage 2' --variant 'GRouNdGAN, half on stage 2' GRouNdGAN '{\"stage2_share\": 0.5}' --out realism_groundgan_split")
    tables["realism_scgan_20min"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets pbmc68k_reduced immune_559 --models ScGAN "
        "--out realism_scgan_20min")
    tables["realism_cscgan_vs_scgan"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced --models ScGAN cscGAN "
        "--out realism_cscgan_vs_scgan")
    for name in ("realism_cscgan_vs_scgan_epyc", "realism_cscgan_vs_scgan_epyc_pbmc68k_reduced"):
        tables[name] = ("python benchmarks/realism.py --budgets 240 --seeds 0 1 2 --datasets pbmc68k_reduced --models "
                        "ScGAN cscGAN --out realism_cscgan_vs_scgan_epyc")
    for name in ("realism_cscgan_vs_scgan_800steps", "realism_cscgan_vs_scgan_800steps_pbmc68k_reduced"):
        tables[name] = ("python benchmarks/realism.py --steps 800 --seeds 0 1 2 3 4 5 --datasets pbmc68k_reduced "
                        "--models ScGAN cscGAN --out realism_cscgan_vs_scgan_800steps")
    for name in ("realism_800steps_constant_lr", "realism_800steps_constant_lr_pbmc68k_reduced"):
        tables[name] = ("python benchmarks/realism.py --steps 800 --seeds 0 1 2 --datasets pbmc68k_reduced --models "
                        "'ScGAN constant lr' 'cscGAN constant lr' --variant 'ScGAN constant lr' ScGAN "
                        "'{\"plan_kwargs\": {\"lr_decay_to\": 1.0}}' --variant 'cscGAN constant lr' cscGAN "
                        "'{\"plan_kwargs\": {\"lr_decay_to\": 1.0}}' --out realism_800steps_constant_lr")
    constant_scgan = ("--models ScGAN 'ScGAN constant lr' --variant 'ScGAN constant lr' ScGAN "
                      "'{\"plan_kwargs\": {\"lr_decay_to\": 1.0}}' --threads 1")
    for name in ("realism_2000steps_scgan_lr", "realism_2000steps_scgan_lr_pbmc68k_reduced"):
        tables[name] = ("python benchmarks/realism.py --steps 2000 --seeds 0 1 2 --datasets pbmc68k_reduced "
                        f"{constant_scgan} --out realism_2000steps_scgan_lr; the same with --models cscGAN")
    for name in ("realism_800steps_scgan_lr_immune", "realism_800steps_scgan_lr_immune_immune_559"):
        tables[name] = ("python benchmarks/realism.py --steps 800 --seeds 0 1 2 3 4 5 --datasets immune_559 "
                        f"{constant_scgan} --out realism_800steps_scgan_lr_immune")
    tables["realism_cscgan_fast"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced --models cscGAN --out realism_cscgan_fast")
    tables["realism_groundgan_controller_noise"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced immune_559 --models 'GRouNdGAN "
        "controller noise' --variant 'GRouNdGAN controller noise' GRouNdGAN '{\"target_noise\": \"controller\"}' "
        "--out realism_groundgan_controller_noise")
    tables["groundgan_grn_fidelity_target_noise"] = (
        "python benchmarks/groundgan_grn.py --only-fidelity --objectives conditional --target-noises independent "
        "controller --name groundgan_grn_fidelity_target_noise")
    tables["groundgan_grn_controller_noise"] = (
        "python benchmarks/groundgan_grn.py --no-fidelity --target-noise controller --grn-name "
        "groundgan_grn_controller_noise")
    tables["realism_20min"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets pbmc68k_reduced --models cscGAN GRouNdGAN "
        "--out realism_20min")
    tables["realism_20min_groundgan_controller"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets pbmc68k_reduced --models 'GRouNdGAN controller noise' "
        "--variant 'GRouNdGAN controller noise' GRouNdGAN '{\"target_noise\": \"controller\"}' "
        "--out realism_20min_groundgan_controller")
    tables["realism_20min_groundgan_immune"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets immune_559 --models GRouNdGAN "
        "--out realism_20min_groundgan_immune")
    tables["realism_20min_groundgan_controller_immune"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets immune_559 --models 'GRouNdGAN controller noise' "
        "--variant 'GRouNdGAN controller noise' GRouNdGAN '{\"target_noise\": \"controller\"}' "
        "--out realism_20min_groundgan_controller_immune")
    tables["realism_20min_rnagan"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets geuvadis --models RNAGAN --out realism_20min_rnagan")
    for name in ("realism_20min_rnagan_calibrated", "realism_20min_rnagan_calibrated_geuvadis"):
        tables[name] = ("python benchmarks/realism.py --budgets 1200 --seeds 0 1 2 --datasets geuvadis --models RNAGAN "
                        "--out realism_20min_rnagan_calibrated")
    tables["realism_20min_genesys"] = (
        "python benchmarks/realism.py --budgets 1200 --datasets myoblast --models GeneSys --out realism_20min_genesys")
    tables["realism_rnagan_checkpoint"] = (
        "python benchmarks/realism.py --budgets 240 --datasets geuvadis --models RNAGAN 'RNAGAN realism checkpoint' "
        "--variant 'RNAGAN realism checkpoint' RNAGAN '{\"train_size\": 0.8, \"monitor_realism\": true}' "
        "--out realism_rnagan_checkpoint")
    tables["realism_crossfit"] = (
        "python benchmarks/realism_crossfit.py --models RNAGAN 'RNAGAN, no calibration' NB-copula --variant 'RNAGAN, "
        "no calibration' RNAGAN '{\"calibrate_marginals\": false}'; python benchmarks/realism_crossfit.py "
        "--models 'RNAGAN realism checkpoint' --variant 'RNAGAN realism checkpoint' RNAGAN "
        "'{\"train_size\": 0.8, \"monitor_realism\": true}'")
    for name in ("realism_rnagan_shipped", "realism_rnagan_shipped_geuvadis"):
        tables[name] = ("python benchmarks/realism.py --budgets 240 --seeds 0 1 2 --datasets geuvadis --models RNAGAN "
                        "NB-copula --out realism_rnagan_shipped")
    for name in ("realism_rnagan_calibrated", "realism_rnagan_calibrated_geuvadis"):
        tables[name] = ("python benchmarks/realism.py --budgets 240 --datasets geuvadis --models RNAGAN NB-copula "
                        "--out realism_rnagan_calibrated")
    tables["realism_scvi"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced immune_559 --models 'scVI prior' "
        "'scVI posterior predictive' --out realism_scvi")
    tables["realism_current"] = "python benchmarks/realism_current.py"
    tables["realism_curve"] = ("python benchmarks/realism_curve.py --repeats 10 --threads 1; the same with --at 2000 "
                               "--models cscGAN --min-calibration-cells 5")
    tables["realism_curve_10seeds"] = (
        "python benchmarks/realism_curve.py --at 2000 --repeats 10 --threads 1 --seeds 0 1 2 3 4 5 6 7 8 9 "
        "--out realism_curve_10seeds")
    tables["realism_log_scale"] = ("python benchmarks/realism_log_scale.py --snapshots <dir> --models ScGAN; "
                                   "--variant 'ScGAN, log1p critic' ScGAN '{\"critic_input\": \"log1p\"}'; --uncalibrated")
    tables["realism_log_scale_poisson"] = (
        "python benchmarks/realism_log_scale.py --snapshots <dir> --models ScGAN --variant 'ScGAN, Poisson output' "
        "ScGAN '{\"output_noise\": \"poisson\"}' --out realism_log_scale_poisson")
    tables["realism_curve_poisson"] = (
        "python benchmarks/realism_curve.py --at 2000 --from-snapshots <dir> --models ScGAN --variant "
        "'ScGAN, Poisson output' ScGAN '{\"output_noise\": \"poisson\"}' --seeds 0 1 2 --repeats 10 "
        "--out realism_curve_poisson")
    tables["realism_log_scale_poisson_cscgan"] = (
        "python benchmarks/realism_log_scale.py --snapshots <dir> --models cscGAN --variant 'cscGAN, Poisson output' "
        "cscGAN '{\"output_noise\": \"poisson\"}' --seeds 0 1 --out realism_log_scale_poisson_cscgan")
    latent = ("--variant 'ScGAN, Poisson output' ScGAN "
              "'{\"output_noise\": \"poisson\", \"output_noise_warmup\": 0}' "
              "(count units tied to the latent; independent units: the first version's snapshots)")
    tables["realism_log_scale_poisson_latent"] = (
        f"python benchmarks/realism_log_scale.py --snapshots <dir> --models ScGAN {latent} "
        "--out realism_log_scale_poisson_latent")
    tables["realism_curve_poisson_latent"] = (
        f"python benchmarks/realism_curve.py --at 2000 --from-snapshots <dir> --models ScGAN {latent} "
        "--seeds 0 1 2 --repeats 10 --out realism_curve_poisson_latent")
    latent_cscgan = latent.replace("ScGAN", "cscGAN")
    tables["realism_log_scale_poisson_latent_cscgan"] = (
        f"python benchmarks/realism_log_scale.py --snapshots <dir> --models cscGAN {latent_cscgan} "
        "--seeds 0 1 --out realism_log_scale_poisson_latent_cscgan")
    tables["realism_curve_poisson_latent_cscgan"] = (
        "python benchmarks/realism_curve.py --at 2000 --from-snapshots <dir> --models cscGAN "
        f"{latent_cscgan} --seeds 0 1 --repeats 10 --out realism_curve_poisson_latent_cscgan")
    tables["realism_immune_poisson_800steps_immune_559"] = (
        "python benchmarks/realism.py --steps 800 --datasets immune_559 --models NB-copula ScGAN "
        "'ScGAN, Poisson output' --variant 'ScGAN, Poisson output' ScGAN "
        "'{\"model_kwargs\": {\"output_noise\": \"poisson\", \"output_noise_warmup\": 0}}' "
        "--out realism_immune_poisson_800steps (and the 'ScGAN, Poisson output, warm-up' variant, "
        "'{\"model_kwargs\": {\"output_noise\": \"poisson\", \"output_noise_warmup\": 0.5}}')")
    tables["realism_log_scale_poisson_warmup"] = (
        "python benchmarks/realism_log_scale.py --snapshots <dir> --models ScGAN "
        "--variant 'ScGAN, Poisson output' ScGAN "
        "'{\"output_noise\": \"poisson\", \"output_noise_warmup\": 0}' "
        "--variant 'ScGAN, Poisson output, warm-up' ScGAN "
        "'{\"output_noise\": \"poisson\", \"output_noise_warmup\": 0.5}' "
        "--out realism_log_scale_poisson_warmup")
    tables["realism_curve_poisson_warmup"] = (
        "python benchmarks/realism_curve.py --at 2000 --from-snapshots <dir> --models ScGAN "
        "--variant 'ScGAN, "
        "Poisson output, warm-up' ScGAN '{\"output_noise\": \"poisson\", \"output_noise_warmup\": 0.5}' "
        "--seeds 0 1 2 --repeats 10 --out realism_curve_poisson_warmup")
    tables["realism_240s_poisson_warmup"] = (
        "python benchmarks/realism.py --budgets 240 --datasets pbmc68k_reduced immune_559 --models ScGAN "
        "'ScGAN, Poisson output, warm-up' cscGAN 'cscGAN, Poisson output, warm-up' --variant 'ScGAN, Poisson "
        "output, warm-up' ScGAN '{\"model_kwargs\": {\"output_noise\": \"poisson\", "
        "\"output_noise_warmup\": 0.5}}' --variant 'cscGAN, Poisson output, warm-up' cscGAN "
        "'{\"model_kwargs\": {\"output_noise\": \"poisson\", \"output_noise_warmup\": 0.5}}' "
        "--seeds 0 1 2 --threads 2 --out realism_240s_poisson_warmup")
    tables["realism_immune_poisson_2000steps_immune_559"] = (
        "python benchmarks/realism.py --steps 2000 --datasets immune_559 --models NB-copula ScGAN "
        "'ScGAN, Poisson output' --variant 'ScGAN, Poisson output' ScGAN "
        "'{\"model_kwargs\": {\"output_noise\": \"poisson\", \"output_noise_warmup\": 0}}' "
        "--out realism_immune_poisson_2000steps")
    for name, command in tables.items():
        src = results / f"{name}.md"
        text = src.read_text() if src.is_file() else f"(run `{command}` to fill this table)\n"
        _write_if_changed(HERE / "generated" / f"{name}.md", text)
    for name in ("realism", "realism_current", "realism_curve"):  # the benchmarks and ScGAN pages' figures
        figure, copy = results / f"{name}.png", HERE / "generated" / f"{name}.png"
        if figure.is_file() and not (copy.is_file() and filecmp.cmp(figure, copy, shallow=False)):
            shutil.copyfile(figure, copy)


_write_history_keys_table()
_write_cli_help()
_copy_benchmark_tables()
