"""Saved plans: `plan --out` writes one, `apply` carries out exactly that plan and nothing else.

A reviewed plan must not be applied to a world that changed under it: before applying, the users it touches
are read again and every action's "before" is compared with what the server holds now (`stale_actions`).
Serialising and checking are pure; reading and applying live in the job, writing in `save_plan_file`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from catalog_sync.model import LiteLLMUser
from catalog_sync.plan import (
    Action,
    ActionKind,
    FieldChange,
    Plan,
    PlanStats,
    blocked_record,
    current_models,
)
from catalog_sync.roles import DesiredUser, Explanation, RoleCheck
from catalog_sync.urls import public_url, same_url

PLAN_VERSION = 1


class PlanFileError(Exception):
    """A saved plan that cannot be used: unreadable, of another version, too old, or for another proxy."""


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    created_at: datetime
    litellm_url: str
    managed_teams: frozenset[str]
    existing_teams: frozenset[str] | None
    adopt_unmanaged: bool
    # The config's defaults and roles when the plan was made (plan_config); None in older plans.
    grants: dict[str, Any] | None = None
    # Why each action's person has their role (for `show --user`); empty in plans saved before it existed.
    explanations: Mapping[str, Explanation] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _action_out(a: Action) -> dict[str, Any]:
    return {
        "kind": a.kind.value,
        "user_id": a.user_id,
        "entity_ref": a.entity_ref,
        "role": a.role,
        "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in a.field_changes],
        "payload": _jsonable(a.payload),
        "team_adds": list(a.team_adds),
        "team_removes": list(a.team_removes),
        "adopt": a.adopt,
        "reason": a.reason,
        "key_unblocks": list(a.key_unblocks),
    }


def _desired_out(d: DesiredUser) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(d, f.name)) for f in fields(d)}


def dump_plan(
    plan: Plan,
    *,
    created_at: datetime,
    litellm_url: str,
    backstage_url: str,
    config_path: str,
    managed_teams: frozenset[str],
    existing_teams: frozenset[str] | None,
    adopt_unmanaged: bool,
    grants: Mapping[str, Any] | None = None,
    explanations: Mapping[str, Explanation] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The plan as JSON. `extra`: read-only keys for people (`plan --json`), which `apply` ignores."""
    actions = plan.actions
    return json.dumps(
        {
            "plan_version": PLAN_VERSION,
            "created_at": created_at.isoformat(timespec="seconds"),
            "config_path": config_path,
            # Without user info: a plan file is shared for review, credentials in a URL are not.
            "litellm_url": public_url(litellm_url),
            "backstage_url": public_url(backstage_url),
            "deprovision_mode": plan.deprovision_mode,
            "managed_teams": sorted(managed_teams),
            "existing_teams": sorted(existing_teams) if existing_teams is not None else None,
            "adopt_unmanaged": adopt_unmanaged,
            "stats": asdict(plan.stats),
            # So that `apply` stops on a missing role group and warns about roles, as `run` would.
            "roles": [asdict(c) for c in plan.roles],
            "actions": [_action_out(a) for a in actions],
            "desired": {
                a.user_id: _desired_out(plan.desired[a.user_id]) for a in actions if a.user_id in plan.desired
            },
            "grants": grants,
            **({"explanations": _explanations_out(explanations)} if explanations is not None else {}),
            **(extra or {}),
        },
        indent=2,
        ensure_ascii=False,
    )


