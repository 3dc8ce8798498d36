"""``python -m pytest_grokeval.testing``: run the fake Grok server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence

from pytest_grokeval.optionvalues import delay

from .batch import FakeBatches
from .faults import FaultRule, FaultSpecError, parse_fault_spec
from .server import FakeGrok


def _fault(spec: str) -> FaultRule:
    try:
        return parse_fault_spec(spec)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _load_answers(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as file:
            answers = json.load(file)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{path}: {exc}") from None
    if not isinstance(answers, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in answers.items()
    ):
        raise argparse.ArgumentTypeError(
            f"{path}: expected a JSON object mapping prompt substrings to answer strings"
        )
    return answers


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected 0 (any free port) to 65535, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        return delay(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_grokeval.testing",
        description="Serve a fake xAI Grok API until SIGTERM or SIGINT, after printing "
        "'READY <url>'. Point --grok-base-url at that URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=0)
    parser.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS")
    parser.add_argument("--answers", type=_load_answers, default={}, metavar="FILE.json")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="e.g. every=3,status=429,retry_after=1 or match=boom,status=500,times=2 or "
        "first=1,trickle=0.5; keys: every first match times and any scalar Reply field",
    )
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", metavar="KEY",
        help="accept only this key (repeatable; default: any Bearer key)",
    )
    parser.add_argument("--requests-per-second", type=_positive, metavar="N")
    parser.add_argument("--requests-per-minute", type=_positive, metavar="N")
    parser.add_argument("--tokens-per-minute", type=_positive, metavar="N")
    parser.add_argument(
        "--enforce-models",
        action="store_true",
        help="404 for models outside the catalog, 400 for parameters a model refuses",
    )
    parser.add_argument(
        "--batch-delay",
        type=_seconds,
        metavar="SECONDS",
        help="serve the Batch API (/v1/batches...): results ready within SECONDS of each add",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, after printing ``READY <url>``."""
    args = _parser().parse_args(argv)
    server = FakeGrok(
        host=args.host,
        port=args.port,
        latency=args.latency,
        answers=args.answers,
        api_keys=args.api_keys,
        enforce_models=args.enforce_models,
        requests_per_second=args.requests_per_second,
        requests_per_minute=args.requests_per_minute,
        tokens_per_minute=args.tokens_per_minute,
    )
    if args.batch_delay is not None:
        server.routes += FakeBatches(delay=args.batch_delay).routes()
    for rule in args.fault:
        server.faults.add(rule)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        server.start()
    except OSError as exc:  # the port is taken, the host does not resolve or is not ours
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    try:
        print(f"READY {server.url}", flush=True)
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
