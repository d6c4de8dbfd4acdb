"""Progress on long runs: one line rewritten in place on a terminal, a log line now and then otherwise."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import structlog

log = structlog.get_logger("catalog_sync.progress")

# (what, done so far, total or None): "catalog users", "LiteLLM pages", "actions"
Progress = Callable[[str, int, "int | None"], None]


def _eta(elapsed: float, progressed: int, done: int, total: int | None) -> str:
    """From the rate since the first report of this phase (the first sample only starts the clock)."""
    if not total or progressed <= 0 or done >= total or elapsed <= 0:
        return ""
    seconds = elapsed / progressed * (total - done)
    return f", ETA {seconds:.0f}s" if seconds < 120 else f", ETA {seconds / 60:.0f}min"


class ProgressReporter:
    """Callable as a `Progress`. Thread-safe: the applier's workers report from several threads."""

    def __init__(
        self,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, tuple[float, int]] = {}
        self._last_log = clock()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, what: str, done: int, total: int | None) -> None:
        now = self.clock()
        with self._lock:
            t0, d0 = self._started.setdefault(what, (now, done))
            eta = _eta(now - t0, done - d0, done, total)
            finished = total is not None and done >= total
            text = f"{what}: {done}" + (f"/{total}" if total is not None else "") + eta
            if self.tty:
                if finished or now - self._last_draw >= 0.1:  # redraw at most 10 times a second
                    self.stream.write("\r\x1b[2K" + text)
                    self.stream.flush()
                    self._last_draw, self._drawn = now, True
            elif now - self._last_log >= self.interval:
                self._last_log = now
                log.info("progress", what=what, done=done, total=total, eta=eta[6:])

    def close(self) -> None:
        with self._lock:
            if self.tty and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False
