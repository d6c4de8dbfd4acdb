"""References to the API docs resolve, and nothing points outside the repository.

Code comments name the server behaviour they answer as `docs/<file>.md#<anchor>`; an anchor that no heading
produces (a renamed section, a typo) would leave the reader with nothing, so each one is checked here.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SKIP_DIRS = {
    ".git",
    ".venv",
    ".tmp",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "reports",
    "demo-reports",
    "test-artifacts",
    "node_modules",
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".json", ".cfg", ".txt", ".sh", ".ini", ".html"}
CITATION = re.compile(r"docs/([\w.-]+\.md)#([\w-]+)")
# Spelt in pieces so that this file does not cite them itself.
FORBIDDEN = ("/" + "work/", "contracts" + " README", "shared/" + "contracts")


def github_anchor(heading: str, seen: dict[str, int]) -> str:
    """GitHub's anchor for a heading: lower-case, punctuation dropped, spaces to hyphens, -1/-2 on repeats."""
    text = unicodedata.normalize("NFC", heading.strip()).lower()
    text = re.sub(r"`|\*\*|__", "", text)
    slug = "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match and not fenced:
            found.add(github_anchor(match.group(1), seen))
    return found


def repo_files() -> list[Path]:
    files = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name == "Dockerfile"):
            files.append(path)
    return files


def test_the_anchor_rule_matches_githubs() -> None:
    seen: dict[str, int] = {}
    assert github_anchor("User update replaces metadata", seen) == "user-update-replaces-metadata"
    assert github_anchor("User new existing id is 409", seen) == "user-new-existing-id-is-409"
    assert github_anchor("MemberOf is direct only", seen) == "memberof-is-direct-only"
    assert github_anchor("GET /user/list: paging (max 100)", seen) == "get-userlist-paging-max-100"
    assert github_anchor("MemberOf is direct only", seen) == "memberof-is-direct-only-1"


def test_every_cited_doc_section_exists() -> None:
    cited: list[tuple[str, str, str]] = []
    for path in repo_files():
        if path.suffix not in {".py", ".md"}:
            continue
        where = str(path.relative_to(REPO))
        text = path.read_text(encoding="utf-8", errors="replace")
        cited += [(where, m.group(1), m.group(2)) for m in CITATION.finditer(text)]
        if path.parent == DOCS:  # links inside a doc: (#anchor)
            cited += [(where, path.name, a) for a in re.findall(r"\]\(#([\w-]+)\)", text)]
    code_citations = [c for c in cited if c[0].startswith("catalog_sync/")]
    assert len(code_citations) >= 20, "the code should point at the API docs where it answers a behaviour"
    known = {doc.name: anchors(doc) for doc in DOCS.glob("*.md")}
    broken = [f"{at}: docs/{doc}#{anchor}" for at, doc, anchor in cited if anchor not in known.get(doc, ())]
    assert broken == []


@pytest.mark.parametrize("doc", ["litellm-api.md", "backstage-api.md"])
def test_each_api_doc_section_says_release_check_and_code(doc: str) -> None:
    text = (DOCS / doc).read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 10
    for section in sections:
        title = section.splitlines()[0]
        for label in ("- Release:", "- Checked:", "- Code:"):
            assert label in section, f"{doc} '{title}' has no '{label}' line"


def test_nothing_points_outside_the_repository() -> None:
    offenders = []
    for path in repo_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for needle in FORBIDDEN:
                if needle.lower() in line.lower():
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {needle}")
    assert offenders == []
