"""The one reader of the plugin's JSON files (recordings, baselines): parse, validate, locate.

Every fault a hand-edited or damaged file can hold (not UTF-8, bad JSON, duplicate keys,
absurd nesting, a number too long to convert, the wrong shape) becomes a JSONFileError whose
message names the file and, where there is one, the line. Nothing else escapes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import json.decoder
import json.scanner
import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.validators import Draft202012Validator

# Schema errors listed in one message; the rest are counted, so a wholly wrong file stays short.
MAX_LISTED = 5
_SURROGATE = re.compile("[\ud800-\udfff]")
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
# JSON's tokens that matter when looking for a bad number: strings are matched whole so that
# a number-like run inside one is skipped.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?')


class JSONFileError(Exception):
    """A JSON file that cannot be used: the message names the file, the line and the way out."""


def load_json(
    path: Path,
    *,
    what: str,
    hint: str,
    schema: dict[str, Any] | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """The parsed and validated document; JSONFileError when it cannot be used.

    `what` names the kind of file in messages ("recordings file", "baseline"), `hint` says
    how to fix it. `check` may raise JSONFileError first with a clearer message (a version).
    Duplicate object keys are an error: a hand merge that kept both sides. A missing file
    raises FileNotFoundError, for callers to whom it means "empty".
    """
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise JSONFileError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise JSONFileError(f"{path}:{line}: malformed {what}: not UTF-8 text; {hint}") from exc
    document = parse_json(text, path=path, what=what, hint=hint)
    if check is not None:
        check(document)
    if schema is not None:
        validate(document, schema, text=text, path=path, what=what, hint=hint)
    return document


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file at `path` (links followed).

    Raises FileNotFoundError when it is missing, and another OSError when it cannot be read or
    is no regular file: a FIFO would block the run for ever, /dev/zero would never end. The
    open does not wait for a FIFO's writer; the check is on what was opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        return handle.read()


def parse_json(text: str, *, path: Path, what: str, hint: str) -> Any:
    """Parse `text` read from `path`, with read_json's errors."""

    def fail(line: int | None, message: str) -> JSONFileError:
        where = f"{path}:{line}" if line else str(path)
        return JSONFileError(f"{where}: malformed {what}: {message}; {hint}")

    try:
        return loads(text)
    except _DuplicateKey as exc:
        raise fail(_line_of_duplicate(text, exc.key), f"duplicate key {exc.key!r}") from None
    except NonFiniteNumber as exc:
        raise fail(_line_of_number(text), str(exc)) from None
    except json.JSONDecodeError as exc:
        raise fail(exc.lineno, f"{exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise fail(_line_of_depth(text), "nested too deeply to read") from None
    except ValueError as exc:
        # Python refuses to convert integers of more than 4300 digits (a DoS guard).
        raise fail(None, f"a value cannot be read: {str(exc).splitlines()[0]}") from None


class NonFiniteNumber(ValueError):
    """A number JSON cannot hold (NaN, Infinity) or too large for a float (1e400)."""


def loads(text: str) -> Any:
    """`text` parsed as strict JSON: repeated keys and non-finite or huge numbers rejected.

    Raises json.JSONDecodeError, NonFiniteNumber, another ValueError (repeated key) or
    RecursionError (absurd nesting). Python's json accepts NaN and turns 1e400 into infinity,
    which then breaks every sum, rounding and JSON writer downstream.
    """
    return json.loads(
        text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant,
        parse_float=_finite_float, parse_int=_finite_int,
    )


def dumps(document: Any, **options: Any) -> str:
    """`document` as JSON that any reader accepts: NaN and infinities written as null.

    `options` are json.dumps's. Null is what the plugin's files already say for "unknown".
    """
    try:
        return json.dumps(document, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_finite(document), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _reject_constant(name: str) -> Any:
    raise NonFiniteNumber(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NonFiniteNumber(f"number {_short(literal)} is too large")
    return value


def _finite_int(literal: str) -> int:
    # Up to 300 digits an integer is well inside float's range (1.8e308); beyond it float()
    # is infinity, and the integer would be unusable as a figure (past 4300 digits Python
    # refuses it). float() of a digit string never raises.
    if len(literal) > 300 and not math.isfinite(float(literal)):
        raise NonFiniteNumber(f"number {_short(literal)} is too large")
    return int(literal)


def _short(literal: str) -> str:
    if len(literal) <= 20:
        return literal
    return f"{literal[:8]}...{literal[-4:]} ({len(literal)} characters)"


def _line_of_number(text: str) -> int | None:
    """The line of the first number `loads` rejects (slow: errors only)."""
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.startswith('"'):
            continue
        if token in ("NaN", "Infinity", "-Infinity") or not math.isfinite(float(token)):
            return text.count("\n", 0, match.start()) + 1
    return None


def _line_of_depth(text: str, limit: int = 500) -> int | None:
    """The line where nesting first passes `limit` levels (slow: errors only)."""
    depth = 0
    for match in _NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth -= 1
    return None


def conforms(document: Any, schema: dict[str, Any]) -> bool:
    """Whether `document` passes `schema` (JSON Schema 2020-12, as jsonschema judges it).

    Why two libraries: jsonschema takes about 0.14 s per 1,000 recordings entries, a sixth of
    a replay-only run (bench/replay.py); fastjsonschema's compiled code, asked first, takes a
    twentieth of that. It implements draft 7, which reads the keywords of this package's
    schemas as 2020-12 does. Where it is stricter (1.0 is no integer to it) jsonschema is
    asked too and its verdict stands. tests/test_jsonfile.py holds the two to one verdict.
    """
    compiled = _COMPILED.get(id(schema))
    if compiled is None:
        compiled = _COMPILED[id(schema)] = (schema, fastjsonschema.compile(schema))
    try:
        compiled[1](document)
    except fastjsonschema.JsonSchemaException:
        return Draft202012Validator(schema).is_valid(document)
    return True


# id(schema) -> (schema, its compiled validator); keeping the schema keeps its id its own.
_COMPILED: dict[int, tuple[dict[str, Any], Callable[[Any], Any]]] = {}


def validate(
    document: Any, schema: dict[str, Any], *, text: str | None, path: Path, what: str, hint: str
) -> None:
    """Raise JSONFileError listing where `document` breaks `schema`, with lines from `text`.

    The messages are jsonschema's (Draft 2020-12), asked only when `conforms` finds a fault.
    """
    if conforms(document, schema):
        return
    errors = sorted(
        Draft202012Validator(schema).iter_errors(document),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if not errors:
        return
    found: list[tuple[int | None, str]] = []
    for error in _leaves(errors):
        line = locate(text, list(error.absolute_path)) if text is not None else None
        where = error.json_path if error.absolute_path else "the top level"
        found.append((line, f"at {where}, {schema_message(error)}"))
    found.sort(key=lambda pair: pair[0] or 0)
    first_line = found[0][0]
    listed = "; ".join(
        (f"line {line}: " if line and line != first_line else "") + message
        for line, message in found[:MAX_LISTED]
    )
    more = len(found) - MAX_LISTED
    if more > 0:
        listed += f"; and {more} more"
    where = f"{path}:{first_line}" if first_line else str(path)
    raise JSONFileError(f"{where}: malformed {what}: {listed}; {hint}")


def schema_message(error: ValidationError | SchemaError) -> str:
    """jsonschema's message with values spelled as JSON: null, true, false, not None, True.

    Strings stay quoted as jsonschema quotes them ('lots'); other values are written as JSON.
    """
    instance = error.instance
    types = error.validator_value
    if error.validator == "type" and isinstance(types, (str, list)):
        names = [types] if isinstance(types, str) else types
        return f"{spell(instance)} is not of type {', '.join(map(repr, names))}"
    if error.validator == "enum" and isinstance(error.validator_value, list):
        choices = ", ".join(map(spell, error.validator_value))
        return f"{spell(instance)} is not one of [{choices}]"
    if error.validator == "const":
        return f"{spell(error.validator_value)} was expected"
    message = error.message
    if not isinstance(instance, str) and message.startswith(repr(instance)):
        return spell(instance) + message[len(repr(instance)):]
    return message


def spell(value: Any) -> str:
    """`value` as a message shows it: strings quoted as Python does, the rest as JSON."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)


def _leaves(errors: Sequence[ValidationError]) -> list[ValidationError]:
    """One error per place: the most telling one of an anyOf/oneOf, not all its branches."""
    by_place: dict[tuple[str, ...], list[ValidationError]] = {}
    for error in errors:
        by_place.setdefault(tuple(map(str, error.absolute_path)), []).append(error)
    return [match for group in by_place.values() if (match := best_match(group)) is not None]


def locate(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line where the value at `path` (keys and indexes) starts in `text`."""
    decoder = json.JSONDecoder()
    position = _skip(text, 0)
    try:
        for step in path:
            opener = text[position]
            position = _skip(text, position + 1)
            if opener == "{":
                while True:
                    key, position = decoder.raw_decode(text, position)
                    position = _skip(text, _skip(text, position) + 1)  # past the colon
                    if key == step:
                        break
                    position = _next(decoder, text, position)
            elif opener == "[" and isinstance(step, int):
                for _ in range(step):
                    position = _next(decoder, text, position)
            else:
                return None
    except (ValueError, IndexError, RecursionError):
        return None
    return text.count("\n", 0, position) + 1


def _next(decoder: json.JSONDecoder, text: str, position: int) -> int:
    """Past the value at `position` and its comma, at the start of the next one."""
    _, end = decoder.raw_decode(text, position)
    end = _skip(text, end)
    return _skip(text, end + 1) if text[end] == "," else end


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


def _line_of_duplicate(text: str, key: str) -> int | None:
    """The line of the second `key` in the object that repeats it (slow: errors only)."""
    found: list[int] = []

    def parse_object(state: tuple[str, int], *args: Any) -> tuple[Any, int]:
        start = state[1]
        value, end = json.decoder.JSONObject(state, *args)  # type: ignore[attr-defined]
        if not found and isinstance(value, dict) and _repeats(text, start - 1, key):
            found.append(_repeats(text, start - 1, key) or 0)
        return value, end

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    with contextlib.suppress(ValueError, RecursionError):
        decoder.decode(text)
    return text.count("\n", 0, found[0]) + 1 if found else None


def _repeats(text: str, opener: int, key: str) -> int | None:
    """Where the object opening at `opener` names `key` a second time, if it does."""
    decoder = json.JSONDecoder()
    position = _skip(text, opener + 1)
    seen = False
    while position < len(text) and text[position] == '"':
        name, after = decoder.raw_decode(text, position)
        if name == key:
            if seen:
                return position
            seen = True
        position = _next(decoder, text, _skip(text, _skip(text, after) + 1))
    return None


def clean_text(text: str) -> str:
    """`text` with lone surrogates (from a JSON escape like "\\ud83d") replaced by U+FFFD.

    They cannot be encoded as UTF-8, so one of them in a reply would fail every write of it.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
