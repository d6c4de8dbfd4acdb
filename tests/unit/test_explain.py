"""Why a person gets what they get (roles.explain), and how saved plans keep it for `show`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from catalog_sync.plan import build_plan
from catalog_sync.plan_view import explanation_words
from catalog_sync.planfile import load_plan, read_plan
from catalog_sync.roles import Explanation, explain, explain_people, resolve
from tests.factories import catalog, config, group, litellm, plan_text, user

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
ROLES = [
    {"group": "admins", "max_budget": 500},
    {"group": "ml-research", "max_budget": 200},
    {"group": "engineering", "max_budget": 50},
]
GROUPS = [
    group("engineering"),
    group("ml-research", "engineering"),
    group("team-b", "ml-research"),
    group("squad-7", "team-b"),
    group("finance"),
    group("admins"),
]


def test_a_nested_member_is_explained_with_the_path_up_to_the_role_group() -> None:
    cfg = config(roles=ROLES)
    bob = user("bob", "squad-7")
    why = explain(bob, catalog([bob], GROUPS).groups, cfg)
    assert why.role_index == 1 and why.role_group == "group:default/ml-research"
    assert why.path == ("group:default/squad-7", "group:default/team-b", "group:default/ml-research")
    assert why.tried == ("group:default/admins",)
    assert explanation_words(why) == (
        "role ml-research (roles[1]): member of squad-7 → team-b → ml-research (nested); "
        "earlier roles not matched: admins"
    )


def test_the_explanation_agrees_with_the_role_the_plan_gives() -> None:
    cfg = config(roles=ROLES)
    people = [
        user("amy", "finance", "team-b"),
        user("bo", "engineering"),
        user("cy", "admins", "squad-7"),
        user("di", "finance"),
        user("ed"),
    ]
    snap = catalog(people, GROUPS)
    explained = explain_people(snap, cfg, lambda uid, ref: True)
    for desired in resolve(snap, cfg).desired:
        why = explained[desired.user_id]
        assert (why.role_group or "defaults") == desired.role, desired.user_id
    assert explained["bo"].path == ("group:default/engineering",)
    assert explanation_words(explained["bo"]).endswith(
        "member of engineering (directly); earlier roles not matched: admins, ml-research"
    )


def test_the_defaults_say_that_no_role_matched_and_which_were_tried() -> None:
    cfg = config(roles=ROLES)
    di = user("di", "finance")
    why = explain(di, catalog([di], GROUPS).groups, cfg)
    assert why.role_index is None and why.path == ()
    assert explanation_words(why) == (
        "defaults: no role matched (member of finance; roles tried: admins, ml-research, engineering)"
    )
    assert explanation_words(explain(di, {}, config())) == (
        "defaults: no roles are configured (member of finance)"
    )


def test_without_nested_matching_only_direct_groups_count() -> None:
    cfg = config(roles=ROLES, match_nested_groups=False)
    bob = user("bob", "squad-7")
    why = explain(bob, catalog([bob], GROUPS).groups, cfg)
    assert why.role_index is None and why.nested is False
    assert explanation_words(why) == (
        "defaults: no role matched (member of squad-7; only direct groups count, "
        "match_nested_groups is false; roles tried: admins, ml-research, engineering)"
    )


def test_a_group_cycle_does_not_hang_the_explanation() -> None:
    groups = [group("a", "b"), group("b", "a"), group("engineering")]
    cy = user("cy", "a")
    why = explain(cy, catalog([cy], groups).groups, config(roles=ROLES))
    assert why.role_index is None


def test_people_with_the_same_groups_share_one_explanation() -> None:
    people = [user(f"p{i}", "team-b") for i in range(100)]
    explained = explain_people(catalog(people, GROUPS), config(roles=ROLES), lambda uid, ref: True)
    assert len({id(e) for e in explained.values()}) == 1


def _dump(plan, explanations):  # type: ignore[no-untyped-def]
    return plan_text(plan, NOW, litellm_url="http://litellm.test/", explanations=explanations)


def test_saved_plans_keep_the_explanations_grouped_and_read_them_back(tmp_path: Path) -> None:
    cfg = config(roles=ROLES)
    snap = catalog([user("amy", "team-b"), user("bo", "team-b"), user("cy", "finance")], GROUPS)
    plan = build_plan(snap, litellm([]), cfg)
    explained = explain_people(snap, cfg, lambda uid, ref: True)
    path = tmp_path / "plan.json"
    path.write_text(_dump(plan, explained))
    rows = json.loads(path.read_text())["explanations"]
    assert sorted(len(r["users"]) for r in rows) == [1, 2]  # amy and bo share theirs
    back = load_plan(path, litellm_url="http://litellm.test/", max_age=NOW - NOW.replace(year=2000), now=NOW)
    assert back.explanations == explained
    assert isinstance(back.explanations["amy"], Explanation)


def test_a_plan_saved_before_explanations_existed_still_loads(tmp_path: Path) -> None:
    plan = build_plan(catalog([user("amy", "team-b")], GROUPS), litellm([]), config(roles=ROLES))
    path = tmp_path / "old.json"
    data = json.loads(_dump(plan, None))
    assert "explanations" not in data
    path.write_text(json.dumps(data))
    old = read_plan(path)
    assert old.explanations == {} and [a.user_id for a in old.plan.actions] == ["amy"]
