from __future__ import annotations

from dataclasses import replace
from typing import Any

from catalog_sync.apply import ApplyContext, Outcome, apply_plan
from catalog_sync.http import ApiError, Interrupted
from catalog_sync.interrupt import Interrupt
from catalog_sync.model import MARKER_KEY, LiteLLMUser
from catalog_sync.plan import build_plan
from tests.factories import catalog, config, litellm, user

CFG = config(defaults={"models": ["m1"], "teams": ["t1"], "max_budget": 10})
CTX = ApplyContext(managed_teams=frozenset({"t1"}), existing_teams=frozenset({"t1"}), adopt_unmanaged=False)


class FakeLiteLLM:
    """Records calls; behaves like the server unless told otherwise."""

    def __init__(self) -> None:
        self.users: dict[str, LiteLLMUser] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, ApiError] = {}
        self.fill_models: tuple[str, ...] | None = None  # server-side default for models: []

    def _maybe_fail(self, op: str, key: str) -> None:
        error = self.fail.get(f"{op}:{key}")
        if error:
            raise error

    def get_user(self, user_id: str) -> LiteLLMUser | None:
        self.calls.append(("get", user_id))
        return self.users.get(user_id)

    def create_user(self, body: dict[str, Any]) -> LiteLLMUser:
        self.calls.append(("create", body))
        self._maybe_fail("create", body["user_id"])
        if body["user_id"] in self.users:
            raise ApiError(
                "litellm", "POST", "/user/new", 409, f"User with id {body['user_id']} already exists"
            )
        models = tuple(body["models"]) or (self.fill_models or ())
        fields = {k: v for k, v in body.items() if k not in ("auto_create_key", "models", "teams")}
        row = LiteLLMUser(**fields, models=models, teams=tuple(body["teams"]))
        self.users[row.user_id] = row
        return replace(row, teams=())

    def update_user(self, user_id: str, fields: dict[str, Any]) -> LiteLLMUser:
        self.calls.append(("update", (user_id, fields)))
        self._maybe_fail("update", user_id)
        row = replace(self.users[user_id], **{k: tuple(v) if k == "models" else v for k, v in fields.items()})
        self.users[user_id] = row
        return row

    def add_team_member(self, team_id: str, user_id: str) -> bool:
        self.calls.append(("team_add", (team_id, user_id)))
        self._maybe_fail("team_add", user_id)
        return True

    def remove_team_member(self, team_id: str, user_id: str) -> bool:
        self.calls.append(("team_remove", (team_id, user_id)))
        return True


def plan_for(names: list[str], existing: list[LiteLLMUser] | None = None) -> Any:
    return build_plan(catalog([user(n) for n in names]), litellm(existing or [], ["t1"]), CFG)


def test_creates_are_applied_with_no_extra_requests_when_the_server_stored_what_was_sent() -> None:
    fake = FakeLiteLLM()
    results = apply_plan(plan_for(["amy", "bo"]), fake, CTX)
    assert [r.outcome for r in results] == [Outcome.applied, Outcome.applied]
    assert [c[0] for c in fake.calls] == ["create", "create"]
    assert fake.calls[0][1]["auto_create_key"] is False


def test_server_side_defaults_are_corrected_after_create() -> None:
    fake = FakeLiteLLM()
    fake.fill_models = ("default-model",)
    cfg = config(defaults={"models": []})
    plan = build_plan(catalog([user("amy")]), litellm([], []), cfg)
    (result,) = apply_plan(plan, fake, CTX)
    assert result.outcome is Outcome.applied
    assert [c.field for c in result.followup] == ["models"]
    assert fake.users["amy"].models == ("all-proxy-models",)


def test_409_on_create_for_a_managed_user_rereads_and_updates() -> None:
    fake = FakeLiteLLM()
    plan = plan_for(["amy"])
    # Between plan and apply, an earlier (killed) run created amy with an old budget.
    fake.users["amy"] = LiteLLMUser(
        user_id="amy", user_email="amy@example.com", max_budget=1, metadata={MARKER_KEY: {"managed": True}}
    )
    (result,) = apply_plan(plan, fake, CTX)
    assert result.outcome is Outcome.applied
    assert ("get", "amy") in fake.calls
    assert fake.users["amy"].max_budget == 10
    assert "max_budget" in {c.field for c in result.followup}


def test_409_on_create_for_a_stranger_is_a_conflict_and_nothing_is_written() -> None:
    fake = FakeLiteLLM()
    plan = plan_for(["amy"])
    fake.users["amy"] = LiteLLMUser(user_id="amy", max_budget=1)
    (result,) = apply_plan(plan, fake, CTX)
    assert result.outcome is Outcome.conflict
    assert [c[0] for c in fake.calls] == ["create", "get"]
    assert fake.users["amy"].max_budget == 1


