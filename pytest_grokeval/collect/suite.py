"""Suite files: YAML prompt suites turned into validated pytest item specs (SPEC §2).

Every problem in a file is collected with its line, so that one run shows them all.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_grokeval.checks.registry import Check, ExpectError, parse_expect
from pytest_grokeval.collect.yamlnodes import (
    Node,
    Validator,
    YamlSyntaxError,
    did_you_mean,
    load_documents,
)
from pytest_grokeval.data import ChatRequest

SETTING_KEYS = ("model", "system", "params", "marks", "tags", "repeat", "min_pass_rate", "expect")
SUITE_KEYS = ("description", *SETTING_KEYS, "cases")
CASE_KEYS = ("id", "description", "prompt", "messages", "vars", *SETTING_KEYS)
MESSAGE_KEYS = ("role", "content")
ROLES = ("system", "user", "assistant", "developer", "tool")

_CASE_ONLY = {key: f"; {key!r} belongs in a case under 'cases'" for key in CASE_KEYS}
RESERVED_PARAMS = {
    "model": "set it with the 'model' key",
    "messages": "use 'prompt' or 'messages'",
    "stream": "streaming is not supported",
    "n": "use 'repeat' for several samples",
}
_REJECTED_MARKS = {
    "skipif": "conditions are not evaluated in suites; use {skip: reason}, or select with -m or -k",
    "usefixtures": "fixtures do not apply to suite cases",
    "parametrize": "use 'vars' to make one item per value",
    "filterwarnings": "set filterwarnings in the pytest configuration instead",
}
_MARK_KEYS = {"skip": ("reason",), "xfail": ("reason", "strict")}
_ID_FORBIDDEN = ("::", "[", "]", "/")
# Only name-like placeholders are templates, so "{{#each}}" or "{{ a + b }}" stay literal text.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
_VAR_NAME = re.compile(r"[A-Za-z_]\w*")
# Longer values, or values that would break a node id, appear in item names by index instead.
_NAME_VALUE_LIMIT = 40


class SuiteError(Exception):
    """Malformed suite file: every problem found, each with its 1-based line (None if none)."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(path, problems)

    def format(self, display_path: str) -> str:
        """One line per problem: ``<display_path>:<line>: <message>``."""
        return "\n".join(
            f"{display_path}: {message}" if line is None else f"{display_path}:{line}: {message}"
            for line, message in self.problems
        )

    def __str__(self) -> str:
        return self.format(str(self.path))


@dataclass(frozen=True)
class MarkSpec:
    """A pytest mark from YAML: ``skip``, ``xfail`` or a custom marker name."""

    name: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class CaseItemSpec:
    """One pytest item: a case with one choice of vars and model."""

    name: str
    case_id: str
    line: int  # 0-based, as pytest's reportinfo wants it
    requests: tuple[ChatRequest, ...]  # one per sample
    checks: tuple[Check, ...]
    marks: tuple[MarkSpec, ...]
    tags: tuple[str, ...]
    repeat: int
    min_pass_rate: float
    vars: dict[str, str]


@dataclass(frozen=True)
class Suite:
    """A suite file's items, in file order."""

    path: Path
    items: tuple[CaseItemSpec, ...]


def load_suite(path: Path, *, default_model: str, text: str | None = None) -> Suite | None:
    """Read a suite file; None when it is not a suite (no top-level ``cases``)."""
    if text is None:
        text = _read_text(path)
    try:
        documents = load_documents(text)
    except YamlSyntaxError as exc:
        raise SuiteError(path, [exc.problem]) from None
    if not any(isinstance(doc.root.value, dict) and "cases" in doc.root.value for doc in documents):
        return None
    if len(documents) > 1:
        message = "several YAML documents in one suite file; put all cases under one `cases:` list"
        raise SuiteError(path, [(documents[1].root.line, message)])
    reader = _Reader(path, default_model)
    items = reader.suite(documents[0].root)
    problems = list(dict.fromkeys([*documents[0].problems, *reader.problems]))
    if problems:
        raise SuiteError(path, sorted(problems, key=lambda problem: problem[0] or 0))
    return Suite(path, tuple(items))


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SuiteError(path, [(line, f"not UTF-8 text: {exc.reason}")]) from None


