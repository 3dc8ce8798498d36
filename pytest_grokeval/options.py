"""Command-line and ini options, resolved once into typed settings (CLI > ini > environment)."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from pytest_grokeval import optionvalues as parse
from pytest_grokeval.data import APIS
from pytest_grokeval.engine.pricing import Price
from pytest_grokeval.optionvalues import DEFAULT_BASE_URL
from pytest_grokeval.recordings.store import MODES
from pytest_grokeval.redaction import Redactor

_T = TypeVar("_T")

DEFAULT_MODEL = "grok-4.3"
DEFAULT_FILES = ["test_*.yaml", "test_*.yml"]


@dataclass(frozen=True)
class Option:
    """A --grok-* option: `parse` turns the text (CLI, ini or env) into the value or raises
    ValueError with a message that starts with "must be"."""

    flag: str
    ini: str | None
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None
    env: str | None = None
    choices: tuple[str, ...] | None = None


OPTIONS = [
    Option("--grok-max-concurrent", "grok_max_concurrent", parse.positive_int, 4,
           "most HTTP requests in flight at once, across the whole run (default 4)", "N"),
    Option("--grok-model", "grok_model", parse.text, DEFAULT_MODEL,
           f"model for cases that name none (default {DEFAULT_MODEL})", "NAME"),
    Option("--grok-api", "grok_api", parse.text, "chat",
           "endpoint of cases that name none: chat (Chat Completions, any OpenAI-compatible "
           "server) or responses (xAI's Responses API, which xAI recommends) (default chat)",
           None, choices=APIS),
    Option("--grok-base-url", "grok_base_url", parse.base_url, DEFAULT_BASE_URL,
           f"API base URL (default {DEFAULT_BASE_URL}; env XAI_BASE_URL)", "URL",
           env="XAI_BASE_URL"),
    Option("--grok-timeout", "grok_timeout", parse.positive_number, 900.0,
           "seconds one request attempt may take, connect to last byte (default 900, xAI's "
           "advice for reasoning models); a timed-out attempt is retried once", "SECONDS"),
    Option("--grok-retries", "grok_retries", parse.count, 4,
           "retries of a request after 429, 5xx and connection errors (default 4)", "N"),
    Option("--grok-rpm", "grok_rpm", parse.positive_int, None,
           "requests-per-minute budget, enforced per second as rpm/60 (default: no limit)", "N"),
    Option("--grok-tpm", "grok_tpm", parse.positive_int, None,
           "tokens-per-minute budget, enforced per second (default: no limit)", "N"),
    # No metavar: argparse then lists the modes in --help.
    Option("--grok-record", "grok_record", parse.text, None,
           "recording mode: none (replay only), new (record what is missing), all (re-record "
           "everything), rewrite (all, and drop entries of deleted cases); default: new with "
           "an API key, none without", None, choices=MODES),
    Option("--grok-max-cost", "grok_max_cost", parse.positive_number, None,
           "refuse to start when the estimated cost exceeds this many USD, and send no attempt "
           "that could go over it, possibly billed attempts included (default: no limit)", "USD"),
    Option("--grok-report", None, parse.text, None,
           "write a JSON report of every item to this path", "PATH"),
    Option("--grok-html", None, parse.text, None, "write a self-contained HTML report to this path",
           "PATH"),
    Option("--grok-baseline", None, parse.text, None,
           "compare with an earlier --grok-report JSON and list regressions", "PATH"),
]

# Batch mode (engine/batch.py): flags, not values, so they sit outside OPTIONS' CLI > ini > env.
BATCH_FLAGS = [
    ("--grok-batch", "store_true", None,
     "send through xAI's Batch API (half price, off the rate limit, minutes to hours); "
     "resumes the batch a previous run left"),
    ("--grok-batch-wait", "store", "SECONDS",
     "with --grok-batch: stop polling after this long; unread items fail as still pending "
     "(default: wait until every result is read)"),
    ("--grok-batch-cancel", "store_true", None,
     "cancel the batches a previous --grok-batch run left running, then stop"),
]

INI_ONLY = [
    ("grok_files", "linelist", DEFAULT_FILES,
     "glob patterns of YAML suite files (default: test_*.yaml test_*.yml)"),
    ("grok_api_key_env", "string", None,
     "environment variable holding the API key (default XAI_API_KEY)"),
    ("grok_judge_model", "string", None,
     "model of the judge check's grader (default: --grok-model)"),
    ("grok_retry_base_delay", "string", None,
     "first retry delay in seconds; doubles each retry, with jitter (default 0.5)"),
    ("grok_prices", "linelist", [],
     "prices for models the built-in table lacks, one per line: "
     "'MODEL: INPUT CACHED_INPUT OUTPUT' in USD per million tokens"),
    # A string, not pytest's "bool": a bad value must be a usage error naming the key.
    ("grok_gc_freeze", "string", None,
     "keep the session's objects out of the garbage collector's passes from the prefetch to "
     "the end of the session (gc.freeze); false turns it off (default true)"),
]


def dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    # argparse reports an ArgumentTypeError as "argument --flag: <message>", a usage error.
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def addoption(parser: pytest.Parser) -> None:
    """Register every option under the 'grokeval' group and its ini twin."""
    group = parser.getgroup("grokeval", "regression-test prompts against Grok")
    for opt in OPTIONS:
        extra: dict[str, Any] = {} if opt.choices is None else {"choices": opt.choices}
        group.addoption(opt.flag, dest=dest(opt.flag), default=None, metavar=opt.metavar,
                        type=_argparse_type(opt.parse), help=opt.help, **extra)
        if opt.ini:
            parser.addini(opt.ini, help=opt.help, type="string", default=None)
    for flag, action, metavar, text in BATCH_FLAGS:
        extra = {"metavar": metavar} if metavar else {}
        group.addoption(flag, dest=dest(flag), action=action, default=None, help=text, **extra)
    for name, kind, default, text in INI_ONLY:
        parser.addini(name, help=text, type=kind, default=default)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Settings:
    """Every option's value for this run, validated."""

    max_concurrent: int
    model: str
    base_url: str
    timeout: float
    retries: int
    rpm: int | None
    tpm: int | None
    record: str
    record_explicit: bool
    max_cost: float | None
    report: Path | None
    html: Path | None
    baseline: Path | None
    files: tuple[str, ...]
    api_key_env: str
    # Never in a repr: pytest -l prints the locals of failing frames, settings included.
    api_key: str | None = field(repr=False)
    backoff_base: float
    judge_model: str | None = None
    batch: bool = False
    batch_wait: float | None = None
    batch_cancel: bool = False
    prices: Mapping[str, Price] = field(default_factory=dict)  # ini grok_prices
    api: str = "chat"
    gc_freeze: bool = True  # ini grok_gc_freeze: engine/heap.py's freeze_for_session

    def __repr__(self) -> str:
        # The base URL may hold credentials (https://user:password@host/v1).
        shown = ", ".join(
            f"{name}={self.redactor(repr(getattr(self, name)))}"
            for name, spec in self.__dataclass_fields__.items()
            if spec.repr
        )
        return f"Settings({shown})"

    @property
    def base_host(self) -> str:
        """Host and port of the base URL, never its credentials."""
        parts = urlsplit(self.base_url)
        if not parts.hostname:
            return self.redactor(self.base_url)
        return parts.hostname + (f":{parts.port}" if parts.port else "")

    @functools.cached_property
    def redactor(self) -> Redactor:
        """Hides this run's key and base URL credentials in any text."""
        return Redactor.for_key(self.api_key, self.base_url)


