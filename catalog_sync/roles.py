"""What each catalog person should have in LiteLLM: the user id rule, group closure and role defaults.

Pure functions: catalog data and config in, desired users and warnings out.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from catalog_sync.config import Config, Role, UserIdSource
from catalog_sync.model import CatalogGroup, CatalogSnapshot, CatalogUser, Notice, record

DEFAULTS = "defaults"


@record
class DesiredUser:
    """The LiteLLM state one catalog person should have."""

    user_id: str
    entity_ref: str
    role: str  # the matching role's group ref, or "defaults"
    user_email: str | None
    user_alias: str | None
    user_role: str | None
    max_budget: float | None
    budget_duration: str | None
    models: tuple[str, ...]  # sorted; () means all models
    tpm_limit: int | None
    rpm_limit: int | None
    metadata: Mapping[str, Any]  # the config's metadata keys only
    teams: frozenset[str]


@dataclass(frozen=True, slots=True)
class RoleCheck:
    """How one configured role fared against this catalog: the basis of the role warnings and guard."""

    index: int  # position in config.roles
    group: str  # as written in the config
    group_ref: str
    optional: bool
    exists: bool  # the group is in the catalog
    has_members: bool  # someone is in the group's closure (directly, or in a sub-group if nested)
    matched: bool  # the role is someone's first match
    # For a missing group: a catalog group of a similar name that no role names (a typo's likely target).
    suggestion: str | None = None
    # For a missing group: managed LiteLLM users whose marker says they hold this role (or the suggested
    # group's) and who would now get another one. Filled in by the planner, which sees LiteLLM.
    holders_lost: int = 0

    @property
    def label(self) -> str:
        written = f", written {self.group!r}" if self.group.strip() != self.group_ref else ""
        return f"roles[{self.index}] ({self.group_ref}{written})"

    @property
    def did_you_mean(self) -> str:
        return f" (did you mean {self.suggestion}?)" if self.suggestion else ""

    @property
    def missing(self) -> bool:
        return not self.exists

    @property
    def unmatched(self) -> bool:
        return self.exists and not self.has_members

    @property
    def shadowed(self) -> bool:
        """Every member is already taken by a role above it."""
        return self.exists and self.has_members and not self.matched


@dataclass(frozen=True, slots=True)
class Resolution:
    desired: tuple[DesiredUser, ...]
    # Catalog users the id rule could not map, or that collided with another entity's id.
    unmapped: tuple[Notice, ...]
    duplicates: Mapping[str, tuple[str, ...]]  # user id -> entity refs that all map to it
    warnings: tuple[Notice, ...]
    roles: tuple[RoleCheck, ...] = ()


def user_id_for(user: CatalogUser, config: Config) -> str | None:
    """The LiteLLM user id of a catalog person, as the plugin computes it
    (@acarmisc/backstage-plugin-litellm-backend)."""
    if config.user_id.source is UserIdSource.email:
        email = (user.email or "").strip()
        return email.lower() if email and "@" in email else None
    user_id = user.name.strip().lower()
    if not user_id:
        return None
    domain = config.user_id.domain
    # The plugin once produced foo@bar.it@bar.it; a name that already holds an @ is kept as is.
    if domain and "@" not in user_id:
        user_id = f"{user_id}@{domain.lower()}"
    return user_id


def ancestors(groups: Mapping[str, CatalogGroup], start: Iterable[str]) -> frozenset[str]:
    """Every group reachable upwards from `start` (included), following parents; cycles are harmless."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        ref = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        group = groups.get(ref)
        if group is not None:
            stack.extend(group.parents - seen)
    return frozenset(seen)


