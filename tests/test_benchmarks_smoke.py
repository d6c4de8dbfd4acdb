"""The benchmark harness itself, at a tiny size: its figures must agree with an independent count."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from benchmarks.__main__ import table, targets
from benchmarks.bench import PAGE_SIZE, Case, bench_size, lower_bound, minimum_requests
from benchmarks.writes import cpu_per_write


def test_minimum_and_lower_bound_formulas() -> None:
    # 2,500 catalog users and 60 groups: 3 + 1 catalog pages; 2,500 LiteLLM users: 25 pages + /team/list.
    assert PAGE_SIZE == 1000
    assert minimum_requests(2500, 60, 2500, 25) == 4 + 26 + 25
    # catalog chain 4 vs LiteLLM chain 1 + ceil(24 / 4) + 1 = 8: the longer is 8; writes ceil(25 / 4) = 7.
    assert lower_bound(2500, 60, 2500, 25, 0.01, 4) == 0.01 * (8 + 7)


def test_a_tiny_benchmark_runs_at_the_minimum_number_of_requests() -> None:
    cases = bench_size(200, latency=0.001, drift=0.05, concurrency=4, baseline_sample=20, repeat=2)
    assert [c.name for c in cases] == ["first plan", "first run", "steady plan", "steady run"]
    # Steady cases are repeated (each steady run after a fresh drift of 10 people) and the fastest kept.
    assert [len(c.repeats) for c in cases] == [1, 1, 2, 2]
    assert all(c.job_seconds == min(c.repeats) for c in cases)
    by_name = {c.name: c for c in cases}
    assert by_name["first run"].changes == 200 and by_name["steady run"].changes == 10
    # Counted by hand for 200 users and 10 + 1 groups: a catalog page of each kind, one /user/list page
    # (two once the 200 exist) and /team/list, plus the writes.
    assert [c.minimum for c in cases] == [1 + 1 + 1 + 1, 4 + 200, 1 + 1 + 2 + 1, 5 + 10]
    for case in cases:
        assert case.made == case.minimum, (case.name, case.requests)
        assert case.rss_mb > 0 and case.wall > 0 and case.lower_bound > 0
        assert case.request_ratio == 1.0
        # No run beats the simulators' latency, and the child's wall time holds the job's own duration.
        assert case.lower_bound <= case.job_seconds <= case.wall, case
        assert case.wall_ratio >= 1.0 and 10 < case.rss_mb < 400 and case.sim_cpu_seconds >= 0
    assert by_name["first run"].requests["litellm POST /user/new"] == 200
    assert by_name["steady run"].requests["litellm POST /user/update"] == 10
    assert (
        by_name["steady plan"].baseline_seconds is not None and by_name["steady plan"].baseline_extrapolated
    )
    # The transport floor: the steady run's requests (the harness checks the count) with nothing else done.
    floor = by_name["steady run"].floor_seconds
    assert floor is not None and floor > 0
    assert [c.name for c in cases if c.floor_seconds] == ["steady run"]
    assert "first run" in table(cases)
    assert targets(cases, 1, 0.05)[0][1] is True
    assert_table_has_every_case_and_column(cases)
    # One size: only the request-count target applies, and it passes at exactly the minimum.
    assert targets(cases, 1, 0.05) == [("requests <= 1.05 x minimum, every case", True, "worst 1.000")]
    wasteful = replace(by_name["steady run"], made=by_name["steady run"].minimum * 2)
    assert targets([*cases, wasteful], 1, 0.05)[0] == (
        "requests <= 1.05 x minimum, every case",
        False,
        "worst 2.000",
    )


COLUMNS = (
    "case", "N", "requests", "minimum", "ratio", "wall s", "job s", "bound s", "ratio", "floor s", "ratio",
    "sim CPU s", "RSS MB", "ms/user", "baseline s", "speed-up",
)  # fmt: skip


def assert_table_has_every_case_and_column(cases: list[Case]) -> None:
    head, rule, *rows = table(cases).splitlines()
    at = 0
    for column in COLUMNS:  # every column, in this order
        at = head.index(column, at) + len(column)
    assert set(rule) == {"-"} and len(rule) == len(head)
    assert len(rows) == len(cases)
    for row, case in zip(rows, cases, strict=True):
        assert row.startswith(f"{case.name:<12} ")
        users, made, minimum, ratio, wall, job = row[13:].split()[:6]
        assert (int(users), int(made), int(minimum), ratio) == (case.users, case.made, case.minimum, "1.00")
        assert (wall, job) == (f"{case.wall:.2f}", f"{case.job_seconds:.2f}")
    # Two words of name and 11 figures; the per-user baseline (extrapolated: *) and its speed-up only for
    # the steady plan, the floor and its ratio only for the steady run.
    assert [("*" in r, len(r.split())) for r in rows] == [(False, 13), (False, 13), (True, 15), (False, 15)]
    floor = cases[-1].floor_seconds
    assert floor is not None and rows[-1].split()[10] == f"{floor:.2f}"


def test_cpu_per_write_compares_the_job_with_a_plain_loop(tmp_path: Path) -> None:
    result = cpu_per_write(tmp_path, users=40, concurrency=2, rounds=1)
    assert len(result["job_ms"]) == 1 and len(result["loop_ms"]) == 1
    assert result["job_ms"][0] > 0 and result["loop_ms"][0] > 0
    # Client CPU per write: well under a second each way, and the ratio is the two fastest compared.
    assert result["users"] == 40 and max(result["job_ms"] + result["loop_ms"]) < 1000
    assert result["ratio"] == min(result["loop_ms"]) / min(result["job_ms"])
