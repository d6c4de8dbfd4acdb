"""Roles that do not do what the config says: a missing group stops the run; matching nobody is warned."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from catalog_sync.model import MARKER_KEY, LiteLLMUser
from catalog_sync.plan import build_plan, check_guards, role_warnings
from catalog_sync.planfile import load_plan
from catalog_sync.roles import resolve
from tests.factories import catalog, config, group, litellm, plan_text, user

GROUPS = [group("eng"), group("ml", "eng"), group("finance"), group("interns")]
PEOPLE = [user("amy", "ml"), user("bo", "eng"), user("cy", "finance"), user("di", "finance")]


def holding(name: str, role: str) -> LiteLLMUser:
    """A managed user as a run with `role` left it (only the marker matters here)."""
    marker = {"managed": True, "entity_ref": f"user:default/{name}", "role": role, "keys": []}
    return LiteLLMUser(user_id=f"{name}@example.com", metadata={MARKER_KEY: marker})


def cfg(roles: list[dict[str, Any]], **kw: Any) -> Any:
    return config(user_id={"domain": "example.com"}, roles=roles, **kw)


def checks(roles: list[dict[str, Any]], **kw: Any) -> dict[int, Any]:
    return {c.index: c for c in resolve(catalog(PEOPLE, GROUPS), cfg(roles, **kw)).roles}


def test_members_and_matches_per_role_count_nested_groups() -> None:
    got = checks([{"group": "ml"}, {"group": "eng"}, {"group": "interns"}, {"group": "eng/x"}])
    assert [(got[i].has_members, got[i].matched) for i in range(4)] == [
        (True, True),
        (True, True),
        (False, False),
        (False, False),
    ]
    # amy is in ml, under eng: eng above ml takes her (ml is shadowed) unless nesting is off.
    shadowing = checks([{"group": "eng"}, {"group": "ml"}])
    assert (shadowing[1].has_members, shadowing[1].matched) == (True, False)
    flat = checks([{"group": "eng"}, {"group": "ml"}], match_nested_groups=False)
    assert (flat[1].has_members, flat[1].matched) == (True, True)


def test_a_role_that_matches_nobody_and_a_shadowed_role_are_warnings() -> None:
    roles = [{"group": "eng"}, {"group": "ml"}, {"group": "interns"}, {"group": "finance"}]
    res = resolve(catalog(PEOPLE, GROUPS), cfg(roles))
    by_code = {w.code: w.message for w in res.warnings}
    # ml's only member (amy, through nesting) is taken by eng above it.
    assert by_code["role_shadowed"] == (
        "roles[1] (group:default/ml, written 'ml') matches nobody: every member of its group is taken by a "
        "role above it"
    )
    assert by_code["role_unmatched"] == "roles[2] (group:default/interns, written 'interns') matches nobody"
    assert not [w for w in res.warnings if "finance" in w.message]
    # Written as a full ref, the label does not repeat it.
    assert checks([{"group": "group:default/interns"}])[0].label == "roles[0] (group:default/interns)"


def test_a_shadowed_role_needs_at_least_one_member_and_none_left() -> None:
    # finance has members, and one of them (di) is not taken above: not shadowed.
    people = [*PEOPLE[:3], user("di", "finance", "interns")]
    roles = [{"group": "interns"}, {"group": "finance"}]
    res = resolve(catalog(people, GROUPS), cfg(roles))
    assert [w.code for w in res.warnings] == []


def test_a_missing_group_trips_a_guard_naming_the_role_group_and_the_people_it_moves() -> None:
    # The config had `finance`; someone typed `finanse`. cy and di hold finance today.
    current = [holding("cy", "group:default/finance"), holding("di", "group:default/finance")]
    c = cfg([{"group": "finanse", "max_budget": 25}], guards={"max_downgrades": "100%"})
    plan = build_plan(catalog(PEOPLE, GROUPS), litellm(current), c)
    [trip] = check_guards(plan, c)
    assert (trip.guard, trip.limit, trip.planned) == ("role_group_missing", 0, 2)
    assert trip.message == (
        "roles[0] (group:default/finanse, written 'finanse'): the group does not exist in the catalog "
        "(did you mean group:default/finance?); 2 people would change role because of it (holding this "
        "role or group:default/finance's today); fix the group, or set optional: true on the role"
    )
    assert role_warnings(plan) == [trip.message]
    assert [w.code for w in plan.warnings if w.code.startswith("role_")] == ["role_group_missing"]


def test_a_group_renamed_in_the_catalog_counts_the_people_holding_the_role() -> None:
    current = [holding("cy", "group:default/accounts"), holding("di", "group:default/accounts")]
    c = cfg([{"group": "accounts"}], guards={"max_downgrades": "100%"})
    [trip] = check_guards(build_plan(catalog(PEOPLE, GROUPS), litellm(current), c), c)
    assert (
        trip.planned == 2
        and "did you mean" not in trip.message
        and "(holding this role today)" in trip.message
    )


def test_a_missing_group_on_a_first_run_still_stops_it() -> None:
    c = cfg([{"group": "nowhere"}])
    [trip] = check_guards(build_plan(catalog(PEOPLE, GROUPS), litellm([]), c), c)
    assert trip.guard == "role_group_missing" and trip.planned == 0 and "0 people would" in trip.message


def test_an_optional_role_with_a_missing_group_is_only_a_warning() -> None:
    c = cfg([{"group": "finanse", "optional": True}], guards={"max_downgrades": "100%"})
    plan = build_plan(catalog(PEOPLE, GROUPS), litellm([holding("cy", "group:default/finance")]), c)
    assert check_guards(plan, c) == ()
    [line] = role_warnings(plan)
    assert line.endswith(
        "does not exist in the catalog (did you mean group:default/finance?) "
        "(optional: true, so only this warning)"
    )


def test_the_suggestion_is_an_unused_group_of_a_similar_name_in_the_same_namespace() -> None:
    assert checks([{"group": "finanse"}])[0].suggestion == "group:default/finance"
    # finance is already another role's group: not what finanse meant.
    assert checks([{"group": "finance"}, {"group": "finanse"}])[1].suggestion is None
    assert checks([{"group": "other/finanse"}])[0].suggestion is None
    assert checks([{"group": "xyz"}])[0].suggestion is None


def test_a_saved_plan_keeps_the_role_checks_so_apply_stops_and_warns_too(tmp_path: Path) -> None:
    c = cfg([{"group": "finanse"}, {"group": "interns"}], guards={"max_downgrades": "100%"})
    plan = build_plan(catalog(PEOPLE, GROUPS), litellm([holding("cy", "group:default/finance")]), c)
    now = datetime.now(timezone.utc)
    text = plan_text(plan, now)
    assert json.loads(text)["roles"][0]["holders_lost"] == 1
    path = tmp_path / "plan.json"
    path.write_text(text)
    saved = load_plan(path, litellm_url="http://litellm.test", max_age=timedelta(hours=1), now=now)
    assert saved.plan.roles == plan.roles
    assert [t.guard for t in check_guards(saved.plan, c)] == ["role_group_missing"]
    assert role_warnings(saved.plan) == role_warnings(plan) and len(role_warnings(plan)) == 2
