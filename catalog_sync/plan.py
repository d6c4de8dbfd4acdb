"""The planner: (catalog snapshot, LiteLLM snapshot, config) -> plan. Pure: no I/O, no clock.

A plan lists users to create, users to update (field by field), managed users that left the catalog,
unchanged users and conflicts. The applier executes it; the report renders it.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Any

from catalog_sync.config import Config
from catalog_sync.model import MARKER_KEY, CatalogSnapshot, LiteLLMSnapshot, LiteLLMUser, Notice
from catalog_sync.roles import DesiredUser, RoleCheck, resolve, role_notices

# LiteLLM's name for "every model on the proxy". /user/update drops `models: []`
# (docs/litellm-api.md#user-update-drops-empty-values), so an emptied model list can only be written as this.
ALL_PROXY_MODELS = "all-proxy-models"
MARKER_VERSION = 1


class ActionKind(str, Enum):
    create = "create"
    update = "update"
    deprovision = "deprovision"  # left the catalog; deprovision.mode: report only lists it
    block = "block"  # left the catalog; budget 0 and keys blocked, reversibly
    delete = "delete"  # left the catalog; /user/delete (keys too)


# The proxy's own pseudo-user, created by /team/new (docs/litellm-api.md#default-user-id-pseudo-user): never
# ours to touch.
ALWAYS_PROTECTED = ("default_user_id",)


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str  # user field, "metadata.<key>" or "teams"
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    user_id: str
    entity_ref: str | None
    role: str | None
    changes: tuple[FieldChange, ...] = ()
    # Body fields for /user/new or /user/update (user_id excluded); empty for a teams-only update.
    payload: Mapping[str, Any] = field(default_factory=dict)
    team_adds: tuple[str, ...] = ()
    team_removes: tuple[str, ...] = ()
    adopt: bool = False
    reason: str | None = None
    # Keys this job blocked when it blocked the user, unblocked again when the person returns.
    key_unblocks: tuple[str, ...] = ()

    @property
    def field_changes(self) -> tuple[FieldChange, ...]:
        """Field by field. A create's are its body, each from nothing: derived here rather than stored, as a
        first run of 100,000 people would otherwise hold a million FieldChange objects."""
        if self.kind is ActionKind.create and not self.changes:
            return tuple(FieldChange(k, None, v) for k, v in self.payload.items() if k != "auto_create_key")
        return self.changes


@dataclass(frozen=True, slots=True)
class Conflict:
    code: str  # unmanaged_user_exists | email_taken | duplicate_user_id | duplicate_email
    message: str
    user_id: str | None = None
    entity_ref: str | None = None


@dataclass(frozen=True, slots=True)
class PlanStats:
    catalog_users: int
    catalog_users_total: int
    catalog_groups: int
    litellm_users: int
    litellm_users_total: int
    managed_users: int


@dataclass(frozen=True, slots=True)
class Plan:
    creates: tuple[Action, ...]
    updates: tuple[Action, ...]
    deprovisions: tuple[Action, ...]  # managed users who left the catalog
    unchanged: tuple[str, ...]
    conflicts: tuple[Conflict, ...]
    warnings: tuple[Notice, ...]
    stats: PlanStats
    desired: Mapping[str, DesiredUser]
    deprovision_mode: str = "report"
    # Why no deprovisioning may happen this run (incomplete or suspicious reads); None when it may.
    deprovision_withheld: str | None = None
    roles: tuple[RoleCheck, ...] = ()  # how each configured role fared against the catalog

    @property
    def deprovisions_to_apply(self) -> tuple[Action, ...]:
        if self.deprovision_withheld is not None:
            return ()
        return tuple(a for a in self.deprovisions if a.kind is not ActionKind.deprovision)

    @property
    def actions(self) -> tuple[Action, ...]:
        """What `run` applies (deprovisioning in report mode, or withheld, only lists)."""
        return self.creates + self.updates + self.deprovisions_to_apply

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)


@dataclass(frozen=True, slots=True)
class UserDiff:
    changes: tuple[FieldChange, ...]
    payload: Mapping[str, Any]
    team_adds: tuple[str, ...]
    team_removes: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.changes or self.team_adds or self.team_removes)


def marker_for(desired: DesiredUser) -> dict[str, Any]:
    """The job's metadata entry: ownership, provenance, and which top-level keys it owns."""
    return {
        "managed": True,
        "version": MARKER_VERSION,
        "entity_ref": desired.entity_ref,
        "role": desired.role,
        "keys": sorted(desired.metadata),
    }


