"""The plan in words (plan_view): per-person lines, the shared wording of changes, `--user` selection."""

from __future__ import annotations

from dataclasses import replace

from catalog_sync.apply import ActionResult, Outcome, planned_results
from catalog_sync.model import MARKER_KEY, LiteLLMUser
from catalog_sync.plan import ALL_PROXY_MODELS, Plan, build_plan
from catalog_sync.plan_view import (
    Selection,
    action_line,
    describe,
    json_extra,
    plan_lines,
    plural,
    problems_words,
    selected_plan,
)
from catalog_sync.roles import explain_people
from tests.factories import catalog, config, group, litellm, managed_user, user

ROLES = [
    {"group": "ml-research", "max_budget": 100, "models": ["gpt-4o", "mini"], "teams": ["ml-platform"]},
    {"group": "engineering", "max_budget": 50, "models": ["mini"]},
    {"group": "finance", "max_budget": 25, "models": [], "teams": ["finance-team"]},
]
GROUPS = [
    group("engineering"),
    group("ml-research", "engineering"),
    group("team-b", "ml-research"),
    group("finance"),
]


def ours(user_id: str, **fields: object) -> LiteLLMUser:
    """A LiteLLM user this job made as an engineering person."""
    base: dict[str, object] = {"max_budget": 50.0, "models": ("mini",), **fields}
    return managed_user(user_id, "group:default/engineering", **base)


def a_plan(mode: str = "block") -> Plan:
    people = [user("bob", "team-b"), user("carol", "finance"), user("eve", "engineering")]
    current = [ours("bob"), ours("eve"), ours("dave")]
    return build_plan(
        catalog(people, GROUPS),
        litellm(current, ["ml-platform", "finance-team"]),
        config(roles=ROLES, deprovision={"mode": mode}),
    )


def test_each_person_on_one_line_terraform_like() -> None:
    lines = plan_lines(planned_results(a_plan()), a_plan())
    assert lines == [
        "+ carol  role finance: max_budget 25, models all models, teams finance-team",
        "~ bob  role engineering → ml-research, max_budget 50 → 100, models +gpt-4o, teams +ml-platform",
        "- dave  block (not in the catalog)",
    ]


def test_the_marker_is_said_in_words_never_as_json() -> None:
    before = {"managed": True, "role": "group:default/engineering", "keys": ["a"], "entity_ref": "user:x/a"}
    after = {
        "managed": True,
        "role": "group:default/ml-research",
        "keys": ["a", "b"],
        "entity_ref": "user:x/a",
    }
    field = f"metadata.{MARKER_KEY}"
    assert str(describe(field, before, after)) == "role engineering → ml-research"
    assert str(describe(field, before, {**before, "keys": ["a", "b"]})) == "owns metadata keys +b"
    assert str(describe(field, None, after, adopt=True)) == "now managed by catalog-sync (adopted)"
    assert str(describe(field, None, after)) == "now managed by catalog-sync (was the Backstage plugin's)"
    blocked = {**after, "blocked": {"at": "2026-01-01", "max_budget": 10, "keys": ["k"], "done": True}}
    assert str(describe(field, blocked, after)) == "restored after block"
    assert str(describe(field, after, dict(after))) == "bookkeeping refreshed"
    for words in (
        describe(field, before, after),
        describe(field, None, after),
        describe(field, blocked, after),
    ):
        assert "{" not in str(words) and "managed" not in str(words).replace("now managed", "")


def test_all_models_is_said_in_words_never_as_an_empty_list() -> None:
    assert str(describe("models", ["gpt-4o"], [])) == "models gpt-4o → all models"
    assert str(describe("models", [ALL_PROXY_MODELS], ["gpt-4o"])) == "models all models → gpt-4o"
    assert str(describe("models", None, [], create=True)) == "models all models"
    assert str(describe("models", ["a"], ["a", "b"])) == "models +b"
    assert str(describe("teams", ["x", "y"], ["y", "z"])) == "teams +z -x"
    assert str(describe("max_budget", None, 10.0)) == "max_budget no limit → 10"
    assert str(describe("max_budget", 12.5, None)) == "max_budget 12.5 → no limit"
    assert str(describe("metadata", None, {"cost_center": "r", MARKER_KEY: {"x": 1}}, create=True)) == (
        "metadata cost_center r"
    )


