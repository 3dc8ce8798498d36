"""Issue 11.3: the key, and base URL credentials, appear in nothing that leaves the process."""

from __future__ import annotations

import pytest
from conftest import API_KEY, Project

from pytest_grokeval.redaction import MASK, MIN_RUN, Redactor
from pytest_grokeval.testing import Reply

SUITES = {
    "test_a.yaml": "cases:\n  - id: echoed\n    prompt: alpha\n  - id: fine\n    prompt: beta\n",
    "test_b.yaml": "cases:\n  - id: other\n    prompt: gamma\n",
}


def everything_written(project: Project, result: pytest.RunResult) -> str:
    """stdout, stderr, every report file and every recording of the run."""
    texts = [result.stdout.str(), result.stderr.str()]
    for pattern in ("*.json", "*.html", "*.xml", "__recordings__/*", "__recordings__/.*"):
        texts += [p.read_text(errors="replace") for p in project.path.glob(pattern) if p.is_file()]
    return "\n".join(texts)


@pytest.mark.parametrize("status", [400, 401], ids=["item error", "fatal"])
def test_an_error_echoing_the_authorization_header_leaks_the_key_nowhere(
    project: Project, status: int
) -> None:
    for name, text in SUITES.items():
        project.suite(name, text)
    project.server.add_fault(
        Reply(status=status, error="bad request", echo_authorization=True), match="alpha"
    )

    result = project.run(
        "-v", "-rA", "-l", "--grok-report=report.json", "--grok-html=report.html",
        "--junitxml=junit.xml",
    )

    written = everything_written(project, result)
    assert f"Authorization: Bearer {MASK}" in written  # the echo itself did arrive
    assert API_KEY not in written
    assert API_KEY[:12] not in written
    assert API_KEY[-12:] not in written


def test_a_traceback_with_locals_shows_no_key_and_settings_hide_it_in_their_repr(
    project: Project,
) -> None:
    project.pytester.makepyfile(
        test_settings="""
        from pathlib import Path
        from pytest_grokeval.state import RUN_KEY

        def test_fails_with_settings_in_locals(request):
            settings = request.config.stash[RUN_KEY].settings
            key = settings.api_key
            Path("repr.txt").write_text(repr(settings))
            assert key is None, "the key: " + key
        """
    )

    result = project.run("-l", "--junitxml=junit.xml")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*settings * = Settings(max_concurrent=4, *"])
    written = everything_written(project, result)
    assert API_KEY[:12] not in written
    assert API_KEY[:12] not in (project.path / "repr.txt").read_text()


def test_credentials_in_the_base_url_are_never_printed(project: Project) -> None:
    project.suite("test_b.yaml", SUITES["test_b.yaml"])
    url = project.url.replace("http://", "http://robot:hunter2secret@")

    result = project.pytester.runpytest(
        "--grok-base-url", url, "-p", "no:randomly", "-v", "--grok-report=report.json",
        "--grok-retries=0",
    )

    # The SDK's transport refuses credentials beside an Authorization header, so the option
    # refuses them first: a usage error, nothing sent, and the credentials masked in it.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert project.server.request_count == 0
    written = everything_written(project, result)
    assert "hunter2secret" not in written
    assert "robot:" not in written
    result.stderr.fnmatch_lines(["*--grok-base-url*credentials*"])


def test_any_twelve_character_run_of_the_key_is_redacted_and_nothing_else() -> None:
    redact = Redactor.for_key(API_KEY, "https://api.x.ai/v1")
    middle = API_KEY[7:25]

    assert redact(f"Bearer {API_KEY}.") == f"Bearer {MASK}."
    assert redact(f"key {middle} end") == f"key {MASK} end"
    assert redact(API_KEY[:11]) == API_KEY[:11]
    assert redact("an ordinary message") == "an ordinary message"


def test_a_twelve_character_run_at_any_offset_of_the_key_is_redacted() -> None:
    # Each offset: the redactor skips text that holds none of the key's pieces, which must
    # leave no run of MIN_RUN characters unnoticed, wherever it starts.
    redact = Redactor.for_key(API_KEY, "https://api.x.ai/v1")
    for start in range(len(API_KEY) - MIN_RUN + 1):
        run = API_KEY[start : start + MIN_RUN]
        assert redact(f"echo <{run}> end") == f"echo <{MASK}> end", start


@pytest.mark.parametrize("key", ["fake", "x"])
def test_a_key_too_short_to_be_a_secret_is_not_masked_in_prompts_answers_or_output(
    project: Project, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("XAI_API_KEY", key)
    project.suite("test_news.yaml", """
        cases:
          - id: news
            prompt: is this fake news, xai
            expect: {contains: "fake news, xai"}
    """)
    project.run("-rA").assert_outcomes(passed=1)
    recorded = project.recording("test_news.yaml").read_text()
    assert MASK not in recorded and "You said: is this fake news, xai" in recorded
    monkeypatch.delenv("XAI_API_KEY")
    replay = project.run("--grok-record=none", "-rA", "--grok-max-cost", "1")
    replay.assert_outcomes(passed=1)
    assert MASK not in replay.stdout.str()
