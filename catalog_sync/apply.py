"""The applier: carries out a plan's actions against LiteLLM, a few users at a time.

One user's failure never stops the others; every action ends with a recorded outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Protocol

import structlog

from catalog_sync import logs
from catalog_sync.http import ApiError, Interrupted
from catalog_sync.interrupt import Interrupt
from catalog_sync.model import MARKER_KEY, LiteLLMUser
from catalog_sync.plan import (
    MARKER_VERSION,
    Action,
    ActionKind,
    FieldChange,
    Plan,
    UserDiff,
    blocked_keys,
    blocked_record,
    diff_user,
)
from catalog_sync.roles import DesiredUser

log = structlog.get_logger("catalog_sync.apply")


class Outcome(str, Enum):
    planned = "planned"  # not applied (plan / dry run)
    applied = "applied"
    failed = "failed"
    conflict = "conflict"  # found at apply time (a 409 on a user that is not ours)
    reported = "reported"  # deprovisioning in report mode
    withheld = "withheld"  # deprovisioning not done: the reads could not be trusted
    blocked_by_guard = "blocked_by_guard"  # a guard tripped: nothing was applied
    not_started = "not_started"  # the run was stopped (SIGTERM, Ctrl-C) before this action began
    interrupted = "interrupted"  # begun, but the run stopped before it ended: may be partly applied


@dataclass(frozen=True, slots=True)
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
    def user_keys(self, user_id: str) -> tuple[tuple[str, bool], ...] | None: ...
    def set_key_blocked(self, token: str, blocked: bool) -> bool: ...
    def delete_user(self, user_id: str) -> bool: ...


@dataclass(frozen=True)
class ApplyContext:
    managed_teams: frozenset[str]
    existing_teams: frozenset[str] | None
    adopt_unmanaged: bool
    concurrency: int = 1
    clock: Callable[[], str] = field(default=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    interrupt: Interrupt | None = None  # a stop request: no new action starts, those in flight may finish


def planned_results(plan: Plan) -> list[ActionResult]:
    """Outcomes of a run that applies nothing: every action planned, deprovisioning reported or withheld."""
    results = [ActionResult(a, Outcome.planned) for a in plan.creates + plan.updates]
    return results + _listed_deprovisions(plan, applying=False)


def _listed_deprovisions(plan: Plan, applying: bool) -> list[ActionResult]:
    out = []
    for a in plan.deprovisions:
        if plan.deprovision_withheld is not None:
            out.append(ActionResult(a, Outcome.withheld, plan.deprovision_withheld))
        elif a.kind is ActionKind.deprovision:
            out.append(ActionResult(a, Outcome.reported))
        elif not applying:
            out.append(ActionResult(a, Outcome.planned))
    return out


def apply_plan(
    plan: Plan,
    client: UserWriter,
    context: ApplyContext,
    on_result: Callable[[ActionResult], None] | None = None,
) -> list[ActionResult]:
    """Applies every action, `context.concurrency` at a time; results come back in plan order."""

    def one(action: Action) -> ActionResult:
        try:
            if action.kind is ActionKind.create:
                result = _create(action, plan.desired[action.user_id], client, context)
            elif action.kind is ActionKind.update:
                result = _update(action, client)
            elif action.kind is ActionKind.block:
                result = _block(action, client, context)
            else:
                result = _delete(action, client)
        except Interrupted as exc:  # a step not sent or not retried: the next run finishes the action
            result = ActionResult(action, Outcome.interrupted, str(exc))
        except ApiError as exc:
            result = ActionResult(action, Outcome.failed, str(exc))
        _log_result(result)
        if on_result is not None:
            on_result(result)
        return result

    actions = plan.actions
    if context.interrupt is not None:  # through the pool even for one worker: the grace needs a free hand
        results = _in_parallel(one, actions, max(1, context.concurrency), context.interrupt)
    elif context.concurrency <= 1 or len(actions) <= 1:
        results = [one(a) for a in actions]
    else:
        results = _in_parallel(one, actions, context.concurrency)
    _log_summary(results)
    return results + _listed_deprovisions(plan, applying=True)


class _Gate:
    """Which actions began and how many are running; once closed (a stop request) none begins."""

    def __init__(self, n: int, interrupt: Interrupt | None) -> None:
        self.lock = threading.Lock()
        self.interrupt = interrupt
        self.closed = False
        self.running = 0
        self.ended = 0
        self.started = bytearray(n)

    def enter(self, i: int) -> bool:
        with self.lock:
            if self.closed or (self.interrupt is not None and self.interrupt.stop_requested):
                self.ended += 1
                return False
            self.running += 1
            self.started[i] = 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            self.ended += 1

    def close(self) -> int:
        with self.lock:
            self.closed = True
            return self.running


def _in_parallel(
    one: Callable[[Action], ActionResult],
    actions: Sequence[Action],
    workers: int,
    interrupt: Interrupt | None = None,
) -> list[ActionResult]:
    """`one` over every action, `workers` at a time, results in action order. Only a few tasks are queued at
    once: a Future per action (1.7 KB each, with its Condition) would cost 170 MB for 100,000 creates.

    With `interrupt`, a stop request ends the submitting; the actions in flight get its grace to end, and
    every action comes back: applied (or failed...), `interrupted` if still running, `not_started`."""
    out: list[ActionResult | None] = [None] * len(actions)
    room = threading.BoundedSemaphore(workers * 2)
    crashed: list[BaseException] = []
    gate = _Gate(len(actions), interrupt)

    def task(i: int) -> None:
        try:
            if gate.enter(i):
                try:
                    out[i] = one(actions[i])
                finally:
                    gate.leave()
        except BaseException as exc:  # a bug, not an API error (those are outcomes): re-raised below
            crashed.append(exc)
        finally:
            room.release()

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply")
    submitted = 0
    for i in range(len(actions)):
        if not _room(room, interrupt) or crashed:
            break
        pool.submit(task, i)
        submitted += 1
    if interrupt is None:
        pool.shutdown(wait=True)
    elif not _settle(gate, submitted, interrupt):
        pool.shutdown(wait=False, cancel_futures=True)
        if crashed:
            raise crashed[0]
        return _cut_short(actions, out, gate, interrupt)
    else:
        pool.shutdown(wait=True)  # every task has ended: this only collects the idle threads
    if crashed:
        raise crashed[0]
    return [r for r in out if r is not None]


def _room(room: threading.BoundedSemaphore, interrupt: Interrupt | None) -> bool:
    """A free slot in the queue; False once a stop is requested (waits in slices to notice it)."""
    if interrupt is None:
        return room.acquire()
    while not room.acquire(timeout=0.1):
        if interrupt.stop_requested:
            return False
    if interrupt.stop_requested:
        room.release()
        return False
    return True


def _settle(gate: _Gate, submitted: int, interrupt: Interrupt) -> bool:
    """Waits for the submitted tasks; True if all ended without a stop request. After one, the running
    actions get the grace to end, and then (or at a second signal) no further request is sent."""
    while not interrupt.stop_requested:
        with gate.lock:
            if gate.ended >= submitted:
                return True
        time.sleep(0.05)
    running = gate.close()
    log.warning(
        "stopping",
        signal=interrupt.name,
        in_flight=running,
        detail=f"no new change starts; waiting up to {interrupt.grace:g}s for those in flight",
    )
    if not interrupt.wait_for(lambda: gate.running == 0, time.monotonic() + interrupt.grace):
        interrupt.cancelled = True  # the abandoned workers send nothing more
    return False


def _cut_short(
    actions: Sequence[Action], out: list[ActionResult | None], gate: _Gate, interrupt: Interrupt
) -> list[ActionResult]:
    results = []
    for i, action in enumerate(actions):
        result = out[i]
        if result is None and gate.started[i]:
            why = f"still in flight when the run stopped ({interrupt.name}): may be partly applied"
            result = ActionResult(action, Outcome.interrupted, why)
        results.append(result or ActionResult(action, Outcome.not_started))
    return results


def _log_result(result: ActionResult) -> None:
    fields = {
        "user_id": result.action.user_id,
        "action": result.action.kind.value,
        "outcome": result.outcome.value,
    }
    if result.error:
        log.warning("action_not_applied", error=result.error, **fields)
    elif logs.terminal() is not None:  # a person watching gets the summary line (_log_summary) instead
        log.debug("action_applied", changes=len(result.action.field_changes), **fields)
    else:
        log.info("action_applied", changes=len(result.action.field_changes), **fields)


def _log_summary(results: Sequence[ActionResult]) -> None:
    """One line at the end: `applied create=12 update=3 failed=1` (kinds with none left out)."""
    counts: dict[str, int] = {}
    for r in results:
        key = r.action.kind.value if r.outcome is Outcome.applied else r.outcome.value
        counts[key] = counts.get(key, 0) + 1
    if counts:
        log.info("applied", **counts)


def _create(action: Action, desired: DesiredUser, client: UserWriter, context: ApplyContext) -> ActionResult:
    try:
        stored = client.create_user({"user_id": action.user_id, **action.payload})
    except ApiError as exc:
        if exc.status != 409:
            raise
        # 409: the id (or the e-mail) is taken since the snapshot was read. Re-read rather than retry
        # blindly (docs/litellm-api.md#user-new-existing-id-is-409).
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
    # A returning person whom the job blocked: their keys first, so that a run killed in between still
    # finds the blocked record next time and finishes (unblocking is idempotent).
    for token in action.key_unblocks:
        client.set_key_blocked(token, False)
    diff = UserDiff(action.changes, action.payload, action.team_adds, action.team_removes)
    return _result(action, _write(action.user_id, diff, client))


def _block(action: Action, client: UserWriter, context: ApplyContext) -> ActionResult:
    """Budget 0 and every key blocked, the previous budget and the keys it blocked kept in the marker.

    Three steps, each safe to repeat: (1) one update writes budget 0 and the record with done=false,
    (2) the recorded keys are blocked, (3) the record is marked done. A run killed after (1) or (2)
    leaves a record that the next plan finishes.
    """
    current = client.get_user(action.user_id)
    if current is None:
        return ActionResult(action, Outcome.applied, "already gone from LiteLLM")
    if not current.managed:
        return ActionResult(action, Outcome.conflict, "no longer carries the catalog-sync marker; left as is")
    keys = client.user_keys(action.user_id) or ()
    unblocked = [token for token, blocked in keys if not blocked]
    record = dict(blocked_record(current) or {})
    if record:
        record["keys"] = sorted(set(blocked_keys(record)) | set(unblocked))
    else:
        record = {"at": context.clock(), "max_budget": current.max_budget, "keys": sorted(unblocked)}
    record["done"] = False
    marker = dict(current.marker or {"managed": True, "version": MARKER_VERSION})
    marker.setdefault("entity_ref", action.entity_ref)
    marker["blocked"] = record
    metadata = {**current.metadata, MARKER_KEY: marker}
    client.update_user(action.user_id, {"max_budget": 0, "metadata": metadata})
    for token in record["keys"]:
        client.set_key_blocked(token, True)
    marker["blocked"] = {**record, "done": True}
    client.update_user(action.user_id, {"metadata": {**current.metadata, MARKER_KEY: marker}})
    changes = (
        FieldChange("max_budget", current.max_budget, 0.0),
        FieldChange("keys_blocked", None, len(record["keys"])),
    )
    return ActionResult(action, Outcome.applied, followup=changes)


def _delete(action: Action, client: UserWriter) -> ActionResult:
    current = client.get_user(action.user_id)
    if current is None:
        return ActionResult(action, Outcome.applied, "already gone from LiteLLM")
    if not current.managed:
        return ActionResult(action, Outcome.conflict, "no longer carries the catalog-sync marker; left as is")
    client.delete_user(action.user_id)
    return ActionResult(action, Outcome.applied)


def _result(action: Action, errors: list[str], followup: tuple[FieldChange, ...] = ()) -> ActionResult:
    if errors:
        return ActionResult(action, Outcome.failed, "; ".join(errors), followup)
    return ActionResult(action, Outcome.applied, followup=followup)


def _write(user_id: str, diff: UserDiff, client: UserWriter) -> list[str]:
    """Writes one user's changes; team steps are tried even if one fails, and their errors returned."""
    # Only ever called for users known to exist: /user/update is an upsert
    # (docs/litellm-api.md#user-update-is-an-upsert).
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