def test_409_for_a_taken_email_is_a_conflict_with_the_servers_message() -> None:
    fake = FakeLiteLLM()
    fake.fail["create:amy"] = ApiError(
        "litellm", "POST", "/user/new", 409, "User with email x already exists"
    )
    (result,) = apply_plan(plan_for(["amy"]), fake, CTX)
    assert result.outcome is Outcome.conflict
    assert "User with email x already exists" in (result.error or "")


def test_one_failure_does_not_stop_the_others() -> None:
    fake = FakeLiteLLM()
    fake.fail["create:bo"] = ApiError("litellm", "POST", "/user/new", 500, "database is down")
    results = apply_plan(plan_for(["amy", "bo", "cy"]), fake, CTX)
    assert [r.outcome for r in results] == [Outcome.applied, Outcome.failed, Outcome.applied]
    assert results[1].error == "litellm POST /user/new: HTTP 500: database is down"


def test_update_sends_only_changed_fields_and_a_team_failure_is_recorded() -> None:
    fake = FakeLiteLLM()
    apply_plan(plan_for(["amy"]), fake, CTX)
    row = fake.users["amy"]
    fake.users["amy"] = replace(row, max_budget=3.0, teams=())
    fake.fail["team_add:amy"] = ApiError("litellm", "POST", "/team/member_add", 404, "Team doesn't exist")
    fake.calls.clear()
    plan = build_plan(catalog([user("amy")]), litellm([fake.users["amy"]], ["t1"]), CFG)
    (result,) = apply_plan(plan, fake, CTX)
    assert fake.calls[0] == ("update", ("amy", {"max_budget": 10.0}))
    assert fake.calls[1] == ("team_add", ("t1", "amy"))
    assert result.outcome is Outcome.failed and "Team doesn't exist" in (result.error or "")


def test_concurrent_apply_keeps_plan_order_records_every_outcome_and_surfaces_bugs() -> None:
    import threading
    import time

    import pytest

    plan = build_plan(catalog([user(f"u{i:03d}") for i in range(60)]), litellm([]), CFG)
    fake = FakeLiteLLM()
    fake.fail["create:u007"] = ApiError("litellm", "POST", "/user/new", 400, "bad")
    in_flight = peak = 0
    lock = threading.Lock()
    create = fake.create_user

    def slow_create(body: dict[str, Any]) -> LiteLLMUser:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.002)
        try:
            return create(body)
        finally:
            with lock:
                in_flight -= 1

    fake.create_user = slow_create  # type: ignore[method-assign]
    results = apply_plan(plan, fake, replace(CTX, concurrency=4))
    assert [r.action.user_id for r in results] == [a.user_id for a in plan.actions]
    assert [r.action.user_id for r in results if r.outcome is Outcome.failed] == ["u007"]
    assert sum(r.outcome is Outcome.applied for r in results) == 59
    assert 1 < peak <= 4

    def broken(body: dict[str, Any]) -> LiteLLMUser:
        raise KeyError("a bug, not an API error")

    fake.create_user = broken  # type: ignore[method-assign]
    with pytest.raises(KeyError):
        apply_plan(plan, fake, replace(CTX, concurrency=4))


def test_a_stop_request_starts_no_new_action_and_accounts_for_every_one() -> None:
    """After the stop (here: when the third result comes back) nothing new begins; each action is applied,
    or not_started, in plan order; an action whose step was refused as the run stopped is interrupted."""
    fake = FakeLiteLLM()
    names = [f"u{i:02d}" for i in range(30)]
    plan = plan_for(names)
    interrupt = Interrupt()
    fake.fail["create:u01"] = Interrupted(
        "litellm", "POST", "/user/new", None, "not sent: the run is stopping"
    )

    def on_result(result: Any) -> None:
        if sum(c[0] == "create" for c in fake.calls) >= 3:
            interrupt.stop_requested = True

    results = apply_plan(plan, fake, replace(CTX, concurrency=2, interrupt=interrupt), on_result)
    assert [r.action.user_id for r in results] == [a.user_id for a in plan.actions]
    outcomes = [r.outcome for r in results]
    assert outcomes[1] is Outcome.interrupted and "not sent" in (results[1].error or "")
    assert set(outcomes) == {Outcome.applied, Outcome.interrupted, Outcome.not_started}
    created = {c[1]["user_id"] for c in fake.calls if c[0] == "create"}
    assert {r.action.user_id for r in results if r.outcome is Outcome.applied} == created - {"u01"}
    assert len(created) <= 3 + 2  # the workers finish what they hold, nothing more begins
    assert not any(r.action.user_id in created for r in results if r.outcome is Outcome.not_started)
