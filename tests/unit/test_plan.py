from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_sync.model import MARKER_KEY, LiteLLMSnapshot, LiteLLMUser
from catalog_sync.plan import ALL_PROXY_MODELS, Plan, build_plan, marker_for
from catalog_sync.roles import resolve
from tests.factories import catalog, config, group, litellm, user

CFG = config(
    defaults={
        "max_budget": 10,
        "budget_duration": "30d",
        "models": ["m1"],
        "metadata": {"src": "bs"},
        "teams": ["everyone"],
    },
    roles=[
        {
            "group": "ml",
            "max_budget": 200,
            "models": ["m1", "m2"],
            "teams": ["ml-team"],
            "tpm_limit": 1000,
            "metadata": {"cc": "research"},
        }
    ],
)
GROUPS = [group("ml"), group("fin")]


def managed(desired_user: Any, **fields: Any) -> LiteLLMUser:
    """A LiteLLM row exactly as a previous run would have left it."""
    base = LiteLLMUser(
        user_id=desired_user.user_id,
        user_email=desired_user.user_email,
        user_alias=desired_user.user_alias,
        user_role=desired_user.user_role,
        max_budget=desired_user.max_budget,
        budget_duration=desired_user.budget_duration,
        models=desired_user.models,
        tpm_limit=desired_user.tpm_limit,
        rpm_limit=desired_user.rpm_limit,
        metadata={**desired_user.metadata, MARKER_KEY: marker_for(desired_user)},
        teams=tuple(sorted(desired_user.teams)),
    )
    return replace(base, **fields)


def desired_of(cfg: Any, *users: Any) -> dict[str, Any]:
    return {d.user_id: d for d in resolve(catalog(list(users), GROUPS), cfg).desired}


def test_first_run_creates_everyone_with_every_field_and_no_key() -> None:
    plan = build_plan(
        catalog([user("amy", "ml"), user("bo")], GROUPS), litellm([], ["everyone", "ml-team"]), CFG
    )
    assert [a.user_id for a in plan.creates] == ["amy", "bo"]
    amy = plan.creates[0].payload
    assert amy["auto_create_key"] is False
    assert amy["max_budget"] == 200.0 and amy["models"] == ["m1", "m2"] and amy["tpm_limit"] == 1000
    assert amy["teams"] == ["ml-team"]
    assert amy["metadata"]["cc"] == "research" and amy["metadata"]["src"] == "bs"
    assert amy["metadata"][MARKER_KEY]["entity_ref"] == "user:default/amy"
    assert set(amy) >= {"user_email", "user_alias", "user_role", "budget_duration", "rpm_limit"}
    assert plan.creates[1].payload["teams"] == ["everyone"]
    assert plan.has_changes


def test_second_run_is_unchanged() -> None:
    d = desired_of(CFG, user("amy", "ml"), user("bo"))
    snap = litellm([managed(d["amy"]), managed(d["bo"])], ["everyone", "ml-team"])
    plan = build_plan(catalog([user("amy", "ml"), user("bo")], GROUPS), snap, CFG)
    assert plan.actions == ()
    assert plan.unchanged == ("amy", "bo")
    assert not plan.has_changes


def test_move_to_another_group_updates_exactly_the_affected_fields() -> None:
    d = desired_of(CFG, user("amy"))
    snap = litellm(
        [
            managed(
                d["amy"], metadata={**d["amy"].metadata, MARKER_KEY: marker_for(d["amy"]), "someone": "else"}
            )
        ],
        ["everyone", "ml-team"],
    )
    plan = build_plan(catalog([user("amy", "ml")], GROUPS), snap, CFG)
    (action,) = plan.updates
    fields = {c.field for c in action.changes}
    assert fields == {"max_budget", "models", "tpm_limit", "metadata.cc", f"metadata.{MARKER_KEY}", "teams"}
    assert action.payload["max_budget"] == 200.0
    assert action.payload["metadata"]["someone"] == "else"  # other people's keys survive the replace
    assert action.team_adds == ("ml-team",) and action.team_removes == ("everyone",)
    assert "user_email" not in action.payload


def test_unmanaged_user_with_same_id_is_a_conflict_unless_adopting() -> None:
    stranger = LiteLLMUser(user_id="amy", user_email="amy@example.com", metadata={"mine": 1})
    snap = litellm([stranger], ["everyone", "ml-team"])
    plan = build_plan(catalog([user("amy")], GROUPS), snap, CFG)
    assert plan.actions == () and [c.code for c in plan.conflicts] == ["unmanaged_user_exists"]
    adopting = build_plan(
        catalog([user("amy")], GROUPS),
        snap,
        config(**{**CFG.model_dump(mode="json", exclude={"backstage", "litellm"}), "adopt_unmanaged": True}),
    )
    (action,) = adopting.updates
    assert action.adopt and action.payload["metadata"]["mine"] == 1


