"""Stopping a prefetch from outside: SIGTERM, as CI sends when a job is cancelled."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While sending, SIGTERM (CI cancelling a job) stops the run the way Ctrl-C does.

    The handler hands over to the SIGINT handler in place (asyncio's, which cancels the
    prefetch and then raises KeyboardInterrupt), or raises KeyboardInterrupt itself. Only the
    main thread may set handlers; the previous one is put back on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, frame)
            return
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
