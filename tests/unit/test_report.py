from __future__ import annotations

import io
import json
from pathlib import Path

import structlog

from catalog_sync.apply import Outcome, planned_results
from catalog_sync.config import ReportFormat
from catalog_sync.logs import configure, redact, register_secrets
from catalog_sync.model import LiteLLMUser
from catalog_sync.plan import build_plan
from catalog_sync.report import (
    REPORT_VERSION,
    RunInfo,
    budgets_of,
    build_report,
    public_url,
    render_markdown,
    render_terminal,
    write_json,
    write_report,
)
from tests.factories import SECRET_KEY, SECRET_TOKEN, catalog, config, litellm, user


def run_info(**kw: object) -> RunInfo:
    base = {
        "run_id": "20261122T000000Z-abc123",
        "command": "plan",
        "dry_run": True,
        "started_at": "2026-11-22T00:00:00+00:00",
        "version": "0.1.0",
        "config_path": "c.yaml",
        "backstage_url": "https://bs.example.com",
        "litellm_url": "https://user:pw@llm.example.com:4000/",
    }
    base.update(kw)
    return RunInfo(**base)  # type: ignore[arg-type]


def sample_report(n: int = 3) -> dict:  # type: ignore[type-arg]
    cfg = config(roles=[{"group": "ml", "max_budget": 99}])
    stranger = LiteLLMUser(user_id="u000", user_email="u000@example.com")
    plan = build_plan(catalog([user(f"u{i:03d}", "ml") for i in range(n)]), litellm([stranger]), cfg)
    return build_report(run_info(), plan, planned_results(plan))


def test_json_report_has_the_documented_shape() -> None:
    report = sample_report()
    assert report["report_version"] == REPORT_VERSION
    assert set(report) == {
        "report_version",
        "run",
        "result",
        "error",
        "counts",
        "actions",
        "deprovision",
        "conflicts",
        "warnings",
        "requests",
        "guards",
        "budgets",
    }
    assert report["result"] == "changes_planned"
    assert report["counts"]["create"] == 2 and report["counts"]["conflicts"] == 1
    action = report["actions"][0]
    assert set(action) == {
        "action",
        "user_id",
        "entity_ref",
        "role",
        "adopt",
        "changes",
        "team_adds",
        "team_removes",
        "outcome",
        "error",
        "followup",
    }
    assert action["outcome"] == Outcome.planned.value
    assert {"field": "max_budget", "before": None, "after": 99.0} in action["changes"]
    assert report["conflicts"][0]["code"] == "unmanaged_user_exists"
    assert report["warnings"][0]["code"] == "role_group_missing"
    # What the JSON writer puts on disk is the report, rows and all.
    buf = io.StringIO()
    write_json(report, buf)
    on_disk = json.loads(buf.getvalue())
    assert set(on_disk) == set(report)
    assert on_disk["actions"] == list(report["actions"]) and len(on_disk["actions"]) == 2
    assert on_disk["conflicts"] == report["conflicts"]


def test_json_rows_keep_any_json_value_and_text() -> None:
    # Rows carry values read from LiteLLM metadata: non-ASCII text and integers beyond 64 bits included.
    rows = [{"user_id": "zoë@example.com", "changes": [{"before": 2**70, "after": [1.5, None, True]}]}]
    buf = io.StringIO()
    write_json({"actions": rows, "error": None}, buf)
    assert json.loads(buf.getvalue()) == {"actions": rows, "error": None}
    assert "zoë" in buf.getvalue()


def test_urls_in_reports_lose_their_credentials() -> None:
    assert sample_report()["run"]["litellm_url"] == "https://llm.example.com:4000/"
    assert public_url("http://a:b@h/x?token=1") == "http://h/x"


def test_markdown_summary_truncates_long_change_lists_with_a_count() -> None:
    md = render_markdown(sample_report(30), max_changes=10)
    assert "### Changes (29)" in md
    assert "- … and 19 more changes (see the JSON report)" in md
    assert md.count("- **create**") == 10
    assert "| create | 29 |" in md


def test_terminal_summary_is_one_line() -> None:
    line = render_terminal(sample_report())
    assert "\n" not in line
    # The sample's stranger is a conflict: counted in the headline (issue 13), then the counts.
    assert line.startswith("plan: changes planned, 1 conflict (see the report): 2 to create")


def test_reports_are_written_with_latest_copies(tmp_path: Path) -> None:
    report = sample_report()
    paths = write_report(report, tmp_path / "out", [ReportFormat.json, ReportFormat.markdown])
    assert [p.name for p in paths] == [
        "catalog-sync-20261122T000000Z-abc123.json",
        "catalog-sync-20261122T000000Z-abc123.md",
    ]
    assert json.loads((tmp_path / "out" / "latest.json").read_text()) == report
    assert (tmp_path / "out" / "latest.md").read_text() == paths[1].read_text()