def test_plugin_made_user_is_adopted_as_managed() -> None:
    plugin_user = LiteLLMUser(
        user_id="amy",
        user_email="amy@example.com",
        metadata={"provisioned_by": "backstage", "backstage_entity": "user:default/amy"},
    )
    plan = build_plan(catalog([user("amy")], GROUPS), litellm([plugin_user]), CFG)
    assert plan.conflicts == ()
    (action,) = plan.updates
    assert not action.adopt
    assert action.payload["metadata"]["backstage_entity"] == "user:default/amy"
    assert MARKER_KEY in action.payload["metadata"]


def test_email_held_by_another_user_is_a_conflict() -> None:
    other = LiteLLMUser(user_id="someone-else", user_email="AMY@example.com")
    plan = build_plan(catalog([user("amy")], GROUPS), litellm([other]), CFG)
    assert plan.creates == ()
    assert [c.code for c in plan.conflicts] == ["email_taken"]


def test_managed_users_that_left_are_listed_for_deprovisioning_only() -> None:
    d = desired_of(CFG, user("gone"))
    stranger = LiteLLMUser(user_id="not-ours")
    plan = build_plan(catalog([], GROUPS), litellm([managed(d["gone"]), stranger]), CFG)
    assert [a.user_id for a in plan.deprovisions] == ["gone"]
    assert plan.deprovisions[0].entity_ref == "user:default/gone"
    assert plan.actions == ()


def test_empty_model_list_is_written_as_all_proxy_models_and_read_back_equal() -> None:
    cfg = config(defaults={"models": []})
    d = desired_of(cfg, user("amy"))["amy"]
    plan = build_plan(catalog([user("amy")], GROUPS), litellm([managed(d, models=("m1",))]), cfg)
    assert plan.updates[0].payload["models"] == [ALL_PROXY_MODELS]
    same = build_plan(catalog([user("amy")], GROUPS), litellm([managed(d, models=(ALL_PROXY_MODELS,))]), cfg)
    assert same.actions == ()


def test_removed_config_metadata_key_is_deleted_but_foreign_keys_kept() -> None:
    old_cfg = config(defaults={"metadata": {"a": "1", "b": "2"}})
    old = desired_of(old_cfg, user("amy"))["amy"]
    row = managed(old, metadata={**old.metadata, MARKER_KEY: marker_for(old), "foreign": True})
    new_cfg = config(defaults={"metadata": {"a": "1"}})
    (action,) = build_plan(catalog([user("amy")], GROUPS), litellm([row]), new_cfg).updates
    assert action.payload["metadata"] == {
        "a": "1",
        "foreign": True,
        MARKER_KEY: action.payload["metadata"][MARKER_KEY],
    }
    assert {c.field for c in action.changes} == {"metadata.b", f"metadata.{MARKER_KEY}"}


def test_teams_not_named_by_the_config_are_left_alone_and_missing_teams_warned() -> None:
    d = desired_of(CFG, user("bo"))["bo"]
    row = managed(d, teams=("everyone", "hand-made"))
    plan = build_plan(catalog([user("bo")], GROUPS), litellm([row], ["everyone", "hand-made"]), CFG)
    assert plan.actions == ()
    assert "team_missing" in {w.code for w in plan.warnings}


def test_duplicate_ids_are_conflicts_and_not_deprovisioned() -> None:
    d = desired_of(CFG, user("alice"))["alice"]
    snap = catalog([user("Alice"), user("alice", namespace="other")], GROUPS)
    plan = build_plan(snap, litellm([managed(d)]), CFG)
    assert [c.code for c in plan.conflicts] == ["duplicate_user_id"]
    assert plan.deprovisions == ()


# --- property: applying a plan the way LiteLLM does converges (the next plan is empty) -------------------


def apply_like_litellm(plan: Plan, snap: LiteLLMSnapshot) -> LiteLLMSnapshot:
    users = dict(snap.users)
    for action in plan.creates:
        p = action.payload
        users[action.user_id] = LiteLLMUser(
            user_id=action.user_id,
            user_email=p["user_email"],
            user_alias=p["user_alias"],
            user_role=p["user_role"],
            max_budget=p["max_budget"],
            budget_duration=p["budget_duration"],
            models=tuple(p["models"]),
            tpm_limit=p["tpm_limit"],
            rpm_limit=p["rpm_limit"],
            metadata=p["metadata"],
            teams=tuple(p["teams"]),
        )
    for action in plan.updates:
        row = users[action.user_id]
        fields = {k: (tuple(v) if k == "models" else v) for k, v in action.payload.items()}
        teams = (set(row.teams) | set(action.team_adds)) - set(action.team_removes)
        users[action.user_id] = replace(row, **fields, teams=tuple(sorted(teams)))
    return LiteLLMSnapshot(users=users, total=len(users), teams=snap.teams)


