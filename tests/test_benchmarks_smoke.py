"""The benchmark harness itself, at a tiny size: its figures must agree with an independent count."""

from __future__ import annotations

from pathlib import Path

from benchmarks.__main__ import table, targets
from benchmarks.bench import PAGE_SIZE, bench_size, lower_bound, minimum_requests
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
    for case in cases:
        assert case.made == case.minimum, (case.name, case.requests)
        assert case.rss_mb > 0 and case.wall > 0 and case.lower_bound > 0
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


def test_cpu_per_write_compares_the_job_with_a_plain_loop(tmp_path: Path) -> None:
    result = cpu_per_write(tmp_path, users=40, concurrency=2, rounds=1)
    assert len(result["job_ms"]) == 1 and len(result["loop_ms"]) == 1
    assert result["job_ms"][0] > 0 and result["loop_ms"][0] > 0
