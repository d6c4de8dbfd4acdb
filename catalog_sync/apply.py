"""The applier: carries out a plan's creates and updates against LiteLLM, one user at a time.

One user's failure never stops the others; every action ends with a recorded outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Protocol

import structlog

from catalog_sync.http import ApiError
from catalog_sync.model import LiteLLMUser
from catalog_sync.plan import Action, ActionKind, FieldChange, Plan, UserDiff, diff_user
from catalog_sync.roles import DesiredUser

log = structlog.get_logger("catalog_sync.apply")


class Outcome(str, Enum):
    planned = "planned"  # not applied (plan / dry run)
    applied = "applied"
    failed = "failed"
    conflict = "conflict"  # found at apply time (a 409 on a user that is not ours)
    reported = "reported"  # deprovisioning in report mode


@dataclass(frozen=True)
class ActionResult:
    action: Action
    outcome: Outcome
    error: str | None = None
    # Fields corrected after a create because the server stored something else (its own defaults).
    followup: tuple[FieldChange, ...] = ()


class UserWriter(Protocol):
    def get_user(self, user_id: str) -> LiteLLMUser | None: ...
    def create_user(self, body: dict[str, Any]) -> LiteLLMUser: ...
    def update_user(self, user_id: str, fields: dict[str, Any]) -> LiteLLMUser: ...
    def add_team_member(self, team_id: str, user_id: str) -> bool: ...
    def remove_team_member(self, team_id: str, user_id: str) -> bool: ...


@dataclass(frozen=True)
class ApplyContext:
    managed_teams: frozenset[str]
    existing_teams: frozenset[str] | None
    adopt_unmanaged: bool


def planned_results(plan: Plan) -> list[ActionResult]:
    results = [ActionResult(a, Outcome.planned) for a in plan.actions]
    results += [ActionResult(a, Outcome.reported) for a in plan.deprovisions]
    return results


def apply_plan(
    plan: Plan,
    client: UserWriter,
    context: ApplyContext,
    on_result: Callable[[ActionResult], None] | None = None,
) -> list[ActionResult]:
    results: list[ActionResult] = []
    for action in plan.actions:
        desired = plan.desired[action.user_id]
        try:
            if action.kind is ActionKind.create:
                result = _create(action, desired, client, context)
            else:
                result = _update(action, client)
        except ApiError as exc:
            result = ActionResult(action, Outcome.failed, str(exc))
        _log_result(result)
        results.append(result)
        if on_result is not None:
            on_result(result)
    results += [ActionResult(a, Outcome.reported) for a in plan.deprovisions]
    return results


def _log_result(result: ActionResult) -> None:
    fields = {
        "user_id": result.action.user_id,
        "action": result.action.kind.value,
        "outcome": result.outcome.value,
    }
    if result.error:
        log.warning("action_not_applied", error=result.error, **fields)
    else:
        log.info("action_applied", changes=len(result.action.changes), **fields)


def _create(action: Action, desired: DesiredUser, client: UserWriter, context: ApplyContext) -> ActionResult:
    try:
        stored = client.create_user({"user_id": action.user_id, **action.payload})
    except ApiError as exc:
        if exc.status != 409:
            raise
        # 409: the id (or the e-mail) is taken since the snapshot was read. Re-read rather than retry
        # blindly (contracts README, "POST /user/new").
        return _after_conflict(action, desired, client, context, exc)
    # The /user/new response may not list memberships (LiteLLM #13032); they were requested in the body.
    stored = replace(stored, teams=tuple(action.team_adds))
    # Omitted or null fields are filled from the proxy's own defaults: correct what differs.
    rest = diff_user(desired, stored, context.managed_teams, context.existing_teams)
    if rest.empty:
        return ActionResult(action, Outcome.applied)
    return _result(action, _write(action.user_id, rest, client), rest.changes)


def _after_conflict(
    action: Action, desired: DesiredUser, client: UserWriter, context: ApplyContext, exc: ApiError
) -> ActionResult:
    current = client.get_user(action.user_id)
    if current is None:
        return ActionResult(action, Outcome.conflict, f"LiteLLM refused the create: {exc.message}")
    if not current.managed and not context.adopt_unmanaged:
        return ActionResult(
            action,
            Outcome.conflict,
            f"LiteLLM user {action.user_id} appeared since the plan was made and is not managed "
            "by catalog-sync; left untouched",
        )
    rest = diff_user(desired, current, context.managed_teams, context.existing_teams)
    errors = _write(action.user_id, rest, client) if not rest.empty else []
    return _result(action, errors, rest.changes)


def _update(action: Action, client: UserWriter) -> ActionResult:
    diff = UserDiff(action.changes, action.payload, action.team_adds, action.team_removes)
    return _result(action, _write(action.user_id, diff, client))


def _result(action: Action, errors: list[str], followup: tuple[FieldChange, ...] = ()) -> ActionResult:
    if errors:
        return ActionResult(action, Outcome.failed, "; ".join(errors), followup)
    return ActionResult(action, Outcome.applied, followup=followup)


def _write(user_id: str, diff: UserDiff, client: UserWriter) -> list[str]:
    """Writes one user's changes; team steps are tried even if one fails, and their errors returned."""
    # Only ever called for users known to exist: /user/update is an upsert (contracts README).
    if diff.payload:
        client.update_user(user_id, dict(diff.payload))
    errors: list[str] = []
    for team in diff.team_adds:
        try:
            client.add_team_member(team, user_id)
        except ApiError as exc:
            errors.append(str(exc))
    for team in diff.team_removes:
        try:
            client.remove_team_member(team, user_id)
        except ApiError as exc:
            errors.append(str(exc))
    return errors


def summarize(results: list[ActionResult]) -> Mapping[str, int]:
    counts: dict[str, int] = {o.value: 0 for o in Outcome}
    for result in results:
        counts[result.outcome.value] += 1
    return counts
