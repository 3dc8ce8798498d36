"""The supported matrix as one command: `nox` runs the tests on each Python the package's
classifiers declare, once with every runtime dependency pinned to its declared floor, and
once from the unpacked sdist.

Both lists come from pyproject.toml, so what is declared is what is tested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PYTHONS = [
    match.group(1)
    for classifier in PROJECT["classifiers"]
    if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", classifier))
]
# Two workers: the suite is stable under xdist, and CI machines have two cores.
PYTEST_ARGS = ["tests", "-n", "2"]
# The line coverage `nox -s coverage` requires of the package.
COVERAGE_FLOOR = 95

nox.options.sessions = ["tests", "floors", "sdist"]
nox.options.error_on_missing_interpreters = True


def floor_pins() -> list[str]:
    """`name[extras]==version` for each runtime dependency, from its `>=` floor.

    Raises ValueError for a dependency without one: every floor must be declared to be tested.
    """
    pins = []
    for text in PROJECT["dependencies"]:
        requirement = Requirement(text)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(floors) != 1:
            raise ValueError(f"dependency {text!r} needs exactly one '>=' floor")
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pins.append(f"{requirement.name}{extras}=={floors[0]}")
    return pins


def _pyenv_pythons_on_path() -> None:
    # pyenv's shims only run the selected version; its install folders have every pythonX.Y.
    try:
        root = subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return
    bins = sorted(str(path) for path in Path(root, "versions").glob("3.*/bin"))
    os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_pyenv_pythons_on_path()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite with the newest dependencies."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or PYTEST_ARGS))


@nox.session(python=PYTHONS[-1])
def coverage(session: nox.Session) -> None:
    """The suite under `coverage run` on the newest Python, subprocesses (pytester's runs,
    xdist workers) included, and the floor: `pytest --cov` misses the subprocesses."""
    session.install("-e", ".[test]")
    # sys.monitoring (Python 3.12+) measures at a fraction of the tracer's cost.
    session.env["COVERAGE_CORE"] = "sysmon"
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *(session.posargs or PYTEST_ARGS))
    session.run("coverage", "combine", "-q")
    session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}")


@nox.session(python=PYTHONS[0])
def floors(session: nox.Session) -> None:
    """The test suite with every runtime dependency at its declared floor, on the oldest Python."""
    pins = floor_pins()
    session.install("-e", ".[test]", *pins)
    frozen = str(session.run("pip", "freeze", silent=True) or "")
    installed = {
        canonicalize_name(match.group(1)): Version(match.group(2))
        for line in frozen.splitlines()
        if (match := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()))
    }
    for pin in pins:
        requirement = Requirement(pin)
        (spec,) = requirement.specifier
        got = installed.get(canonicalize_name(requirement.name))
        if got != Version(spec.version):
            session.error(f"{pin} was asked for, but {got} got installed")
    session.run("pytest", *(session.posargs or PYTEST_ARGS))


@nox.session(python=PYTHONS[-1])
def sdist(session: nox.Session) -> None:
    """The suite run from the unpacked sdist, against the package installed from it."""
    session.install("build")
    tmp = Path(session.create_tmp())
    shutil.rmtree(tmp / "sdist", ignore_errors=True)
    session.run("python", "-m", "build", "--sdist", "--outdir", str(tmp / "sdist"), silent=True)
    (archive,) = (tmp / "sdist").glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "sdist", filter="data")
    (unpacked,) = (path for path in (tmp / "sdist").iterdir() if path.is_dir())
    session.install(f"{archive}[test]")
    session.chdir(unpacked)
    session.run("pytest", *(session.posargs or PYTEST_ARGS))
