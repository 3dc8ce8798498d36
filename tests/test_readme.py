"""The README's examples run, and it documents every check and every option."""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

from conftest import Project

from pytest_grokeval import Completion, Usage, expect
from pytest_grokeval.checks.registry import CHECKS
from pytest_grokeval.options import INI_ONLY, OPTIONS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_starts_with_the_two_set_up_commands_and_ci_runs_the_second() -> None:
    example, tests = blocks("bash")[:2]
    assert "pytest example_suite" in example
    assert "pip install -e ." in example
    assert tests.strip().endswith("pytest tests")
    assert tests.strip() in (ROOT / ".ci" / "run").read_text()
    assert README.index(example) < README.index("## Install")


def test_every_check_is_documented() -> None:
    for name in CHECKS:
        assert f"| `{name}` |" in README, name
    assert "not_<check>" in README


def test_every_option_is_documented() -> None:
    for option in OPTIONS:
        assert f"| `{option.flag} " in README, option.flag
        if option.ini:
            assert f"`{option.ini}`" in README, option.ini
    for name, *_ in INI_ONLY:
        assert f"`{name}`" in README, name


def test_the_suite_example_runs(project: Project) -> None:
    (example,) = [b for b in blocks("yaml") if b.startswith("# test_support_bot.yaml")]
    project.suite("test_support_bot.yaml", example)
    project.server.answers.update(
        {
            "How many days": "You have 30 days to return an item.",
            "write a poem": "I can help with your ACME order instead.",
            "haiku": "an old silent pond\na frog jumps into the pond\nsplash! silence again",
        }
    )

    result = project.run("-v")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_support_bot.yaml::haiku?topic=cats? PASSED*"])
    # haiku: 2 topics x 3 samples, plus the two other cases.
    assert project.server.request_count == 8


def test_the_python_examples_run(tmp_path: Path) -> None:
    check_block, expect_block = blocks("python")[:2]
    module = tmp_path / "order_checks.py"
    module.write_text("import json\n" + textwrap.dedent(check_block))
    namespace: dict[str, object] = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    response = Completion(
        text='{"sku": "abc-1"}', finish_reason="stop", model="grok-4.3",
        usage=Usage(), latency_ms=1.0, cost_usd=None,
    )
    check = namespace["sku_is_uppercase"]
    assert callable(check)
    assert check(response) == "sku 'abc-1' is not upper-case"

    response = Completion(
        text="Returns are accepted within 30 days.", finish_reason="stop", model="grok-4.3",
        usage=Usage(), latency_ms=1.0, cost_usd=None,
    )
    exec(expect_block, {"expect": expect, "response": response})


def test_the_python_test_example_runs_as_written_under_pytest_asyncio_strict_mode(
    project: Project,
) -> None:
    (example,) = [b for b in blocks("python") if "@pytest.mark.grok" in b]
    project.pytester.makepyfile(test_example=example)
    project.server.answers.update(
        {"How many days": "You have 30 days.", "Say hello.": "Hello there!"}
    )

    result = project.run("-p", "asyncio", "-o", "asyncio_mode=strict")

    result.assert_outcomes(passed=2)
    assert project.server.request_count == 2


def test_the_fake_grok_example_runs() -> None:
    (example,) = [b for b in blocks("python") if b.startswith("# try_fake_grok.py")]
    exec(compile(example, "try_fake_grok.py", "exec"), {})


def test_the_supported_versions_section_states_the_declared_pythons_and_floors() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    section = README[README.index("### Supported versions") : README.index("## Writing a suite")]
    pythons = [c.rsplit(" ", 1)[1] for c in project["classifiers"] if re.fullmatch(
        r"Programming Language :: Python :: 3\.\d+", c
    )]
    assert pythons
    for version in pythons:
        assert f"`tests-{version}`" in section, version
    for dependency in project["dependencies"]:
        name, floor = dependency.split(">=")
        assert f"`{name}=={floor}`" in section, dependency