def _value(config: pytest.Config, opt: Option) -> Any:
    """The option's value: the command line's (already parsed by argparse), else the ini
    file's, else the environment's, else the default; a bad one is a UsageError naming it."""
    value = config.getoption(dest(opt.flag))
    if value is not None:
        return value
    sources = [(f"ini option {opt.ini}", config.getini(opt.ini) if opt.ini else None)]
    if opt.env:
        sources.append((f"environment variable {opt.env}", os.environ.get(opt.env) or None))
    for source, text in sources:
        if text is None:
            continue
        try:
            value = opt.parse(str(text))
        except ValueError as exc:
            raise pytest.UsageError(f"{source} (for {opt.flag}): {exc}") from None
        if opt.choices is not None and value not in opt.choices:
            raise pytest.UsageError(
                f"{source} (for {opt.flag}): must be one of {', '.join(opt.choices)}, "
                f"got {value!r}"
            )
        return value
    return opt.default


def resolve(config: pytest.Config) -> Settings:
    """Read and check all options; a bad value is a usage error naming the option."""
    values = {dest(opt.flag): _value(config, opt) for opt in OPTIONS}
    key_env = _ini(config, "grok_api_key_env", parse.text) or "XAI_API_KEY"
    api_key = os.environ.get(key_env) or None
    if values["grok_api"] not in APIS:
        raise pytest.UsageError(
            f"--grok-api must be one of {', '.join(APIS)}, got {values['grok_api']!r}"
        )
    record = values["grok_record"]
    if record in ("new", "all", "rewrite") and api_key is None:
        raise pytest.UsageError(
            f"--grok-record={record} calls the API, but {key_env} is not set; set it, "
            "or replay recordings with --grok-record=none"
        )
    backoff = _ini(config, "grok_retry_base_delay", parse.delay)

    batch, batch_wait, batch_cancel = _batch(config, record, api_key, key_env)

    def path(value: Any) -> Path | None:
        return None if value is None else Path(value)

    return Settings(
        max_concurrent=values["grok_max_concurrent"],
        model=values["grok_model"],
        base_url=values["grok_base_url"],
        timeout=values["grok_timeout"],
        retries=values["grok_retries"],
        rpm=values["grok_rpm"],
        tpm=values["grok_tpm"],
        record=record or ("new" if api_key else "none"),
        record_explicit=record is not None,
        max_cost=values["grok_max_cost"],
        report=path(values["grok_report"]),
        html=path(values["grok_html"]),
        baseline=path(values["grok_baseline"]),
        files=tuple(config.getini("grok_files")),
        api_key_env=key_env,
        api_key=api_key,
        backoff_base=0.5 if backoff is None else backoff,
        judge_model=_ini(config, "grok_judge_model", parse.text),
        batch=batch,
        batch_wait=batch_wait,
        batch_cancel=batch_cancel,
        prices=parse.parse_prices(config.getini("grok_prices")),
        api=values["grok_api"],
        gc_freeze=_ini(config, "grok_gc_freeze", parse.boolean) is not False,
    )


