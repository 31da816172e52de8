"""The documents stay true to the tree: every path README.md's layout table and docs/architecture.md name
exists, the layout table lists every top-level folder, the sections the source points at exist, and no
file refers to a document outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
#: What a backticked path looks like: ``app/api/routes.py``, ``vault/users/``, ``wsgi.py``.
PATH = re.compile(r"`([A-Za-z_][\w.-]*(?:/[\w.-]+)*/?)`")
#: A relative path that climbs out of its folder (deploy/terraform's policies): it must lead, from its file's
#: folder, to a path of the repository. Only where a path starts: not ``E:../X.TTF``, a printer font name
#: a test refuses.
RELATIVE = re.compile(r"(?:^|(?<=[\s\"'`(=/]))((?:\.\./)+[\w.-]+(?:/[\w.-]+)*)", flags=re.MULTILINE)
#: The design document the first prototype kept outside the repository.
OUTSIDE_DOCUMENT = "DESIGN" + ".md"


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True)
    return [name for name in listing.stdout.split("\0") if name]


def named_paths(text: str) -> set[str]:
    """Backticked repository paths in ``text``: with a folder in them, or a file name with an extension."""
    return {p for p in PATH.findall(text) if "/" in p or re.search(r"\.(py|md|toml|txt|in|json)$", p)}


def layout_table() -> str:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def test_the_layout_table_names_existing_paths_and_every_top_level_folder() -> None:
    table = layout_table()
    assert [p for p in sorted(named_paths(table)) if not (ROOT / p).exists()] == []
    listed = set(re.findall(r"^\| `([\w-]+)/` \|", table, flags=re.MULTILINE))
    folders = {name.split("/", 1)[0] for name in tracked_files() if "/" in name and not name.startswith(".")}
    assert listed == folders


def test_every_path_the_architecture_document_names_exists() -> None:
    paths = named_paths(ARCHITECTURE)
    assert len(paths) > 50  # the document names its modules; this is not vacuous
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == []


def test_the_sections_the_source_points_at_exist() -> None:
    headings = set(re.findall(r"^#+ (.+)$", ARCHITECTURE, flags=re.MULTILINE))
    pointers = []
    for name in tracked_files():
        if name.endswith((".py", ".md")):
            text = (ROOT / name).read_text(encoding="utf-8")
            pointers += [(name, s) for s in re.findall(r'docs/architecture\.md[^"\n]{0,20}"([^"]+)"', text)]
    assert ("vault/records.py", "Minimise at the boundary") in pointers
    assert [(name, section) for name, section in pointers if section not in headings] == []


def test_no_file_refers_to_a_document_or_path_outside_the_repository() -> None:
    found = []
    for name in tracked_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary: fonts, compiled translations
            continue
        if OUTSIDE_DOCUMENT in text:
            found.append(f"{name}: {OUTSIDE_DOCUMENT}")
        folder = (ROOT / name).parent
        for relative in RELATIVE.findall(text):
            target = (folder / relative).resolve()
            if not (target.is_relative_to(ROOT) and target.exists()):
                found.append(f"{name}: {relative}")
    assert found == []
