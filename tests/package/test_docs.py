"""README.md and docs/*.md: every relative link (and #anchor) reaches something that exists, and nothing a user
reads names a folder of the machine it was written on."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MACHINE_PATH = re.compile(r"/work/|\.\./shared|/root/|/tmp/")


def prose(path: Path) -> list[str]:
    """The lines of a page outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen, out = {}, set()
    for line in prose(path):
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(path: Path) -> list[str]:
    return [t for line in prose(path) if not line.startswith("    ") for t in LINK.findall(line)
            if not re.match(r"[a-z]+:", t)]


def test_the_pages_are_found():
    assert {p.name for p in PAGES} >= {"README.md", "mnist.md", "robustness.md", "evaluation.md"}
    assert sum(len(links(p)) for p in PAGES) > 40  # the pattern does find links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_existing_files_and_anchors(page):
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert broken == []


def test_every_docs_page_is_listed_in_the_readme_and_starts_with_a_title():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, page.name
        first = page.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), page.name


def test_no_folder_of_a_development_machine_is_named():
    files = [*PAGES, *(ROOT / "results").rglob("*.md"), *(ROOT / "results").rglob("*.json"),
             *(ROOT / "benchmarks").rglob("*.json"), *(ROOT / "benchmarks").rglob("*.txt")]
    found = [f"{f.relative_to(ROOT)}:{i}" for f in files
             for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if MACHINE_PATH.search(line)]
    assert found == []
