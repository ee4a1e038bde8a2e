"""Today's realism table: each model as it ships, from the latest ``realism.py`` run that measured it.

Usage::

    python benchmarks/realism_current.py     # writes benchmarks/results/realism_current.json / .md / .png

``realism.py`` stores each run under the ``--out`` name it was made with, and ``realism.json`` holds the
first full run (the 0.3 defaults, before the marginal calibration). This script trains nothing: it
collects the stored runs listed in ``CURRENT`` (same script, splits, scoring and 240-s or 1200-s budgets),
tags each row with the results file it came from, and writes their medians over seeds. The files were
made on different 2-core CPUs (same torch and threads); ``steps`` shows how far each model got.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, markdown_table, write_json, write_markdown
from realism import HEADLINE, RESULTS, budget_label, figure, headline, load_runs, summarize

#: (results file, model in that file, model in this table[, datasets]); every budget of that model is taken, and every
#: dataset unless the fourth entry names some
CURRENT = [
    # ScGAN/cscGAN draw their cells as counts by default (output_noise="poisson"); the 20-min rows are older
    ("realism_240s_poisson_warmup", "ScGAN, Poisson output, warm-up", "ScGAN"),
    ("realism_240s_poisson_warmup", "cscGAN, Poisson output, warm-up", "cscGAN"),
    ("realism_240s_poisson_warmup", "ScGAN", "ScGAN, output_noise='none'"),
    ("realism_scgan_20min", "ScGAN", "ScGAN, output_noise='none'"),
    ("realism_240s_poisson_warmup", "cscGAN", "cscGAN, output_noise='none'"),
    ("realism_20min", "cscGAN", "cscGAN, output_noise='none'"),
    ("realism_groundgan_split", "GRouNdGAN, half on stage 2", "GRouNdGAN"),
    ("realism_20min", "GRouNdGAN", "GRouNdGAN"),
    ("realism_20min_groundgan_immune", "GRouNdGAN", "GRouNdGAN"),
    ("realism_groundgan_controller_noise", "GRouNdGAN controller noise", "GRouNdGAN, target_noise='controller'"),
    ("realism_20min_groundgan_controller", "GRouNdGAN controller noise", "GRouNdGAN, target_noise='controller'"),
    ("realism_20min_groundgan_controller_immune", "GRouNdGAN controller noise", "GRouNdGAN, target_noise='controller'"),
    ("realism_genesys_calibration", "GeneSys", "GeneSys"),
    ("realism_20min_genesys", "GeneSys", "GeneSys"),
    ("realism_rnagan_shipped", "RNAGAN", "RNAGAN"),
    ("realism_20min_rnagan_calibrated", "RNAGAN", "RNAGAN"),
    ("realism", "NB-copula", "NB-copula"),
    ("realism_scvi", "scVI prior", "scVI prior"),
    ("realism_scvi", "scVI posterior predictive", "scVI posterior predictive"),
]


def collect() -> list[dict]:
    runs = []
    for source, model, name, *datasets in CURRENT:
        found = [r for r in load_runs(source) if r["model"] == model and (not datasets or r["dataset"] in datasets[0])]
        if not found:
            print(f"  (no {model!r} runs in {source}.json: run realism.py for them)", flush=True)
        runs += [{**r, "model": name, "source": source} for r in found]
    return runs


def main() -> None:
    runs = collect()
    table = summarize(runs)
    sources = {(r["dataset"], budget_label(r), r["model"]): r["source"] for r in runs}
    heads = headline(table)
    keys = zip(table["dataset"], table["budget"], table["model"], strict=True)
    heads["results file"] = [sources[key] for key in keys]
    figure(table, RESULTS / "realism_current.png")
    text = ("Each model as it ships today, from the latest run that measured it (results file in the last column); "
            "medians over seeds, held-out real cells, each value next to its split-half control. The files come from "
            "different 2-core x86-64 CPUs (torch 2.13 CPU, 2 threads): `steps` shows how far a model got in its "
            "budget (GRouNdGAN: stage 2's steps; GeneSys: epochs).\n\n"
            + markdown_table(heads.to_dict(orient="records"), [*HEADLINE, "results file"]))
    write_markdown("realism_current", text)
    path = write_json("realism_current", {"collected_on": machine(), "collected": CURRENT, "runs": runs})
    print(text + f"\n\nwrote {path}")


if __name__ == "__main__":
    main()
