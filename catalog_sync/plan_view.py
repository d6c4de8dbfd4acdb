"""The plan as a person reads it, terraform-like: one line per person, field by field, in words.

Pure: plan, actions and explanations in, lines out; the CLI prints them. `describe` is the one wording of a
field change, shared by the terminal, the Markdown and the HTML report, so that a change reads the same
everywhere (the ownership marker in words, an empty model list as "all models"); the JSON report and saved
plans keep the raw values.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from catalog_sync.apply import ActionResult, Outcome
from catalog_sync.model import MARKER_KEY
from catalog_sync.plan import ALL_PROXY_MODELS, ActionKind, Conflict, Plan
from catalog_sync.roles import DEFAULTS, DesiredUser, Explanation
from catalog_sync.words import plural

ALL_MODELS = "all models"
LIST_LIMIT = 50  # people listed on the terminal before "… and N more"
_NO_LIMIT_FIELDS = frozenset({"max_budget", "tpm_limit", "rpm_limit"})
_MAX_VALUE = 80  # characters of one value (a long metadata value) before it is cut
_SYMBOL = {ActionKind.create: "+", ActionKind.update: "~"}


# Warnings that mean a catalog person was left out of the sync (conflicts are counted on their own).
LEFT_OUT_CODES = frozenset({"protected_user", "unmappable_user"})


def left_out_count(warnings: Iterable[Mapping[str, Any]]) -> int:
    """Catalog people the sync left out, from the report's warnings: protected, unmappable, or a User
    entity skipped as unusable."""
    return sum(
        1
        for w in warnings
        if w["code"] in LEFT_OUT_CODES
        or (w["code"] == "skipped_entity" and str(w["message"]).startswith("user "))
    )


def problems_words(conflicts: int, left_out: int) -> str:
    """3 conflicts, 1 person left out (for headlines; empty when there are none)."""
    parts = [plural(conflicts, "conflict")] if conflicts else []
    if left_out:
        parts.append(plural(left_out, "person", "people") + " left out")
    return ", ".join(parts)


def group_name(ref: str | None) -> str:
    """group:default/finance -> finance; another namespace stays: group:ops/finance -> ops/finance."""
    if not ref:
        return "unknown"
    if ref == DEFAULTS:
        return DEFAULTS
    ref = ref.removeprefix("group:")
    return ref.removeprefix("default/")


@dataclass(frozen=True, slots=True)
class Words:
    """A field change in words: `label before → after`, or `label after` when there is no before to show
    (a create, or a list change as +added -removed). A label of "" for the marker, which reads whole."""

    label: str
    before: str | None
    after: str

    def __str__(self) -> str:
        head = f"{self.label} " if self.label else ""
        return f"{head}{self.before} → {self.after}" if self.before is not None else f"{head}{self.after}"


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v) for v in value) or "none"
    return str(value)


def value_text(field: str, value: Any) -> str:
    """One value in words: no limit, all models, none, 50 (not 50.0); never a raw JSON blob."""
    if field == "models" and (not value or list(value) == [ALL_PROXY_MODELS]):
        return ALL_MODELS
    if value is None:
        return "no limit" if field in _NO_LIMIT_FIELDS else "none"
    if field == "metadata" and isinstance(value, Mapping):
        shown = [f"{k} {_scalar(v)}" for k, v in sorted(value.items()) if k != MARKER_KEY]
        return _cut(", ".join(shown) or "none")
    return _cut(_scalar(value))


def marker_words(before: Any, after: Any, adopt: bool = False) -> str:
    """What changed in the job's ownership marker (metadata.catalog_sync), said in words."""
    old = before if isinstance(before, Mapping) else None
    new = after if isinstance(after, Mapping) else {}
    if old is None:  # not adopted yet managed without the marker: made by the Backstage plugin
        return "now managed by catalog-sync " + ("(adopted)" if adopt else "(was the Backstage plugin's)")
    parts = []
    if old.get("blocked") and not new.get("blocked"):
        parts.append("restored after block")
    elif new.get("blocked") and not old.get("blocked"):
        parts.append("blocked")
    if old.get("role") != new.get("role"):
        parts.append(f"role {group_name(old.get('role'))} → {group_name(new.get('role'))}")
    if old.get("entity_ref") != new.get("entity_ref"):
        parts.append(f"catalog entity {old.get('entity_ref') or 'unknown'} → {new.get('entity_ref')}")
    # Which metadata keys it owns changes with the metadata.<key> changes beside it: said only alone.
    keys = _delta(old.get("keys"), new.get("keys"))
    if not parts and keys:
        parts.append(f"owns metadata keys {keys}")
    return ", ".join(parts) or "bookkeeping refreshed"


