"""The Markdown, HTML and terminal reports say changes in words: creates with their role and what it gives,
updates field by field, the ownership marker never as JSON, `[]` never at all, and conflicts in the
headline."""

from __future__ import annotations

import re

from catalog_sync.apply import planned_results
from catalog_sync.model import MARKER_KEY, LiteLLMUser
from catalog_sync.plan import build_plan
from catalog_sync.report import build_report, render_markdown, render_terminal
from catalog_sync.report_html import render_html
from tests.factories import catalog, config, group, litellm, managed_user, user
from tests.unit.test_report import run_info

ROLES = [
    {"group": "ml-research", "max_budget": 100, "models": ["gpt-4o"], "teams": ["ml-platform"]},
    {"group": "finance", "max_budget": 25, "models": [], "teams": ["finance-team"]},
]
GROUPS = [group("ml-research"), group("finance")]


def report_of(people: list, current: list, **cfg: object) -> dict:  # type: ignore[type-arg]
    plan = build_plan(
        catalog(people, GROUPS), litellm(current, ["ml-platform", "finance-team"]), config(**cfg)
    )
    return build_report(run_info(), plan, planned_results(plan))


def engineer(user_id: str, **fields: object) -> LiteLLMUser:
    return managed_user(user_id, models=("gpt-4o",), **fields)


def mixed_report() -> dict:  # type: ignore[type-arg]
    record = {"at": "2026-11-01T00:00:00+00:00", "max_budget": 10.0, "keys": [], "done": True}
    returning = managed_user("ret", extra_marker={"blocked": record}, max_budget=0.0, models=("gpt-4o",))
    stranger = LiteLLMUser(user_id="adoptee", user_email="adoptee@example.com", models=("all-proxy-models",))
    people = [
        user("carol", "finance"),
        user("bob", "ml-research"),
        user("ret", "ml-research"),
        user("adoptee"),
    ]
    return report_of(people, [engineer("bob"), returning, stranger], roles=ROLES, adopt_unmanaged=True)


def test_markdown_shows_each_create_with_its_role_budget_models_and_teams() -> None:
    md = render_markdown(mixed_report())
    assert "- **create** `carol`: role finance: max_budget 25, models all models, teams finance-team" in md


def test_markdown_shows_each_update_field_by_field_in_words() -> None:
    md = render_markdown(mixed_report())
    assert "- **update** `bob`: role defaults → ml-research, max_budget 10 → 100, teams +ml-platform" in md
    assert "- **update** `ret`: restored after block, role defaults → ml-research, max_budget 0 → 100," in md
    assert "- **update** `adoptee`: now managed by catalog-sync (adopted), " in md


def test_the_marker_and_empty_lists_never_appear_raw_in_markdown_html_or_the_terminal() -> None:
    report = mixed_report()
    for text in (render_markdown(report), render_html(report), render_terminal(report)):
        assert '"managed"' not in text and "&quot;managed&quot;" not in text and "'managed'" not in text
        assert "[]" not in text and "all-proxy-models" not in text
        assert not re.search(r"catalog_sync\W", text.replace("catalog-sync", ""))
    html = render_html(report)
    assert "restored after block" in html and "now managed by catalog-sync (adopted)" in html
    assert '<span class="before">0</span> → <span class="after">100</span>' in html
    assert "all models" in html
    # The JSON report keeps the raw values.
    bob = next(a for a in report["actions"] if a["user_id"] == "bob")
    marker = next(c for c in bob["changes"] if c["field"] == f"metadata.{MARKER_KEY}")
    assert marker["after"]["role"] == "group:default/ml-research"


def test_a_plan_of_conflicts_only_is_not_headlined_no_changes() -> None:
    strangers = [LiteLLMUser(user_id=n, user_email=f"{n}@example.com") for n in ("amy", "bo")]
    report = report_of([user("amy"), user("bo")], strangers)
    assert report["result"] == "no_changes"  # the JSON keeps its stable label
    md = render_markdown(report)
    assert md.splitlines()[0] == "## catalog-sync plan: no changes, 2 conflicts"
    assert render_terminal(report).startswith("plan: no changes, 2 conflicts (see the report): 0 to create")
    assert render_terminal(report).endswith(", 2 conflicts, 0 warnings")  # the counts stay complete
    one = report_of([user("amy")], strangers[:1])
    assert render_terminal(one).startswith("plan: no changes, 1 conflict (see the report)")


def test_people_left_out_are_counted_in_the_headline() -> None:
    people = [user("svc-bot"), user("nomail", email=None), user("amy")]
    report = report_of(people, [], deprovision={"protect": ["svc-*"]}, user_id={"source": "email"})
    assert (
        render_markdown(report).splitlines()[0] == "## catalog-sync plan: changes planned, 2 people left out"
    )
    line = render_terminal(report)
    assert line.startswith("plan: changes planned, 2 people left out (see the report): 1 to create")
    assert line.endswith(", 2 warnings")


def test_a_clean_plan_keeps_its_plain_headline() -> None:
    report = report_of([user("amy")], [])
    assert render_markdown(report).splitlines()[0] == "## catalog-sync plan: changes planned"
    assert render_terminal(report) == (
        "plan: changes planned: 1 to create, 0 to update, 0 unchanged, 0 left the catalog, 0 conflicts, "
        "0 warnings"
    )
