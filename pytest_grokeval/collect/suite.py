"""Suite files: YAML prompt suites turned into validated pytest item specs (SPEC §2).

Every problem in a file is collected with its line, so that one run shows them all.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_grokeval.checks.registry import Check, ExpectError, parse_expect, takes_text
from pytest_grokeval.collect.settingkeys import (
    SETTING_KEYS,
    SettingsReader,
    SharedSettings,
)
from pytest_grokeval.collect.specs import CaseItemSpec, MarkSpec, Suite, SuiteError
from pytest_grokeval.collect.variables import Message, Var, VarsReader, placeholders
from pytest_grokeval.collect.yamlnodes import (
    Document,
    Node,
    YamlSyntaxError,
    did_you_mean,
    load_documents,
)
from pytest_grokeval.data import ChatRequest

SUITE_KEYS = ("description", *SETTING_KEYS, "cases")
CASE_KEYS = ("id", "description", "prompt", "messages", "vars", *SETTING_KEYS)
MESSAGE_KEYS = ("role", "content")
ROLES = ("system", "user", "assistant", "developer", "tool")

_CASE_ONLY = {key: f"; {key!r} belongs in a case under 'cases'" for key in CASE_KEYS}
_ID_FORBIDDEN = ("::", "[", "]", "/")
# Items one case may expand into (vars' cross product times its models): well above what
# bench/scale.py collects in seconds (40,000), far below what would exhaust memory.
MAX_ITEMS_PER_CASE = 100_000


def load_suite(
    path: Path,
    *,
    default_model: str,
    text: str | None = None,
    default_api: str = "chat",
    on_skip: Callable[[str], None] | None = None,
) -> Suite | None:
    """Read a suite file; None when it is not a suite (no top-level ``cases``).

    `default_api` is the endpoint of cases whose suite and case name none (``--grok-api``).
    A file that looks meant as a suite but is not one is passed to ``on_skip`` with the reason.
    Raises SuiteError listing every problem of the file (unreadable, not UTF-8, bad YAML, bad
    keys or values), each with its 1-based line.
    """
    if text is None:
        text = _read_text(path)
    try:
        documents = load_documents(text)
    except YamlSyntaxError as exc:
        raise SuiteError(path, [exc.problem]) from None
    if not any(isinstance(doc.root.value, dict) and "cases" in doc.root.value for doc in documents):
        reason = _looks_like_a_suite(documents)
        if reason is not None and on_skip is not None:
            on_skip(reason)
        return None
    if len(documents) > 1:
        message = "several YAML documents in one suite file; put all cases under one `cases:` list"
        raise SuiteError(path, [(documents[1].root.line, message)])
    reader = _Reader(path, default_model, default_api)
    items = reader.suite(documents[0].root)
    problems = list(dict.fromkeys([*documents[0].problems, *reader.problems]))
    if problems:
        raise SuiteError(path, sorted(problems, key=lambda problem: problem[0] or 0))
    return Suite(path, tuple(items))


_NEAR_MISSES = ("case", "tests", "prompts")


def _looks_like_a_suite(documents: list[Document]) -> str | None:
    """Why a file without ``cases`` looks meant as a suite: a list of prompts under a near key."""
    for document in documents:
        root = document.root
        for key in _NEAR_MISSES:
            entries = root.get(key) if isinstance(root.value, dict) else None
            if entries is None or not isinstance(entries.value, list):
                continue
            cases = [entry.value for entry in entries.items]
            if any(isinstance(case, dict) and "prompt" in case for case in cases):
                line = root.key_lines[key]
                return (
                    f"not collected as a grokeval suite: its top-level {key!r} (line {line}) "
                    "holds cases with 'prompt', but a suite's cases go under 'cases'"
                )
    return None


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SuiteError(path, [(line, f"not UTF-8 text: {exc.reason}")]) from None


@dataclass(frozen=True)
class _Case:
    """A validated case, ready to expand into items."""

    id: str
    where: str  # how problems name it: "case 'x'"
    line: int
    settings: SharedSettings
    turns: list[Message]
    variables: list[Var]
    expect: dict[Any, tuple[Node, int, str]]  # check name -> (argument, key line, label)


class _Reader(SettingsReader, VarsReader):
    """Validates one suite document, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, default_model: str, default_api: str = "chat") -> None:
        super().__init__()
        self.path = path
        self.default_model = default_model
        self.default_api = default_api

    def suite(self, root: Node) -> list[CaseItemSpec]:
        self.unknown_keys(root, SUITE_KEYS, "at the top of the suite", _CASE_ONLY)
        self.description(root, "the suite")
        defaults = self.settings(root, "the suite")
        cases = root.fields["cases"]
        if not isinstance(cases.value, list) or not cases.items:
            self.wrong(cases, "'cases'", "a non-empty list of cases")
            return []
        seen_ids: dict[str, int] = {}
        return [item for case in cases.items for item in self.case(case, defaults, seen_ids)]

    def case(
        self, node: Node, suite: SharedSettings, seen_ids: dict[str, int]
    ) -> list[CaseItemSpec]:
        """Validate one case, then expand it into one item per choice of vars and model."""
        if not isinstance(node.value, dict):
            self.wrong(node, "each case", "a mapping with an 'id'")
            return []
        start = len(self.problems)
        case_id = self.case_id(node, seen_ids)
        where = f"the case at line {node.line}" if case_id is None else f"case {case_id!r}"
        self.unknown_keys(node, CASE_KEYS, f"in {where}")
        self.description(node, where)
        own = self.settings(node, where)
        turns = self.turns(node, where)
        variables = self.vars(node, where)
        expect = {
            **self.labelled(suite.expect, "suite expect {!r} used by", where),
            **self.labelled(own.expect, "expect {!r} of", where),
        }
        has_system_message = any(turn.role == "system" for turn in turns or ())
        if own.system is not None and has_system_message:
            message = f"{where} has a 'system' key and a system message in 'messages'; keep one"
            self.problem(node.key_lines["system"], message)
        if case_id is None or turns is None or variables is None or len(self.problems) > start:
            self.checks(expect, None)  # so that bad checks are reported in the same run
            return []
        system, label = own.system, f"system of {where}"
        if system is None and not has_system_message:  # else the case's own message replaces it
            system, label = suite.system, f"suite system used by {where}"
        if system is not None and system.value:  # an empty system text means none
            turns.insert(0, Message("system", system, label))
        case = _Case(case_id, where, node.line, own.over(suite), turns, variables, expect)
        return self.expand(case)

    def expand(self, case: _Case) -> list[CaseItemSpec]:
        """One item per choice of vars (their cross product) and per model of a model list."""
        settings = case.settings
        models = settings.models or (self.default_model,)
        sizes = [len(var.values) for var in case.variables if var.is_list]
        count = math.prod(sizes) * len(models)
        if count > MAX_ITEMS_PER_CASE:
            made = " × ".join(map(str, [*sizes, *([len(models)] if len(models) > 1 else [])]))
            self.problem(
                case.line,
                f"{case.where} would make {count:,} items ({made}); at most "
                f"{MAX_ITEMS_PER_CASE:,} per case (see 'YAML limits' in the README)",
            )
            return []
        api = settings.api or self.default_api
        repeat = settings.repeat or 1
        rate = 1.0 if settings.min_pass_rate is None else settings.min_pass_rate
        items: list[CaseItemSpec] = []
        names: set[str] = set()
        # Checks depend only on the vars their arguments name: parsed once per choice of those.
        used = placeholders([node for node, _, _ in case.expect.values()])
        parsed: dict[tuple[str, ...], tuple[Check, ...] | None] = {}
        indexes = [range(len(var.values)) for var in case.variables]
        for choice in itertools.product(*indexes):
            chosen = {
                var.name: var.values[index]
                for var, index in zip(case.variables, choice, strict=True)
            }
            messages = tuple(
                {"role": turn.role, "content": self.fill(turn.content, chosen, turn.label)}
                for turn in case.turns
            )
            key = tuple(chosen[name] for name in used if name in chosen)
            if key not in parsed:
                parsed[key] = self.checks(case.expect, chosen)
            checks = parsed[key]
            if checks is None:
                return []  # the same problem would repeat for every other choice of vars
            choices = zip(case.variables, choice, strict=True)
            parts = [part for var, index in choices if (part := var.name_part(index))]
            for model in models:
                name_parts = [*parts, model] if settings.model_list else parts
                name = f"{case.id}[{'-'.join(name_parts)}]" if name_parts else case.id
                if name in names:
                    self.problem(case.line, f"{case.where} makes two items named {name!r}")
                    return []
                names.add(name)
                requests = tuple(
                    ChatRequest(
                        model=model, messages=messages, params=settings.params, sample=i, api=api
                    )
                    for i in range(repeat)
                )
                items.append(
                    CaseItemSpec(
                        name=name,
                        case_id=case.id,
                        line=case.line - 1,
                        requests=requests,
                        checks=checks,
                        marks=tuple(settings.marks),
                        tags=tuple(settings.tags),
                        repeat=repeat,
                        min_pass_rate=rate,
                        vars=chosen,
                    )
                )
        return items

    def case_id(self, node: Node, seen_ids: dict[str, int]) -> str | None:
        id_node = node.get("id")
        if id_node is None:
            self.problem(node.line, f"case at line {node.line} has no 'id'")
            return None
        case_id = self.string(id_node, "case id", nonempty=True)
        if case_id is None:
            return None
        line = id_node.line
        if forbidden := [part for part in _ID_FORBIDDEN if part in case_id]:
            listed = " or ".join(map(repr, forbidden))
            self.problem(line, f"case id {case_id!r} must not contain {listed}")
        elif case_id != case_id.strip():
            self.problem(line, f"case id {case_id!r} must not start or end with white space")
        elif not case_id.isprintable():
            self.problem(line, f"case id {case_id!r} must not contain line breaks or tabs")
        elif case_id in seen_ids:
            first = seen_ids[case_id]
            self.problem(line, f"duplicate case id {case_id!r}; it is first used at line {first}")
        else:
            seen_ids[case_id] = line
            return case_id
        return None

    def turns(self, node: Node, where: str) -> list[Message] | None:
        """The case's conversation before vars are filled in: its prompt, or its messages."""
        prompt, messages = node.get("prompt"), node.get("messages")
        if prompt is not None and messages is not None:
            line = node.key_lines["messages"]
            self.problem(line, f"{where} has both 'prompt' and 'messages'; keep one")
            return None
        if prompt is not None:
            if self.string(prompt, f"'prompt' of {where}", nonempty=True) is None:
                return None
            return [Message("user", prompt, f"prompt of {where}")]
        if messages is None:
            self.problem(node.line, f"{where} has neither 'prompt' nor 'messages'")
            return None
        if not isinstance(messages.value, list) or not messages.items:
            expected = "a non-empty list of {role, content} mappings"
            self.wrong(messages, f"'messages' of {where}", expected)
            return None
        start = len(self.problems)
        turns = [
            self.turn(entry, f"message {n} of {where}") for n, entry in enumerate(messages.items, 1)
        ]
        return [turn for turn in turns if turn is not None] if len(self.problems) == start else None

    def turn(self, entry: Node, label: str) -> Message | None:
        if not isinstance(entry.value, dict):
            self.wrong(entry, label, "a mapping with 'role' and 'content'")
            return None
        self.unknown_keys(entry, MESSAGE_KEYS, f"in {label}")
        role_node, content = entry.get("role"), entry.get("content")
        if role_node is None or content is None:
            missing = " or ".join(repr(key) for key in MESSAGE_KEYS if entry.get(key) is None)
            self.problem(entry.line, f"{label} has no {missing}")
            return None
        role = self.string(role_node, f"role of {label}")
        if role is not None and role not in ROLES:
            hint = did_you_mean(role, ROLES)
            roles = f"{', '.join(ROLES[:-1])} or {ROLES[-1]}"
            self.problem(role_node.line, f"role {role!r} of {label} must be one of {roles}{hint}")
        if self.string(content, f"content of {label}") is None or role is None:
            return None
        return Message(role, content, label)
    def labelled(
        self, expect: Node | None, label: str, where: str
    ) -> dict[Any, tuple[Node, int, str]]:
        """An ``expect`` mapping's entries with their key lines and names for messages."""
        if expect is None:
            return {}
        return {
            key: (child, expect.key_lines[key], f"{label.format(key)} {where}")
            for key, child in expect.fields.items()
        }

    def checks(
        self, expect: dict[Any, tuple[Node, int, str]], chosen: Mapping[str, str] | None
    ) -> tuple[Check, ...] | None:
        """Parse each check on its own, so that every bad one is reported, not the first."""
        start = len(self.problems)
        checks: list[Check] = []
        for key, (node, line, label) in expect.items():
            before = len(self.problems)
            entry = {key: self.fill(node, chosen, label, text=takes_text(key))}
            if len(self.problems) > before:
                continue
            try:
                checks.extend(parse_expect(entry, import_paths=[self.path.parent]))
            except ExpectError as exc:
                self.problem(line, str(exc))
        return tuple(checks) if len(self.problems) == start else None


__all__ = [
    "CaseItemSpec",
    "MarkSpec",
    "Suite",
    "SuiteError",
    "load_suite",
]
