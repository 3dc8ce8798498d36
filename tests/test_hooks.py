"""The plugin's own hooks, implemented in a conftest.py as users would."""

from __future__ import annotations

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
