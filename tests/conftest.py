from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpcore2  # noqa: F401  (see below)
import pytest

from pytest_grokeval.testing import FakeGrok

# httpx2 maps httpcore2's exceptions through classes it caches at its first request, and pytester
# forgets modules first imported inside an in-process run: without this import, the second run
# would get fresh httpcore2 classes, and a dropped connection would escape the SDK unmapped.

# A key-like secret: tests assert it never appears in output or recordings.
API_KEY = "xai-TESTKEY-7f3a9c1e5b2d4f6a8c0e"


# pytest-asyncio is installed for the test suite and warns in every inner run without this.
INI = """
[pytest]
grok_retry_base_delay = 0.01
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture
def grok() -> Iterator[FakeGrok]:
    """The project's fake Grok on 127.0.0.1, fresh for each test."""
    with FakeGrok() as server:
        yield server


class Project:
    """A pytester project wired to the fake server, with an API key in the environment."""

    def __init__(self, pytester: pytest.Pytester, server: FakeGrok) -> None:
        self.pytester = pytester
        self.server = server
        self.path = pytester.path
        # Kept after the server stops: a run that then tried to send would fail to connect.
        self.url = server.url

    def suite(self, name: str, text: str) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    def recording(self, suite: str) -> Path:
        stem = Path(suite).stem
        return self.path / Path(suite).parent / "__recordings__" / f"{stem}.json"

    def args(self, *args: str) -> list[str]:
        return ["--grok-base-url", self.url, "-p", "no:randomly", *args]

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*self.args(*args))

    def run_on_terminal(self, *args: str) -> tuple[int, str]:
        """pytest in a subprocess whose stdout is a pseudo-terminal: (exit code, all it wrote)."""
        main, terminal = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *self.args(*args)],
            cwd=self.path,
            env={**os.environ, "XAI_API_KEY": API_KEY},
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        )
        os.close(terminal)
        chunks = []
        deadline = time.monotonic() + 60
        try:
            while select.select([main], [], [], max(deadline - time.monotonic(), 0))[0]:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the child has gone and the terminal is closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(main)
            if process.poll() is None:
                process.kill()
            process.wait()
        return process.returncode, b"".join(chunks).decode(errors="replace")

    def run_subprocess(self, *args: str, timeout: float = 120) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*self.args(*args), timeout=timeout)

    @contextmanager
    def spawn(self, *args: str, group: bool = False) -> Iterator[subprocess.Popen[str]]:
        """pytest in its own process, so that it can be signalled; killed if the test fails.

        `group`: in a process group of its own, as a terminal or CI runner starts it.
        """
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *self.args(*args)],
            cwd=self.path,
            env={**os.environ, "XAI_API_KEY": API_KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=group,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()

    def assert_sent_nothing(
        self, result: pytest.RunResult, code: pytest.ExitCode, *lines: str
    ) -> None:
        """`result` ended with `code` before sending a model request, printing `lines`.

        `lines`: fnmatch patterns, looked for on stderr for a usage error (where pytest prints
        one) and on stdout otherwise.
        """
        assert result.ret == code, result.outlines
        output = result.stderr if code == pytest.ExitCode.USAGE_ERROR else result.stdout
        output.fnmatch_lines(list(lines))
        assert self.server.request_count == 0


def poll(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait for `condition` with a deadline, for what has no event to wait on (files, processes).

    TimeoutError naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.02)


@pytest.fixture
def project(
    pytester: pytest.Pytester, grok: FakeGrok, monkeypatch: pytest.MonkeyPatch
) -> Project:
    monkeypatch.setenv("XAI_API_KEY", API_KEY)
    monkeypatch.delenv("XAI_BASE_URL", raising=False)
    pytester.makeini(INI)
    return Project(pytester, grok)
