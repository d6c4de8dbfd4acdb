"""guards.max_downgrades: what counts as a cut, and when the guard trips."""

from __future__ import annotations

from typing import Any

import pytest

from catalog_sync.plan import Action, ActionKind, FieldChange, build_plan, check_guards, downgraded_fields
from catalog_sync.roles import resolve
from tests.factories import catalog, config, litellm, user
from tests.unit.test_plan import managed


def update(field: str, before: Any, after: Any) -> Action:
    return Action(ActionKind.update, "u@example.com", None, None, (FieldChange(field, before, after),))


@pytest.mark.parametrize(
    "field,before,after,cut",
    [
        ("max_budget", 25.0, 10.0, True),
        ("max_budget", 10.0, 25.0, False),
        ("max_budget", None, 100.0, True),  # a cap where there was none
        ("max_budget", 100.0, None, False),  # no cap: up
        ("max_budget", 10.0, 10.0 - 1e-12, False),  # float noise is not a cut
        ("tpm_limit", 5000, 4999, True),
        ("tpm_limit", None, 5000, True),
        ("rpm_limit", 60, None, False),
        ("rpm_limit", 0, 60, False),
        ("models", [], ["gpt-4o"], True),  # all models -> a list
        ("models", ["all-proxy-models"], ["gpt-4o"], True),
        ("models", ["a", "b"], ["a"], True),
        ("models", ["a"], ["a", "b"], False),
        ("models", ["a", "b"], ["b", "c"], True),  # lost one, even though one came
        ("models", ["a"], [], False),  # a list -> all
        ("models", ["a"], ["all-proxy-models"], False),
        ("budget_duration", "30d", "1d", False),  # not a limit this guard counts
        ("user_role", "proxy_admin", "internal_user", False),
    ],
)
def test_what_counts_as_a_downgrade(field: str, before: Any, after: Any, cut: bool) -> None:
    assert downgraded_fields(update(field, before, after)) == ((field,) if cut else ())


def test_creates_and_deprovisions_are_never_downgrades() -> None:
    create = Action(ActionKind.create, "u", None, None, payload={"max_budget": 0.0})
    block = Action(ActionKind.block, "u", None, None, (FieldChange("max_budget", 10.0, 0.0),))
    assert downgraded_fields(create) == () and downgraded_fields(block) == ()


def plan_for(n: int, cut: int, guard: Any = None) -> tuple[Any, Any]:
    """n managed people as the last run left them on a budget of 10, except that the first `cut` had 25."""
    guards = {} if guard is None else {"guards": {"max_downgrades": guard}}
    c = config(user_id={"domain": "example.com"}, **guards)
    people = catalog([user(f"u{i}") for i in range(n)])
    rows = [
        managed(d, max_budget=25.0 if i < cut else 10.0) for i, d in enumerate(resolve(people, c).desired)
    ]
    return build_plan(people, litellm(rows), c), c


@pytest.mark.parametrize(
    "n,cut,guard,trips",
    [
        (20, 2, None, False),  # default 10% of 20 = 2
        (20, 3, None, True),
        (4, 1, None, True),  # 10% of 4 rounds down to 0
        (4, 1, 1, False),
        (4, 4, "100%", False),
        (10, 1, 0, True),
    ],
)
def test_max_downgrades(n: int, cut: int, guard: Any, trips: bool) -> None:
    plan, c = plan_for(n, cut, guard)
    assert len(plan.updates) == cut
    tripped = [t for t in check_guards(plan, c) if t.guard == "max_downgrades"]
    assert bool(tripped) is trips
    if trips:
        assert tripped[0].planned == cut


def test_the_trip_message_says_how_many_people_and_the_limit() -> None:
    plan, c = plan_for(20, 5)
    [trip] = check_guards(plan, c)
    assert (trip.limit, trip.planned) == (2, 5)
    assert trip.message == (
        "5 users would have a budget, rate limit or model list cut, which exceeds guards.max_downgrades "
        "(10% of 20 managed users = 2) by 3: u0@example.com (max_budget), u10@example.com (max_budget), "
        "u11@example.com (max_budget) and 2 more"  # (ids sort "u10@" before "u1@")
    )


def test_raising_budgets_never_trips() -> None:
    c = config(user_id={"domain": "example.com"}, guards={"max_downgrades": 0})
    people = catalog([user(f"u{i}") for i in range(10)])
    rows = [managed(d, max_budget=5.0, models=("a",)) for d in resolve(people, c).desired]
    plan = build_plan(people, litellm(rows), c)
    assert len(plan.updates) == 10 and check_guards(plan, c) == ()
