"""Progress on long runs: a rich progress display on a terminal, a log line now and then otherwise.

On a terminal the display is drawn by rich on the same Console the log lines go through (logs.terminal()),
so rich clears it before each log line and draws it again below: the two never share a line. It is
transient: gone when the phase ends, leaving only the log lines and the summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

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
    """Callable as a `Progress`. Thread-safe: the applier's workers report from several threads.

    `console`: draw on it (a terminal); None: a `progress` log line at most every `interval` seconds.
    """

    def __init__(
        self,
        console: Console | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, tuple[float, int]] = {}
        self._last_log = clock()
        self._last_draw = 0.0
        self._bars: RichProgress | None = None
        self._tasks: dict[str, TaskID] = {}
        if console is not None:
            self._bars = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                get_time=clock,
                transient=True,
                auto_refresh=False,  # redrawn by the reports below: no thread of its own, no timing
                # sys.stdout stays where it is: `plan --out -` writes the plan there, maybe into a pipe.
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __call__(self, what: str, done: int, total: int | None) -> None:
        now = self.clock()
        with self._lock:
            t0, d0 = self._started.setdefault(what, (now, done))
            if self._bars is not None:
                self._draw(what, done, total, now)
            elif now - self._last_log >= self.interval:
                self._last_log = now
                eta = _eta(now - t0, done - d0, done, total)
                log.info("progress", what=what, done=done, total=total, eta=eta[6:])

    def _draw(self, what: str, done: int, total: int | None, now: float) -> None:
        assert self._bars is not None
        if not self._tasks:
            self._bars.start()
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._bars.add_task(what, total=total)
        finished = total is not None and done >= total
        # Redrawn at most 10 times a second; each redraw is a full line on the terminal.
        refresh = finished or now - self._last_draw >= 0.1
        self._bars.update(task, completed=done, total=total, refresh=refresh)
        if refresh:
            self._last_draw = now

    def close(self) -> None:
        with self._lock:
            if self._bars is not None and self._tasks:
                self._bars.stop()  # transient: the display is erased
                self._tasks.clear()
