"""The model catalog: ``GET /v1/models`` once per run, and what it lets us refuse before sending.

xAI's listing names each model's aliases and, for models with effort control, the reasoning
efforts it allows and its default (research notes §1.4). With it, a request that xAI would
answer with a 400 or 404 (an unknown model, an effort the model does not take, a parameter
it is known to reject) is an error naming the case before anything is sent. The listing is
cached for a day under pytest's cache; replay never reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.collect.yamlnodes import did_you_mean
from pytest_grokeval.data import ChatRequest

CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ModelInfo:
    """One model of the listing; `efforts` is None for a model without effort control."""

    id: str
    aliases: tuple[str, ...]
    efforts: tuple[str, ...] | None
    default_effort: str | None

    @property
    def reasoning(self) -> bool:
        """Effort control, or a reasoning model by name (grok-4.20-0309-reasoning has none)."""
        return self.efforts is not None or (
            "reasoning" in self.id and "non-reasoning" not in self.id
        )


@dataclass(frozen=True)
class Rejected:
    """A parameter xAI answers with 400 for the models `applies` picks, and where that is said."""

    param: str
    applies: Callable[[ModelInfo], bool]
    why: str
    source: str


# The one table of parameters xAI is known to reject (research notes §1.5).
REJECTED: tuple[Rejected, ...] = (
    Rejected(
        "presence_penalty",
        lambda model: True,
        "every current xAI model rejects it, even at 0",
        "NativeTavern #83, live observation 2026-09-15",
    ),
    Rejected(
        "frequency_penalty",
        lambda model: model.reasoning,
        "reasoning models reject it",
        "docs.x.ai/developers/model-capabilities/text/reasoning",
    ),
    Rejected(
        "stop",
        lambda model: model.reasoning,
        "reasoning models reject it",
        "docs.x.ai/developers/model-capabilities/text/reasoning",
    ),
    Rejected(
        "reasoning_effort",
        lambda model: model.efforts is None,
        "the model has no reasoning-effort control (GET /v1/models lists no efforts for it)",
        "docs.x.ai reasoning page; vercel/ai @ai-sdk/xai 4.0.8; mindfork xai_tests.rs",
    ),
)


class CatalogError(Exception):
    """Requests the catalog says xAI would refuse: the run stops before anything is sent."""


class Catalog:
    """Model names (ids and aliases) resolved to their `ModelInfo`."""

    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self.models = {model.id: model for model in models}
        self._names = {alias: m for m in self.models.values() for alias in m.aliases}
        self._names.update(self.models)

    @classmethod
    def from_listing(cls, data: Any) -> Catalog:
        """Read a ``GET /v1/models`` body; ValueError when it is not such a listing."""
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ValueError("the listing names no models")
        models = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ValueError(f"a model entry has no 'id': {str(entry)[:100]!r}")
            aliases = entry.get("aliases")
            capabilities = entry.get("capabilities")
            caps: dict[str, Any] = capabilities if isinstance(capabilities, dict) else {}
            efforts = caps.get("reasoning_effort")
            default = caps.get("default_reasoning_effort")
            models.append(
                ModelInfo(
                    id=entry["id"],
                    aliases=tuple(a for a in aliases if isinstance(a, str))
                    if isinstance(aliases, list)
                    else (),
                    efforts=tuple(str(e) for e in efforts) if isinstance(efforts, list) else None,
                    default_effort=default if isinstance(default, str) else None,
                )
            )
        return cls(models)

    def find(self, name: str) -> ModelInfo | None:
        """The model with this id or alias, or None."""
        return self._names.get(name)

    def default_efforts(self) -> dict[str, str]:
        """Every name (id and alias) of a model with a default effort, to that effort."""
        return {
            name: model.default_effort
            for name, model in self._names.items()
            if model.default_effort is not None
        }

    def problems(self, request: ChatRequest) -> list[str]:
        """Why xAI would refuse this request (model, effort, parameters); [] when it would not."""
        model = self.find(request.model)
        if model is None:
            hint = did_you_mean(request.model, sorted(self._names)) or (
                f"; the API lists {', '.join(sorted(self.models))}"
            )
            return [f"unknown model {request.model!r}{hint}"]
        found = []
        effort = request.params.get("reasoning_effort")
        for rule in REJECTED:
            if rule.param in request.params and rule.applies(model):
                found.append(
                    f"param {rule.param!r} is rejected by model {request.model!r}: {rule.why} "
                    f"({rule.source}); remove it"
                )
        if effort is not None and model.efforts is not None and effort not in model.efforts:
            allowed = ", ".join(model.efforts)
            found.append(
                f"param 'reasoning_effort' {effort!r} is not allowed by model "
                f"{request.model!r}; it allows {allowed}"
            )
        return found


def check_requests(catalog: Catalog, requests: Mapping[str, Iterable[ChatRequest]]) -> None:
    """Raise CatalogError listing every refused request by its case; `requests` by case name."""
    lines: list[str] = []
    for case, wanted in requests.items():
        seen: set[str] = set()
        for request in wanted:
            for problem in catalog.problems(request):
                if problem not in seen:
                    seen.add(problem)
                    lines.append(f"  {case}: {problem}")
    if lines:
        count = len(lines)
        raise CatalogError(
            f"{count} problem{'' if count == 1 else 's'} found with the API's model catalog "
            "(GET /v1/models); nothing was sent:\n" + "\n".join(lines)
        )


def cache_key(base_url: str) -> str:
    """Where pytest's cache keeps the listing of one base URL (credentials never in the key)."""
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:16]
    return f"grokeval/models/{digest}"


def cached_listing(entry: Any, now: float) -> Any:
    """The cached listing if it is under a day old, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("fetched"), int | float):
        return None
    if not 0 <= now - entry["fetched"] < CACHE_SECONDS:
        return None
    return entry.get("listing")