names = st.sampled_from(["amy", "bo", "cy", "dee", "Ed", "fay"])
memberships = st.lists(st.sampled_from(["ml", "fin", "none"]), max_size=2)
budgets = st.one_of(st.none(), st.integers(0, 500))
role_st = st.fixed_dictionaries(
    {"group": st.sampled_from(["ml", "fin"])},
    optional={
        "max_budget": budgets,
        "models": st.lists(st.sampled_from(["m1", "m2", "m3"]), max_size=3),
        "teams": st.lists(st.sampled_from(["t1", "t2"]), max_size=2),
        "tpm_limit": st.one_of(st.none(), st.integers(0, 10)),
        "metadata": st.dictionaries(st.sampled_from(["k1", "k2"]), st.text(max_size=3), max_size=2),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    people=st.dictionaries(names, memberships, max_size=6),
    roles=st.lists(role_st, max_size=2, unique_by=lambda r: r["group"]),
    default_models=st.lists(st.sampled_from(["m1", "m2"]), max_size=2),
    prior=st.dictionaries(
        names,
        st.tuples(
            budgets,
            st.lists(st.sampled_from(["m1", "m3"]), max_size=2),
            st.lists(st.sampled_from(["t1", "t2", "x"]), max_size=2),
        ),
        max_size=6,
    ),
)
def test_plan_then_apply_converges(
    people: dict[str, list[str]],
    roles: list[dict[str, Any]],
    default_models: list[str],
    prior: dict[str, Any],
) -> None:
    cfg = config(defaults={"models": default_models, "teams": ["t1"]}, roles=roles)
    snap_catalog = catalog([user(n, *[g for g in gs if g != "none"]) for n, gs in people.items()], GROUPS)
    # Users a previous run left in some other state, all managed, some no longer in the catalog.
    old = [
        LiteLLMUser(
            user_id=n.lower(),
            user_email=f"{n.lower()}@example.com",
            max_budget=b,
            models=tuple(m),
            teams=tuple(t),
            metadata={MARKER_KEY: {"managed": True}, "foreign": 1},
        )
        for n, (b, m, t) in prior.items()
    ]
    snap = litellm(old, ["t1", "t2", "x"])
    first = build_plan(snap_catalog, snap, cfg)
    after = apply_like_litellm(first, snap)
    second = build_plan(snap_catalog, after, cfg)
    assert second.actions == (), [a.changes for a in second.actions]
    for user_id, row in after.users.items():
        assert row.metadata.get("foreign") == (1 if user_id in {o.user_id for o in old} else None)
        assert ("x" in row.teams) == ("x" in snap.users.get(user_id, LiteLLMUser(user_id)).teams)


def test_reads_that_disagree_with_the_reported_totals_are_warned() -> None:
    snap = replace(catalog([user("amy")], GROUPS), users_total=5)
    users = LiteLLMSnapshot(users={}, total=3, duplicates=1)
    codes = {w.code for w in build_plan(snap, users, CFG).warnings}
    assert {"catalog_incomplete", "litellm_incomplete"} <= codes
    complete = {w.code for w in build_plan(catalog([user("amy")], GROUPS), litellm([]), CFG).warnings}
    assert not complete & {"catalog_incomplete", "litellm_incomplete"}  # (amy matches no role in either)


_MARKER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(0, 2),
    st.sampled_from(["user:default/amy", "defaults", "x"]),
    st.lists(st.sampled_from(["cc", "src"]), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(["managed", "version", "entity_ref", "role", "keys", "extra"]), _MARKER_VALUES
    ),
    dropped=st.sets(st.sampled_from(["managed", "version", "entity_ref", "role", "keys"])),
    with_metadata=st.booleans(),
)
def test_a_user_is_unchanged_exactly_when_its_marker_equals_the_wanted_one(
    changes: dict[str, Any], dropped: set[str], with_metadata: bool
) -> None:
    # The planner compares markers field by field rather than building one per person: that must agree
    # with comparing the whole object, whatever a hand-edited marker holds.
    cfg = CFG if with_metadata else config()
    d = desired_of(cfg, user("amy"))["amy"]
    wanted = marker_for(d)
    marker = {k: v for k, v in {**wanted, **changes}.items() if k not in dropped}
    row = managed(d, metadata={**d.metadata, MARKER_KEY: marker})
    plan = build_plan(catalog([user("amy")], GROUPS), litellm([row], ["everyone", "ml-team"]), cfg)
    fields = {c.field for a in plan.updates for c in a.changes}
    assert (f"metadata.{MARKER_KEY}" in fields) == (marker != wanted)
    assert (plan.unchanged == ("amy",)) == (marker == wanted)