def test_adopted_and_returning_people_read_in_words() -> None:
    stranger = LiteLLMUser(user_id="eve", user_email="eve@example.com", max_budget=5.0)
    plan = build_plan(
        catalog([user("eve", "engineering")], GROUPS),
        litellm([stranger]),
        config(roles=ROLES, adopt_unmanaged=True),
    )
    [line] = plan_lines(planned_results(plan), plan)
    assert line.startswith("~ eve  now managed by catalog-sync (adopted), user_alias none → Eve,")
    assert ", max_budget 5 → 50, budget_duration none → 30d, models all models → mini" in line
    gone = ours("bob", max_budget=0.0)
    marker = {**gone.metadata[MARKER_KEY], "blocked": {"max_budget": 50.0, "keys": [], "done": True}}
    back = ours("bob", max_budget=0.0, metadata={MARKER_KEY: marker})
    plan = build_plan(catalog([user("bob", "engineering")], GROUPS), litellm([back]), config(roles=ROLES))
    assert plan_lines(planned_results(plan), plan) == ["~ bob  restored after block, max_budget 0 → 50"]


def test_outcomes_are_marked_and_failures_come_first() -> None:
    plan = a_plan()
    results = [
        ActionResult(plan.creates[0], Outcome.applied),
        ActionResult(plan.updates[0], Outcome.failed, "HTTP 500 from POST /user/update"),
        ActionResult(plan.deprovisions[0], Outcome.blocked_by_guard),
    ]
    lines = plan_lines(results, plan)
    assert lines[0] == (
        "~ bob  role engineering → ml-research, max_budget 50 → 100, models +gpt-4o, teams +ml-platform"
        "  FAILED: HTTP 500 from POST /user/update"
    )
    assert lines[2] == "- dave  block (not in the catalog)  (not applied: a guard tripped)"


def test_deprovisioning_says_its_mode() -> None:
    plan = a_plan("report")
    assert plan_lines(planned_results(plan), plan)[-1] == (
        "- dave  not in the catalog (deprovision.mode report: listed only)"
    )
    withheld = Plan(
        **{**{f: getattr(plan, f) for f in plan.__slots__}, "deprovision_withheld": "reads short"}
    )
    result = planned_results(withheld)[-1]
    assert result.outcome is Outcome.withheld
    assert action_line(result).startswith("- dave  deprovision withheld this run (not in the catalog;")


def test_long_lists_are_cut_with_a_count() -> None:
    plan = build_plan(catalog([user(f"p{i:03d}") for i in range(120)]), litellm([]), config())
    lines = plan_lines(planned_results(plan), plan)
    assert len(lines) == 51 and lines[-1] == "… and 70 more (see the report)"
    lines = plan_lines(planned_results(plan), plan, limit=10, more_in="the plan file")
    assert lines[-1] == "… and 110 more (see the plan file)"


def test_conflicts_are_listed_after_the_changes() -> None:
    stranger = LiteLLMUser(user_id="eve", user_email="eve@example.com")
    plan = build_plan(catalog([user("eve"), user("amy")], GROUPS), litellm([stranger]), config())
    lines = plan_lines(planned_results(plan), plan)
    assert lines[0].startswith("+ amy  defaults (no role matched): max_budget")
    assert lines[1].startswith("! eve  conflict: LiteLLM user eve exists but was not created by catalog-sync")


