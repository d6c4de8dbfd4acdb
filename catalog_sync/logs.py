"""structlog set-up: readable on a terminal, JSON lines otherwise; known secrets are masked everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from rich.console import Console

from catalog_sync.urls import mask_userinfo

_SECRETS: set[str] = set()
MASK = "***"
_TERMINAL: Console | None = None  # set by configure(): see terminal()


def register_secrets(values: Iterable[str]) -> None:
    """Values that must never be printed: every later log line and error message is masked."""
    _SECRETS.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    text = mask_userinfo(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, BaseException):
        return redact(str(value))
    return value


def _redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        event[key] = _redact_value(value)
    return event


class ConsoleLogger:
    """structlog logger printing through a rich Console: while a progress bar is live, rich clears it
    before the line and draws it again below, so the two never share a line."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def msg(self, message: str) -> None:
        self._console.print(message, markup=False, highlight=False, emoji=False, soft_wrap=True)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def terminal() -> Console | None:
    """The console that log lines go through when a person watches (console logs on a terminal), else
    None: then nothing is drawn, and progress comes as periodic log lines."""
    return _TERMINAL


def configure(
    fmt: str = "auto", level: str = "info", stream: TextIO | None = None, console: Console | None = None
) -> None:
    """fmt: auto (console on a TTY, JSON otherwise), console or json. `console` stands in for the
    terminal (tests: a recording Console with force_terminal=True)."""
    global _TERMINAL
    out: Any = stream or (console.file if console is not None else sys.stderr)
    tty = console.is_terminal if console is not None else out.isatty()
    use_json = fmt == "json" or (fmt == "auto" and not tty)
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    _TERMINAL = None
    factory: Any = structlog.PrintLoggerFactory(file=out)
    if not use_json and tty:
        _TERMINAL = console or Console(file=out)
        logger = ConsoleLogger(_TERMINAL)
        factory = lambda *_: logger  # noqa: E731  (structlog passes the logger's name)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
