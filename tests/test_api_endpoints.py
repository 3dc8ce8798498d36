"""Issue 15: both endpoints, what xAI asks evaluators to record, the model catalog and
limits learned from the API, through pytest and the fake Grok (SPEC §4, §5, §6)."""

from __future__ import annotations

import json

import pytest
from conftest import API_KEY, INI, Project

from pytest_grokeval.testing import FakeGrok, Reply

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
MODELS = "/v1/models"

SUITE = """
{api}model: grok-4.3
system: Be brief.
params: {{max_tokens: 50, reasoning_effort: high, temperature: 0}}
cases:
  - id: refund
    prompt: How many days do I have to return an item?
    expect:
      contains: You said
  - id: hello
    prompt: Say hello.
    expect:
      finish_reason: stop
"""


def entries(project: Project, suite: str) -> dict[str, dict[str, object]]:
    """Each item's first recorded sample."""
    document = json.loads(project.recording(suite).read_text(encoding="utf-8"))
    return {name: samples[0] for name, samples in document["entries"].items()}


def test_a_responses_suite_records_through_responses_only_and_replays_without_a_key(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.server.responder = lambda request: Reply(reasoning_tokens=7)
    project.suite("test_bot.yaml", SUITE.format(api="api: responses\n"))

    project.run().assert_outcomes(passed=2)

    assert (project.server.requests_to(RESPONSES), project.server.requests_to(CHAT)) == (2, 0)
    body = project.server.log[0].body
    assert body["instructions"] == "Be brief."
    assert [m["role"] for m in body["input"]] == ["user"]
    assert (body["max_output_tokens"], body["reasoning"], body["store"]) == (
        50, {"effort": "high"}, False
    )
    assert "max_tokens" not in body and "messages" not in body
    for entry in entries(project, "test_bot.yaml").values():
        response = entry["response"]
        assert isinstance(response, dict)
        assert (response["api"], response["reasoning_effort"]) == ("responses", "high")
        assert response["usage"]["reasoning_tokens"] == 7
        # Responses' output_tokens hold the reasoning: completion is what is left of them.
        assert response["usage"]["total_tokens"] == (
            response["usage"]["prompt_tokens"] + response["usage"]["completion_tokens"] + 7
        )
        assert response["request_id"]
        assert entry["request"]["api"] == "responses"  # type: ignore[index]

    monkeypatch.delenv("XAI_API_KEY")
    project.run().assert_outcomes(passed=2)
    assert project.server.request_count == 2


def test_the_same_suite_with_api_chat_goes_to_chat_completions_only(project: Project) -> None:
    project.server.responder = lambda request: Reply(reasoning_tokens=5)
    project.suite("test_bot.yaml", SUITE.format(api="api: chat\n"))

    project.run().assert_outcomes(passed=2)

    assert (project.server.requests_to(CHAT), project.server.requests_to(RESPONSES)) == (2, 0)
    assert project.server.log[0].body["reasoning_effort"] == "high"
    for entry in entries(project, "test_bot.yaml").values():
        response = entry["response"]
        assert isinstance(response, dict)
        assert (response["api"], response["reasoning_effort"]) == ("chat", "high")
        assert response["usage"]["reasoning_tokens"] == 5
        assert response["system_fingerprint"] == "fp_fake"
        assert response["request_id"]
        # A chat entry's request is written as before the endpoint existed.
        assert "api" not in entry["request"]  # type: ignore[operator]


def test_grok_api_sets_the_endpoint_of_cases_that_name_none(project: Project) -> None:
    project.suite(
        "test_mixed.yaml",
        """
        cases:
          - id: default
            prompt: one
          - id: own
            api: chat
            prompt: two
        """,
    )
    project.run("--grok-api", "responses").assert_outcomes(passed=2)
    sent = sorted((entry.prompt, entry.path) for entry in project.server.log)
    assert sent == [("one", RESPONSES), ("two", CHAT)]


def test_a_marked_python_test_can_ask_for_the_responses_api(project: Project) -> None:
    project.pytester.makepyfile(
        test_py="""
        import pytest

        @pytest.mark.grok(prompt="Say hi.", api="responses")
        def test_hi(grok_response):
            assert grok_response.text == "You said: Say hi."
            assert grok_response.api == "responses"

        @pytest.mark.grok(prompt="Say hi.", api="chats")
        def test_typo(grok_response):
            pass
        """
    )
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*api= must be chat or responses, got 'chats'*"])
    assert (project.server.requests_to(RESPONSES), project.server.requests_to(CHAT)) == (1, 0)


def test_a_recording_made_on_another_endpoint_is_stale_and_says_so(project: Project) -> None:
    project.suite("test_bot.yaml", "cases:\n  - id: only\n    prompt: hi\n")
    project.run().assert_outcomes(passed=1)

    result = project.run("--grok-api", "responses", "--grok-record", "none")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the endpoint (api) changed from 'chat' to 'responses'*"])


def test_an_unknown_api_is_a_collection_error_naming_the_line(project: Project) -> None:
    project.suite("test_bad.yaml", "api: response\ncases:\n  - id: a\n    prompt: hi\n")
    result = project.run()
    result.stdout.fnmatch_lines(
        ["*test_bad.yaml:1: 'api' of the suite must be chat or responses, got 'response'; "
         "did you mean 'responses'?*"]
    )
    assert project.server.request_count == 0


def own_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `project` fixture's set-up, for tests that start a FakeGrok with its own options."""
    monkeypatch.setenv("XAI_API_KEY", API_KEY)
    monkeypatch.delenv("XAI_BASE_URL", raising=False)
    pytester.makeini(INI)


# -- the model catalog ------------------------------------------------------------------------


def test_an_unknown_model_and_a_rejected_param_are_errors_before_any_request(
    project: Project,
) -> None:
    project.suite(
        "test_catalog.yaml",
        """
        cases:
          - id: typo
            model: grok-4.33
            prompt: hi
          - id: penalty
            params: {presence_penalty: 0}
            prompt: hi
          - id: effort
            model: grok-4.5
            params: {reasoning_effort: none}
            prompt: hi
          - id: fine
            prompt: hi
        """,
    )
    result = project.run()

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert project.server.request_count == 0
    result.stdout.fnmatch_lines(
        [
            "*3 problems found with the API's model catalog (GET /v1/models); nothing was sent:",
            "*test_catalog.yaml::typo: unknown model 'grok-4.33'; did you mean 'grok-4.3'?",
            "*test_catalog.yaml::penalty: param 'presence_penalty' is rejected by model "
            "'grok-4.3': every current xAI model rejects it, even at 0*",
            "*test_catalog.yaml::effort: param 'reasoning_effort' 'none' is not allowed by "
            "model 'grok-4.5'; it allows low, medium, high*",
        ]
    )


def test_replay_reads_no_catalog(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.suite("test_bot.yaml", "cases:\n  - id: only\n    prompt: hi\n")
    project.run().assert_outcomes(passed=1)
    monkeypatch.delenv("XAI_API_KEY")
    (project.path / ".pytest_cache").rename(project.path / "old_cache")

    project.run().assert_outcomes(passed=1)

    assert project.server.requests_to(MODELS) == 1


def test_the_catalog_is_fetched_once_and_cached_for_a_day(project: Project) -> None:
    project.suite("test_bot.yaml", "cases:\n  - id: only\n    prompt: hi\n")
    project.run("--grok-record", "all").assert_outcomes(passed=1)
    project.run("--grok-record", "all").assert_outcomes(passed=1)
    assert project.server.requests_to(MODELS) == 1

    [cached] = (project.path / ".pytest_cache" / "v" / "grokeval" / "models").iterdir()
    entry = json.loads(cached.read_text(encoding="utf-8"))
    entry["fetched"] -= 24 * 3600 + 1
    cached.write_text(json.dumps(entry), encoding="utf-8")
    result = project.run("--grok-record", "all")

    result.assert_outcomes(passed=1)
    assert project.server.requests_to(MODELS) == 2
    # The model's default effort, from the catalog, is recorded when the case sets none.
    [entry] = entries(project, "test_bot.yaml").values()
    assert entry["response"]["reasoning_effort"] == "low"  # type: ignore[index]


def test_a_server_without_a_usable_catalog_warns_and_sends_anyway(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_server(pytester, monkeypatch)
    with FakeGrok(models={}) as server:
        project = Project(pytester, server)
        suite = "cases:\n  - id: only\n    model: grok-4.33\n    prompt: hi\n"
        project.suite("test_bot.yaml", suite)
        result = project.run()
    result.assert_outcomes(passed=1)
    assert server.requests_to(CHAT) == 1
    result.stdout.fnmatch_lines(
        ["WARNING the model catalog (GET /models at 127.0.0.1) could not be read*"
         "were not checked before sending"]
    )


# -- limits learned from the API --------------------------------------------------------------


def test_a_hidden_per_second_limit_is_learned_and_kept_with_few_429s(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_server(pytester, monkeypatch)
    cases = "".join(f"  - id: case-{i}\n    prompt: prompt {i}\n" for i in range(40))
    with FakeGrok(requests_per_second=10) as server:
        project = Project(pytester, server)
        project.suite("test_many.yaml", f"cases:\n{cases}")
        result = project.run("--grok-max-concurrent", "32")
        limited = server.rate_limited
        answered = server.request_count

    result.assert_outcomes(passed=40)
    # The first answer's headers hold the rest back; one probe meets the limit and its 429
    # states it: at most 3 % of the requests (here one), and every case passes.
    assert limited <= 1, f"{limited} of {answered} requests were refused"
    result.stdout.fnmatch_lines(["learned: 10 requests/s from the API*"])


def test_a_stated_limit_shows_in_the_summary_of_an_xdist_run_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    own_server(pytester, monkeypatch)
    cases = "".join(f"  - id: case-{i}\n    prompt: prompt {i}\n" for i in range(12))
    message = "Your team's rate limit is — Requests per Minute (actual/limit): 7/6000."
    with FakeGrok() as server:
        server.add_fault(Reply(status=429, error=message), first=1)
        project = Project(pytester, server)
        project.suite("test_many.yaml", f"cases:\n{cases}")
        result = project.run_subprocess("-n", "2")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["learned: 6,000 requests/min from the API*"])


def test_the_summary_names_no_learned_limit_when_none_was_stated(project: Project) -> None:
    project.suite("test_bot.yaml", "cases:\n  - id: only\n    prompt: hi\n")
    result = project.run()
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("learned:")]


def _response_body(status: str, error: object) -> str:
    return json.dumps({
        "id": "r", "object": "response", "status": status, "model": "grok-4.3", "error": error,
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "hi there"}]}],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
    })


@pytest.mark.parametrize(
    ("status", "error", "said"),
    [
        ("failed", {"code": "server_error", "message": "boom"}, "boom"),
        ("failed", None, "the response's status is 'failed'"),
        ("completed", {"code": "server_error", "message": "boom"}, "boom"),
    ],
)
def test_a_responses_200_that_failed_is_an_error_with_its_message_not_an_answer(
    project: Project, status: str, error: object, said: str
) -> None:
    project.server.add_fault(Reply(raw_body=_response_body(status, error)))
    project.suite("test_one.yaml", "api: responses\ncases:\n  - id: one\n    prompt: one\n"
                  "    expect: {contains: hi}\n")
    result = project.run("--grok-retries", "0", "-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"FAILED test_one.yaml::one - *malformed response: the API answered 200 with an error: "
         f"{said}*"]
    )