def test_user_selection_by_glob_shows_why_for_changed_unchanged_and_conflicts() -> None:
    stranger = LiteLLMUser(user_id="zed", user_email="zed@example.com")
    same = ours("eve")
    people = [user("bob", "team-b"), user("eve", "engineering"), user("zed", "finance")]
    cfg = config(roles=ROLES)
    snap = catalog(people, GROUPS)
    plan = build_plan(snap, litellm([ours("bob"), same, stranger], ["ml-platform", "finance-team"]), cfg)
    assert plan.unchanged == ("eve",)
    select = Selection(("b*", "EVE", "user:default/zed", "nobody*"))
    why = explain_people(snap, cfg, lambda uid, ref: select.matches(uid, ref))
    lines = plan_lines(planned_results(plan), plan, select=select, explanations=why)
    assert lines == [
        "? nobody*  no one in this plan matches",
        "~ bob  role engineering → ml-research, max_budget 50 → 100, models +gpt-4o, teams +ml-platform",
        "    why: role ml-research (roles[0]): member of team-b → ml-research (nested)",
        "    gets: max_budget 100, budget_duration 30d, models gpt-4o, mini, teams ml-platform",
        "! zed  conflict: LiteLLM user zed exists but was not created by catalog-sync; left untouched "
        "(set adopt_unmanaged to take it over)",
        "    why: role finance (roles[2]): member of finance (directly); earlier roles not matched: "
        "ml-research, engineering",
        "    gets: max_budget 25, budget_duration 30d, models all models, teams finance-team",
        "  eve  unchanged",
        "    why: role engineering (roles[1]): member of engineering (directly); earlier roles not matched: "
        "ml-research",
        "    gets: max_budget 50, budget_duration 30d, models mini, teams none",
    ]


def test_selected_plan_keeps_only_those_people() -> None:
    plan = a_plan()
    mine = selected_plan(plan, Selection(("c*", "dave")))
    assert [a.user_id for a in mine.actions] == ["carol", "dave"]
    assert set(mine.desired) == {"carol"} and mine.unchanged == ()
    assert selected_plan(plan, None) is plan


def test_plurals_and_problem_counts() -> None:
    assert plural(1, "conflict") == "1 conflict" and plural(2, "conflict") == "2 conflicts"
    assert plural(1, "person", "people") == "1 person" and plural(3, "person", "people") == "3 people"
    assert problems_words(0, 0) == ""
    assert problems_words(3, 1) == "3 conflicts, 1 person left out"
    assert problems_words(0, 2) == "2 people left out"


def test_json_extra_lists_the_deprovisioning_that_is_not_applied() -> None:
    assert [d["user_id"] for d in json_extra(a_plan("report"))["listed_deprovisions"]] == ["dave"]
    blocking = a_plan("block")
    assert json_extra(blocking)["listed_deprovisions"] == []
    withheld = replace(blocking, deprovision_withheld="short")
    assert [d["kind"] for d in json_extra(withheld)["listed_deprovisions"]] == ["block"]
    assert json_extra(blocking)["unchanged"] == ["eve"]


def test_user_selection_finds_people_left_out_too() -> None:
    cfg = config(user_id={"source": "email"}, deprovision={"protect": ["svc-*"]})
    plan = build_plan(catalog([user("svc-bot"), user("nomail", email=None)]), litellm([]), cfg)
    lines = plan_lines(planned_results(plan), plan, select=Selection(("svc*", "nomail")), explanations={})
    assert lines[1] == (
        "  svc-bot@example.com  left out: svc-bot@example.com (user:default/svc-bot) matches "
        "deprovision.protect; left untouched"
    )
    assert lines[0] == (
        "  user:default/nomail  left out: user:default/nomail has no profile e-mail; "
        "it cannot be given a user id"
    )


def test_a_stopped_run_marks_what_was_cut_short_and_lists_it_first() -> None:
    plan = a_plan()
    results = [
        ActionResult(plan.creates[0], Outcome.applied),
        ActionResult(plan.updates[0], Outcome.not_started),
        ActionResult(plan.deprovisions[0], Outcome.interrupted),
    ]
    lines = plan_lines(results, plan)
    assert lines[0] == "- dave  block (not in the catalog)  INTERRUPTED (may be partly applied)"
    assert lines[2].startswith("~ bob  ") and lines[2].endswith("  NOT STARTED (the run was stopped)")
