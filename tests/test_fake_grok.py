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
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from pytest_grokeval.fake_grok import FakeGrok, FakeRequest, Reply

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
            b"POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer k\r\n"
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
        b"POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer k\r\n"
        + f"content-length: {len(body)}\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", grok.port), timeout=10) as client:
        client.sendall(request + b"\r\n" + body + request + b"connection: close\r\n\r\n" + body)
        received = b""
        while chunk := client.recv(65536):
            received += chunk

    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert received.count(b"connection: close") == 1
    assert grok.request_count == 2


def test_a_malformed_request_closes_only_its_connection(grok: FakeGrok) -> None:
    with socket.create_connection(("127.0.0.1", grok.port), timeout=10) as client:
        client.sendall(b"NONSENSE\r\n\r\n")
        answer = client.recv(65536)
        assert client.recv(65536) == b""

    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
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

    assert stats == {"requests": 1, "peak_in_flight": 1, "in_flight": 0, "rate_limited": 0}
    assert [(entry["index"], entry["status"], entry["prompt"]) for entry in log] == [(0, 200, "hi")]
    assert (grok.request_count, grok.log) == (0, [])


def test_waiting_for_requests_that_never_come_times_out(grok: FakeGrok) -> None:
    with pytest.raises(TimeoutError, match="1 request to arrive"):
        grok.wait_for_requests(1, timeout=0.01)


def test_the_command_line_prints_ready_and_serves(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ping": "pong"}))
    command = [
        sys.executable,
        "-m",
        "pytest_grokeval.fake_grok",
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