@dataclass
class _Settings:
    """The keys a suite and its cases share; None or empty where not given."""

    models: tuple[str, ...] | None = None
    model_list: bool = False
    system: Node | None = None
    params: dict[str, Any] = field(default_factory=dict)
    marks: list[MarkSpec] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    repeat: int | None = None
    min_pass_rate: float | None = None
    expect: Node | None = None

    def over(self, suite: _Settings) -> _Settings:
        """A case's settings on top of its suite's (``system`` and ``expect`` are the caller's)."""
        return _Settings(
            models=self.models or suite.models,
            model_list=self.model_list if self.models else suite.model_list,
            params={**suite.params, **self.params},
            marks=[*suite.marks, *self.marks],
            tags=list(dict.fromkeys([*suite.tags, *self.tags])),
            repeat=self.repeat or suite.repeat,
            min_pass_rate=suite.min_pass_rate if self.min_pass_rate is None else self.min_pass_rate,
        )


@dataclass(frozen=True)
class _Message:
    """A message of a case before its placeholders are filled."""

    role: str
    content: Node
    label: str  # how problems name it: "prompt of case 'x'"


@dataclass(frozen=True)
class _Var:
    """One entry of a case's ``vars``; a scalar is a list of one that adds nothing to names."""

    name: str
    values: tuple[str, ...]
    is_list: bool

    def name_part(self, value: str) -> str | None:
        if not self.is_list:
            return None
        if (
            len(value) > _NAME_VALUE_LIMIT
            or not value.isprintable()
            or re.search(r"::|\[|]", value)
        ):
            return f"{self.name}{self.values.index(value)}"  # pytest's style for unnamed values
        return f"{self.name}={value}"


@dataclass(frozen=True)
class _Case:
    """A validated case, ready to expand into items."""

    id: str
    where: str  # how problems name it: "case 'x'"
    line: int
    settings: _Settings
    turns: list[_Message]
    variables: list[_Var]
    expect: dict[Any, tuple[Node, int, str]]  # check name -> (argument, key line, label)


