"""Run ids name the report files and are pruned in their order: as text they sort in time order."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from catalog_sync.job import RunIds


def test_run_ids_made_in_the_same_millisecond_still_sort_in_the_order_they_were_made() -> None:
    now = datetime(2026, 12, 3, 18, 38, 49, 123456, tzinfo=timezone.utc)
    new_run_id = RunIds()  # the job's own (job.new_run_id) has seen the real clock already
    ids = [new_run_id(now) for _ in range(50)]
    assert sorted(ids) == ids and len(set(ids)) == 50
    assert re.fullmatch(r"20261203T183849\d{3}Z-[0-9a-f]{6}", ids[0]), ids[0]


def test_run_ids_sort_in_time_order_across_seconds_and_a_clock_stepping_back() -> None:
    start = datetime(2026, 12, 31, 23, 59, 59, 998000, tzinfo=timezone.utc)
    times = [start + timedelta(milliseconds=n) for n in (0, 1, 2, 3, 1000, 999)]  # the last steps back
    new_run_id = RunIds()
    ids = [new_run_id(t) for t in times]
    assert sorted(ids) == ids
    assert ids[2].startswith("20270101T000000000Z")  # the new year, the new second


def test_ids_from_before_the_change_sort_before_later_seconds() -> None:
    old = "20261203T183849Z-abc123"  # the former format (reports already on disk)
    later = RunIds()(datetime(2026, 12, 3, 18, 38, 50, tzinfo=timezone.utc))
    assert sorted([later, old]) == [old, later]
