"""YAML with line numbers: every value as plain data, plus the line of every key and value."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from pytest_grokeval.messages import shorten

try:
    # libyaml is faster, and it reads plain text ending in "?" inside a flow mapping the way
    # YAML 1.2 does: `{role: assistant, content: How can I help?}` (SPEC §2) parses only there.
    from yaml import CSafeLoader as _Loader

    # libyaml 0.2.6 refuses nesting past 1,000 levels itself; older ones recurse in C until
    # the process crashes, and PyYAML's own composer until RecursionError.
    _NESTING_BOUNDED = tuple(yaml.__dict__["_yaml"].get_version()) >= (0, 2, 6)
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

    _NESTING_BOUNDED = False

# A problem found in a file: its 1-based line (None when no line applies) and the message.
Problem = tuple[int | None, str]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TEMPLATE_HINT = "; a value that starts with '{{' must be in quotes"

MAX_DEPTH = 100
"""Deepest nesting of mappings and lists a suite may have (README, "YAML limits")."""
MAX_ALIASED = 100_000
ALIAS_RATIO = 10
"""Aliases may add MAX_ALIASED values to a suite, plus ALIAS_RATIO for every value written
above them (README, "YAML limits"): many repeats of a small anchored mapping are fine, an
anchor of anchors that multiplies is not. Every later step (validation, vars, fingerprints)
walks the expanded values, so this bounds them all by the size of the file."""
# libyaml before 0.2.6 composes nesting recursively in C and crashes the process somewhere
# past 20,000 levels, so there text that could nest deeper than this is first scanned.
_SCAN_ABOVE = 5_000
_LEADING = re.compile(r"^[ \t?:-]*", re.MULTILINE)


class YamlSyntaxError(Exception):
    """The text is not YAML at all; ``problem`` says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem[1])
        self.problem = problem


@dataclass(frozen=True, eq=False)
class Node:
    """One YAML value: plain data as ``yaml.safe_load`` builds it, and where it was written."""

    value: Any
    line: int  # 1-based line where the value starts
    text: str | None = None  # a scalar exactly as written ("1.10", "yes"); None otherwise
    fields: dict[Any, Node] = field(default_factory=dict)  # a mapping's values by key
    key_lines: dict[Any, int] = field(default_factory=dict)  # a mapping's key lines by key
    items: tuple[Node, ...] = ()  # a sequence's entries
    broken: bool = False  # a problem about this value is already reported: say nothing more

    def get(self, key: str) -> Node | None:
        """The value node of ``key`` in a mapping, or None."""
        return self.fields.get(key)


@dataclass(frozen=True)
class Document:
    """One YAML document, and problems (duplicate keys, unknown tags) found while reading it."""

    root: Node
    problems: tuple[Problem, ...]