def _ini(config: pytest.Config, name: str, parse: Callable[[str], _T]) -> _T | None:
    """An ini-only option's value, None when the file does not set it; UsageError naming it."""
    text = config.getini(name)
    if text is None:
        return None
    try:
        return parse(str(text))
    except ValueError as exc:
        raise pytest.UsageError(f"ini option {name}: {exc}") from None


def _batch(
    config: pytest.Config, record: str | None, api_key: str | None, key_env: str
) -> tuple[bool, float | None, bool]:
    """--grok-batch, --grok-batch-wait and --grok-batch-cancel, checked together."""
    batch = bool(config.getoption("grok_batch"))
    cancel = bool(config.getoption("grok_batch_cancel"))
    raw_wait = config.getoption("grok_batch_wait")
    wait = None
    if raw_wait is not None:
        try:
            wait = float(raw_wait)
        except ValueError:
            raise pytest.UsageError(
                f"--grok-batch-wait must be a number of seconds, got {raw_wait!r}"
            ) from None
        if not wait > 0 or wait == float("inf"):
            raise pytest.UsageError(f"--grok-batch-wait must be positive, got {raw_wait!r}")
        if not batch:
            raise pytest.UsageError("--grok-batch-wait only applies with --grok-batch")
    if (batch or cancel) and api_key is None:
        flag = "--grok-batch" if batch else "--grok-batch-cancel"
        raise pytest.UsageError(f"{flag} calls xAI's Batch API, but {key_env} is not set")
    if (batch or cancel) and config.pluginmanager.is_blocked("cacheprovider"):
        # The batch ids live in pytest's cache: without it a stopped run cannot be resumed
        # (a rerun would send everything again) nor cancelled.
        flag = "--grok-batch" if batch else "--grok-batch-cancel"
        raise pytest.UsageError(
            f"{flag} keeps its batch ids in pytest's cache, but -p no:cacheprovider disables "
            "it; drop -p no:cacheprovider"
        )
    if batch and record == "none":
        raise pytest.UsageError(
            "--grok-batch sends requests, but --grok-record=none only replays; "
            "use --grok-record=new, all or rewrite"
        )
    return batch, wait, cancel
