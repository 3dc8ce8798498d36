"""How the fake reads a model request: the chat and Responses bodies, and what it logs of them.

Both shapes answer the same two questions, `model` and `prompt`, so that fault rules, answers
and tests treat ``/v1/chat/completions`` and ``/v1/responses`` alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"


class _ModelBody:
    """How a model request body reads; shared by the request the responder sees and the log."""

    body: dict[str, Any]

    @property
    def model(self) -> str:
        """The requested model ('' if the body has none)."""
        model = self.body.get("model")
        return model if isinstance(model, str) else ""

    @property
    def prompt(self) -> str:
        """The text of the last user message (chat ``messages`` or Responses ``input``); ''."""
        return prompt_of(self.body)


@dataclass(frozen=True)
class FakeRequest(_ModelBody):
    """A model request as the fault rules and the responder see it.

    `index` counts model requests from 0 in arrival order; `headers` have lower-case names;
    `path` is the path it was sent to, e.g. ``/v1/chat/completions`` or ``/v1/responses``.
    """

    index: int
    body: dict[str, Any]
    headers: dict[str, str]
    path: str = CHAT_PATH


@dataclass(frozen=True)
class LoggedRequest(_ModelBody):
    """A model request the server has finished with.

    `status` is the HTTP status sent, or 0 when none was (hang, drop, or the client gave up);
    `started` and `finished` are ``time.monotonic()`` seconds.
    """

    index: int
    body: dict[str, Any]
    status: int
    started: float
    finished: float
    path: str = CHAT_PATH


def messages_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The role/content messages of a chat body (``messages``) or Responses body (``input``)."""
    messages = body.get("messages", body.get("input"))
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, dict)]


def prompt_of(body: Mapping[str, Any]) -> str:
    """The text of the last user message of either body shape ('' if none)."""
    for message in reversed(messages_of(body)):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def prompt_chars(body: Mapping[str, Any]) -> int:
    """How many characters of text the request sends, instructions included."""
    instructions = body.get("instructions")
    extra = len(instructions) if isinstance(instructions, str) else 0
    return extra + sum(len(text_of(message.get("content"))) for message in messages_of(body))


def text_of(content: object) -> str:
    """A message's text: a plain string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def parse_body(raw: bytes, path: str) -> tuple[dict[str, Any], str | None]:
    """The body as a dict, and what is wrong with it for `path`'s endpoint (None if fine)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return {}, f"Failed to parse the request body as JSON: {exc}"
    if not isinstance(body, dict):
        return {}, "Failed to deserialize the JSON body into the target type: expected an object"
    wanted: tuple[tuple[str, tuple[type, ...]], ...] = (
        (("model", (str,)), ("input", (str, list)))
        if path.endswith("/responses")
        else (("model", (str,)), ("messages", (list,)))
    )
    for key, kinds in wanted:
        if not isinstance(body.get(key), kinds):
            names = " or ".join(kind.__name__ for kind in kinds)
            return body, (
                "Failed to deserialize the JSON body into the target type: "
                f"`{key}` is missing or not a {names}"
            )
    if body.get("stream"):
        return body, "streaming is not supported by the fake server"
    return body, None
