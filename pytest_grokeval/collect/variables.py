"""Case conversations and ``vars``: placeholders ``{{name}}`` and the values filled into them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_grokeval.collect.yamlnodes import Node, Validator

# Only name-like placeholders are templates, so "{{#each}}" or "{{ a + b }}" stay literal text.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
VAR_NAME = re.compile(r"[A-Za-z_]\w*")
# Longer values, or values that would break a node id, appear in item names by index instead.
NAME_VALUE_LIMIT = 40


def placeholders(nodes: list[Node]) -> list[str]:
    """The var names that ``{{name}}`` placeholders use in these values, however deep."""
    found: dict[str, None] = {}
    stack = list(nodes)
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # aliases share nodes
            continue
        seen.add(id(node))
        if isinstance(node.value, str):
            found.update(dict.fromkeys(PLACEHOLDER.findall(node.value)))
        stack.extend(node.fields.values())
        stack.extend(node.items)
    return list(found)


@dataclass(frozen=True)
class Message:
    """A message of a case before its placeholders are filled."""

    role: str
    content: Node
    label: str  # how problems name it: "prompt of case 'x'"


@dataclass(frozen=True)
class Var:
    """One entry of a case's ``vars``; a scalar is a list of one that adds nothing to names."""

    name: str
    values: tuple[str, ...]
    is_list: bool

    def name_part(self, index: int) -> str | None:
        """What the value at `index` adds to item names: 'name=value', 'name<index>' for values
        unfit for ids, None for a scalar var."""
        if not self.is_list:
            return None
        value = self.values[index]
        if (
            len(value) > NAME_VALUE_LIMIT
            or not value.isprintable()
            or re.search(r"::|\[|]", value)
        ):
            return f"{self.name}{index}"  # pytest's style for unnamed values
        return f"{self.name}={value}"


class VarsReader(Validator):
    """Reads a case's ``vars`` and fills placeholders, collecting problems with their lines."""

    def vars(self, node: Node, where: str) -> list[Var] | None:
        """The case's vars, each a scalar or a non-empty list of distinct values; [] without
        'vars', None after a problem."""
        vars_node = node.get("vars")
        if vars_node is None:
            return []
        if not isinstance(vars_node.value, dict):
            self.wrong(vars_node, f"'vars' of {where}", "a mapping of var name to value")
            return None
        start = len(self.problems)
        variables: list[Var] = []
        for name, value in vars_node.fields.items():
            if not isinstance(name, str) or not VAR_NAME.fullmatch(name):
                line = vars_node.key_lines[name]
                rule = "letters, digits and underscores, not starting with a digit"
                self.problem(line, f"var name {name!r} of {where} must be {rule}")
                continue
            what = f"var {name!r} of {where}"
            if not isinstance(value.value, list):
                if (text := self.var_value(value, what)) is not None:
                    variables.append(Var(name, (text,), is_list=False))
                continue
            if not value.items:
                self.wrong(value, what, "a value or a non-empty list of values")
            texts: dict[str, None] = {}  # ordered, and a set for the duplicate test
            for item in value.items:
                text = self.var_value(item, f"each value of {what}")
                if text is not None and text in texts:
                    self.problem(item.line, f"{what} lists {text!r} twice")
                elif text is not None:
                    texts[text] = None
            variables.append(Var(name, tuple(texts), is_list=True))
        return variables if len(self.problems) == start else None

    def var_value(self, node: Node, what: str) -> str | None:
        """A var value as written (`1.10` stays '1.10'); None after a problem (not a string or
        number)."""
        # Any scalar counts, as written: `1.10` stays "1.10" and `yes` stays "yes".
        if node.text is None or node.value is None:
            self.wrong(node, what, "a string or a number")
            return None
        return node.text

    def fill(
        self, node: Node, chosen: Mapping[str, str] | None, label: str, *, text: bool = False
    ) -> Any:
        """Plain data with ``{{name}}`` placeholders filled in every string, however deep.

        With ``chosen`` None the placeholders are left alone and not checked. With ``text``,
        scalars are the text as written (``1.10``, ``12:30``), and a bool, null or date is a
        problem that asks for quotes.
        """
        value = node.value
        if isinstance(value, dict):
            return {
                key: self.fill(child, chosen, label, text=text)
                for key, child in node.fields.items()
            }
        if isinstance(value, list) and len(node.items) == len(value):
            return [self.fill(child, chosen, label, text=text) for child in node.items]
        if text and not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool) and node.text:
                return node.text  # YAML 1.1 reads 12:30 as 750 and 1.10 as 1.1
            self.string(node, label)
            return value
        if not isinstance(value, str) or chosen is None:
            return value

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in chosen:
                return chosen[name]
            known = f"vars are: {', '.join(chosen)}" if chosen else "the case has no 'vars'"
            self.problem(node.line, f"unknown var {name!r} in {label}; {known}")
            return match.group(0)

        return PLACEHOLDER.sub(replace, value)