def load_documents(text: str) -> list[Document]:
    """Every document in ``text`` (none for an empty file); raises YamlSyntaxError."""
    roots: list[yaml.Node] = []
    _refuse_deep_nesting(text)
    try:
        loader = _Loader(text)
        try:
            while loader.check_node():
                if (root := loader.get_node()) is not None:
                    roots.append(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise YamlSyntaxError(_syntax_problem(exc, text)) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        message = str(exc).splitlines()[0]
        raise YamlSyntaxError((line, f"invalid YAML: {message} (column {column})")) from exc
    documents = []
    for root in roots:
        converter = _Converter()
        documents.append(Document(converter.convert(root), tuple(converter.problems)))
    return documents


def _refuse_deep_nesting(text: str) -> None:
    """Raise YamlSyntaxError for nesting deeper than MAX_DEPTH, before libyaml composes it."""
    if _NESTING_BOUNDED:
        return  # the converter reports it: libyaml composes what it accepts safely
    # Nesting needs a bracket or a deeper indentation (or "- " or "? " within it) per level.
    leading = max((len(m) for m in _LEADING.findall(text)), default=0)
    if text.count("[") + text.count("{") + leading + 2 <= _SCAN_ABOVE:
        return  # the converter reports it: libyaml composes this much safely
    depth = 0
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise YamlSyntaxError((None if mark is None else mark.line + 1, _too_deep()))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # composing reports the syntax error itself, with its context
    finally:
        loader.dispose()


def _too_deep() -> str:
    return f"nesting deeper than {MAX_DEPTH} levels of mappings and lists"


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:  # pragma: no cover - PyYAML always marks parser and scanner errors
        return None, f"invalid YAML: {exc.problem or exc.context}"
    line = mark.line + 1
    message = f"invalid YAML: {exc.problem or exc.context} (column {mark.column + 1})"
    context_mark = exc.context_mark
    if exc.context and context_mark is not None and context_mark.line != mark.line:
        message += f"; {exc.context} at line {context_mark.line + 1}"
    source_lines = text.splitlines()
    source = source_lines[mark.line] if mark.line < len(source_lines) else ""
    if "\t" in source[: len(source) - len(source.lstrip())]:
        message += "; indent with spaces, not tabs"
    elif re.search(r":\s*\{\{", source):
        message += _TEMPLATE_HINT
    return line, message


class _Converter:
    """Turns composed YAML nodes into ``Node`` trees; one instance per document."""

    def __init__(self) -> None:
        self._constructor = SafeConstructor()
        self._done: dict[int, Node] = {}  # by id() of the YAML node: aliases are shared nodes
        self._open: set[int] = set()
        # Values each Node stands for once aliases are expanded, by id() of the Node, and how
        # many values aliases have added so far: counted without expanding anything.
        self._sizes: dict[int, int] = {}
        self._added = 0
        self._over = False
        self.problems: list[Problem] = []

    def convert(self, ynode: yaml.Node, depth: int = 0) -> Node:
        key = id(ynode)
        if key in self._done:
            node = self._done[key]
            return self._repeated(node)
        line = ynode.start_mark.line + 1
        if key in self._open:
            self.problems.append((line, "an alias refers to a value that contains it"))
            return Node(None, line, broken=True)
        if depth > MAX_DEPTH:
            self.problems.append((line, _too_deep()))
            node = Node(None, line, broken=True)
        else:
            self._open.add(key)
            try:
                node = self._convert(ynode, line, depth + 1)
            finally:
                self._open.discard(key)
        self._done[key] = node
        return node

    def _convert(self, ynode: yaml.Node, line: int, depth: int) -> Node:
        if isinstance(ynode, MappingNode) and ynode.tag == _MAP_TAG:
            return self._mapping(ynode, line, depth)
        if isinstance(ynode, SequenceNode) and ynode.tag == _SEQ_TAG:
            items = tuple(self.convert(child, depth) for child in ynode.value)
            return Node([item.value for item in items], line, items=items)
        text = ynode.value if isinstance(ynode, ScalarNode) else None
        start = len(self.problems)
        value = self._construct(ynode)
        return Node(value, line, text=text, broken=len(self.problems) > start)

    def _construct(self, ynode: yaml.Node) -> Any:
        try:
            return self._constructor.construct_object(ynode, deep=True)
        except yaml.MarkedYAMLError as exc:
            self._marked(exc, ynode)
        except Exception as exc:  # a tag's constructor fails in several ways on bad input
            tag = ynode.tag.replace("tag:yaml.org,2002:", "!!")
            message = f"cannot read {ynode.value!r} as {tag!r}: {exc}"
            self.problems.append((ynode.start_mark.line + 1, message))
        return None

    def _marked(self, exc: yaml.MarkedYAMLError, ynode: yaml.Node) -> None:
        mark = exc.problem_mark or ynode.start_mark
        self.problems.append((mark.line + 1, f"{exc.problem} (column {mark.column + 1})"))

    def _size(self, node: Node) -> int:
        """How many values `node` stands for with aliases expanded; worked out only when an
        alias repeats it (rare), each node once."""
        size = self._sizes.get(id(node))
        if size is None:
            children = [*node.fields.values(), *node.items]
            size = 1 + len(node.fields) + sum(self._size(child) for child in children)
            self._sizes[id(node)] = size
        return size

    def _repeated(self, node: Node) -> Node:
        """An alias's value, or a broken stand-in once aliases add more than MAX_ALIASED."""
        self._added += self._size(node)
        if self._added <= MAX_ALIASED + ALIAS_RATIO * len(self._done):
            return node
        if not self._over:  # reported once, at the anchor whose repeats crossed the limit
            self._over = True
            self.problems.append(
                (
                    node.line,
                    f"aliases repeat the value anchored here until they add more than "
                    f"{MAX_ALIASED:,} values to the suite (see 'YAML limits' in the README)",
                )
            )
        return Node(None, node.line, broken=True)

    def _merged_pairs(self, ynode: MappingNode, seen: dict[int, int]) -> int:
        """How many pairs the mapping has once its merge keys are resolved, without resolving."""
        if id(ynode) in seen:
            return seen[id(ynode)]
        seen[id(ynode)] = 0  # a merge cycle counts once; PyYAML reports it
        total = 0
        for key, value in ynode.value:
            if key.tag != _MERGE_TAG:
                total += 1
                continue
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if isinstance(source, MappingNode):
                    total += self._merged_pairs(source, seen)
        seen[id(ynode)] = total
        return total

    def _mapping(self, ynode: MappingNode, line: int, depth: int) -> Node:
        own = {id(key) for key, _ in ynode.value if key.tag != _MERGE_TAG}
        try:
            if len(own) < len(ynode.value) and self._merged_pairs(ynode, {}) > MAX_ALIASED:
                raise _TooBig
            # Resolves `<<: *defaults` merge keys in place: merged pairs first, own pairs last.
            self._constructor.flatten_mapping(ynode)
        except yaml.MarkedYAMLError as exc:
            self._marked(exc, ynode)
            ynode.value = [pair for pair in ynode.value if id(pair[0]) in own]
        except (_TooBig, RecursionError):
            why = f"merge keys (<<) expand this mapping past {MAX_ALIASED:,} values"
            self.problems.append((line, why))
            ynode.value = [pair for pair in ynode.value if id(pair[0]) in own]
        broken = False
        fields: dict[Any, Node] = {}
        key_lines: dict[Any, int] = {}
        own_lines: dict[Any, int] = {}
        for key_node, value_node in ynode.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                kind = "mapping" if isinstance(key_node, MappingNode) else "list"
                hint = _TEMPLATE_HINT if kind == "mapping" and key_node.flow_style else ""
                self.problems.append((key_line, f"found a {kind} used as a key{hint}"))
                broken = True
                continue
            key = self._construct(key_node)
            if id(key_node) in own:
                if key in own_lines:
                    self.problems.append(
                        (key_line, f"duplicate key {key!r} (first at line {own_lines[key]})")
                    )
                own_lines[key] = key_line
            fields[key] = self.convert(value_node, depth)
            key_lines[key] = key_line
        value = {key: child.value for key, child in fields.items()}
        return Node(value, line, fields=fields, key_lines=key_lines, broken=broken)


class _TooBig(Exception):
    pass


class Validator:
    """Collects problems about nodes, each at the line of the node it is about."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append((line, message))

    def wrong(self, node: Node, what: str, expected: str) -> None:
        if not node.broken:
            self.problem(node.line, f"{what} must be {expected}, got {describe(node.value)}")

    def string(self, node: Node, what: str, *, nonempty: bool = False) -> str | None:
        """The node's string, or None after reporting why it is not one."""
        value = node.value
        if isinstance(value, str):
            if nonempty and not value.strip():
                self.problem(node.line, f"{what} must not be empty")
                return None
            return value
        # YAML typed it (12, yes, 2024-01-01): say how to keep it as the text it was written as.
        hint = f"; quote it: {node.text!r}" if node.text else ""
        if not node.broken:
            self.problem(node.line, f"{what} must be a string, got {describe(value)}{hint}")
        return None

    def unknown_keys(
        self,
        node: Node,
        allowed: Sequence[str],
        where: str,
        elsewhere: Mapping[Any, str] = MappingProxyType({}),
    ) -> None:
        """Report keys outside ``allowed``; ``elsewhere`` explains keys that are not typos."""
        for key, line in node.key_lines.items():
            if key in allowed:
                continue
            hint = elsewhere.get(key) or did_you_mean(str(key), allowed)
            hint = hint or f"; expected one of: {', '.join(allowed)}"
            self.problem(line, f"unknown key {key!r} {where}{hint}")

    def json_data(self, node: Node, what: str) -> bool:
        """Report values JSON cannot carry (dates, sets, infinity); True when there are none."""
        value = node.value
        if isinstance(value, dict):
            good = True
            for key, child in node.fields.items():
                if not isinstance(key, str):
                    line = node.key_lines[key]
                    self.problem(line, f"{what} must have string keys, got {describe(key)}")
                    good = False
                good = self.json_data(child, what) and good
            return good
        if isinstance(value, list) and len(node.items) == len(value):
            results = [self.json_data(child, what) for child in node.items]  # report them all
            return all(results)
        if (
            value is None
            or isinstance(value, str | int)
            or (isinstance(value, float) and math.isfinite(value))
        ):
            return True
        hint = f"; quote it to send the text {node.text!r}" if node.text is not None else ""
        if not node.broken:
            self.problem(node.line, f"{what} must be JSON data, got {describe(value)}{hint}")
        return False


def describe(value: Any) -> str:
    """A value as messages show it: ``12 (int)``, ``list``, ``mapping``."""
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    text = shorten(value, 80) if isinstance(value, str) else repr(value)
    return f"{text} ({type(value).__name__})"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'prompt'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
