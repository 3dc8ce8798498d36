"""Secrets out of everything that leaves the process: the API key and base URL credentials.

Applied at the boundaries, not where strings are made: the terminal writer, each test report
(its traceback and captured sections, which JUnit XML and the JSON report read), the report
files, the recordings and their journal, and the messages built from API error bodies.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

import pytest

# Any run of this many characters of the key is treated as the key: an API that echoes a
# prefix or a truncated header still gives nothing away, and a shorter run is not usable.
MIN_RUN = 12
# Every window of MIN_RUN characters holds a piece this long starting at a multiple of it.
_ANCHOR = (MIN_RUN + 1) // 2
MASK = "[REDACTED]"
# user:password@ in any URL, whatever its host: the credentials of a base URL (or a proxy).
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+(?::[^/@\s]*)?@")


class Redactor:
    """Replaces secrets in text: a callable ``str -> str``, cheap when nothing matches."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        windows = {
            secret[i : i + MIN_RUN]
            for secret in self._secrets
            if len(secret) >= MIN_RUN
            for i in range(len(secret) - MIN_RUN + 1)
        }
        short = [s for s in self._secrets if len(s) < MIN_RUN]
        alternatives = sorted(windows | set(short), key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
        )
        # Text holding none of these holds no secret: each MIN_RUN window of a long secret
        # contains one of its _ANCHOR-long pieces that start at a multiple of _ANCHOR. The
        # pattern tries every window at every position (43 us for a 500-character line and an
        # 84-character xAI key); str.find over these few pieces costs a tenth of that.
        self._anchors = sorted(
            {
                secret[i : i + _ANCHOR]
                for secret in self._secrets
                if len(secret) >= MIN_RUN
                for i in range(0, len(secret) - _ANCHOR + 1, _ANCHOR)
            }
            | set(short)
        )

    @classmethod
    def for_key(cls, api_key: str | None, base_url: str) -> Redactor:
        """For a run: the key, and the password of a base URL (`https://u:p@host/v1`).

        A key shorter than MIN_RUN is no secret (`XAI_API_KEY=fake` for replay-only runs, or a
        local server's): masking every "fake" or "x" in prompts and answers would corrupt them.
        """
        secrets = [api_key if api_key and len(api_key) >= MIN_RUN else ""]
        password = urlsplit(base_url).password
        if password and len(password) >= 4:
            secrets += [password, unquote(password)]
        return cls(secrets)

    @property
    def hides_anything(self) -> bool:
        """Whether there is a secret to hide (False without a key of MIN_RUN characters)."""
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if "://" in text:
            text = _URL_CREDENTIALS.sub("***@", text)
        if self._pattern is None or not self._may_hold_secret(text):
            return text
        if self._pattern.search(text) is None:
            return text
        spans = [self._widen(text, m.start(), m.end()) for m in self._pattern.finditer(text)]
        out: list[str] = []
        last = 0
        for start, end in _merge(spans):
            out += [text[last:start], MASK]
            last = end
        out.append(text[last:])
        return "".join(out)

    def _may_hold_secret(self, text: str) -> bool:
        return any(anchor in text for anchor in self._anchors)

    def _widen(self, text: str, start: int, end: int) -> tuple[int, int]:
        """The whole run of a secret around a window match, so no tail of the key is left."""
        run = text[start:end]
        for secret in self._secrets:
            offset = secret.find(run)
            if offset < 0:
                continue
            left, right = start, end
            while left > 0 and offset - (start - left) > 0 and (
                text[left - 1] == secret[offset - (start - left) - 1]
            ):
                left -= 1
            while right < len(text) and offset + (right - start) < len(secret) and (
                text[right] == secret[offset + (right - start)]
            ):
                right += 1
            return left, right
        return start, end


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


NOTHING = Redactor(())


class _RedactingFile:
    """A text stream that redacts what is written through it, and forwards everything else."""

    def __init__(self, inner: TextIO, redact: Redactor) -> None:
        self._inner = inner
        self._redact = redact

    def write(self, text: str) -> int:
        self._inner.write(self._redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class OutputGuard:
    """A pytest plugin: redacts the terminal and every test report before anyone reads them."""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Wrap the terminal writer's stream before the header is written."""
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(reporter, "_tw", None)
        stream = getattr(writer, "_file", None)
        if stream is not None and not isinstance(stream, _RedactingFile):
            writer._file = _RedactingFile(stream, self._redact)  # type: ignore[union-attr]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Redact the traceback (with -l locals) and the captured sections of each report."""
        report = yield
        self.scrub(report)
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """Collection errors too: a conftest may print the environment."""
        report = yield
        self.scrub(report)
        return report

    def scrub(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        """Replace a report's longrepr and sections with redacted text when they hold a secret."""
        report.sections = [(name, self._redact(text)) for name, text in report.sections]
        longrepr = report.longrepr
        if longrepr is None or isinstance(longrepr, tuple):
            return
        text = str(longrepr)
        clean = self._redact(text)
        if clean != text:
            # Plain text from here on: pytest, junitxml and our reports all accept a string.
            report.longrepr = clean