def find_cycles(groups: Mapping[str, CatalogGroup]) -> list[str]:
    """Groups that are their own ancestor (reported; membership still resolves)."""
    cyclic = []
    for ref, group in groups.items():
        if ref in ancestors(groups, group.parents):
            cyclic.append(ref)
    return sorted(cyclic)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a role (or the defaults) gives: one shared object for everyone it matches."""

    role: str
    user_role: str | None
    max_budget: float | None
    budget_duration: str | None
    models: tuple[str, ...]
    tpm_limit: int | None
    rpm_limit: int | None
    metadata: Mapping[str, Any]
    teams: frozenset[str]


def _pick(role: Role | None, config: Config, name: str) -> Any:
    # A field the role leaves out falls back to the defaults; an explicit null in the role is kept.
    if role is not None and name in role.model_fields_set:
        return getattr(role, name)
    return getattr(config.defaults, name)


def grant_for(role: Role | None, config: Config) -> Grant:
    metadata: dict[str, Any] = dict(config.defaults.metadata or {})
    if role is not None and role.metadata:
        metadata.update(role.metadata)  # shallow merge, as the plugin's applyRoleOverrides does
    max_budget = _pick(role, config, "max_budget")
    return Grant(
        role=role.group_ref if role is not None else DEFAULTS,
        user_role=_pick(role, config, "user_role"),
        max_budget=float(max_budget) if max_budget is not None else None,
        budget_duration=_pick(role, config, "budget_duration"),
        models=tuple(sorted(set(_pick(role, config, "models") or ()))),
        tpm_limit=_pick(role, config, "tpm_limit"),
        rpm_limit=_pick(role, config, "rpm_limit"),
        metadata=metadata,  # shared by everyone the grant matches: never mutated
        teams=frozenset(_pick(role, config, "teams") or ()),
    )


class RoleMatcher:
    """The first role (config order) whose group a user belongs to, directly or through a descendant group.

    The first role reachable upwards from a set of groups is the earliest of those reachable from each
    group, so it is worked out once per group and once per distinct set of direct groups. Those sets
    also say afterwards, without any per-person bookkeeping, which roles matched nobody.
    """

    def __init__(self, groups: Mapping[str, CatalogGroup], config: Config) -> None:
        self._groups = groups
        self._nested = config.match_nested_groups
        self._grants = [grant_for(role, config) for role in config.roles]
        self._role_refs = [role.group_ref for role in config.roles]
        self.default = grant_for(None, config)
        self._rank: dict[str, int] = {}  # group ref -> index of the first role it reaches
        self._seen: dict[frozenset[str], Grant] = {}

    def _reach(self, group: str) -> frozenset[str]:
        return ancestors(self._groups, (group,)) if self._nested else frozenset((group,))

    def _first_role(self, group: str) -> int:
        rank = self._rank.get(group)
        if rank is None:
            reach = self._reach(group)
            rank = next((i for i, ref in enumerate(self._role_refs) if ref in reach), len(self._role_refs))
            self._rank[group] = rank
        return rank

    def __call__(self, direct: frozenset[str]) -> Grant:
        hit = self._seen.get(direct)
        if hit is None:
            first = min(map(self._first_role, direct), default=len(self._grants))
            hit = self._grants[first] if first < len(self._grants) else self.default
            self._seen[direct] = hit
        return hit

    def tally(self) -> tuple[list[bool], list[bool]]:
        """(has members, is someone's first match) per role, over everyone matched so far."""
        present: set[str] = set().union(*self._seen)  # every group someone is directly in
        reached = set().union(*map(self._reach, present))
        firsts = {grant.role for grant in self._seen.values()}
        return [ref in reached for ref in self._role_refs], [ref in firsts for ref in self._role_refs]


def similar_group(ref: str, groups: Iterable[str], taken: Iterable[str]) -> str | None:
    """A group in the same namespace whose name is close to ref's (finanse -> finance) and that no role
    names: what a misspelt or renamed role group most likely meant."""
    prefix, _, name = ref.rpartition("/")
    unused = set(groups) - set(taken)
    names = [g.rpartition("/")[2] for g in unused if g.rpartition("/")[0] == prefix]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"{prefix}/{close[0]}" if close else None


def role_checks(config: Config, catalog: CatalogSnapshot, match: RoleMatcher) -> tuple[RoleCheck, ...]:
    members, matched = match.tally()
    refs = [role.group_ref for role in config.roles]
    return tuple(
        RoleCheck(
            index=i,
            group=role.group,
            group_ref=role.group_ref,
            optional=role.optional,
            exists=role.group_ref in catalog.groups,
            has_members=members[i],
            matched=matched[i],
            suggestion=None
            if role.group_ref in catalog.groups
            else similar_group(role.group_ref, catalog.groups, refs),
        )
        for i, role in enumerate(config.roles)
    )


def role_notices(checks: tuple[RoleCheck, ...]) -> list[Notice]:
    """Warnings about roles that do not do what they say: matching nobody, or hidden by roles above."""
    out: list[Notice] = []
    for check in checks:
        if check.missing:
            optional = " (optional: true, so only this warning)" if check.optional else ""
            out.append(
                Notice(
                    "role_group_missing",
                    f"{check.label}: the group does not exist in the catalog{check.did_you_mean}{optional}",
                    check.group_ref,
                )
            )
        elif check.unmatched:
            out.append(Notice("role_unmatched", f"{check.label} matches nobody", check.group_ref))
        elif check.shadowed:
            out.append(
                Notice(
                    "role_shadowed",
                    f"{check.label} matches nobody: every member of its group is taken by a role above it",
                    check.group_ref,
                )
            )
    return out


def desired_for(user: CatalogUser, user_id: str, grant: Grant) -> DesiredUser:
    email = user.email.strip() if user.email else None
    return DesiredUser(
        user_id=user_id,
        entity_ref=user.ref,
        role=grant.role,
        user_email=email or None,
        user_alias=user.display_name or None,
        user_role=grant.user_role,
        max_budget=grant.max_budget,
        budget_duration=grant.budget_duration,
        models=grant.models,
        tpm_limit=grant.tpm_limit,
        rpm_limit=grant.rpm_limit,
        metadata=grant.metadata,
        teams=grant.teams,
    )


def resolve(catalog: CatalogSnapshot, config: Config) -> Resolution:
    warnings: list[Notice] = []
    for ref in find_cycles(catalog.groups):
        warnings.append(Notice("group_cycle", f"group {ref} is its own ancestor (cycle in spec.parent)", ref))

    unmapped: list[Notice] = []
    by_id: dict[str, list[CatalogUser]] = {}
    for user in catalog.users:
        user_id = user_id_for(user, config)
        if user_id is None:
            why = "has no profile e-mail" if config.user_id.source is UserIdSource.email else "has no name"
            unmapped.append(
                Notice("unmappable_user", f"{user.ref} {why}; it cannot be given a user id", user.ref)
            )
            continue
        if not (user.email and user.email.strip()):
            warnings.append(
                Notice("no_email", f"{user.ref} has no profile e-mail; synced without one", user.ref)
            )
        by_id.setdefault(user_id, []).append(user)

    desired: list[DesiredUser] = []
    duplicates: dict[str, tuple[str, ...]] = {}
    match = RoleMatcher(catalog.groups, config)
    for user_id, users in by_id.items():
        if len(users) > 1:
            duplicates[user_id] = tuple(sorted(u.ref for u in users))
            continue
        user = users[0]
        desired.append(desired_for(user, user_id, match(user.groups)))
    desired.sort(key=lambda d: d.user_id)
    checks = role_checks(config, catalog, match)
    warnings[:0] = role_notices(checks)
    return Resolution(tuple(desired), tuple(unmapped), duplicates, tuple(warnings), checks)


# --- Why a person gets what they get (`--user`): pure, separate from the matching above -----------------


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a person's role is what it is: the role that matched and through which groups, or the defaults.

    Shared by everyone with the same direct groups, so it names no person.
    """

    direct_groups: tuple[str, ...]  # group refs the person is a direct member of, sorted
    role_index: int | None  # position in config.roles; None: no role matched, the defaults apply
    role_group: str | None
    # Group refs from one of the direct groups up to the role's group (one entry when a direct member).
    path: tuple[str, ...]
    tried: tuple[str, ...]  # the role groups before the match (every role's, for the defaults): not reached
    nested: bool = True  # match_nested_groups, as the plan was made


def _path_up(
    groups: Mapping[str, CatalogGroup], direct: Iterable[str], nested: bool
) -> dict[str, str | None]:
    """Every group reachable upwards, each with the group it was reached from (None: a direct group).
    Breadth first, so each path is a shortest one; sorted, so the same catalog always gives the same path."""
    came_from: dict[str, str | None] = {ref: None for ref in sorted(direct)}
    if not nested:
        return came_from
    queue = list(came_from)
    for ref in queue:  # grows while it is walked
        group = groups.get(ref)
        for parent in sorted(group.parents) if group is not None else ():
            if parent not in came_from:
                came_from[parent] = ref
                queue.append(parent)
    return came_from


def explain(user: CatalogUser, groups: Mapping[str, CatalogGroup], config: Config) -> Explanation:
    """The first role (config order) the person reaches through their groups, as RoleMatcher picks it, and
    the way up to it."""
    return _explain(user.groups, groups, config)


def _explain(direct: frozenset[str], groups: Mapping[str, CatalogGroup], config: Config) -> Explanation:
    came_from = _path_up(groups, direct, config.match_nested_groups)
    refs = [role.group_ref for role in config.roles]
    index = next((i for i, ref in enumerate(refs) if ref in came_from), None)
    path: list[str] = []
    step = refs[index] if index is not None else None
    while step is not None:
        path.append(step)
        step = came_from[step]
    return Explanation(
        direct_groups=tuple(sorted(direct)),
        role_index=index,
        role_group=refs[index] if index is not None else None,
        path=tuple(reversed(path)),
        tried=tuple(refs[:index] if index is not None else refs),
        nested=config.match_nested_groups,
    )


def explain_people(
    catalog: CatalogSnapshot, config: Config, wanted: Callable[[str, str], bool]
) -> dict[str, Explanation]:
    """Explanations of the catalog people `wanted(user_id, entity_ref)` picks, by user id. One per distinct
    set of direct groups is worked out (a plan saved for 100,000 people explains each of them)."""
    seen: dict[frozenset[str], Explanation] = {}
    out: dict[str, Explanation] = {}
    for user in catalog.users:
        user_id = user_id_for(user, config)
        if user_id is None or not wanted(user_id, user.ref):
            continue
        hit = seen.get(user.groups)
        if hit is None:
            hit = seen[user.groups] = _explain(user.groups, catalog.groups, config)
        out[user_id] = hit
    return out
