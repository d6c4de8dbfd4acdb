from __future__ import annotations

import io
import json
import re

import structlog
from rich.console import Console

from catalog_sync.logs import configure
from catalog_sync.progress import ProgressReporter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def screen(raw: str) -> list[str]:
    """What a terminal shows after receiving `raw`: text, CR, LF, cursor up (ESC[nA) and erase line
    (ESC[K, ESC[2K); other escapes (cursor shown/hidden) change nothing that is shown."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", raw):
        if token == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            command, arg = token[-1], token[2:-1]
            if command == "A":
                row = max(0, row - int(arg or 1))
            elif command == "K":
                lines[row] = "" if arg == "2" else lines[row][:col]
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100, color_system=None), out


def test_log_lines_and_the_progress_line_never_share_a_line() -> None:
    console, out = terminal()
    configure("auto", "info", console=console)  # console logs, through the terminal's Console
    log = structlog.get_logger("test")
    clock = Clock()
    p = ProgressReporter(console, clock=clock)
    for done in range(1, 8):
        clock.now += 0.2
        p("catalog groups", done, 7)
        if done == 3:
            log.info("catalog_read", users=3)
            shown = screen(out.getvalue())
            # The log line on a line of its own, the progress drawn again below it.
            assert shown[0].endswith("catalog_read                   users=3"), shown
            assert "[info" in shown[0] and "catalog groups" not in shown[0]
            assert shown[1].startswith("catalog groups") and "3/7" in shown[1], shown
    log.warning("groups_done")
    p("actions", 1, 2)
    p.close()
    log.info("after")
    shown = screen(out.getvalue())
    # Transient: the progress is gone, the log lines are intact, each on its own line.
    assert len(shown) == 3, shown
    assert [line.split()[-1] for line in shown] == ["users=3", "groups_done", "after"]
    assert not any("catalog groups" in line or "actions" in line for line in shown)


def test_on_a_terminal_the_progress_shows_done_of_total_and_redraws_at_most_ten_times_a_second() -> None:
    console, out = terminal()
    clock = Clock()
    p = ProgressReporter(console, clock=clock)
    for done in range(1, 101):
        clock.now = done * 0.01  # 100 reports in one second
        p("actions", done, 100)
        if done == 50:
            assert any("actions" in line and "/100" in line for line in screen(out.getvalue()))
    frames = out.getvalue().count("actions")
    assert 5 <= frames <= 13, frames  # ~10 redraws and the last, not one per report
    assert "100/100" in out.getvalue()
    p.close()
    assert screen(out.getvalue()) == []


def test_off_a_terminal_a_log_line_at_most_every_interval() -> None:
    logs = io.StringIO()
    configure("json", "info", stream=logs)
    clock = Clock()
    p = ProgressReporter(None, interval=10, clock=clock)
    for done in range(1, 61):
        clock.now = float(done)
        p("LiteLLM pages", done, 60)
    p.close()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["done"] for line in lines] == [10, 20, 30, 40, 50, 60]
    assert lines[0]["what"] == "LiteLLM pages" and lines[0]["total"] == 60 and lines[0]["eta"] == "50s"
    assert "\x1b" not in logs.getvalue() and "\r" not in logs.getvalue()  # nothing drawn
