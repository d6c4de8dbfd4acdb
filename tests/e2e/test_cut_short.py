"""Runs cut short, through the CLI on the simulators: what was applied is never lost from sight."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.envs import SimEnv, group_doc, user_doc
from tests.safety_scenarios import (
    a_signal_mid_apply_stops_cleanly_and_the_next_run_converges,
    interrupted_report,
    people_in_litellm,
    signal_when,
)

FAST = {"retries": 0, "backoff_seconds": 0.01}


def metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_a_report_that_cannot_be_written_still_says_what_was_applied(sim_env: SimEnv, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    prom = tmp_path / "metrics" / "catalog_sync.prom"
    sim_env.set_catalog([group_doc("eng"), *(user_doc(f"u{i}", ["eng"]) for i in range(5))])
    sim_env.litellm.inject("POST /user/new", 400, {"detail": "no room for u-something"}, times=1)
    cfg = sim_env.config(report={"dir": str(blocker / "reports")}, metrics={"textfile": str(prom)}, http=FAST)
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 1
    assert (
        f"catalog-sync: 4 changes were applied (1 failed), but the report could not be written: "
        f"{blocker / 'reports'}: Not a directory"
    ) in result.stderr.splitlines()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run: partial failure: 5 to create,") and "4 applied, 1 failed" in lines[0]
    [failed] = [line for line in lines if line.startswith("failed: ")]
    assert failed.startswith("failed: create u") and "HTTP 400: no room for u-something" in failed
    assert not any(line.startswith("report: ") for line in lines)
    assert len([u for u in sim_env.all_users() if u.startswith("u")]) == 4
    m = metrics(prom)
    assert m[("catalog_sync_actions", (("kind", "create"), ("outcome", "applied")))] == 4
    assert m[("catalog_sync_actions", (("kind", "create"), ("outcome", "failed")))] == 1
    assert m[("catalog_sync_last_run_exit_code", ())] == 1


def test_a_plan_whose_report_cannot_be_written_says_nothing_was_applied(
    sim_env: SimEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sim_env.set_catalog([group_doc("eng"), user_doc("amy", ["eng"])])
    cfg = sim_env.config(report={"dir": str(blocker / "reports")})
    result = sim_env.cli("plan", "-c", str(cfg))
    assert result.code == 1 and result.stdout.startswith("plan: changes planned: 1 to create")
    assert (
        f"catalog-sync: nothing was applied, but the report could not be written: "
        f"{blocker / 'reports'}: Not a directory"
    ) in result.stderr.splitlines()


# --- SIGTERM and Ctrl-C ------------------------------------------------------------------------------


def test_ctrl_c_mid_apply_stops_cleanly_exits_130_and_the_next_run_converges(sim_env: SimEnv) -> None:
    a_signal_mid_apply_stops_cleanly_and_the_next_run_converges(sim_env, signal.SIGINT)


def _people(n: int) -> list[dict[str, Any]]:
    return [group_doc("engineering"), *(user_doc(f"p{i:03d}", ["engineering"]) for i in range(n))]


def test_a_signal_while_reading_applies_nothing_and_reports_interrupted(sim_env: SimEnv) -> None:
    sim_env.set_catalog(_people(20))
    sim_env.slow_writes(0.5)  # every LiteLLM request, the reads included
    cfg = sim_env.config(metrics={"textfile": str(sim_env.work / "m.prom")})
    code, output = signal_when(
        sim_env, ["run", "-c", str(cfg)], lambda out: '"reading"' in out.read_text(), signal.SIGTERM
    )
    assert code == 143, output
    report = interrupted_report(sim_env, signal.SIGTERM)
    assert report["actions"] == [] and report["counts"]["applied"] == 0 and report["error"] is None
    assert people_in_litellm(sim_env) == 0
    assert sim_env.litellm.request_counts()["POST /user/new"] == 0
    assert "catalog_sync_interrupted 1.0" in (sim_env.work / "m.prom").read_text()


def _hung_create(sim_env: SimEnv, concurrency: int = 2) -> Path:
    """The first create is carried out at once but answered only after 30 s: in flight for the test."""
    sim_env.set_catalog(_people(30))
    sim_env.slow_writes(0.1)
    sim_env.litellm.inject("POST /user/new", 200, {"user_id": "late"}, times=1, delay=30, after=True)
    return sim_env.config(concurrency=concurrency)


def test_writes_still_in_flight_after_the_grace_are_reported_as_interrupted(sim_env: SimEnv) -> None:
    cfg = _hung_create(sim_env)
    started = time.monotonic()
    code, output = signal_when(
        sim_env, ["run", "-c", str(cfg)], lambda _: people_in_litellm(sim_env) >= 4, signal.SIGTERM
    )
    assert code == 143, output
    assert time.monotonic() - started < 28, "the run waited for the hung write beyond its grace"
    report = interrupted_report(sim_env, signal.SIGTERM)
    [hung] = [a for a in report["actions"] if a["outcome"] == "interrupted"]
    assert "still in flight when the run stopped (SIGTERM)" in hung["error"]
    outcomes = Counter(a["outcome"] for a in report["actions"])
    assert outcomes["applied"] >= 3 and outcomes["not_started"] > 0 and report["counts"]["interrupted"] == 1
    assert "1 interrupted in flight" in output
    sim_env.slow_writes(0)
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    assert sim_env.cli("plan", "-c", str(cfg), "--detailed-exitcode").code == 0


def test_a_second_signal_stops_waiting_for_the_writes_in_flight(sim_env: SimEnv) -> None:
    # One worker: the hung create is then the only write in flight when the signals come (with two, the
    # other worker's 0.1 s write could still be running at the second signal, and be interrupted too).
    cfg = _hung_create(sim_env, concurrency=1)
    out = sim_env.work / "bg-0.out"
    proc = sim_env.start_cli("run", "-c", str(cfg))
    deadline = time.monotonic() + 60
    while people_in_litellm(sim_env) < 1:  # the hung create is carried out at once, answered after 30 s
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    while '"stopping"' not in out.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.02)
    second = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert time.monotonic() - second < 8, "the second signal did not cut the 10 s grace short"
    report = interrupted_report(sim_env, signal.SIGTERM)
    assert [a["outcome"] for a in report["actions"]].count("interrupted") == 1


def test_a_retry_backoff_wakes_on_the_signal(sim_env: SimEnv) -> None:
    """A write waiting 50 s to retry (Retry-After) gives up at once: the grace is not spent asleep."""
    sim_env.set_catalog(_people(10))
    sim_env.slow_writes(0.1)
    sim_env.litellm.inject("POST /user/new", 503, {"detail": "busy"}, headers={"Retry-After": "50"}, times=1)
    cfg = sim_env.config(concurrency=2, http={"retries": 3})
    code, output = signal_when(
        sim_env, ["run", "-c", str(cfg)], lambda _: people_in_litellm(sim_env) >= 2, signal.SIGTERM
    )
    assert code == 143, output
    report = interrupted_report(sim_env, signal.SIGTERM)
    [waiting] = [a for a in report["actions"] if a["outcome"] == "interrupted"]
    assert "not retried: the run is stopping" in waiting["error"]
    assert report["run"]["duration_seconds"] < 9


def test_applying_a_saved_plan_stops_cleanly_on_sigterm_too(sim_env: SimEnv) -> None:
    sim_env.set_catalog(_people(30))
    cfg = sim_env.config(concurrency=2)
    plan_file = sim_env.work / "plan.json"
    assert sim_env.cli("plan", "-c", str(cfg), "--out", str(plan_file)).code == 0
    sim_env.slow_writes(0.1)
    args = ["apply", str(plan_file), "-c", str(cfg)]
    code, output = signal_when(sim_env, args, lambda _: people_in_litellm(sim_env) >= 3, signal.SIGTERM)
    assert code == 143, output
    report = interrupted_report(sim_env, signal.SIGTERM)
    outcomes = Counter(a["outcome"] for a in report["actions"])
    assert outcomes["applied"] == people_in_litellm(sim_env) >= 3 and outcomes["not_started"] > 0
    sim_env.slow_writes(0)
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    assert people_in_litellm(sim_env) == 30
