"""How long the ``scsynth`` command takes to answer ``--help`` and ``--version``, side by side with the
previous, eager-import behaviour (every subpackage, hence torch, Lightning and scvi-tools, imported first).

Usage::

    python benchmarks/cli_startup.py             # 7 repeats
    python benchmarks/cli_startup.py --repeats 3

Each timing is a fresh Python process (what a shell user waits for), median of the repeats. Writes
``benchmarks/results/cli_startup.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import machine, markdown_table, write_json, write_markdown  # noqa: E402

#: The same command with the subpackages imported up front, as scsynth 0.1's ``__init__`` did.
EAGER = "import scsynth, scsynth.data, scsynth.metrics, scsynth.model, scsynth.pl, scsynth.tl; "
CASES = {
    "scsynth --help": ["--help"],
    "scsynth --version": ["--version"],
    "scsynth train scgan --help": ["train", "scgan", "--help"],
}


def _seconds(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for name, argv in CASES.items():
        call = f"import sys; from scsynth.cli import main; sys.exit(main({argv!r}))"
        lazy = _seconds(call, args.repeats)
        eager = _seconds(EAGER + call, args.repeats)
        rows.append({"command": name, "now (s)": lazy, "eager imports (s)": eager, "speed-up": eager / lazy})
    table = markdown_table(rows, ["command", "now (s)", "eager imports (s)", "speed-up"])
    print(table)
    write_json("cli_startup", {"machine": machine(), "repeats": args.repeats, "rows": rows})
    write_markdown("cli_startup", table)


if __name__ == "__main__":
    main()
