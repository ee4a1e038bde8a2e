"""Evaluation report (markdown table + figures) shared by ``scsynth evaluate`` and ``scsynth demo``."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import matplotlib

from anndata import AnnData


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3g}"


def realism_markdown(table) -> str:
    """Render a :func:`scsynth.metrics.realism` table as a markdown table, with each metric's verdict."""
    from .metrics._realism import verdict_rows

    lines = [
        "| metric | verdict | generated vs real | control (real vs real) | ratio | ideal | better |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, (level, _) in zip(table.itertuples(index=False), verdict_rows(table), strict=True):
        lines.append(
            f"| {row.metric} | {level} | {_fmt(row.value)} ± {_fmt(row.value_sd)} | {_fmt(row.control)} ± "
            f"{_fmt(row.control_sd)} | {_fmt(row.ratio)} | {row.ideal} | {row.better} |"
        )
    return "\n".join(lines)


def realism_text(table) -> str:
    """The verdict lines and a fixed-width table of a realism table, for a terminal."""
    from .metrics import summarize_realism
    from .metrics._realism import verdict_rows

    rows = [("metric", "generated", "control", "ratio", "verdict")]
    for row, (level, _) in zip(table.itertuples(index=False), verdict_rows(table), strict=True):
        rows.append((str(row.metric), _fmt(row.value), _fmt(row.control), _fmt(row.ratio), level))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    # names and verdicts left-aligned, numbers right-aligned
    align = (str.ljust, str.rjust, str.rjust, str.rjust, str.ljust)
    body = ["  ".join(f(c, w) for f, c, w in zip(align, r, widths, strict=True)).rstrip() for r in rows]
    return summarize_realism(table) + "\n\n" + "\n".join(body)


def _verdict_markdown(table) -> list[str]:
    """The overall verdict in bold, then one bullet per metric."""
    from .metrics import summarize_realism

    head, *items = summarize_realism(table).split("\n")
    label, _, rest = head.partition(" (")
    return [f"**{label}**" + (f" ({rest}" if rest else ""), "", *items]


def _settings_text(real: AnnData, generated: AnnData, params: dict) -> str:
    """How the comparison was made, in plain words: the genes and the library size actually used."""
    n_used, n_hvg = params.get("n_genes_used"), params.get("n_hvg")
    if n_used is None:
        genes = "the highly variable genes of the real cells"
    elif n_hvg is not None and n_used < n_hvg:
        genes = f"all {n_used} genes (the data have fewer than the {n_hvg} highly variable genes asked for)"
    else:
        genes = f"the {n_used} most variable genes of the real cells"
    lib = params.get("library_size")
    lib_text = f"{lib:,.0f}" if isinstance(lib, numbers.Real) else "a fixed total"
    forest = ("here the forest, the MMD and the centroid distances too" if params.get("scale") == "log1p"
              else "the forest, the MMD and the centroid distances see the scaled values themselves")
    return (
        f"Real: {real.n_obs} cells x {real.n_vars} genes. Generated: {generated.n_obs} cells x "
        f"{generated.n_vars} genes. Each comparison uses {params.get('m', '?')} cells per side and {genes}. "
        f"Library size {lib_text}: before comparing, every cell is scaled so that its values add up to "
        f"{lib_text}, so that cells sequenced to different depths are compared on the same footing "
        f"(metrics on log expression use log1p of these values; {forest}). "
        f"{params.get('n_repeats', '?')} repeats with fresh cells (mean ± sd). The control compares two "
        "disjoint halves of the real cells at the same sample size: it is what a perfect simulator would "
        "score on these data, so a simulator is as good as the data allow when ratio ≈ 1. Each verdict "
        "(good / fair / poor) is relative to that control; the limits are listed in the scsynth "
        "documentation, \"Evaluating generated cells\" (docs/metrics.md), section \"Verdicts\"."
    )


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
    scale: str = "normalized",
    title: str = "scsynth realism report",
    notes: list[str] | None = None,
) -> Path:
    """Evaluate ``generated`` against ``real`` and write ``report.md``, ``realism.csv`` and PNGs.

    ``scale`` goes to :func:`scsynth.metrics.realism`. Returns the path of ``report.md``.
    """
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import metrics, pl

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = metrics.realism(real, generated, n_obs=n_obs, layer=layer, seed=seed, scale=scale)
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
        *_verdict_markdown(table),
        "",
        _settings_text(real, generated, params),
        "",
        realism_markdown(table),
        "",
        *[f"![{name}]({name})\n" for name in figures],
        *(notes or []),
    ]
    path = out / "report.md"
    path.write_text("\n".join(text) + "\n")
    return path