class _Reader(Validator):
    """Validates one suite document, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, default_model: str) -> None:
        super().__init__()
        self.path = path
        self.default_model = default_model

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

    def case(self, node: Node, suite: _Settings, seen_ids: dict[str, int]) -> list[CaseItemSpec]:
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
            turns.insert(0, _Message("system", system, label))
        case = _Case(case_id, where, node.line, own.over(suite), turns, variables, expect)
        return self.expand(case)

    def expand(self, case: _Case) -> list[CaseItemSpec]:
        """One item per choice of vars (their cross product) and per model of a model list."""
        settings = case.settings
        models = settings.models or (self.default_model,)
        repeat = settings.repeat or 1
        rate = 1.0 if settings.min_pass_rate is None else settings.min_pass_rate
        items: list[CaseItemSpec] = []
        for choice in itertools.product(*(var.values for var in case.variables)):
            chosen = {var.name: value for var, value in zip(case.variables, choice, strict=True)}
            messages = tuple(
                {"role": turn.role, "content": self.fill(turn.content, chosen, turn.label)}
                for turn in case.turns
            )
            checks = self.checks(case.expect, chosen)
            if checks is None:
                return []  # the same problem would repeat for every other choice of vars
            choices = zip(case.variables, choice, strict=True)
            parts = [part for var, value in choices if (part := var.name_part(value))]
            for model in models:
                name_parts = [*parts, model] if settings.model_list else parts
                name = f"{case.id}[{'-'.join(name_parts)}]" if name_parts else case.id
                if any(item.name == name for item in items):
                    self.problem(case.line, f"{case.where} makes two items named {name!r}")
                    return []
                requests = tuple(
                    ChatRequest(model=model, messages=messages, params=settings.params, sample=i)
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

    def turns(self, node: Node, where: str) -> list[_Message] | None:
        """The case's conversation before vars are filled in: its prompt, or its messages."""
        prompt, messages = node.get("prompt"), node.get("messages")
        if prompt is not None and messages is not None:
            line = node.key_lines["messages"]
            self.problem(line, f"{where} has both 'prompt' and 'messages'; keep one")
            return None
        if prompt is not None:
            if self.string(prompt, f"'prompt' of {where}", nonempty=True) is None:
                return None
            return [_Message("user", prompt, f"prompt of {where}")]
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

    def turn(self, entry: Node, label: str) -> _Message | None:
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
        return _Message(role, content, label)

    def vars(self, node: Node, where: str) -> list[_Var] | None:
        vars_node = node.get("vars")
        if vars_node is None:
            return []
        if not isinstance(vars_node.value, dict):
            self.wrong(vars_node, f"'vars' of {where}", "a mapping of var name to value")
            return None
        start = len(self.problems)
        variables: list[_Var] = []
        for name, value in vars_node.fields.items():
            if not isinstance(name, str) or not _VAR_NAME.fullmatch(name):
                line = vars_node.key_lines[name]
                rule = "letters, digits and underscores, not starting with a digit"
                self.problem(line, f"var name {name!r} of {where} must be {rule}")
                continue
            what = f"var {name!r} of {where}"
            if not isinstance(value.value, list):
                if (text := self.var_value(value, what)) is not None:
                    variables.append(_Var(name, (text,), is_list=False))
                continue
            if not value.items:
                self.wrong(value, what, "a value or a non-empty list of values")
            texts: list[str] = []
            for item in value.items:
                text = self.var_value(item, f"each value of {what}")
                if text is not None and text in texts:
                    self.problem(item.line, f"{what} lists {text!r} twice")
                elif text is not None:
                    texts.append(text)
            variables.append(_Var(name, tuple(texts), is_list=True))
        return variables if len(self.problems) == start else None

    def var_value(self, node: Node, what: str) -> str | None:
        # Any scalar counts, as written: `1.10` stays "1.10" and `yes` stays "yes".
        if node.text is None or node.value is None:
            self.wrong(node, what, "a string or a number")
            return None
        return node.text

    def fill(self, node: Node, chosen: Mapping[str, str] | None, label: str) -> Any:
        """Plain data with ``{{name}}`` placeholders filled in every string, however deep.

        With ``chosen`` None the placeholders are left alone and not checked.
        """
        value = node.value
        if isinstance(value, dict):
            return {key: self.fill(child, chosen, label) for key, child in node.fields.items()}
        if isinstance(value, list) and len(node.items) == len(value):
            return [self.fill(child, chosen, label) for child in node.items]
        if not isinstance(value, str) or chosen is None:
            return value

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in chosen:
                return chosen[name]
            known = f"vars are: {', '.join(chosen)}" if chosen else "the case has no 'vars'"
            self.problem(node.line, f"unknown var {name!r} in {label}; {known}")
            return match.group(0)

        return _PLACEHOLDER.sub(replace, value)

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
            try:
                entry = {key: self.fill(node, chosen, label)}
                checks.extend(parse_expect(entry, import_paths=[self.path.parent]))
            except ExpectError as exc:
                self.problem(line, str(exc))
        return tuple(checks) if len(self.problems) == start else None

    # -- keys shared by the suite and its cases -----------------------------------------------

    def settings(self, node: Node, where: str) -> _Settings:
        settings = _Settings()
        if (model := node.get("model")) is not None:
            settings.models = self.models(model, where)
            settings.model_list = isinstance(model.value, list)
        system = node.get("system")
        if system is not None and self.string(system, f"'system' of {where}") is not None:
            settings.system = system
        if (params := node.get("params")) is not None:
            settings.params = self.params(params, where)
        if (marks := node.get("marks")) is not None:
            settings.marks = self.marks(marks, where)
        if (tags := node.get("tags")) is not None:
            settings.tags = self.tags(tags, where)
        if (repeat := node.get("repeat")) is not None:
            settings.repeat = self.repeat(repeat, where)
        if (rate := node.get("min_pass_rate")) is not None:
            settings.min_pass_rate = self.min_pass_rate(rate)
        if (expect := node.get("expect")) is not None:
            if isinstance(expect.value, dict):
                settings.expect = expect
            else:
                self.wrong(expect, f"'expect' of {where}", "a mapping of check name to argument")
        return settings

    def models(self, node: Node, where: str) -> tuple[str, ...] | None:
        what = f"'model' of {where}"
        if not isinstance(node.value, list):
            name = self.string(node, what, nonempty=True)
            return None if name is None else (name,)
        if not node.items:
            self.wrong(node, what, "a model name or a non-empty list of names")
        start = len(self.problems)
        names: list[str] = []
        for item in node.items:
            name = self.string(item, f"each model of {where}", nonempty=True)
            if name is not None and name in names:
                self.problem(item.line, f"model {name!r} is listed twice in {where}")
            elif name is not None:
                names.append(name)
        return tuple(names) if names and len(self.problems) == start else None

    def params(self, node: Node, where: str) -> dict[str, Any]:
        if not isinstance(node.value, dict):
            self.wrong(node, f"'params' of {where}", "a mapping")
            return {}
        params: dict[str, Any] = {}
        for key, child in node.fields.items():
            line = node.key_lines[key]
            if not isinstance(key, str):
                self.wrong(Node(key, line), f"each param name of {where}", "a string")
            elif key in RESERVED_PARAMS:
                reason = RESERVED_PARAMS[key]
                self.problem(line, f"'params' of {where} cannot set {key!r}; {reason}")
            elif self.json_data(child, f"param {key!r} of {where}"):
                params[key] = child.value
        return params

    def marks(self, node: Node, where: str) -> list[MarkSpec]:
        if not isinstance(node.value, list):
            self.wrong(node, f"'marks' of {where}", "a list of marks")
            return []
        return [mark for entry in node.items if (mark := self.mark(entry, where)) is not None]

    def mark(self, entry: Node, where: str) -> MarkSpec | None:
        """One mark: ``slow``, ``{skip: reason}``, ``{xfail: {reason: r, strict: true}}``."""
        name: Any = entry.value
        line, arg = entry.line, None
        if isinstance(entry.value, dict) and len(entry.fields) == 1:
            [(name, arg)] = entry.fields.items()
            line = entry.key_lines[name]
        elif not isinstance(entry.value, str):
            expected = "a marker name or a one-key mapping such as {skip: reason}"
            self.wrong(entry, f"each mark of {where}", expected)
            return None
        if not isinstance(name, str) or not name.isidentifier():
            self.problem(line, f"mark name {name!r} of {where} must be a Python identifier")
            return None
        if name in _REJECTED_MARKS:
            self.problem(line, f"mark {name!r} is not supported in suites; {_REJECTED_MARKS[name]}")
            return None
        if arg is None or arg.value is None:
            return MarkSpec(name, {})
        what, allowed = f"the {name!r} mark of {where}", _MARK_KEYS.get(name)
        if allowed is not None and isinstance(arg.value, str):
            return MarkSpec(name, {"reason": arg.value})
        if not isinstance(arg.value, dict):
            self.wrong(
                arg, what, "a reason or a mapping such as {reason: ...}" if allowed else "a mapping"
            )
            return None
        start = len(self.problems)
        if allowed is None:
            self.json_data(arg, f"arguments of {what}")
        else:
            self.unknown_keys(arg, allowed, f"in {what}")
            if (reason := arg.get("reason")) is not None:
                self.string(reason, f"reason of {what}")
            strict = arg.get("strict")
            if strict is not None and not isinstance(strict.value, bool):
                self.wrong(strict, f"'strict' of {what}", "true or false")
        return MarkSpec(name, dict(arg.value)) if len(self.problems) == start else None

    def tags(self, node: Node, where: str) -> list[str]:
        if not isinstance(node.value, list):
            self.wrong(node, f"'tags' of {where}", "a list of strings")
            return []
        what = f"each tag of {where}"
        return [tag for item in node.items if (tag := self.string(item, what, nonempty=True))]

    def repeat(self, node: Node, where: str) -> int | None:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.wrong(node, f"'repeat' of {where}", "a whole number of at least 1")
        return None

    def min_pass_rate(self, node: Node) -> float | None:
        value = node.value
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.wrong(node, "min_pass_rate", "a number between 0 and 1")
        elif not 0 <= value <= 1:  # also false for nan
            self.problem(node.line, f"min_pass_rate must be between 0 and 1, got {value!r}")
        else:
            return float(value)
        return None

    def description(self, node: Node, where: str) -> None:
        if (description := node.get("description")) is not None:
            self.string(description, f"'description' of {where}")
