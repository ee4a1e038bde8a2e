"""Every ``page.md#section`` link in the documentation points at a heading that gets an anchor.

MyST gives anchors only to headings down to ``myst_heading_anchors`` (docs/conf.py); a link to a deeper
heading, or to one renamed since, renders as dead text with only a build warning. This checks the links
without building the docs (Sphinx is not a test dependency), with MyST's GitHub-style slugs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "generated" not in p.parts and "_build" not in p.parts)
LINK = re.compile(r"\]\(([^)\s]*?)#([^)\s]+)\)")


def _anchor_depth() -> int:
    match = re.search(r"^myst_heading_anchors\s*=\s*(\d+)", (DOCS / "conf.py").read_text(), flags=re.M)
    return int(match.group(1)) if match else 0


def slugify(title: str) -> str:
    """MyST's default slug (``myst_parser.slugs.github_slugify``): lower case, hyphens, no punctuation."""
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", title.lower().replace(" ", "-"))


def anchors(page: Path, depth: int) -> set[str]:
    out, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading and not fenced and len(heading.group(1)) <= depth:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(2))  # a link's text only
            out.add(slugify(text.replace("`", "")))
    return out


def test_slugs_match_myst():
    assert slugify("Targets from the controller's cells") == "targets-from-the-controllers-cells"
    assert slugify("Stage-2 realism") == "stage-2-realism"
    assert slugify("What `condition` and `n_obs` mean") == "what-condition-and-n_obs-mean"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_section_links_resolve(page):
    depth = _anchor_depth()
    dead = []
    for target, anchor in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")) or (target and not target.endswith(".md")):
            continue
        linked = (page.parent / target).resolve() if target else page
        if not linked.is_file() or anchor not in anchors(linked, depth):
            dead.append(f"{target}#{anchor}")
    assert not dead, f"{page.relative_to(DOCS)} links to sections without an anchor: {dead}"
