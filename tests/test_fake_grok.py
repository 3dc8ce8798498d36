"""The fake Grok server answers like xAI, injects faults and latency, and never wedges a test."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from pytest_grokeval.testing import GROK, FakeGrok, FakeRequest, ModelSpec, Reply
from pytest_grokeval.testing.faults import FaultSpecError, parse_fault_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def grok() -> Iterator[FakeGrok]:
    with FakeGrok() as server:
        yield server


def ask(server: FakeGrok, *prompts: str, **client_options: Any) -> list[ChatCompletion]:
    """Send each prompt concurrently through the real SDK; raise the first error."""

    async def run() -> list[ChatCompletion]:
        options: dict[str, Any] = {"api_key": "k", "max_retries": 0, **client_options}
        async with AsyncOpenAI(base_url=server.url, **options) as client:
            return await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="grok-4", messages=[{"role": "user", "content": prompt}]
                    )
                    for prompt in prompts
                )
            )

    return asyncio.run(run())


def post(
    port: int,
    body: object,
    *,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One raw request on its own connection: status, lower-cased headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection.request(
            method, path, body=payload, headers={"authorization": "Bearer k", **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def chat_body(prompt: str) -> dict[str, Any]:
    return {"model": "grok-4", "messages": [{"role": "user", "content": prompt}]}


def test_a_completion_round_trip_reports_usage_and_cost_ticks(grok: FakeGrok) -> None:
    (completion,) = ask(grok, "hello world!")

    assert completion.id == "fake-0"
    assert completion.model == "grok-4"
    assert completion.choices[0].message.content == "You said: hello world!"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 5, 8)
    assert usage.model_extra == {
        "num_sources_used": 0,
        "cost_in_usd_ticks": 3 * 12_500 + 5 * 25_000,
    }
    assert grok.request_count == 1
    (entry,) = grok.log
    assert (entry.index, entry.status, entry.prompt) == (0, 200, "hello world!")
    assert entry.started <= entry.finished


def test_answers_map_the_first_matching_substring_and_aliases_rename_the_model() -> None:
    answers = {"capital": "Paris", "France": "a country"}
    with FakeGrok(answers=answers, model_aliases={"grok-4": "grok-4-0709"}) as server:
        capital, country, other = ask(server, "capital of France?", "France", "neither")

    assert capital.choices[0].message.content == "Paris"
    assert country.choices[0].message.content == "a country"
    assert other.choices[0].message.content == "You said: neither"
    assert capital.model == "grok-4-0709"


def test_the_responder_shapes_replies_and_sees_the_request(grok: FakeGrok) -> None:
    seen: list[FakeRequest] = []

    def responder(request: FakeRequest) -> Reply | None:
        seen.append(request)
        if "long" not in request.prompt:
            return None
        return Reply(
            content="cut", finish_reason="length", model="grok-3", usage={"prompt_tokens": 100}
        )

    grok.responder = responder
    long, plain = ask(grok, "long one", "plain")

    assert (long.choices[0].message.content, long.choices[0].finish_reason) == ("cut", "length")
    assert long.model == "grok-3"
    assert long.usage is not None
    assert (long.usage.prompt_tokens, long.usage.total_tokens) == (100, 101)
    assert plain.choices[0].message.content == "You said: plain"
    assert {request.prompt for request in seen} == {"long one", "plain"}
    assert seen[0].headers["authorization"] == "Bearer k"


def test_the_prompt_is_the_last_user_message_even_in_content_parts(grok: FakeGrok) -> None:
    body = {
        "model": "grok-4",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
            {"role": "assistant", "content": "ignored"},
        ],
    }
    status, _, data = post(grok.port, body)

    assert status == 200
    assert json.loads(data)["choices"][0]["message"]["content"] == "You said: second"


def test_a_bad_key_gets_xai_400_flat_body() -> None:
    with FakeGrok(api_keys={"good-key"}) as server:
        with pytest.raises(openai.BadRequestError) as raised:
            ask(server, "hi", api_key="bad-key-xy")
        status, _, data = post(server.port, chat_body("hi"), headers={"authorization": ""})

        assert "Incorrect API key provided: ba***xy." in str(raised.value.body)
        assert status == 400
        assert json.loads(data)["code"] == "Client specified an invalid argument"
        assert server.request_count == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Failed to parse the request body as JSON"),
        ({"messages": []}, "`model` is missing"),
        ({**chat_body("hi"), "stream": True}, "streaming is not supported by the fake server"),
    ],
)
def test_invalid_bodies_get_a_400_flat_error(grok: FakeGrok, body: object, message: str) -> None:
    status, _, data = post(grok.port, body)

    assert status == 400
    assert message in json.loads(data)["error"]


def test_every_third_request_gets_429_with_retry_after(grok: FakeGrok) -> None:
    grok.add_fault(Reply(status=429, retry_after=1, retry_after_ms=500), every=3)
    statuses = []
    for _ in range(6):
        try:
            ask(grok, "hi")
            statuses.append(200)
        except openai.RateLimitError as exc:
            statuses.append(exc.status_code)
            assert exc.response.headers["retry-after"] == "1"
            assert exc.response.headers["retry-after-ms"] == "500"
            assert exc.body == "injected 429"

    assert statuses == [200, 200, 429, 200, 200, 429]


def test_fault_rules_combine_and_the_first_applicable_wins(grok: FakeGrok) -> None:
    grok.add_fault(Reply(status=500, error="boom"), match="boom", times=2)
    grok.add_fault(Reply(status=503), first=2)
    prompts = ["boom", "x", "boom", "boom", "x"]

    results = [post(grok.port, chat_body(prompt)) for prompt in prompts]

    assert [status for status, _, _ in results] == [500, 503, 500, 200, 200]
    assert json.loads(results[0][2]) == {"code": "Internal error", "error": "boom"}
    assert json.loads(results[1][2])["code"] == "The service is currently unavailable"
    grok.clear_faults()
    assert post(grok.port, chat_body("boom"))[0] == 200


def test_a_hanging_request_is_released_when_the_client_gives_up(grok: FakeGrok) -> None:
    grok.add_fault(Reply(hang=True), first=1)

    with pytest.raises(openai.APITimeoutError):
        ask(grok, "hi", timeout=0.2)
    grok.wait_for_idle(timeout=5)

    assert grok.in_flight == 0
    assert [entry.status for entry in grok.log] == [0]


def test_stop_closes_hanging_connections() -> None:
    server = FakeGrok().start()
    server.add_fault(Reply(hang=True))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        body = json.dumps(chat_body("hi")).encode()
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: fake\r\nauthorization: Bearer k\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        server.wait_for_requests(1)
        server.stop()
        server.stop()

        assert client.recv(1024) == b""
    assert server.in_flight == 0


def test_a_dropped_request_is_a_connection_error(grok: FakeGrok) -> None:
    grok.add_fault(Reply(drop=True))

    with pytest.raises(openai.APIConnectionError):
        ask(grok, "hi")
    assert [entry.status for entry in grok.log] == [0]


def test_bad_json_is_a_truncated_200_body(grok: FakeGrok) -> None:
    grok.add_fault(Reply(bad_json=True))

    status, _, data = post(grok.port, chat_body("hi"))

    assert status == 200
    assert data.startswith(b'{"id": "fake-0"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)


def test_latency_lets_concurrent_requests_wait_together() -> None:
    with FakeGrok(latency=0.3) as server:
        completions = ask(server, *(f"q{i}" for i in range(10)))

        assert len(completions) == 10
        assert server.peak_in_flight == 10
        assert server.in_flight == 0


def test_keep_alive_serves_many_requests_and_connection_close_is_honoured(grok: FakeGrok) -> None:
    body = json.dumps(chat_body("hi")).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: fake\r\nauthorization: Bearer k\r\n"
        + f"content-length: {len(body)}\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", grok.port), timeout=10) as client:
        client.sendall(request + b"\r\n" + body + request + b"connection: close\r\n\r\n" + body)
        received = b""
        while chunk := client.recv(65536):
            received += chunk

    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert received.lower().count(b"connection: close") == 1
    assert grok.request_count == 2


def test_a_malformed_request_closes_only_its_connection(grok: FakeGrok) -> None:
    with socket.create_connection(("127.0.0.1", grok.port), timeout=10) as client:
        client.sendall(b"NONSENSE\r\n\r\n")
        answer = client.recv(65536)
        assert client.recv(65536) == b""

    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert post(grok.port, chat_body("still here"))[0] == 200


def test_other_paths_are_404_and_other_methods_405(grok: FakeGrok) -> None:
    missing = post(grok.port, {}, path="/v1/embeddings", method="GET")
    wrong_method = post(grok.port, b"", method="GET")

    assert missing[0] == 404
    assert json.loads(missing[2])["code"] == "Some requested entity was not found"
    assert (wrong_method[0], wrong_method[1]["allow"]) == (405, "POST")
    assert grok.request_count == 0


def test_control_endpoints_report_and_reset_without_counting(grok: FakeGrok) -> None:
    post(grok.port, chat_body("hi"))

    stats = json.loads(post(grok.port, b"", path="/_fake/stats", method="GET")[2])
    log = json.loads(post(grok.port, b"", path="/v1/_fake/log", method="GET")[2])
    post(grok.port, b"", path="/_fake/reset")

    assert stats == {
        "requests": 1,
        "peak_in_flight": 1,
        "in_flight": 0,
        "models_requests": 0,
        "rate_limited": 0,
        "by_path": {"/v1/chat/completions": 1},
    }
    assert [(entry["index"], entry["status"], entry["prompt"]) for entry in log] == [(0, 200, "hi")]
    assert (grok.request_count, grok.log) == (0, [])


def test_the_statistics_are_read_only_documented_and_live(grok: FakeGrok) -> None:
    post(grok.port, chat_body("hi"))

    with pytest.raises(AttributeError, match="request_count is read-only"):
        grok.request_count = 5
    post(grok.port, chat_body("again"))

    assert (grok.request_count, grok.peak_in_flight, grok.in_flight) == (2, 1, 0)
    assert FakeGrok.in_flight.__doc__ == (
        "Model requests read but not yet answered, dropped or abandoned."
    )


def test_waiting_for_requests_that_never_come_times_out(grok: FakeGrok) -> None:
    with pytest.raises(TimeoutError, match="1 request to arrive"):
        grok.wait_for_requests(1, timeout=0.01)


def test_the_command_line_prints_ready_and_serves(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ping": "pong"}))
    command = [
        sys.executable,
        "-m",
        "pytest_grokeval.testing",
        "--answers",
        str(answers),
        "--fault",
        "first=1,status=503,retry_after=0.5",
    ]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready, url = process.stdout.readline().split()
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            replies = [post(port, chat_body("ping")) for _ in range(2)]
            with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as response:
                stats = json.load(response)
        finally:
            process.terminate()

    assert (ready, url) == ("READY", f"http://127.0.0.1:{port}/v1")
    (unavailable, headers, error), (ok, _, completion) = replies
    assert (unavailable, headers["retry-after"]) == (503, "0.5")
    assert json.loads(error) == {
        "code": "The service is currently unavailable",
        "error": "injected 503",
    }
    assert (ok, json.loads(completion)["choices"][0]["message"]["content"]) == (200, "pong")
    assert stats["requests"] == 2
    assert process.returncode == 0


# -- the modes other tests build on: content shapes, usage, raw bodies, errors, transport ------


def responses_body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "grok-4.3", "input": prompt, **extra}


def answer_of(grok: FakeGrok, reply: Reply, path: str = "/v1/chat/completions") -> Any:
    """The JSON answer to one request on `path` when the server gives `reply`."""
    grok.add_fault(reply, times=1)
    body = chat_body("hi") if path.endswith("completions") else responses_body("hi")
    status, _, data = post(grok.port, body, path=path)
    assert status == reply.status
    return json.loads(data)


def test_null_content_is_json_null_in_the_message(grok: FakeGrok) -> None:
    completion = answer_of(grok, Reply(null_content=True))
    response = answer_of(grok, Reply(null_content=True), "/v1/responses")

    message = completion["choices"][0]["message"]
    assert "content" in message and message["content"] is None
    assert response["output"][0]["content"] is None


def test_a_refusal_is_the_message_refusal_or_a_refusal_part(grok: FakeGrok) -> None:
    completion = answer_of(grok, Reply(refusal="I can't help with that."))
    response = answer_of(grok, Reply(refusal="I can't help with that."), "/v1/responses")

    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": "I can't help with that.",
    }
    assert response["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]


def test_tool_calls_take_the_openai_shapes_with_json_string_arguments(grok: FakeGrok) -> None:
    calls = [
        {"name": "lookup", "arguments": {"sku": "AB-1", "qty": 2}},
        {"name": "broken", "arguments": "{not json"},
    ]

    completion = answer_of(grok, Reply(tool_calls=calls, finish_reason="tool_calls"))
    response = answer_of(grok, Reply(tool_calls=calls), "/v1/responses")

    message = completion["choices"][0]["message"]
    call, broken = message["tool_calls"]
    assert message["content"] is None
    assert (call["type"], call["function"]["name"]) == ("function", "lookup")
    assert json.loads(call["function"]["arguments"]) == {"sku": "AB-1", "qty": 2}
    assert broken["function"]["arguments"] == "{not json"
    assert call["id"] != broken["id"]
    item, broken_item = response["output"]
    assert (item["type"], item["name"]) == ("function_call", "lookup")
    assert json.loads(item["arguments"]) == {"sku": "AB-1", "qty": 2}
    assert broken_item["arguments"] == "{not json"
    assert item["call_id"]


def test_reasoning_tokens_follow_each_endpoints_arithmetic(grok: FakeGrok) -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    chat = answer_of(grok, Reply(reasoning_tokens=7, usage=usage))["usage"]
    responses = answer_of(grok, Reply(reasoning_tokens=7, usage=usage), "/v1/responses")["usage"]

    # Chat leaves reasoning out of completion_tokens; Responses counts it in output_tokens.
    assert (chat["completion_tokens"], chat["total_tokens"]) == (5, 22)
    assert chat["completion_tokens_details"] == {"reasoning_tokens": 7}
    assert chat["cost_in_usd_ticks"] == 10 * 12_500 + 12 * 25_000
    assert (responses["input_tokens"], responses["output_tokens"]) == (10, 12)
    assert responses["output_tokens_details"] == {"reasoning_tokens": 7}
    assert responses["total_tokens"] == 22


def test_omit_usage_sends_no_usage_key(grok: FakeGrok) -> None:
    assert "usage" not in answer_of(grok, Reply(omit_usage=True))
    assert "usage" not in answer_of(grok, Reply(omit_usage=True), "/v1/responses")
    assert "usage" in answer_of(grok, Reply())


@pytest.mark.parametrize(
    ("status", "raw"),
    [
        (200, "<html>not json</html>"),
        (200, '{"choices": [{"message": {"content": "smile \\ud83d end"}}]}'),
        (200, '{"code": "internal", "error": "a 200 that is an error"}'),
        (422, '{"detail": "Field required"}'),
    ],
)
def test_raw_body_sends_exactly_that_text(grok: FakeGrok, status: int, raw: str) -> None:
    grok.add_fault(Reply(status=status, raw_body=raw))

    got_status, headers, data = post(grok.port, chat_body("hi"))

    assert (got_status, data) == (status, raw.encode())
    assert headers["content-length"] == str(len(raw.encode()))


def test_code_replaces_the_error_bodys_code(grok: FakeGrok) -> None:
    grok.add_fault(Reply(status=429, error="slow down", code="resource-exhausted"), first=1)
    grok.add_fault(Reply(status=429, error="slow down"))

    coded = json.loads(post(grok.port, chat_body("hi"))[2])
    default = json.loads(post(grok.port, chat_body("hi"))[2])

    assert coded == {"code": "resource-exhausted", "error": "slow down"}
    assert default["code"] == "Some resource has been exhausted"


def test_echo_authorization_repeats_the_header_received(grok: FakeGrok) -> None:
    grok.add_fault(Reply(status=401, error="denied", echo_authorization=True))

    _, _, data = post(grok.port, chat_body("hi"), headers={"authorization": "Bearer xai-SECRET1"})

    assert json.loads(data)["error"] == "denied; got header Authorization: Bearer xai-SECRET1"


def test_trickle_sends_headers_first_then_the_body_a_byte_at_a_time(grok: FakeGrok) -> None:
    body = json.dumps(chat_body("hi")).encode()
    grok.add_fault(Reply(trickle=0.2, raw_body="x" * 100))
    with socket.create_connection(("127.0.0.1", grok.port), timeout=10) as client:
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: fake\r\nauthorization: Bearer k\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += client.recv(65536)
        head, _, start = received.partition(b"\r\n\r\n")
        # Each read returns as soon as a byte comes, well inside a per-read timeout...
        start += client.recv(65536)

        assert b"content-length: 100" in head.lower()
        # ...while the whole body, at 0.2 s a byte, is still 20 s away.
        assert 1 <= len(start) < 100
    grok.wait_for_idle()
    assert [entry.status for entry in grok.log] == [0]


# -- the Responses API, the model catalog, request ids and hidden rate limits -------------------


def test_the_responses_api_answers_through_the_sdk_and_shares_faults_and_the_log() -> None:
    async def run(server: FakeGrok) -> list[Any]:
        async with AsyncOpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
            first = await client.responses.create(
                model="grok-4.3",
                input=[{"role": "user", "content": "capital of France?"}],
                instructions="Be brief.",
                reasoning={"effort": "medium"},
                store=False,
            )
            cut = await client.responses.create(model="grok-4.3", input="long essay")
            with pytest.raises(openai.InternalServerError):
                await client.responses.create(model="grok-4.3", input="boom")
            return [first, cut]

    with FakeGrok(answers={"capital": "Paris"}) as server:
        server.add_fault(Reply(finish_reason="length", content="It was a"), match="long")
        server.add_fault(Reply(status=500, error="boom"), match="boom")
        first, cut = asyncio.run(run(server))
        log = server.log

    assert (first.object, first.status, first.output_text) == ("response", "completed", "Paris")
    assert first.reasoning is not None and first.reasoning.effort == "medium"
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens == 0
    assert first.usage.total_tokens == first.usage.input_tokens + first.usage.output_tokens
    assert (cut.status, cut.output_text) == ("incomplete", "It was a")
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert [(e.path, e.prompt, e.status) for e in log] == [
        ("/v1/responses", "capital of France?", 200),
        ("/v1/responses", "long essay", 200),
        ("/v1/responses", "boom", 500),
    ]
    assert server.requests_to("/v1/responses") == 3
    assert server.requests_to("/v1/chat/completions") == 0


def test_the_responses_api_wants_model_and_input(grok: FakeGrok) -> None:
    status, _, data = post(grok.port, {"model": "grok-4.3"}, path="/v1/responses")

    assert status == 400
    assert "`input` is missing" in json.loads(data)["error"]


def test_models_lists_the_catalog_with_effort_capabilities(grok: FakeGrok) -> None:
    status, _, data = post(grok.port, b"", path="/v1/models", method="GET")

    models = {model["id"]: model for model in json.loads(data)["data"]}
    assert status == 200
    assert models["grok-4.3"]["aliases"] == ["grok-4.3-latest"]
    assert models["grok-4.3"]["capabilities"] == {
        "reasoning_effort": ["none", "low", "medium", "high", "xhigh"],
        "default_reasoning_effort": "low",
    }
    assert models["grok-4.7"]["capabilities"]["default_reasoning_effort"] == "high"
    assert models["grok-4.20-0309-non-reasoning"]["capabilities"] == {}
    assert (grok.models_requests, grok.request_count) == (1, 0)


def test_a_custom_catalog_replaces_the_default() -> None:
    with FakeGrok(models={"tiny": ModelSpec(efforts=("low",), default_effort="low")}) as server:
        data = json.loads(post(server.port, b"", path="/v1/models", method="GET")[2])

    assert [model["id"] for model in data["data"]] == ["tiny"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "grok-9"}, 404, "The model grok-9 does not exist or your team fake-team"),
        (
            {"model": "grok-4.20-non-reasoning", "presence_penalty": 0},
            400,
            "Model grok-4.20-0309-non-reasoning does not support parameter presencePenalty",
        ),
        (
            {"model": "grok-4.20-0309-reasoning", "reasoning_effort": "low"},
            400,
            "Model grok-4.20-0309-reasoning does not support parameter reasoningEffort",
        ),
        ({"model": "grok-4.7", "stop": ["\n"]}, 400, "does not support parameter stop"),
        ({"model": "grok-4.5", "reasoning_effort": "none"}, 400, "reasoning effort 'none'"),
    ],
)
def test_an_enforced_catalog_refuses_like_xai(
    body: dict[str, Any], status: int, error: str
) -> None:
    request = {**chat_body("hi"), **body}
    with FakeGrok(enforce_models=True) as server:
        got, _, data = post(server.port, request)
        ok = post(server.port, {**chat_body("hi"), "model": "grok-4.3-latest"})

    assert got == status
    answer = json.loads(data)
    assert answer["code"] == ("not-found" if status == 404 else "invalid-argument")
    assert error in answer["error"]
    assert (ok[0], json.loads(ok[2])["model"]) == (200, "grok-4.3")


def test_every_response_carries_its_own_request_id(grok: FakeGrok) -> None:
    grok.add_fault(Reply(status=503), first=1)
    replies = [
        post(grok.port, chat_body("hi")),
        post(grok.port, chat_body("hi")),
        post(grok.port, b"", path="/v1/models", method="GET"),
        post(grok.port, b"", path="/v1/nowhere", method="GET"),
    ]

    assert [status for status, _, _ in replies] == [503, 200, 200, 404]
    ids = {headers["x-request-id"] for _, headers, _ in replies}
    assert len(ids) == 4


def test_a_request_over_the_per_minute_limit_gets_xai_429() -> None:
    with FakeGrok(requests_per_minute=2, tokens_per_minute=1000) as server:
        replies = [post(server.port, chat_body("hi")) for _ in range(3)]
        rate_limited = server.rate_limited

    (first, first_headers, _), (_, second_headers, _), (status, headers, data) = replies
    assert (first, status, rate_limited) == (200, 429, 1)
    assert json.loads(data) == {
        "code": "resource-exhausted",
        "error": "Too many requests for team fake-team and model grok-4. Your team's rate limit "
        "is — Requests per Minute (actual/limit): 3/2. Please slow down or contact support to "
        "raise it.",
    }
    assert "x-ratelimit-limit-requests" not in headers
    assert first_headers["x-ratelimit-limit-requests"] == "2"
    assert (first_headers["x-ratelimit-remaining-requests"], second_headers[
        "x-ratelimit-remaining-requests"
    ]) == ("1", "0")
    assert first_headers["x-ratelimit-limit-tokens"] == "1000"
    assert int(second_headers["x-ratelimit-remaining-tokens"]) < int(
        first_headers["x-ratelimit-remaining-tokens"]
    ) < 1000


def test_a_burst_over_the_per_second_limit_is_refused_per_second() -> None:
    with FakeGrok(requests_per_second=2) as server:
        with pytest.raises(openai.RateLimitError) as raised:
            ask(server, *(f"q{i}" for i in range(10)))
        refused = server.rate_limited

    assert "Requests per Second (actual/limit): 3/2" in str(raised.value.body)
    assert refused >= 1


def test_the_command_line_sets_limits_the_catalog_and_new_reply_fields() -> None:
    command = [
        sys.executable,
        "-m",
        "pytest_grokeval.testing",
        "--requests-per-second",
        "50",
        "--enforce-models",
        "--fault",
        "match=coded,status=429,code=resource-exhausted,echo_authorization=1",
        "--fault",
        "match=empty,null_content=true,reasoning_tokens=3",
    ]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[1]
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            unknown = post(port, chat_body("hi"))
            known = {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}
            coded = post(port, {**known, "messages": [{"role": "user", "content": "coded"}]})
            empty = post(port, {**known, "messages": [{"role": "user", "content": "empty"}]})
        finally:
            process.terminate()

    assert (unknown[0], json.loads(unknown[2])["code"]) == (404, "not-found")
    assert json.loads(coded[2]) == {
        "code": "resource-exhausted",
        "error": "injected 429; got header Authorization: Bearer k",
    }
    completion = json.loads(empty[2])
    assert completion["choices"][0]["message"]["content"] is None
    assert completion["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    assert empty[1]["x-ratelimit-limit-requests"] == "50"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "every=2,colour=red"], "'colour=red' is not key=value with a key among"),
        (["--fault", "every=2"], "fault 'every=2' says when but not what to answer: add one of"),
        (["--fault", ""], "fault '' says when but not what to answer"),
        (["--fault", "every=1,trickle=-1"], "trickle: must be zero or a positive finite number"),
        (["--fault", "every=-3,status=500"], "every: must be zero or a positive integer, got -3"),
        (["--port", "70000"], "--port: expected 0 (any free port) to 65535, got '70000'"),
        (["--latency", "nan"], "--latency: must be zero or a positive finite number, got nan"),
        (["--batch-delay", "-1"], "--batch-delay: must be zero or a positive finite number"),
        (["--host", "nosuchhost.invalid"], "error: cannot serve on nosuchhost.invalid:0: "),
    ],
)
def test_the_command_line_refuses_what_it_cannot_serve_in_one_line(
    args: list[str], message: str
) -> None:
    command = [sys.executable, "-m", "pytest_grokeval.testing", *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_line_says_when_its_port_is_taken() -> None:
    with FakeGrok() as taken:
        port = taken.port
        command = [sys.executable, "-m", "pytest_grokeval.testing", "--port", str(port)]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr


def test_extra_routes_are_served_next_to_the_api_across_restarts() -> None:
    async def batches(request: web.Request) -> web.Response:
        return web.json_response({"requests_so_far": request.app[GROK].request_count})

    server = FakeGrok(routes=[web.get("/v1/batches", batches)])
    answers = []
    for _ in range(2):
        with server:
            post(server.port, chat_body("hi"))
            answers.append(post(server.port, b"", path="/v1/batches", method="GET"))

    assert [(status, json.loads(data)) for status, _, data in answers] == [
        (200, {"requests_so_far": 1}),
        (200, {"requests_so_far": 2}),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("True", True), ("yes", True), ("1", True), ("false", False),
     ("no", False), ("0", False)],
)
def test_a_bool_fault_key_reads_true_false_yes_no_1_0(text: str, value: bool) -> None:
    rule = parse_fault_spec(f"hang={text},drop={text}")

    assert (rule.reply.hang, rule.reply.drop) == (value, value)


def test_a_bool_fault_key_refuses_anything_else() -> None:
    with pytest.raises(FaultSpecError, match=r"hang: expected 1/0/true/false, got 'maybe'"):
        parse_fault_spec("hang=maybe")
