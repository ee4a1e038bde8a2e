"""Evaluation report (markdown table + figures) shared by ``scsynth evaluate`` and ``scsynth demo``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

from anndata import AnnData


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3g}"


def realism_markdown(table) -> str:
    """Render a :func:`scsynth.metrics.realism` table as a markdown table."""
    lines = [
        "| metric | generated vs real | control (real vs real) | ratio | ideal | better |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.metric} | {_fmt(row.value)} ± {_fmt(row.value_sd)} | {_fmt(row.control)} ± "
            f"{_fmt(row.control_sd)} | {_fmt(row.ratio)} | {row.ideal} | {row.better} |"
        )
    return "\n".join(lines)


def write_report(
    real: AnnData,
    generated: AnnData,
    out_dir: str | Path,
    *,
    labels_key: str | None = None,
    layer: str | None = None,
    model: Any = None,
    n_obs: int = 1000,
    seed: int = 0,
    title: str = "scsynth realism report",
    notes: list[str] | None = None,
) -> Path:
    """Evaluate ``generated`` against ``real`` and write ``report.md``, ``realism.csv`` and PNGs.

    Returns the path of ``report.md``.
    """
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import metrics, pl

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = metrics.realism(real, generated, n_obs=n_obs, layer=layer, seed=seed)
    table.to_csv(out / "realism.csv", index=False)
    has_labels = labels_key is not None and labels_key in real.obs and labels_key in generated.obs
    figures = {"real_vs_generated.png": pl.real_vs_generated(
        real, generated, labels_key=labels_key if has_labels else None, layer=layer, seed=seed
    )}
    if model is not None and getattr(model, "history", None):
        figures["history.png"] = pl.history(model)
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
    params = table.attrs.get("params", {})
    text = [
        f"# {title}",
        "",
        f"Real: {real.n_obs} cells x {real.n_vars} genes. Generated: {generated.n_obs} cells x "
        f"{generated.n_vars} genes. Each comparison uses {params.get('m', '?')} cells per side, "
        f"{params.get('n_hvg', '?')} highly variable genes of the real cells, library size "
        f"{params.get('library_size', '?')}, {params.get('n_repeats', '?')} repeats (mean ± sd). The control "
        "compares two disjoint halves of the real cells at the same sample size: a simulator is as good "
        "as the data allow when ratio ≈ 1.",
        "",
        realism_markdown(table),
        "",
        *[f"![{name}]({name})\n" for name in figures],
        *(notes or []),
    ]
    path = out / "report.md"
    path.write_text("\n".join(text) + "\n")
    return path