def _delta(before: Any, after: Any) -> str:
    old = {str(v) for v in before} if isinstance(before, (list, tuple)) else set()
    new = {str(v) for v in after} if isinstance(after, (list, tuple)) else set()
    return " ".join([*(f"+{v}" for v in sorted(new - old)), *(f"-{v}" for v in sorted(old - new))])


def describe(field: str, before: Any, after: Any, *, create: bool = False, adopt: bool = False) -> Words:
    """The one wording of a field change (terminal, Markdown, HTML). `create`: there is no before."""
    if field == f"metadata.{MARKER_KEY}":
        return Words("", None, marker_words(None if create else before, after, adopt))
    if field == "keys_blocked":  # a block's follow-up: how many keys it blocked
        return Words("keys blocked", None, _scalar(after))
    if create:
        return Words(field, None, value_text(field, after))
    old, new = value_text(field, before), value_text(field, after)
    # A list change reads as what was added and removed, unless one side is "all models".
    if field == "teams" or (field == "models" and ALL_MODELS not in (old, new)):
        return Words(field, None, _delta(before, after) or "reordered")
    return Words(field, old, new)


# --- one line per person ---------------------------------------------------------------------------


def create_words(role: str | None, values: Mapping[str, Any]) -> str:
    """role finance: max_budget 25, models all models, teams finance-team (what matters of a create)."""
    shown = [str(describe(f, None, values.get(f), create=True)) for f in ("max_budget", "models", "teams")]
    who = "defaults (no role matched)" if role in (None, DEFAULTS) else f"role {group_name(role)}"
    return f"{who}: " + ", ".join(shown)


def update_words(changes: Iterable[tuple[str, Any, Any]], adopt: bool = False) -> str:
    """role engineering → ml-research, max_budget 50 → 100, models +gpt-4o, teams +ml-platform"""
    words = [describe(f, b, a, adopt=adopt) for f, b, a in changes]
    words.sort(key=lambda w: w.label != "")  # the marker's words (the role, adopted, restored) first
    return ", ".join(map(str, words)) or "no field changes"


def deprovision_words(kind: str, reason: str | None, outcome: str) -> str:
    why = reason or "not in the catalog"
    if outcome == Outcome.reported.value:
        return f"{why} (deprovision.mode report: listed only)"
    if outcome == Outcome.withheld.value:
        return f"{kind} withheld this run ({why}; the reads could not be trusted, see the report)"
    return f"{kind} ({why})"


_OUTCOME_MARK = {
    Outcome.failed: "FAILED",
    Outcome.conflict: "CONFLICT",
    Outcome.interrupted: "INTERRUPTED (may be partly applied)",
    Outcome.not_started: "NOT STARTED (the run was stopped)",
}
_PROBLEMS = frozenset({Outcome.failed, Outcome.interrupted})  # listed first


def action_line(result: ActionResult) -> str:
    a = result.action
    if a.kind is ActionKind.create:
        text = create_words(a.role, {**a.payload, "teams": list(a.team_adds)})
    elif a.kind is ActionKind.update:
        text = update_words(((c.field, c.before, c.after) for c in a.changes), a.adopt)
    else:
        text = deprovision_words(a.kind.value, a.reason, result.outcome.value)
    line = f"{_SYMBOL.get(a.kind, '-')} {a.user_id}  {text}"
    mark = _OUTCOME_MARK.get(result.outcome)
    if mark is not None:
        line += f"  {mark}" + (f": {result.error}" if result.error else "")
    elif result.outcome is Outcome.blocked_by_guard:
        line += "  (not applied: a guard tripped)"
    return line


