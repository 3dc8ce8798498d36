"""The package's layout stays a house others can live in: small modules, one map, no twins."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "pytest_grokeval"
MAX_LINES = 400


def modules() -> list[str]:
    """Every module of the package but the packages' __init__.py, relative to the package."""
    return sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    )


def mapped() -> list[str]:
    """The modules the first column of the README's "Development" module map names."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Development\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.strip().startswith("| `")]
    return sorted(
        name for row in rows for name in re.findall(r"`([\w/]+\.py)`", row.split("|")[1])
    )


def test_no_module_of_the_package_passes_400_lines() -> None:
    sizes = {name: len((PACKAGE / name).read_text().splitlines()) for name in modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_readme_module_map_names_every_module_and_nothing_else() -> None:
    assert mapped() == modules()


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="no `duplicates` command here")
@pytest.mark.skipif(
    not (ROOT / ".git").exists(), reason="`duplicates` reads a git checkout, not an unpacked sdist"
)
def test_the_package_has_no_twin_pieces_of_code() -> None:
    found = subprocess.run(
        ["duplicates", "--repo", str(PACKAGE), "--most", "40", "--seconds", "120"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    # Boilerplate rows fail too: the fake server's forwarding properties, the last of them,
    # became one `Count` descriptor, so any pair now is one the code brought back.
    rows = [line for line in found.splitlines() if re.match(r"D\d+ ", line)]
    assert rows == [], found
    assert "no duplicates" in found, found
