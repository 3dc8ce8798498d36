"""Command-line and ini options, resolved once into typed settings (CLI > ini > environment)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_grokeval.recordings.store import MODES
from pytest_grokeval.redaction import Redactor

DEFAULT_MODEL = "grok-4.3"
DEFAULT_BASE_URL = "https://api.x.ai/v1"
DEFAULT_FILES = ["test_*.yaml", "test_*.yml"]


@dataclass(frozen=True)
class Option:
    flag: str
    ini: str | None
    type: type
    default: Any
    help: str
    env: str | None = None


OPTIONS = [
    Option("--grok-max-concurrent", "grok_max_concurrent", int, 4,
           "most HTTP requests in flight at once, across the whole run (default 4)"),
    Option("--grok-model", "grok_model", str, DEFAULT_MODEL,
           f"model for cases that name none (default {DEFAULT_MODEL})"),
    Option("--grok-base-url", "grok_base_url", str, DEFAULT_BASE_URL,
           f"API base URL (default {DEFAULT_BASE_URL}; env XAI_BASE_URL)", env="XAI_BASE_URL"),
    Option("--grok-timeout", "grok_timeout", float, 120.0,
           "seconds per request attempt before it is retried (default 120)"),
    Option("--grok-retries", "grok_retries", int, 4,
           "retries of a request after 429, 5xx, timeouts and dropped connections (default 4)"),
    Option("--grok-rpm", "grok_rpm", int, None,
           "requests-per-minute budget, enforced per second as rpm/60 (default: no limit)"),
    Option("--grok-tpm", "grok_tpm", int, None,
           "tokens-per-minute budget, enforced per second (default: no limit)"),
    Option("--grok-record", "grok_record", str, None,
           "recording mode: none (replay only), new (record what is missing), all (re-record "
           "everything), rewrite (all, and drop entries of deleted cases); default: new with "
           "an API key, none without"),
    Option("--grok-max-cost", "grok_max_cost", float, None,
           "refuse to start when the estimated cost exceeds this many USD, and stop sending "
           "once it is spent (default: no limit)"),
    Option("--grok-report", None, str, None, "write a JSON report of every item to this path"),
    Option("--grok-html", None, str, None, "write a self-contained HTML report to this path"),
    Option("--grok-baseline", None, str, None,
           "compare with an earlier --grok-report JSON and list regressions"),
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
    ("grok_api_key_env", "string", "XAI_API_KEY",
     "environment variable holding the API key (default XAI_API_KEY)"),
    ("grok_judge_model", "string", "",
     "model of the judge check's grader (default: --grok-model)"),
    ("grok_retry_base_delay", "string", "0.5",
     "first retry delay in seconds; doubles each retry, with jitter (default 0.5)"),
]


def dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def addoption(parser: pytest.Parser) -> None:
    """Register every option under the 'grokeval' group and its ini twin."""
    group = parser.getgroup("grokeval", "regression-test prompts against Grok")
    for opt in OPTIONS:
        group.addoption(opt.flag, dest=dest(opt.flag), default=None, metavar="VALUE",
                        help=opt.help)
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


def _raw(config: pytest.Config, opt: Option) -> Any:
    value = config.getoption(dest(opt.flag))
    if value is None and opt.ini:
        value = config.getini(opt.ini) or None
    if value is None and opt.env:
        value = os.environ.get(opt.env) or None
    return value


def _convert(opt: Option, value: Any) -> Any:
    if value is None:
        return opt.default
    try:
        converted = opt.type(value)
    except (TypeError, ValueError):
        kind = {int: "an integer", float: "a number", str: "a string"}[opt.type]
        raise pytest.UsageError(f"{opt.flag} must be {kind}, got {value!r}") from None
    return converted


def resolve(config: pytest.Config) -> Settings:
    """Read and check all options; a bad value is a usage error naming the option."""
    values = {dest(opt.flag): _convert(opt, _raw(config, opt)) for opt in OPTIONS}
    for name in ("grok_max_concurrent", "grok_retries", "grok_rpm", "grok_tpm"):
        value = values[name]
        positive = name != "grok_retries"
        if value is not None and (value < 1 if positive else value < 0):
            flag = "--" + name.replace("_", "-")
            need = "a positive integer" if positive else "zero or a positive integer"
            raise pytest.UsageError(f"{flag} must be {need}, got {value}")
    for name in ("grok_timeout", "grok_max_cost"):
        value = values[name]
        if value is not None and value <= 0:
            raise pytest.UsageError(f"--{name.replace('_', '-')} must be positive, got {value:g}")
    key_env = str(config.getini("grok_api_key_env") or "XAI_API_KEY")
    api_key = os.environ.get(key_env) or None
    record = values["grok_record"]
    if record is not None and record not in MODES:
        raise pytest.UsageError(
            f"--grok-record must be one of {', '.join(MODES)}, got {record!r}"
        )
    if record in ("new", "all", "rewrite") and api_key is None:
        raise pytest.UsageError(
            f"--grok-record={record} calls the API, but {key_env} is not set; set it, "
            "or replay recordings with --grok-record=none"
        )
    raw_backoff = config.getini("grok_retry_base_delay")
    try:
        backoff = float(raw_backoff)
    except ValueError:
        raise pytest.UsageError(
            f"grok_retry_base_delay must be a number, got {raw_backoff!r}"
        ) from None

    batch, batch_wait, batch_cancel = _batch(config, record, api_key, key_env)

    def path(value: Any) -> Path | None:
        return None if value is None else Path(value)

    return Settings(
        max_concurrent=values["grok_max_concurrent"],
        model=values["grok_model"],
        base_url=values["grok_base_url"].rstrip("/"),
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
        backoff_base=max(backoff, 0.0),
        judge_model=str(config.getini("grok_judge_model") or "") or None,
        batch=batch,
        batch_wait=batch_wait,
        batch_cancel=batch_cancel,
    )


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
    if batch and record == "none":
        raise pytest.UsageError(
            "--grok-batch sends requests, but --grok-record=none only replays; "
            "use --grok-record=new, all or rewrite"
        )
    return batch, wait, cancel
