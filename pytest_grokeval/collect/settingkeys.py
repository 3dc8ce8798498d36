"""The keys a suite and its cases share (model, api, system, params, marks, tags, repeat,
min_pass_rate, expect): validated into SharedSettings, problems collected with their lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_grokeval.collect.specs import MarkSpec
from pytest_grokeval.collect.yamlnodes import Node, Validator, did_you_mean
from pytest_grokeval.data import APIS

SETTING_KEYS = (
    "model", "api", "system", "params", "marks", "tags", "repeat", "min_pass_rate", "expect"
)
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


@dataclass
class SharedSettings:
    """The keys a suite and its cases share; None or empty where not given."""

    models: tuple[str, ...] | None = None
    model_list: bool = False
    api: str | None = None
    system: Node | None = None
    params: dict[str, Any] = field(default_factory=dict)
    marks: list[MarkSpec] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    repeat: int | None = None
    min_pass_rate: float | None = None
    expect: Node | None = None

    def over(self, suite: SharedSettings) -> SharedSettings:
        """A case's settings on top of its suite's (``system`` and ``expect`` are the caller's)."""
        return SharedSettings(
            models=self.models or suite.models,
            model_list=self.model_list if self.models else suite.model_list,
            api=self.api or suite.api,
            params={**suite.params, **self.params},
            marks=[*suite.marks, *self.marks],
            tags=list(dict.fromkeys([*suite.tags, *self.tags])),
            repeat=self.repeat or suite.repeat,
            min_pass_rate=suite.min_pass_rate if self.min_pass_rate is None else self.min_pass_rate,
        )


class SettingsReader(Validator):
    """Reads the shared keys of one mapping (the suite's top level, or a case)."""

    def settings(self, node: Node, where: str) -> SharedSettings:
        """The shared keys given in `node`; `where` names it in problems ("case 'x'")."""
        settings = SharedSettings()
        if (model := node.get("model")) is not None:
            settings.models = self.models(model, where)
            settings.model_list = isinstance(model.value, list)
        if (api := node.get("api")) is not None:
            settings.api = self.api(api, where)
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
        """The model name, or the names of a model list (one item each); None after a problem."""
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

    def api(self, node: Node, where: str) -> str | None:
        """'chat' or 'responses'; None after a problem."""
        name = self.string(node, f"'api' of {where}", nonempty=True)
        if name is not None and name not in APIS:
            hint = did_you_mean(name, APIS)
            message = f"'api' of {where} must be chat or responses, got {name!r}{hint}"
            self.problem(node.line, message)
            return None
        return name

    def params(self, node: Node, where: str) -> dict[str, Any]:
        """The params sent with each request, minus those RESERVED_PARAMS refuses (each a problem).
        """
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
        """The marks of a 'marks' list; the bad ones are problems and left out."""
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
        """The non-empty tag strings; the bad ones are problems and left out."""
        if not isinstance(node.value, list):
            self.wrong(node, f"'tags' of {where}", "a list of strings")
            return []
        what = f"each tag of {where}"
        return [tag for item in node.items if (tag := self.string(item, what, nonempty=True))]

    def repeat(self, node: Node, where: str) -> int | None:
        """A whole number of samples, at least 1; None after a problem."""
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.wrong(node, f"'repeat' of {where}", "a whole number of at least 1")
        return None

    def min_pass_rate(self, node: Node) -> float | None:
        """A fraction between 0.0 and 1.0 of samples that must pass; None after a problem."""
        value = node.value
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.wrong(node, "min_pass_rate", "a number between 0 and 1")
        elif not 0 <= value <= 1:  # also false for nan
            self.problem(node.line, f"min_pass_rate must be between 0 and 1, got {value!r}")
        else:
            return float(value)
        return None

    def description(self, node: Node, where: str) -> None:
        """Check that a 'description' is a string; it is documentation only."""
        if (description := node.get("description")) is not None:
            self.string(description, f"'description' of {where}")
