"""Stopping a run cleanly on SIGTERM (a Kubernetes deadline, `systemctl stop`) or Ctrl-C (SIGINT).

The first signal asks the run to stop: while reading, no further request is sent; while applying, no new
action starts, the actions in flight get up to `GRACE_SECONDS` to finish (each is safe to repeat, so one is
never cut on purpose), and the report says what was applied and what was not. A second signal stops the
waiting at once. The exit code is 128 + the signal number (143 SIGTERM, 130 SIGINT), as a shell reports it.

The handler only assigns attributes. Python runs it on the main thread between two bytecodes, possibly
while that thread holds a lock, so taking one there (an Event's, a logger's) could deadlock; everything
else polls these flags instead of waiting on them.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

GRACE_SECONDS = 10.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)
_POLL = 0.05


class Interrupt:
    """The state of one run's stop request; installed as the SIGTERM and SIGINT handler by `install`."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.signum: int | None = None
        self.applying = False  # set by the job when the writes begin: from then on in-flight work finishes
        self.stop_requested = False  # start nothing new; retry backoffs give up
        self.cancelled = False  # send no further request at all
        self._previous: dict[int, Any] = {}

    @classmethod
    def install(cls, grace: float = GRACE_SECONDS) -> Interrupt:
        """Handles SIGTERM and SIGINT until `restore`; off the main thread (where Python cannot install a
        handler) it is a stop request that never comes."""
        interrupt = cls(grace)
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                interrupt._previous[signum] = signal.signal(signum, interrupt._handle)
        return interrupt

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self.stop_requested = True
            if not self.applying:
                self.cancelled = True
        else:  # a second signal: stop waiting for anything
            self.cancelled = True

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def nap(self, seconds: float) -> bool:
        """Sleeps up to `seconds` unless a stop is requested; False if it was (now or before)."""
        end = time.monotonic() + seconds
        while not self.stop_requested:
            left = end - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, _POLL))
        return False

    def wait_for(self, done: Any, deadline: float) -> bool:
        """Polls `done()` until it is true, `deadline` (monotonic) passes or a second signal comes."""
        while not done():
            if self.cancelled or time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
        return True


_current: Interrupt | None = None


def current() -> Interrupt:
    """The stop request of the run in progress (one that never comes outside `during_run`)."""
    return _current if _current is not None else Interrupt()


def during_run(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Handles SIGTERM and SIGINT (see `current`) for the duration of each call, then restores what was
    there before."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        global _current
        previous, _current = _current, Interrupt.install()
        try:
            return fn(*args, **kwargs)
        finally:
            _current.restore()
            _current = previous

    return wrapper


def exit_code_of(signal_name: str) -> int:
    return 128 + signal.Signals[signal_name].value


def exit_now(code: int) -> None:
    """Exits without waiting for worker threads still in a request after the grace (Python would join them
    at exit): the report is written, and every action is safe to repeat on the next run."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
