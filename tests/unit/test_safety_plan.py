"""The planner's safety rules: deprovision modes, protection, incomplete reads, guards, block and restore."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from catalog_sync.model import MARKER_KEY, LiteLLMSnapshot, LiteLLMUser, SkippedEntity
from catalog_sync.plan import ActionKind, build_plan, check_guards
from tests.factories import catalog, config, litellm, user


def ours(user_id: str, ref: str | None = None, **marker: Any) -> LiteLLMUser:
    name = user_id.split("@")[0]
    return LiteLLMUser(
        user_id=user_id,
        user_email=user_id,
        max_budget=10.0,
        budget_duration="30d",
        user_role="internal_user",
        metadata={MARKER_KEY: {"managed": True, "entity_ref": ref or f"user:default/{name}", **marker}},
    )


STAYING = [user(f"u{i}") for i in range(10)]


def leavers(n: int) -> list[LiteLLMUser]:
    return [ours(f"gone{i}@example.com") for i in range(n)]


def cfg(**kw: Any) -> Any:
    return config(user_id={"domain": "example.com"}, **kw)


@pytest.mark.parametrize("mode,kind", [("report", "deprovision"), ("block", "block"), ("delete", "delete")])
def test_the_mode_decides_the_action(mode: str, kind: str) -> None:
    plan = build_plan(catalog(STAYING), litellm(leavers(1)), cfg(deprovision={"mode": mode}))
    assert [(a.user_id, a.kind.value) for a in plan.deprovisions] == [("gone0@example.com", kind)]
    applied = [a.kind.value for a in plan.actions if a.kind.value == kind]
    assert applied == ([] if mode == "report" else [kind])


def test_only_managed_and_unprotected_users_are_deprovisioned() -> None:
    stranger = LiteLLMUser(user_id="hand@example.com", metadata={"made_by": "hand"})
    plugin = LiteLLMUser(user_id="plugin@example.com", metadata={"provisioned_by": "backstage"})
    proxy = ours("default_user_id")
    svc = ours("svc-build")
    snapshot = litellm([stranger, plugin, proxy, svc])
    plan = build_plan(catalog(STAYING), snapshot, cfg(deprovision={"mode": "delete", "protect": ["SVC-*"]}))
    assert [a.user_id for a in plan.deprovisions] == ["plugin@example.com"]


def test_a_protected_catalog_user_is_neither_created_nor_updated() -> None:
    plan = build_plan(catalog(STAYING), litellm([]), cfg(deprovision={"protect": ["u3@example.com"]}))
    assert "u3@example.com" not in {a.user_id for a in plan.creates}
    assert [w.subject for w in plan.warnings if w.code == "protected_user"] == ["u3@example.com"]


def test_an_entity_skipped_this_run_is_not_a_leaver() -> None:
    snap = dataclasses.replace(
        catalog(STAYING),
        skipped=(SkippedEntity("user", "user:default/odd", "no spec"),),
        users_total=len(STAYING) + 1,
    )
    plan = build_plan(snap, litellm([ours("odd@example.com")]), cfg(deprovision={"mode": "delete"}))
    assert plan.deprovisions == () and plan.deprovision_withheld is None


def test_an_unmappable_entity_is_not_a_leaver() -> None:
    no_mail = user("nomail", email=None)
    plan = build_plan(
        catalog([*STAYING, no_mail]),
        litellm([ours("someone@corp.example", ref="user:default/nomail")]),
        config(user_id={"source": "email"}, deprovision={"mode": "delete"}),
    )
    assert plan.deprovisions == ()


@pytest.mark.parametrize(
    "catalog_snap,litellm_snap,why",
    [
        (catalog([]), litellm(leavers(2)), "no usable users"),
        (
            dataclasses.replace(catalog(STAYING), users_total=11),
            litellm(leavers(2)),
            "catalog read is incomplete",
        ),
        (
            catalog(STAYING),
            LiteLLMSnapshot({u.user_id: u for u in leavers(2)}, total=3),
            "reported a total of 3",
        ),
        (
            catalog(STAYING),
            LiteLLMSnapshot({u.user_id: u for u in leavers(2)}, total=2, duplicates=1),
            "repeated 1 rows",
        ),
    ],
)
def test_no_deprovisioning_from_incomplete_data(
    catalog_snap: Any, litellm_snap: LiteLLMSnapshot, why: str
) -> None:
    plan = build_plan(catalog_snap, litellm_snap, cfg(deprovision={"mode": "delete"}))
    assert plan.deprovision_withheld is not None and why in plan.deprovision_withheld
    assert len(plan.deprovisions) == 2  # still listed, so the report can say who and why not
    assert not any(a.kind is ActionKind.delete for a in plan.actions)
    assert any(w.code == "deprovision_withheld" for w in plan.warnings)


def test_creates_and_updates_still_go_ahead_when_deprovisioning_is_withheld() -> None:
    snap = LiteLLMSnapshot({u.user_id: u for u in leavers(1)}, total=5)
    plan = build_plan(catalog(STAYING), snap, cfg(deprovision={"mode": "delete"}))
    assert len(plan.creates) == 10 and plan.deprovisions_to_apply == ()


@pytest.mark.parametrize(
    "limit,managed,leaving,trips",
    [("10%", 20, 2, False), ("10%", 20, 3, True), (0, 5, 1, True), (2, 5, 2, False), ("0%", 100, 1, True)],
)
def test_max_deprovision(limit: Any, managed: int, leaving: int, trips: bool) -> None:
    staying = [ours(f"u{i}@example.com") for i in range(managed - leaving)]
    c = cfg(deprovision={"mode": "block"}, guards={"max_deprovision": limit})
    people = catalog([user(f"u{i}") for i in range(managed - leaving)])
    plan = build_plan(people, litellm(staying + leavers(leaving)), c)
    tripped = check_guards(plan, c)
    assert bool(tripped) is trips
    if trips:
        assert tripped[0].guard == "max_deprovision" and tripped[0].planned == leaving


def test_guards_do_not_count_report_mode_or_withheld_deprovisions() -> None:
    c = cfg(guards={"max_deprovision": 0})
    assert check_guards(build_plan(catalog(STAYING), litellm(leavers(5)), c), c) == ()


def test_max_changes_counts_every_write() -> None:
    c = cfg(guards={"max_changes": 9})
    [trip] = check_guards(build_plan(catalog(STAYING), litellm([]), c), c)
    assert (trip.guard, trip.limit, trip.planned) == ("max_changes", 9, 10)
    assert "by 1" in trip.message


def test_a_blocked_user_is_blocked_once_and_an_interrupted_block_is_finished() -> None:
    c = cfg(deprovision={"mode": "block"}, guards={"max_deprovision": "100%"})
    done = ours("done@example.com", blocked={"keys": ["t1"], "max_budget": 10, "done": True})
    half = ours("half@example.com", blocked={"keys": ["t2"], "max_budget": 10, "done": False})
    plan = build_plan(catalog(STAYING), litellm([done, half]), c)
    assert [(a.user_id, a.kind) for a in plan.deprovisions] == [("half@example.com", ActionKind.block)]
    assert "interrupted" in (plan.deprovisions[0].reason or "")


def test_a_returning_person_gets_their_keys_unblocked_and_the_record_cleared() -> None:
    c = cfg(deprovision={"mode": "block"})
    blocked = dataclasses.replace(
        ours("u1@example.com", blocked={"keys": ["t1", "t2"], "max_budget": 10, "done": True}),
        max_budget=0.0,
    )
    plan = build_plan(catalog(STAYING), litellm([blocked]), c)
    [update] = plan.updates
    assert update.key_unblocks == ("t1", "t2")
    assert update.payload["max_budget"] == 10.0
    assert "blocked" not in update.payload["metadata"][MARKER_KEY]
