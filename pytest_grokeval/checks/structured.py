"""The checks that read the response as data or hand it to code: json, json_schema, python,
finish_reason, and judge, whose verdict comes from a grader call."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from pytest_grokeval.checks.base import (
    ExpectError,
    Site,
    Undecided,
    Verdict,
    brief,
    clip,
    quote,
    same,
)
from pytest_grokeval.checks.judge import Rubric, parse_rubric
from pytest_grokeval.data import Completion
from pytest_grokeval.jsonfile import schema_message
from pytest_grokeval.messages import plural

# --- json, json_schema -----------------------------------------------------------------------

# The whole response is one fenced block, as models often wrap JSON; anything else is parsed raw.
_FENCE = re.compile(
    r"\A\s*```(?:json)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL | re.IGNORECASE
)


def _load_json(text: str) -> tuple[Any, str]:
    """The parsed value and where it came from; _NotJson when it does not parse."""
    fence = _FENCE.match(text)
    if fence is not None and "```" not in fence.group(1):
        text, where = fence.group(1), " (in a ``` fence)"
    else:
        where = ""
    try:
        return json.loads(text), where
    except ValueError as exc:
        raise _NotJson(f"not JSON: {exc}") from None


class _NotJson(Exception):
    pass


def parse_json(raw: Any, site: Site) -> tuple[Any, Any]:
    """Only true: false would be the negated check, which has its own name."""
    if raw is True:
        return same(True)
    if raw is False:
        hint = "use json" if site.name.startswith("not_") else "use not_json"
        raise ExpectError(site.name, f"check {site.name!r} takes true, got False; {hint}")
    raise site.bad(raw)


def describe_json(_: Any, negated: bool) -> str:
    """The expected text of json."""
    return "does not parse as JSON" if negated else "parses as JSON"


def run_json(_: Any, response: Completion) -> Verdict:
    """Passes when the response, or its one fenced block, parses as JSON."""
    try:
        value, where = _load_json(response.text)
    except _NotJson as exc:
        return False, str(exc)
    return True, f"parsed {_json_kind(value)}{where}"


def _json_kind(value: Any) -> str:
    kinds = {
        dict: "a JSON object",
        list: "a JSON array",
        str: "a JSON string",
        bool: "a JSON boolean",
        type(None): "JSON null",
    }
    return kinds.get(type(value), "a JSON number")


def parse_schema(raw: Any, site: Site) -> tuple[Any, Any]:
    """The schema, checked against its metaschema, and its validator."""
    if not isinstance(raw, Mapping):
        raise site.bad(raw)
    schema = dict(raw)
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise site.error(f"invalid schema: {schema_message(exc)} at {exc.json_path}") from None
    return schema, cls(schema, format_checker=cls.FORMAT_CHECKER)


def json_schema(validator: Validator, response: Completion) -> Verdict:
    """Passes when the response parses as JSON and the value validates."""
    # not_json_schema passes both on text that is not JSON and on JSON that does not validate.
    try:
        value, _ = _load_json(response.text)
    except _NotJson as exc:
        return False, str(exc)
    errors = list(validator.iter_errors(value))
    error = best_match(errors)
    if error is None:
        return True, "valid against the schema"
    more = f" (and {plural(len(errors) - 1, 'more error')})" if len(errors) > 1 else ""
    return False, f"{clip(schema_message(error))} at {error.json_path}{more}"


def describe_schema(schema: Any, negated: bool) -> str:
    """The expected text of json_schema."""
    verb = "does not parse as" if negated else "parses as"
    return f"{verb} JSON valid against the schema {brief(schema)}"


# --- python ----------------------------------------------------------------------------------

_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def parse_python(raw: Any, site: Site) -> tuple[Any, Any]:
    """The 'module:function' reference, and the function: from the suite's own folder by file
    path when the module is there, else imported from ``sys.path``."""
    if not isinstance(raw, str) or not _REFERENCE.fullmatch(raw):
        raise site.bad(raw)
    module_name, _, attribute = raw.partition(":")
    try:
        module = _load_beside(module_name, site.import_paths) or _import(module_name)
    except ImportError as exc:
        raise site.error(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise site.error(f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    function: Any = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise site.error(f"{module_name!r} has no attribute {attribute!r}")
        function = getattr(function, part)
    if not callable(function):
        raise site.error(f"{raw!r} is not callable (it is {type(function).__name__})")
    return raw, function


def _import(module_name: str) -> ModuleType:
    importlib.invalidate_caches()  # the module may have been written during this session
    return importlib.import_module(module_name)


def _load_beside(module_name: str, folders: Sequence[Path]) -> ModuleType | None:
    """The module's file in one of the folders, loaded under a name unique to that file.

    Two suite folders that each hold a ``checks.py`` then never share one module, as they
    would under ``import checks``. A file already loaded and unchanged is not run again.
    """
    relative = Path(*module_name.split("."))
    for folder in folders:
        for candidate in (folder / relative.with_suffix(".py"), folder / relative / "__init__.py"):
            if candidate.is_file():
                return _load_file(candidate.resolve(), folder)
    return None


def _load_file(path: Path, folder: Path) -> ModuleType:
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    name = f"_grokeval_checks_{digest}_{path.stem}"
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__grokeval_stamp__", None) == stamp:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    module.__grokeval_stamp__ = stamp  # type: ignore[attr-defined]
    # In sys.modules while it runs, as an import would be (dataclasses and pickle look there);
    # its folder on sys.path so that it can import its neighbours.
    sys.modules[name] = module
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))
    return module


def python(function: Callable[[Completion], Any], response: Completion) -> Verdict:
    """Passes when the user's function returns True or None."""
    result = function(response)
    if result is True or result is None:
        return True, f"returned {result}"
    if result is False:
        return False, "returned False"
    if isinstance(result, str):
        return False, clip(result)
    raise Undecided(
        f"returned {brief(result)}; a python check returns True, None, False or a message"
    )


def describe_python(reference: str, negated: bool) -> str:
    """The expected text of python."""
    return f"is {'rejected' if negated else 'accepted'} by {reference}"


# --- finish_reason ---------------------------------------------------------------------------


def parse_finish_reason(raw: Any, site: Site) -> tuple[Any, Any]:
    """A non-empty string."""
    if not isinstance(raw, str) or not raw:
        raise site.bad(raw)
    return same(raw)


def finish_reason(expected: str, response: Completion) -> Verdict:
    """Passes when the API's finish reason is the expected one."""
    return response.finish_reason == expected, f"finished with {response.finish_reason!r}"


def describe_finish_reason(expected: str, negated: bool) -> str:
    """The expected text of finish_reason."""
    return f"finished with {'anything but ' if negated else ''}{expected!r}"


# --- judge -----------------------------------------------------------------------------------


def parse_judge(raw: Any, site: Site) -> tuple[Any, Any]:
    """The rubric and grader model, shown as a mapping, and the parsed Rubric."""
    try:
        rubric = parse_rubric(raw)
    except ValueError:
        raise site.bad(raw) from None
    return {"rubric": rubric.rubric, "model": rubric.model}, rubric


def judge(rubric: Rubric, response: Completion) -> Verdict:
    """Never called: run_checks reads the grader reply of a check that needs one."""
    raise AssertionError("judge runs through its grader reply")  # pragma: no cover


def describe_judge(arg: Any, negated: bool) -> str:
    """The expected text of judge."""
    meets = "does not meet" if negated else "meets"
    return f"the judge says the response {meets} {quote(arg['rubric'])}"