def test_secrets_are_masked_in_log_lines_and_error_text() -> None:
    register_secrets([SECRET_TOKEN, SECRET_KEY])
    out = io.StringIO()
    configure("json", "debug", stream=out)
    structlog.get_logger("t").error("boom", detail=f"Bearer {SECRET_KEY}", nested={"k": [SECRET_TOKEN]})
    text = out.getvalue()
    assert SECRET_KEY not in text and SECRET_TOKEN not in text and "***" in text
    assert redact(f"x {SECRET_TOKEN} y") == "x *** y"


def test_the_json_report_is_valid_json_with_one_action_per_line(tmp_path: Path) -> None:
    report = sample_report(5)
    [path] = write_report(report, tmp_path, [ReportFormat.json])
    text = path.read_text()
    assert json.loads(text) == json.loads(json.dumps(report, default=list))  # rows may be LazyRows
    assert (tmp_path / "latest.json").read_text() == text
    action_lines = [line for line in text.splitlines() if line.startswith('    {"action"')]
    assert len(action_lines) == len(report["actions"]) == 4


def test_markdown_fits_a_pull_request_comment_however_many_changes() -> None:
    cfg = config(roles=[{"group": "ml", "max_budget": 99}])
    long_names = [user("u" + f"{i:05d}" + "x" * 150, "ml") for i in range(5000)]
    plan = build_plan(catalog(long_names), litellm([]), cfg)
    report = build_report(run_info(), plan, planned_results(plan))
    md = render_markdown(report)
    assert len(md) <= 60_000
    assert "| create | 5000 |" in md and "### Changes (5000)" in md
    shown = md.count("- **create**")
    assert 0 < shown < 5000
    assert f"- … and {5000 - shown} more changes (see the JSON report)" in md
    assert md.index("| create | 5000 |") < md.index("- **create**")  # counts before the changes


def ours(user_id: str, max_budget: float | None, spend: float) -> LiteLLMUser:
    """A user this job manages, with a budget and what was spent of it."""
    metadata = {"catalog_sync": {"managed": True}}
    return LiteLLMUser(user_id=user_id, max_budget=max_budget, spend=spend, metadata=metadata)


def test_budgets_list_managed_users_over_and_nearest_first() -> None:
    users = [
        ours("ok", 100, 10),
        ours("near", 100, 85),
        ours("over", 10, 12.5),
        ours("blocked", 0, 0),
        ours("unlimited", None, 500),
        LiteLLMUser(user_id="someone-elses", max_budget=1, spend=50),  # not managed: not listed
    ]
    report = build_report(run_info(), None, [], budgets=budgets_of(users))
    rows = list(report["budgets"])
    assert [r["user_id"] for r in rows] == ["over", "near", "ok", "blocked", "unlimited"]
    assert rows[0] == {
        "user_id": "over",
        "email": None,
        "spend": 12.5,
        "max_budget": 10,
        "budget_duration": None,
        "used": 1.25,
        "status": "over",
    }
    assert [r["status"] for r in rows] == ["over", "near", "ok", "zero", "none"]
    md = render_markdown(report)
    assert "### Budgets over or near the limit" in md
    assert "- `over` over: spent 12.5 of 10 (125%)" in md and "`near` near" in md and "`ok`" not in md


def test_spend_on_a_zero_budget_is_over_and_first_never_compared_in_dollars() -> None:
    users = [
        ours("triple", 10, 30),
        ours("zero-small", 0, 0.5),
        ours("zero-big", 0, 7),
        ours("b-half", 10, 5),
        ours("a-half", 20, 10),
        ours("big-unlimited", None, 900),
    ]
    rows = list(build_report(run_info(), None, [], budgets=budgets_of(users))["budgets"])
    assert [r["user_id"] for r in rows] == [
        "zero-big",
        "zero-small",
        "triple",
        "a-half",  # the same fraction used: by user id
        "b-half",
        "big-unlimited",  # no budget: last
    ]
    assert rows[1]["status"] == "over" and rows[1]["used"] is None


def test_markdown_counts_every_user_over_budget_beyond_the_line_limit() -> None:
    users = [ours(f"u{i:03d}", 1, 2) for i in range(30)]
    md = render_markdown(build_report(run_info(), None, [], budgets=budgets_of(users)), max_changes=10)
    assert md.count("` over: spent 2 of 1 (200%)") == 10
    assert "- … and 20 more users (see the JSON report)" in md
