"""The plugin's own hooks, implemented in a conftest.py as users would."""

from __future__ import annotations

import pytest
from conftest import Project


def test_a_client_made_by_pytest_grokeval_make_client_sends_the_run(project: Project) -> None:
    project.pytester.makeconftest(
        """
        import openai

        def pytest_grokeval_make_client(settings):
            return openai.AsyncOpenAI(
                api_key=settings.api_key,
                base_url=settings.base_url,
                max_retries=0,
                default_headers={"x-team": "search"},
            )
        """
    )
    project.suite(
        "test_one.yaml",
        """
        cases:
          - id: hello
            prompt: Say hello
        """,
    )
    seen: list[str | None] = []
    project.server.responder = lambda request: seen.append(request.headers.get("x-team"))
    result = project.run()
    result.assert_outcomes(passed=1)
    assert seen == ["search"]


def test_a_make_client_hook_that_returns_none_leaves_the_default_client(project: Project) -> None:
    project.pytester.makeconftest(
        """
        calls = []

        def pytest_grokeval_make_client(settings):
            calls.append(settings.base_url)

        def pytest_sessionfinish(session):
            assert calls == [session.config.getoption("grok_base_url")]
        """
    )
    project.suite(
        "test_one.yaml",
        """
        cases:
          - id: hello
            prompt: Say hello
        """,
    )
    result = project.run()
    result.assert_outcomes(passed=1)
    assert project.server.request_count == 1


BAD_HOOKS = {
    "not a client": ("return 'not a client'", "returned builtins.str, not an openai.AsyncOpenAI*"),
    "raises": (
        "raise RuntimeError('proxy down')",
        "raised RuntimeError: proxy down (at *conftest.py:4)",
    ),
    "exits": ("raise SystemExit(3)", "raised SystemExit: 3 (at *conftest.py:4)"),
    "sync client": (
        "return openai.OpenAI(api_key='x', base_url=settings.base_url, max_retries=0)",
        "returned openai.OpenAI, not an openai.AsyncOpenAI*",
    ),
    "async def": (None, "returned a coroutine: implement it with 'def', not 'async def'"),
    "sdk retries on": (
        "return openai.AsyncOpenAI(api_key='x', base_url=settings.base_url)",
        "returned a client with max_retries=2: pass max_retries=0*",
    ),
}


@pytest.mark.parametrize("case", list(BAD_HOOKS))
def test_a_make_client_hook_that_gives_no_usable_client_stops_the_run_saying_so(
    project: Project, case: str
) -> None:
    body, message = BAD_HOOKS[case]
    if body is None:
        hook = "async def pytest_grokeval_make_client(settings):\n    return None\n"
    else:
        hook = f"def pytest_grokeval_make_client(settings):\n    {body}\n"
    project.pytester.makeconftest("import openai\n\n" + hook)
    project.suite("test_one.yaml", "cases:\n  - id: hello\n    prompt: Say hello\n")

    result = project.run()

    # As a refused key does: the run stops before sending, exiting as interrupted.
    project.assert_sent_nothing(
        result,
        pytest.ExitCode.INTERRUPTED,
        f"*Exit: grokeval: pytest_grokeval_make_client {message}*",
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_make_client_hook_that_raises_stops_the_run_also_when_the_model_catalog_is_cached(
    project: Project,
) -> None:
    project.suite("test_one.yaml", "cases:\n  - id: hello\n    prompt: Say hello\n")
    project.run().assert_outcomes(passed=1)  # records, and caches the model catalog
    sent = project.server.request_count
    project.pytester.makeconftest(
        "def pytest_grokeval_make_client(settings):\n    raise RuntimeError('proxy down')\n"
    )

    # No catalog GET makes the client first: the first request does.
    result = project.run("--grok-record=all")

    assert result.ret == pytest.ExitCode.INTERRUPTED, result.outlines
    result.stdout.fnmatch_lines(
        ["*Exit: grokeval: pytest_grokeval_make_client raised RuntimeError: proxy down*"]
    )
    assert project.server.request_count == sent


def test_the_settings_a_make_client_hook_gets_hide_the_key(project: Project) -> None:
    project.pytester.makeconftest(
        "def pytest_grokeval_make_client(settings):\n    print('SETTINGS', repr(settings))\n"
    )
    project.suite("test_one.yaml", "cases:\n  - id: hello\n    prompt: Say hello\n")

    result = project.run("-s")

    result.assert_outcomes(passed=1)
    (line,) = [line for line in result.outlines if line.startswith("SETTINGS")]
    assert "base_url=" in line and "api_key" not in line
