"""The fake's model catalog: what ``GET /v1/models`` lists and what model requests may ask for.

The default catalog follows xAI's late-2026 models (shared research notes §1.4, §1.5). The
server enforces it only when built with ``enforce_models=True``; otherwise any model name is
served, and the catalog only renames aliases and feeds ``/v1/models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# xAI names parameters in its errors the way its gRPC schema spells them.
_CAMEL = {
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "reasoning_effort": "reasoningEffort",
    "stop": "stop",
}


@dataclass(frozen=True)
class ModelSpec:
    """One model of the catalog.

    `aliases`: other names that reach it; `efforts`: the reasoning efforts it accepts, None
    when it has no effort control; `default_effort`: what it uses when none is sent;
    `rejects`: chat parameter names it answers with 400 even when sent as 0 (for Responses,
    ``reasoning_effort`` means ``reasoning.effort``); `batch`: whether the Batch API takes it;
    `context_length`: tokens.
    """

    aliases: tuple[str, ...] = ()
    efforts: tuple[str, ...] | None = None
    default_effort: str | None = None
    rejects: tuple[str, ...] = ()
    batch: bool = True
    context_length: int = 1_000_000


_REASONING_REJECTS = ("presence_penalty", "frequency_penalty", "stop")

DEFAULT_MODELS: Mapping[str, ModelSpec] = {
    "grok-4.3": ModelSpec(
        aliases=("grok-4.3-latest",),
        efforts=("none", "low", "medium", "high", "xhigh"),
        default_effort="low",
        rejects=_REASONING_REJECTS,
    ),
    "grok-4.5": ModelSpec(
        aliases=("grok-4.5-latest",),
        efforts=("low", "medium", "high"),
        default_effort="high",
        rejects=_REASONING_REJECTS,
        batch=False,
        context_length=500_000,
    ),
    "grok-4.7": ModelSpec(
        efforts=("low", "medium", "high", "xhigh"),
        default_effort="high",
        rejects=_REASONING_REJECTS,
        batch=False,
        context_length=500_000,
    ),
    "grok-4.20-0309-reasoning": ModelSpec(
        aliases=("grok-4.20-reasoning",),
        rejects=(*_REASONING_REJECTS, "reasoning_effort"),
        context_length=2_000_000,
    ),
    "grok-4.20-0309-non-reasoning": ModelSpec(
        aliases=("grok-4.20-non-reasoning",),
        rejects=("presence_penalty", "reasoning_effort"),
        context_length=2_000_000,
    ),
}


class Catalog:
    """Model names resolved against a set of `ModelSpec`s."""

    def __init__(self, models: Mapping[str, ModelSpec]) -> None:
        self.models = dict(models)
        self._names = {alias: name for name, spec in self.models.items() for alias in spec.aliases}
        self._names.update({name: name for name in self.models})

    def canonical(self, name: str) -> str | None:
        """The catalog id `name` reaches, or None for a model the catalog does not know."""
        return self._names.get(name)

    def effort(self, body: Mapping[str, Any]) -> str | None:
        """The effort a request asks for (chat ``reasoning_effort``, ``reasoning.effort``)."""
        effort = body.get("reasoning_effort")
        reasoning = body.get("reasoning")
        if effort is None and isinstance(reasoning, dict):
            effort = reasoning.get("effort")
        return effort if isinstance(effort, str) else None

    def reported_effort(self, body: Mapping[str, Any], model: str) -> str | None:
        """The effort an answer reports: the requested one, else the model's default."""
        spec = self.models.get(self.canonical(model) or "")
        return self.effort(body) or (spec.default_effort if spec else None)

    def problem(self, body: Mapping[str, Any]) -> tuple[int, str, str] | None:
        """(status, code, message) of xAI's refusal of this request's model use, or None."""
        requested = body.get("model")
        name = self.canonical(requested) if isinstance(requested, str) else None
        if name is None:
            return (
                404,
                "not-found",
                f"The model {requested} does not exist or your team fake-team does not have "
                "access to it. Please ensure you're using the correct API key.",
            )
        spec = self.models[name]
        effort = self.effort(body)
        for parameter in spec.rejects:
            sent = effort is not None if parameter == "reasoning_effort" else parameter in body
            if sent:
                camel = _CAMEL.get(parameter, parameter)
                return 400, "invalid-argument", f"Model {name} does not support parameter {camel}"
        if effort is not None and spec.efforts is not None and effort not in spec.efforts:
            allowed = ", ".join(spec.efforts)
            return (
                400,
                "invalid-argument",
                f"Model {name} does not support reasoning effort {effort!r}; use one of {allowed}",
            )
        return None

    def listing(self) -> dict[str, Any]:
        """The ``GET /v1/models`` body: models without effort control publish no list."""
        data = []
        for name, spec in self.models.items():
            capabilities: dict[str, Any] = {}
            if spec.efforts is not None:
                capabilities["reasoning_effort"] = list(spec.efforts)
                capabilities["default_reasoning_effort"] = spec.default_effort
            data.append(
                {
                    "id": name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "xai",
                    "aliases": list(spec.aliases),
                    "context_length": spec.context_length,
                    "capabilities": capabilities,
                }
            )
        return {"object": "list", "data": data}
