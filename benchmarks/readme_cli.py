"""Run the README's command-line block as written, time every command, and write the transcript.

Usage::

    python benchmarks/readme_cli.py                # in a fresh temporary directory
    python benchmarks/readme_cli.py --workdir DIR

Each command runs in its own process (as a user types it), in order, in one working directory. Writes
``docs/cli_transcript.md`` (each command, what it printed, how long it took, on which machine) and
``benchmarks/results/readme_cli.json``. Progress bars are reduced to their last state.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "cli"))
from _common import machine, write_json  # noqa: E402
from test_readme_cli import readme_cli_commands  # noqa: E402


_BAR = re.compile(r"^(.+?):\s+\d+%\|")


def _clean(text: str) -> str:
    """Keep the last redraw of each progress bar (tqdm rewrites its line, or repeats it outside a terminal)."""
    lines = [line.split("\r")[-1].rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line) for line in lines if line.strip()]
    kept: list[str] = []
    for line in lines:
        bar = _BAR.match(line)
        if bar and kept and (_BAR.match(kept[-1]) or [None, None])[1] == bar[1]:
            kept[-1] = line
        else:
            kept.append(line)
    return "\n".join(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="directory to run in (default: a new temporary directory)")
    parser.add_argument("--resume", action="store_true",
                        help="with --workdir of an earlier run: keep the results of its leading commands that are "
                        "unchanged and succeeded, and run the rest")
    args = parser.parse_args()
    previous = []
    if args.resume:
        import json

        previous = json.loads((ROOT / "benchmarks" / "results" / "readme_cli.json").read_text())["rows"]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="scsynth-readme-"))
    workdir.mkdir(parents=True, exist_ok=True)
    scsynth = Path(sys.executable).with_name("scsynth")
    rows = []
    for i, argv in enumerate(readme_cli_commands()):
        if len(rows) == i and i < len(previous) and previous[i]["command"] == shlex.join(argv) \
                and previous[i]["exit"] == 0:
            rows.append(previous[i])
            continue
        previous = []  # once a command changed, every later one runs again
        start = time.perf_counter()
        done = subprocess.run([str(scsynth), *argv[1:]], cwd=workdir, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        rows.append({"command": shlex.join(argv), "seconds": seconds, "exit": done.returncode,
                     "output": _clean(done.stdout + done.stderr)})
        print(f"{seconds:7.1f} s  exit {done.returncode}  {shlex.join(argv)}", flush=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            break
    info = machine()
    total = sum(r["seconds"] for r in rows)
    lines = [
        "# Command-line transcript",
        "",
        "Every command of the README's command-line block, run as written, in order, in one fresh directory, "
        f"on bundled data only (no download). Machine: {info['processor']}, {info['cpus']} CPU cores, "
        f"torch {info['torch']}, {'GPU ' + info['cuda'] if info['cuda'] else 'no GPU'}. "
        f"Total: {total / 60:.1f} minutes. Produced by `python benchmarks/readme_cli.py`; "
        "`tests/cli/test_readme_cli.py` runs the same block with small training budgets.",
        "",
    ]
    for row in rows:
        lines += [f"## `{row['command']}`", "", f"{row['seconds']:.1f} s, exit status {row['exit']}.", "",
                  "```text", row["output"] or "(no output)", "```", ""]
    (ROOT / "docs" / "cli_transcript.md").write_text("\n".join(lines))
    write_json("readme_cli", {"machine": info, "total_seconds": total, "rows": rows})
    print(f"total {total:.0f} s; wrote docs/cli_transcript.md")


if __name__ == "__main__":
    main()