def create_payload(desired: DesiredUser, teams: tuple[str, ...]) -> dict[str, Any]:
    """Every managed field, explicitly: /user/new fills omitted ones from server-side defaults."""
    payload: dict[str, Any] = {
        "user_email": desired.user_email,
        "user_alias": desired.user_alias,
        "user_role": desired.user_role,
        "max_budget": desired.max_budget,
        "budget_duration": desired.budget_duration,
        "models": list(desired.models),
        "tpm_limit": desired.tpm_limit,
        "rpm_limit": desired.rpm_limit,
        "metadata": {**desired.metadata, MARKER_KEY: marker_for(desired)},
        "teams": list(teams),
        "auto_create_key": False,
    }
    return payload


def _same_number(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def current_models(user: LiteLLMUser) -> list[str]:
    """The "before" of a models change, as plans record it."""
    return sorted(user.models)


def _models_equal(current: tuple[str, ...], desired: tuple[str, ...]) -> bool:
    if current == desired:  # the usual case, without sorting
        return True
    cur = tuple(sorted(set(current)))
    return (() if cur == (ALL_PROXY_MODELS,) else cur) == desired


def diff_user(
    desired: DesiredUser,
    current: LiteLLMUser,
    managed_teams: frozenset[str],
    existing_teams: frozenset[str] | None,
) -> UserDiff:
    """Field-by-field difference between what a person should have and what LiteLLM holds."""
    changes: list[FieldChange] = []
    payload: dict[str, Any] = {}

    def scalar(name: str, before: Any, after: Any) -> None:
        changes.append(FieldChange(name, before, after))
        payload[name] = after

    # /user/update drops null for these two (observed on 1.106.2): an absent catalog value leaves them be.
    if desired.user_email is not None and desired.user_email != current.user_email:
        scalar("user_email", current.user_email, desired.user_email)
    if desired.user_alias is not None and desired.user_alias != current.user_alias:
        scalar("user_alias", current.user_alias, desired.user_alias)
    if desired.user_role is not None and desired.user_role != current.user_role:
        scalar("user_role", current.user_role, desired.user_role)
    # null clears these four on /user/update (observed on 1.106.2), so None is enforced too.
    if desired.max_budget != current.max_budget and not _same_number(desired.max_budget, current.max_budget):
        scalar("max_budget", current.max_budget, desired.max_budget)
    if desired.budget_duration != current.budget_duration:
        scalar("budget_duration", current.budget_duration, desired.budget_duration)
    if desired.tpm_limit != current.tpm_limit:
        scalar("tpm_limit", current.tpm_limit, desired.tpm_limit)
    if desired.rpm_limit != current.rpm_limit:
        scalar("rpm_limit", current.rpm_limit, desired.rpm_limit)
    if not _models_equal(current.models, desired.models):
        changes.append(FieldChange("models", current_models(current), list(desired.models)))
        payload["models"] = list(desired.models) or [ALL_PROXY_MODELS]

    # Metadata: only the job's own keys are compared; the rest of the object is carried over untouched,
    # since /user/update replaces metadata whole
    # (docs/litellm-api.md#user-update-replaces-metadata).
    marker = marker_for(desired)
    if desired.metadata or current.metadata.get(MARKER_KEY) != marker:
        # (Otherwise no key is wanted and none was owned before, since the marker's keys are [].)
        _diff_metadata(desired, current, marker, changes, payload)

    if not (current.teams or desired.teams):  # the usual case: no teams on either side
        return UserDiff(tuple(changes), payload, (), ()) if changes else NO_CHANGE
    current_managed = frozenset(current.teams) & managed_teams
    wanted = desired.teams if existing_teams is None else desired.teams & existing_teams
    adds = tuple(sorted(wanted - current_managed))
    removes = tuple(sorted(current_managed - desired.teams))
    if adds or removes:
        changes.append(
            FieldChange(
                "teams", sorted(current_managed), sorted((current_managed | set(adds)) - set(removes))
            )
        )
    return UserDiff(tuple(changes), payload, adds, removes)


_MISSING = object()
NO_CHANGE = UserDiff((), MappingProxyType({}), (), ())  # shared by the unchanged: most people, every run


def _diff_metadata(
    desired: DesiredUser,
    current: LiteLLMUser,
    marker: dict[str, Any],
    changes: list[FieldChange],
    payload: dict[str, Any],
) -> None:
    owned_before = current.marker.get("keys", []) if current.marker else []
    owned_before = [k for k in owned_before if isinstance(k, str)] if isinstance(owned_before, list) else []
    meta_changes: list[FieldChange] = []
    for key, value in sorted(desired.metadata.items()):
        if current.metadata.get(key, _MISSING) != value:
            meta_changes.append(FieldChange(f"metadata.{key}", current.metadata.get(key), value))
    dropped = sorted(k for k in owned_before if k not in desired.metadata and k in current.metadata)
    for key in dropped:
        meta_changes.append(FieldChange(f"metadata.{key}", current.metadata[key], None))
    if current.metadata.get(MARKER_KEY) != marker:
        meta_changes.append(FieldChange(f"metadata.{MARKER_KEY}", current.metadata.get(MARKER_KEY), marker))
    if meta_changes:
        merged = {k: v for k, v in current.metadata.items() if k not in dropped}
        merged.update(desired.metadata)
        merged[MARKER_KEY] = marker
        payload["metadata"] = merged
        changes.extend(meta_changes)


def build_plan(catalog: CatalogSnapshot, litellm: LiteLLMSnapshot, config: Config) -> Plan:
    resolution = resolve(catalog, config)
    warnings: list[Notice] = [*resolution.warnings, *resolution.unmapped]
    warnings.extend(
        Notice("skipped_entity", f"{s.kind} {s.ref} skipped: {s.reason}", s.ref) for s in catalog.skipped
    )
    if not catalog.complete:
        warnings.append(
            Notice(
                "catalog_incomplete",
                f"read {len(catalog.users)} users and {len(catalog.groups)} "
                f"groups (plus {len(catalog.skipped)} skipped) but the catalog reported "
                f"{catalog.users_total} users and {catalog.groups_total} groups",
            )
        )
    if not litellm.complete or litellm.duplicates:
        warnings.append(
            Notice(
                "litellm_incomplete",
                f"read {len(litellm.users)} distinct LiteLLM users "
                f"({litellm.duplicates} repeated while paging) but /user/list reported "
                f"{litellm.total}",
            )
        )
    conflicts: list[Conflict] = []
    for user_id, refs in sorted(resolution.duplicates.items()):
        conflicts.append(
            Conflict(
                "duplicate_user_id",
                f"{len(refs)} catalog entities map to user id {user_id}: " + ", ".join(refs),
                user_id=user_id,
                entity_ref=refs[0],
            )
        )

    managed_teams = config.managed_teams()
    existing_teams = litellm.teams
    if existing_teams is not None:
        for team in sorted(managed_teams - existing_teams):
            warnings.append(
                Notice(
                    "team_missing",
                    f"team {team} named in the config does not exist in LiteLLM; "
                    "memberships of it are not added",
                    team,
                )
            )

    # Who holds which e-mail: LiteLLM keeps e-mails unique, ignoring case
    # (docs/litellm-api.md#user-new-email-is-unique-ignoring-case).
    email_owner: dict[str, str] = {}
    for user in litellm.users.values():
        if user.user_email:
            email_owner.setdefault(user.user_email.lower(), user.user_id)
    catalog_emails = Counter(d.user_email.lower() for d in resolution.desired if d.user_email)

    protect = (*ALWAYS_PROTECTED, *config.deprovision.protect)
    protected = protection(protect)
    creates: list[Action] = []
    updates: list[Action] = []
    unchanged: list[str] = []
    for desired in resolution.desired:
        if protected(desired.user_id):
            warnings.append(
                Notice(
                    "protected_user",
                    f"{desired.user_id} ({desired.entity_ref}) matches deprovision.protect; left untouched",
                    desired.user_id,
                )
            )
            continue
        current = litellm.users.get(desired.user_id)
        email = desired.user_email.lower() if desired.user_email else None
        holder = email_owner.get(email) if email else None
        if email and catalog_emails[email] > 1:
            conflicts.append(
                Conflict(
                    "duplicate_email",
                    f"{catalog_emails[email]} catalog users share the e-mail "
                    f"{desired.user_email}; {desired.user_id} is not synced",
                    desired.user_id,
                    desired.entity_ref,
                )
            )
            continue
        if current is None:
            if holder is not None:
                conflicts.append(
                    Conflict(
                        "email_taken",
                        f"e-mail {desired.user_email} is already held by LiteLLM "
                        f"user {holder}; {desired.user_id} is not created",
                        desired.user_id,
                        desired.entity_ref,
                    )
                )
                continue
            teams = tuple(sorted(desired.teams if existing_teams is None else desired.teams & existing_teams))
            creates.append(
                Action(
                    ActionKind.create,
                    desired.user_id,
                    desired.entity_ref,
                    desired.role,
                    payload=create_payload(desired, teams),
                    team_adds=teams,
                )
            )
            continue
        adopt = not current.managed
        if adopt and not config.adopt_unmanaged:
            conflicts.append(
                Conflict(
                    "unmanaged_user_exists",
                    f"LiteLLM user {desired.user_id} exists but was not "
                    "created by catalog-sync; left untouched (set adopt_unmanaged to take it over)",
                    desired.user_id,
                    desired.entity_ref,
                )
            )
            continue
        diff = diff_user(desired, current, managed_teams, existing_teams)
        if holder is not None and holder != desired.user_id and "user_email" in diff.payload:
            conflicts.append(
                Conflict(
                    "email_taken",
                    f"e-mail {desired.user_email} is already held by LiteLLM user "
                    f"{holder}; the e-mail of {desired.user_id} is not changed",
                    desired.user_id,
                    desired.entity_ref,
                )
            )
            payload = {k: v for k, v in diff.payload.items() if k != "user_email"}
            diff = UserDiff(
                tuple(c for c in diff.changes if c.field != "user_email"),
                payload,
                diff.team_adds,
                diff.team_removes,
            )
        if diff.empty:
            unchanged.append(desired.user_id)
            continue
        blocked = blocked_record(current)
        updates.append(
            Action(
                ActionKind.update,
                desired.user_id,
                desired.entity_ref,
                desired.role,
                diff.changes,
                diff.payload,
                diff.team_adds,
                diff.team_removes,
                adopt=adopt,
                reason="back in the catalog: unblocked" if blocked is not None else None,
                key_unblocks=blocked_keys(blocked),
            )
        )

    deprovisions = _deprovisions(
        catalog, litellm, resolution.desired, resolution.duplicates, config, protected
    )
    withheld = _withheld(catalog, litellm)
    if withheld is not None and deprovisions:
        warnings.append(
            Notice(
                "deprovision_withheld",
                f"{len(deprovisions)} managed users are not in the catalog, but no deprovisioning is "
                f"done this run: {withheld}",
            )
        )

    stats = PlanStats(
        catalog_users=len(catalog.users),
        catalog_users_total=catalog.users_total,
        catalog_groups=len(catalog.groups),
        litellm_users=len(litellm.users),
        litellm_users_total=litellm.total,
        managed_users=sum(1 for u in litellm.users.values() if u.managed),
    )
    return Plan(
        creates=tuple(creates),
        updates=tuple(updates),
        deprovisions=tuple(deprovisions),
        unchanged=tuple(unchanged),
        conflicts=tuple(conflicts),
        warnings=tuple(warnings),
        stats=stats,
        desired={d.user_id: d for d in resolution.desired},
        deprovision_mode=config.deprovision.mode.value,
        deprovision_withheld=withheld,
        roles=_with_holders(resolution.roles, resolution.desired, litellm),
    )


def _with_holders(
    checks: tuple[RoleCheck, ...], desired: tuple[DesiredUser, ...], litellm: LiteLLMSnapshot
) -> tuple[RoleCheck, ...]:
    """Counts, for each role whose group is missing, the managed users who would now get another role and
    hold it today, by their marker: this role (a group renamed in the catalog) or the similar group it
    was probably meant to be (a typo in the config). The people such a slip would silently move."""
    meant = {c.group_ref: c.group_ref for c in checks if c.missing}
    meant.update({c.suggestion: c.group_ref for c in checks if c.missing and c.suggestion})
    if not meant:
        return checks
    role_of = {d.user_id: d.role for d in desired}
    lost: Counter[str] = Counter()
    for user in litellm.users.values():
        held = user.marker.get("role") if user.marker else None
        if held in meant and user.user_id in role_of and role_of[user.user_id] != held:
            lost[meant[held]] += 1
    return tuple(replace(c, holders_lost=lost[c.group_ref]) if c.missing else c for c in checks)


def protection(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """A test for "matches one of these shell patterns, case-insensitively", compiled once per plan."""
    if not patterns:
        return lambda _: False
    match = re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns)).match
    return lambda user_id: match(user_id.lower()) is not None