# --- which people (`--user`), and why they get what they get ----------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """`--user` values: exact user ids, entity refs or names, or shell globs (`*@example.com`, `bob*`);
    case-insensitive."""

    patterns: tuple[str, ...]

    def matches(self, user_id: str, entity_ref: str | None = None) -> bool:
        return any(self.which(user_id, entity_ref))

    def which(self, user_id: str, entity_ref: str | None = None) -> list[str]:
        """The patterns this person matches."""
        names = [user_id.lower()]
        if entity_ref:
            names += [entity_ref.lower(), entity_ref.lower().rsplit("/", 1)[-1]]
        return [p for p in self.patterns if any(fnmatch.fnmatchcase(n, p.lower()) for n in names)]


def explanation_words(explanation: Explanation) -> str:
    """role ml-research (roles[1]): member of team-b → ml-research (nested); earlier roles not matched:
    llm-admins. Or: defaults: no role matched (member of finance; roles tried: llm-admins, ml-research)"""
    tried = ", ".join(group_name(ref) for ref in explanation.tried)
    if explanation.role_index is None:
        groups = ", ".join(group_name(g) for g in explanation.direct_groups) or "no groups"
        if not explanation.nested and explanation.direct_groups:
            groups += "; only direct groups count, match_nested_groups is false"
        if not tried:
            return f"defaults: no roles are configured (member of {groups})"
        return f"defaults: no role matched (member of {groups}; roles tried: {tried})"
    path = " → ".join(group_name(g) for g in explanation.path)
    how = "nested" if len(explanation.path) > 1 else "directly"
    role = f"role {group_name(explanation.role_group)} (roles[{explanation.role_index}])"
    text = f"{role}: member of {path} ({how})"
    if tried:
        text += f"; earlier roles not matched: {tried}"
    return text


def grant_words(desired: DesiredUser) -> str:
    """What a person's role gives, the fields an admin asks about."""
    values = {
        "max_budget": desired.max_budget,
        "budget_duration": desired.budget_duration,
        "models": list(desired.models),
        "teams": sorted(desired.teams),
    }
    if desired.tpm_limit is not None or desired.rpm_limit is not None:
        values |= {"tpm_limit": desired.tpm_limit, "rpm_limit": desired.rpm_limit}
    return ", ".join(str(describe(f, None, v, create=True)) for f, v in values.items())


def _why(user_id: str, plan: Plan, explanations: Mapping[str, Explanation]) -> list[str]:
    out = []
    explanation = explanations.get(user_id)
    if explanation is not None:
        out.append(f"    why: {explanation_words(explanation)}")
    desired = plan.desired.get(user_id)
    if desired is not None:
        if explanation is None:
            out.append(f"    why: role {group_name(desired.role)} (how it matched is not recorded)")
        out.append(f"    gets: {grant_words(desired)}")
    return out


# --- the whole list --------------------------------------------------------------------------------


# One person in the list: (user id, entity ref, what to say). The line is written only for the people shown,
# of maybe 100,000.
_Row = tuple[str, str | None, ActionResult | Conflict | str]


def _text(row: _Row) -> str:
    user_id, _, item = row
    if isinstance(item, ActionResult):
        return action_line(item)
    if isinstance(item, Conflict):
        return f"! {user_id}  conflict: {item.message}"
    return f"  {user_id}  {item}"


