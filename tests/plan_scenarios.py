"""Saved plans (plan --out, apply), run on the simulators and on the real servers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.envs import Env, group_doc, user_doc
from tests.scenarios import DEFAULTS, MOVES_ALLOWED, ORG_GROUPS, ROLES, org, setup


def saved_plan_applies_exactly_what_was_reviewed(env: Env) -> None:
    cfg = setup(env, guards=MOVES_ALLOWED)
    assert env.cli("run", "-c", str(cfg)).code == 0
    # A reviewed change: bob moves to ml-research.
    entities = org()
    entities[len(ORG_GROUPS) + 1] = user_doc("bob", ["ml-research"])
    env.set_catalog(entities)
    plan_file = env.work / "reviewed.json"
    planned = env.cli("plan", "-c", str(cfg), "--out", str(plan_file))
    assert planned.code == 0 and plan_file.exists()
    saved = json.loads(plan_file.read_text())
    assert [(a["kind"], a["user_id"]) for a in saved["actions"]] == [("update", "bob@example.com")]
    # The catalog moves on after the review (erin joins): apply must not pick that up.
    env.set_catalog([*entities, user_doc("erin", ["finance"])])
    applied = env.cli("apply", str(plan_file), "-c", str(cfg))
    assert applied.code == 0, applied.stdout + applied.stderr
    assert applied.report["run"]["command"] == "apply"
    assert [(a["user_id"], a["outcome"]) for a in applied.report["actions"]] == [
        ("bob@example.com", "applied")
    ]
    users = env.all_users()
    assert users["bob@example.com"]["max_budget"] == 200 and "erin@example.com" not in users


def a_stale_plan_is_refused_and_nothing_is_applied(env: Env) -> None:
    cfg = setup(env, guards=MOVES_ALLOWED)
    assert env.cli("run", "-c", str(cfg)).code == 0
    entities = org()
    entities[len(ORG_GROUPS) + 1] = user_doc("bob", ["ml-research"])
    env.set_catalog([*entities, user_doc("erin", ["finance"])])
    plan_file = env.work / "reviewed.json"
    assert env.cli("plan", "-c", str(cfg), "--out", str(plan_file)).code == 0
    # Someone changes bob's budget by hand after the review.
    env.update_user("bob@example.com", {"max_budget": 77})
    applied = env.cli("apply", str(plan_file), "-c", str(cfg))
    assert applied.code == 1
    summary = applied.stdout.splitlines()[0]
    assert (
        "stale" in summary and "bob@example.com (max_budget is now 77.0, the plan expected 50.0)" in summary
    )
    users = env.all_users()
    assert users["bob@example.com"]["max_budget"] == 77 and "erin@example.com" not in users


def an_old_or_foreign_plan_is_refused(env: Env) -> None:
    cfg = setup(env)
    plan_file = env.work / "reviewed.json"
    assert env.cli("plan", "-c", str(cfg), "--out", str(plan_file)).code == 0
    data = json.loads(plan_file.read_text())
    data["created_at"] = (datetime.now(timezone.utc) - timedelta(hours=3)).isoformat(timespec="seconds")
    plan_file.write_text(json.dumps(data))
    old = env.cli("apply", str(plan_file), "-c", str(cfg))
    assert old.code == 1 and "older than the 60 min allowed" in old.stderr
    data["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data["litellm_url"] = "https://other-proxy.example.com"
    plan_file.write_text(json.dumps(data))
    foreign = env.cli("apply", str(plan_file), "-c", str(cfg))
    assert foreign.code == 1 and "made for LiteLLM at https://other-proxy.example.com" in foreign.stderr
    assert not [u for u in env.all_users() if u.endswith("@example.com")]
    longer = env.config(defaults=DEFAULTS, roles=ROLES, max_plan_age_minutes=600)
    data["litellm_url"] = env.litellm_url
    data["created_at"] = (datetime.now(timezone.utc) - timedelta(hours=3)).isoformat(timespec="seconds")
    plan_file.write_text(json.dumps(data))
    assert env.cli("apply", str(plan_file), "-c", str(longer)).code == 0
    assert len([u for u in env.all_users() if u.endswith("@example.com")]) == 4


def a_plan_reads_per_person_and_says_why_through_nested_groups(env: Env) -> None:
    """plan/show print each person's changes; --user says which group path gave bob his role (issue 13)."""
    cfg = setup(env, guards=MOVES_ALLOWED)
    assert env.cli("run", "-c", str(cfg)).code == 0
    entities = org()
    entities[len(ORG_GROUPS) + 1] = user_doc("bob", ["team-b"])  # team-b sits under ml-research
    env.set_catalog([*entities, group_doc("team-b", parent="ml-research")])
    moves = "~ bob@example.com  role engineering → ml-research, max_budget 50 → 200, "
    why = "    why: role ml-research (roles[0]): member of team-b → ml-research (nested)"
    plan_file = env.work / "reviewed.json"
    planned = env.cli("plan", "-c", str(cfg), "--out", str(plan_file), "--user", "BOB*")
    assert planned.code == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[1].startswith(moves) and lines[2] == why
    shown = env.cli("show", str(plan_file), "--user", "*@example.com")
    assert shown.code == 0 and why in shown.stdout.splitlines()
    as_json = json.loads(env.cli("plan", "-c", str(cfg), "--json").stdout)
    assert [a["user_id"] for a in as_json["actions"]] == ["bob@example.com"]


PLAN_SCENARIOS = [
    saved_plan_applies_exactly_what_was_reviewed,
    a_stale_plan_is_refused_and_nothing_is_applied,
    an_old_or_foreign_plan_is_refused,
    a_plan_reads_per_person_and_says_why_through_nested_groups,
]