def blocked_record(user: LiteLLMUser) -> Mapping[str, Any] | None:
    """The job's record of having blocked this user (in its marker), or None."""
    record = user.marker.get("blocked") if user.marker else None
    return record if isinstance(record, Mapping) else None


def blocked_keys(record: Mapping[str, Any] | None) -> tuple[str, ...]:
    keys = record.get("keys") if record else None
    return tuple(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else ()


def _withheld(catalog: CatalogSnapshot, litellm: LiteLLMSnapshot) -> str | None:
    """Why the reads cannot be trusted to say who left (awslabs/ssosync #278, #88), or None."""
    if not catalog.users:
        return "the catalog returned no usable users at all"
    if not catalog.complete:
        return (
            f"the catalog read is incomplete ({len(catalog.users)} users, {len(catalog.groups)} groups and "
            f"{len(catalog.skipped)} skipped entities read; {catalog.users_total} users and "
            f"{catalog.groups_total} groups reported)"
        )
    if litellm.duplicates:
        return f"/user/list repeated {litellm.duplicates} rows while paging"
    if not litellm.complete:
        return f"/user/list gave {len(litellm.users)} distinct users but reported a total of {litellm.total}"
    return None


def _deprovisions(
    catalog: CatalogSnapshot,
    litellm: LiteLLMSnapshot,
    desired: tuple[DesiredUser, ...],
    duplicates: Mapping[str, tuple[str, ...]],
    config: Config,
    protected: Callable[[str], bool],
) -> list[Action]:
    """Managed, unprotected users that no catalog entity accounts for any more."""
    in_catalog = {d.user_id for d in desired}
    in_catalog.update(duplicates)
    gone = [u for u in litellm.users.values() if u.managed and u.user_id not in in_catalog]
    if not gone:
        return []
    # An entity that is still there but was skipped or could not be mapped this run is not a leaver.
    present_refs = {u.ref for u in catalog.users} | {s.ref.lower() for s in catalog.skipped}
    mode = config.deprovision.mode.value
    out = []
    for user in sorted(gone, key=lambda u: u.user_id):
        if protected(user.user_id):
            continue
        ref = user.marker.get("entity_ref") if user.marker else user.metadata.get("backstage_entity")
        ref = ref if isinstance(ref, str) else None
        if ref is not None and ref.lower() in present_refs:
            continue
        kind = ActionKind(mode) if mode != "report" else ActionKind.deprovision
        blocked = blocked_record(user)
        if kind is ActionKind.block and blocked is not None and blocked.get("done") is True:
            continue  # already blocked: nothing left to do
        reason = "not in the catalog"
        if kind is ActionKind.block and blocked is not None:
            reason = "not in the catalog; finishing an interrupted block"
        out.append(Action(kind, user.user_id, ref, None, reason=reason))
    return out


@dataclass(frozen=True, slots=True)
class GuardTrip:
    guard: str  # max_deprovision | max_changes | max_downgrades | role_group_missing
    limit: int
    planned: int
    message: str


def check_guards(plan: Plan, config: Config) -> tuple[GuardTrip, ...]:
    """Guards checked before anything is applied; any trip means nothing is applied (unless forced)."""
    trips: list[GuardTrip] = list(_missing_role_groups(plan))
    deprovisions = len(plan.deprovisions_to_apply)
    limit = config.guards.deprovision_limit(plan.stats.managed_users)
    if deprovisions > limit:
        trips.append(
            GuardTrip(
                "max_deprovision",
                limit,
                deprovisions,
                f"{deprovisions} users to {plan.deprovision_mode} exceeds guards.max_deprovision "
                f"({config.guards.max_deprovision} of {plan.stats.managed_users} managed users = {limit}) "
                f"by {deprovisions - limit}",
            )
        )
    trips.extend(_too_many_downgrades(plan, config))
    max_changes = config.guards.max_changes
    changes = len(plan.actions)
    if max_changes is not None and changes > max_changes:
        trips.append(
            GuardTrip(
                "max_changes",
                max_changes,
                changes,
                f"{changes} changes exceeds guards.max_changes ({max_changes}) by {changes - max_changes}",
            )
        )
    return tuple(trips)


def _missing_role_groups(plan: Plan) -> list[GuardTrip]:
    """A role whose group is not in the catalog (a typo, a renamed group) would silently move its people
    to a later role or the defaults: it stops the run unless the role is marked optional."""
    return [
        GuardTrip(
            "role_group_missing",
            0,
            check.holders_lost,
            f"{check.label}: the group does not exist in the catalog{check.did_you_mean}; "
            f"{check.holders_lost} {'person' if check.holders_lost == 1 else 'people'} would change role "
            f"because of it (holding {_held(check)} today); fix the group, or set optional: true on the role",
        )
        for check in plan.roles
        if check.missing and not check.optional
    ]


def _held(check: RoleCheck) -> str:
    return f"this role or {check.suggestion}'s" if check.suggestion else "this role"


def role_warnings(plan: Plan) -> list[str]:
    """One line per role that needs a person's eye: its group is missing, or it matches nobody."""
    stops = iter(_missing_role_groups(plan))  # in role order, one per missing non-optional role
    return [
        next(stops).message if n.code == "role_group_missing" and not check.optional else n.message
        for check in plan.roles
        for n in role_notices((check,))
    ]


def _too_many_downgrades(plan: Plan, config: Config) -> list[GuardTrip]:
    cut = [(a, fields) for a in plan.updates if (fields := downgraded_fields(a))]
    limit = config.guards.downgrade_limit(plan.stats.managed_users)
    if len(cut) <= limit:
        return []
    examples = ", ".join(f"{a.user_id} ({', '.join(fields)})" for a, fields in cut[:3])
    more = f" and {len(cut) - 3} more" if len(cut) > 3 else ""
    return [
        GuardTrip(
            "max_downgrades",
            limit,
            len(cut),
            f"{len(cut)} {'user' if len(cut) == 1 else 'users'} would have a budget, rate limit or model "
            f"list cut, which exceeds guards.max_downgrades ({config.guards.max_downgrades} of "
            f"{plan.stats.managed_users} managed users = {limit}) by {len(cut) - limit}: {examples}{more}",
        )
    ]


LIMIT_FIELDS = frozenset({"max_budget", "tpm_limit", "rpm_limit"})


def downgraded_fields(action: Action) -> tuple[str, ...]:
    """The fields of an update that take something away: a lower budget or rate limit (a limit where there
    was none counts; none where there was one does not), or a model list that loses a model."""
    if action.kind is not ActionKind.update:
        return ()
    return tuple(
        c.field
        for c in action.changes
        if (c.field in LIMIT_FIELDS and _lowered(c.before, c.after))
        or (c.field == "models" and _fewer_models(c.before, c.after))
    )


def _lowered(before: Any, after: Any) -> bool:
    if not isinstance(after, (int, float)):
        return False  # None: no limit, never a cut
    if not isinstance(before, (int, float)):
        return True  # a limit where there was none
    return float(after) < float(before) and not _same_number(float(after), float(before))


def _fewer_models(before: Any, after: Any) -> bool:
    # [] and all-proxy-models both mean every model: all -> a list shrinks, a list -> all does not.
    def every(models: Any) -> bool:
        return not models or ALL_PROXY_MODELS in models

    if every(after):
        return False
    return every(before) or bool(set(before) - set(after))