def _rows(results: Sequence[ActionResult], plan: Plan, everyone: bool) -> Iterator[_Row]:
    """Failures (and interrupted writes) first, then every change in plan order, then conflicts; with
    `everyone`, the rest."""
    yield from ((r.action.user_id, r.action.entity_ref, r) for r in results if r.outcome in _PROBLEMS)
    yield from ((r.action.user_id, r.action.entity_ref, r) for r in results if r.outcome not in _PROBLEMS)
    yield from ((c.user_id or c.entity_ref or "?", c.entity_ref, c) for c in plan.conflicts)
    if everyone:  # only asked about people: the unchanged and those left out (protected, unmappable) too
        yield from ((u, _ref(plan, u), "unchanged") for u in plan.unchanged)
        for w in plan.warnings:
            if w.code in LEFT_OUT_CODES and w.subject:
                yield w.subject, _ref(plan, w.subject) or w.subject, f"left out: {w.message}"


def _ref(plan: Plan, user_id: str) -> str | None:
    desired = plan.desired.get(user_id)
    return desired.entity_ref if desired is not None else None


def plan_lines(
    results: Sequence[ActionResult],
    plan: Plan,
    *,
    select: Selection | None = None,
    explanations: Mapping[str, Explanation] | None = None,
    limit: int = LIST_LIMIT,
    more_in: str = "the report",
) -> list[str]:
    """The per-person list: failures first, then every change, then conflicts; with `select`, only those
    people, the unchanged included, each with why they get what they get. Cut after `limit` people."""
    rows = _rows(results, plan, everyone=select is not None)
    lines: list[str] = []
    if select is not None:
        picked = [r for r in rows if select.matches(r[0], r[1])]
        found = {p for r in picked for p in select.which(r[0], r[1])}
        lines += [f"? {p}  no one in this plan matches" for p in select.patterns if p not in found]
        rows, total = iter(picked), len(picked)
    else:
        total = len(results) + len(plan.conflicts)
    for row in itertools.islice(rows, limit):
        lines.append(_text(row))
        if select is not None:
            lines += _why(row[0], plan, explanations or {})
    if total > limit:
        lines.append(f"… and {total - limit} more (see {more_in})")
    return lines


def counts_words(plan: Plan) -> str:
    """2 to create, 1 to update, 1 to block (a saved plan's actions)."""
    kinds: dict[str, int] = {}
    for a in plan.actions:
        kinds[a.kind.value] = kinds.get(a.kind.value, 0) + 1
    return ", ".join(f"{n} to {kind}" for kind, n in kinds.items()) or "nothing to apply"


def selected_plan(plan: Plan, select: Selection | None) -> Plan:
    """The plan limited to the people `--user` picked (for `--json`); the whole plan without a selection."""
    if select is None:
        return plan

    def keep(user_id: str | None, ref: str | None = None) -> bool:
        return user_id is not None and select.matches(user_id, ref or _ref(plan, user_id))

    return replace(
        plan,
        creates=tuple(a for a in plan.creates if keep(a.user_id, a.entity_ref)),
        updates=tuple(a for a in plan.updates if keep(a.user_id, a.entity_ref)),
        deprovisions=tuple(a for a in plan.deprovisions if keep(a.user_id, a.entity_ref)),
        unchanged=tuple(u for u in plan.unchanged if keep(u)),
        conflicts=tuple(c for c in plan.conflicts if keep(c.user_id, c.entity_ref)),
        desired={u: d for u, d in plan.desired.items() if keep(u, d.entity_ref)},
    )


def json_extra(plan: Plan) -> dict[str, Any]:
    """What `plan --json` adds to the saved-plan format for a reader (`apply` ignores it): the people who
    change nothing, conflicts, deprovisioning that is only listed, and warnings."""
    withheld = plan.deprovision_withheld is not None
    listed = [a for a in plan.deprovisions if withheld or a.kind is ActionKind.deprovision]
    return {
        "deprovision_withheld": plan.deprovision_withheld,
        "unchanged": list(plan.unchanged),
        "conflicts": [
            {"code": c.code, "user_id": c.user_id, "entity_ref": c.entity_ref, "message": c.message}
            for c in plan.conflicts
        ],
        "listed_deprovisions": [
            {"kind": a.kind.value, "user_id": a.user_id, "entity_ref": a.entity_ref, "reason": a.reason}
            for a in listed
        ],
        "warnings": [{"code": w.code, "subject": w.subject, "message": w.message} for w in plan.warnings],
    }
