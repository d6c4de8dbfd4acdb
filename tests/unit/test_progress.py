from __future__ import annotations

import io
import json

from catalog_sync.logs import configure
from catalog_sync.progress import ProgressReporter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_one_line_is_redrawn_with_an_eta() -> None:
    out, clock = io.StringIO(), Clock()
    p = ProgressReporter(stream=out, tty=True, clock=clock)
    for done in range(1, 101):
        clock.now = done * 0.5
        p("actions", done, 100)
    p.close()
    text = out.getvalue()
    frames = text.split("\r\x1b[2K")[1:]
    assert frames[0] == "actions: 1/100"  # no rate yet, so no ETA
    assert frames[1] == "actions: 2/100, ETA 49s" and frames[-1] == "actions: 100/100\n"
    assert 1 < len(frames) <= 100 and text.endswith("\n")


def test_off_a_terminal_a_log_line_at_most_every_interval() -> None:
    logs = io.StringIO()
    configure("json", "info", stream=logs)
    clock = Clock()
    p = ProgressReporter(stream=io.StringIO(), tty=False, interval=10, clock=clock)
    for done in range(1, 61):
        clock.now = float(done)
        p("LiteLLM pages", done, 60)
    p.close()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["done"] for line in lines] == [10, 20, 30, 40, 50, 60]
    assert lines[0]["what"] == "LiteLLM pages" and lines[0]["total"] == 60 and lines[0]["eta"] == "50s"