def save_plan_file(path: Path, text: str) -> None:
    """Writes a saved plan readable by its owner only (0600, like the reports), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _action_in(d: Mapping[str, Any]) -> Action:
    kind = ActionKind(d["kind"])
    changes = d.get("changes", [])
    return Action(
        kind=kind,
        user_id=str(d["user_id"]),
        entity_ref=d.get("entity_ref"),
        role=d.get("role"),
        # A create's changes are its payload (Action.field_changes): written for readers, not read back.
        changes=()
        if kind is ActionKind.create
        else tuple(FieldChange(c["field"], c["before"], c["after"]) for c in changes),
        payload=dict(d.get("payload") or {}),
        team_adds=tuple(d.get("team_adds") or ()),
        team_removes=tuple(d.get("team_removes") or ()),
        adopt=bool(d.get("adopt")),
        reason=d.get("reason"),
        key_unblocks=tuple(d.get("key_unblocks") or ()),
    )


def _desired_in(d: Mapping[str, Any]) -> DesiredUser:
    return DesiredUser(
        user_id=d["user_id"],
        entity_ref=d["entity_ref"],
        role=d["role"],
        user_email=d.get("user_email"),
        user_alias=d.get("user_alias"),
        user_role=d.get("user_role"),
        max_budget=d.get("max_budget"),
        budget_duration=d.get("budget_duration"),
        models=tuple(d.get("models") or ()),
        tpm_limit=d.get("tpm_limit"),
        rpm_limit=d.get("rpm_limit"),
        metadata=dict(d.get("metadata") or {}),
        teams=frozenset(d.get("teams") or ()),
    )


def _explanations_out(explanations: Mapping[str, Explanation]) -> list[dict[str, Any]]:
    # Grouped: people with the same direct groups share one explanation (thousands per team).
    people: dict[Explanation, list[str]] = {}
    for user_id, explanation in sorted(explanations.items()):
        people.setdefault(explanation, []).append(user_id)
    return [{"users": ids, **_jsonable(asdict(e))} for e, ids in people.items()]


def _explanations_in(rows: Any) -> dict[str, Explanation]:
    out: dict[str, Explanation] = {}
    for row in rows or ():
        explanation = Explanation(
            direct_groups=tuple(row["direct_groups"]),
            role_index=row["role_index"],
            role_group=row["role_group"],
            path=tuple(row["path"]),
            tried=tuple(row["tried"]),
            nested=bool(row.get("nested", True)),
        )
        out.update(dict.fromkeys(row["users"], explanation))
    return out


def load_plan(path: Path, *, litellm_url: str, max_age: timedelta, now: datetime) -> SavedPlan:
    """Reads a saved plan and checks that it may be applied here and now."""
    saved = read_plan(path)
    if not same_url(saved.litellm_url, litellm_url):
        raise PlanFileError(
            f"{path}: made for LiteLLM at {public_url(saved.litellm_url)}, "
            f"but the config points at {public_url(litellm_url)}"
        )
    age = now - saved.created_at
    if age > max_age:
        raise PlanFileError(
            f"{path}: the plan is {_minutes(age)} old, older than the {_minutes(max_age)} allowed "
            "(max_plan_age_minutes); make a new plan"
        )
    return saved


def read_plan(path: Path) -> SavedPlan:
    """Reads a saved plan, whatever its age or proxy (`show`); `load_plan` also checks those."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PlanFileError(f"{path}: not a saved plan (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("plan_version") != PLAN_VERSION:
        raise PlanFileError(f"{path}: not a catalog-sync plan of version {PLAN_VERSION}")
    try:
        created = datetime.fromisoformat(data["created_at"])
        actions = tuple(_action_in(a) for a in data["actions"])
        desired = {k: _desired_in(v) for k, v in data["desired"].items()}
        stats = PlanStats(**data["stats"])
        existing = data.get("existing_teams")
        saved = SavedPlan(
            plan=Plan(
                creates=tuple(a for a in actions if a.kind is ActionKind.create),
                updates=tuple(a for a in actions if a.kind is ActionKind.update),
                deprovisions=tuple(a for a in actions if a.kind in (ActionKind.block, ActionKind.delete)),
                unchanged=(),
                conflicts=(),
                warnings=(),
                stats=stats,
                desired=desired,
                deprovision_mode=str(data["deprovision_mode"]),
                roles=tuple(RoleCheck(**c) for c in data.get("roles") or ()),
            ),
            created_at=created,
            litellm_url=str(data["litellm_url"]),
            managed_teams=frozenset(data["managed_teams"]),
            existing_teams=frozenset(existing) if existing is not None else None,
            adopt_unmanaged=bool(data["adopt_unmanaged"]),
            grants=data.get("grants"),
            explanations=_explanations_in(data.get("explanations")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{path}: damaged plan ({type(exc).__name__}: {exc})") from None
    return saved


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return bool(a == b)


def _current_value(user: LiteLLMUser, field: str, managed_teams: frozenset[str]) -> Any:
    if field.startswith("metadata."):
        return user.metadata.get(field.removeprefix("metadata."))
    if field == "teams":
        return sorted(set(user.teams) & managed_teams)
    if field == "models":
        return current_models(user)
    return getattr(user, field)


def stale_actions(saved: SavedPlan, current: Mapping[str, LiteLLMUser | None]) -> list[tuple[Action, str]]:
    """Actions whose "before" is no longer what the server holds, each with why."""
    stale: list[tuple[Action, str]] = []
    for action in saved.plan.actions:
        user = current.get(action.user_id)
        if action.kind is ActionKind.create:
            if user is not None:
                stale.append((action, "now exists in LiteLLM"))
            continue
        if user is None:
            stale.append((action, "no longer exists in LiteLLM"))
            continue
        if action.kind in (ActionKind.block, ActionKind.delete):
            if not user.managed:
                stale.append((action, "no longer carries the catalog-sync marker"))
            elif action.kind is ActionKind.block and (blocked_record(user) or {}).get("done") is True:
                stale.append((action, "is already blocked"))
            continue
        for change in action.changes:
            now = _current_value(user, change.field, saved.managed_teams)
            if not _same(now, change.before):
                stale.append(
                    (
                        action,
                        f"{change.field} is now {json.dumps(now)}, "
                        f"the plan expected {json.dumps(change.before)}",
                    )
                )
                break
    return stale
