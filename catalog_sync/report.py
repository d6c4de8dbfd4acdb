"""Run reports: a JSON document of stable shape (REPORT_VERSION), a Markdown summary, a terminal summary.

The JSON shape is documented in README.md ("The report"); add fields, never rename or remove them
without bumping REPORT_VERSION.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar, overload

import msgspec
import structlog

from catalog_sync.apply import ActionResult, Outcome
from catalog_sync.config import ReportFormat
from catalog_sync.model import LiteLLMUser, record
from catalog_sync.plan import ActionKind, FieldChange, GuardTrip, Plan
from catalog_sync.plan_view import create_words, left_out_count, problems_words, update_words
from catalog_sync.report_html import problems_first, render_html
from catalog_sync.urls import public_url
from catalog_sync.words import plural

REPORT_VERSION = 1
DEPROVISION_KINDS = frozenset({ActionKind.deprovision, ActionKind.block, ActionKind.delete})
MARKDOWN_MAX_CHANGES = 200
MARKDOWN_MAX_CHARS = 60_000  # GitHub refuses comments over 65,536 characters


@dataclass
class RunInfo:
    run_id: str
    command: str  # plan | run
    dry_run: bool
    started_at: str  # ISO 8601, UTC
    version: str
    config_path: str
    backstage_url: str
    litellm_url: str
    finished_at: str | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # read_seconds, plan_seconds, apply_seconds
    interrupted_by: str | None = None  # SIGTERM or SIGINT: the run was stopped before it ended


_T = TypeVar("_T")


class LazyRows(Sequence[dict[str, Any]], Generic[_T]):
    """A read-only list of report rows, each built when it is read: a first run of 100,000 creates is never
    100,000 row dicts in memory at once (the writers stream them)."""

    def __init__(self, items: Sequence[_T], render: Callable[[_T], dict[str, Any]]) -> None:
        self._items = items
        self._render = render

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._render(item) for item in self._items[index]]
        return self._render(self._items[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._render, self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, LazyRows)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazyRows({len(self)} rows)"


def _change(c: FieldChange) -> dict[str, Any]:
    return {"field": c.field, "before": c.before, "after": c.after}


def _action(result: ActionResult) -> dict[str, Any]:
    a = result.action
    return {
        "action": a.kind.value,
        "user_id": a.user_id,
        "entity_ref": a.entity_ref,
        "role": a.role,
        "adopt": a.adopt,
        "changes": [_change(c) for c in a.field_changes],
        "team_adds": list(a.team_adds),
        "team_removes": list(a.team_removes),
        "outcome": result.outcome.value,
        "error": result.error,
        "followup": [_change(c) for c in result.followup],
    }


NEAR_BUDGET = 0.8  # "near" from 80 % of the budget spent


def budget_status(spend: float, max_budget: float | None) -> tuple[str, float | None]:
    """(status, fraction used): over, near, ok, zero (budget 0, e.g. a blocked user), none (no budget)."""
    if max_budget is None:
        return "none", None
    if max_budget <= 0:
        return ("over" if spend > 0 else "zero"), None
    used = spend / max_budget
    return ("over" if used >= 1 else "near" if used >= NEAR_BUDGET else "ok"), round(used, 4)


_BUDGET_RANK = {"over": 0, "near": 1, "ok": 2, "zero": 3, "none": 4}


@record
class Budget:
    """What the budget picture needs of a user: kept instead of the whole LiteLLM record."""

    user_id: str
    email: str | None
    spend: float
    max_budget: float | None
    budget_duration: str | None
    status: str  # budget_status of spend and max_budget
    used: float | None


def _budget_row(b: Budget) -> dict[str, Any]:
    return {
        "user_id": b.user_id,
        "email": b.email,
        "spend": b.spend,
        "max_budget": b.max_budget,
        "budget_duration": b.budget_duration,
        "used": b.used,
        "status": b.status,
    }


def budgets_of(users: Iterable[LiteLLMUser]) -> list[Budget]:
    """Managed users' spend against their budget, those over or nearest to it first."""

    def key(b: Budget) -> tuple[int, float, float, str]:
        if b.used is None:
            # Spend on a zero budget is infinitely over it, so ahead of any ratio; without a ratio (zero or
            # no budget) the biggest spenders first. Never dollars compared with fractions.
            return _BUDGET_RANK[b.status], -math.inf if b.status == "over" else 0.0, -b.spend, b.user_id
        return _BUDGET_RANK[b.status], -b.used, 0.0, b.user_id

    rows = (
        Budget(
            u.user_id,
            u.user_email,
            u.spend,
            u.max_budget,
            u.budget_duration,
            *budget_status(u.spend, u.max_budget),
        )
        for u in users
        if u.managed
    )
    return sorted(rows, key=key)


def result_label(
    plan: Plan | None, results: Iterable[ActionResult], error: str | None, guard_tripped: bool = False
) -> str:
    if error is not None:
        return "error"
    if guard_tripped:
        return "guard_tripped"
    outcomes = {r.outcome for r in results}
    if Outcome.failed in outcomes:
        return "partial_failure"
    if Outcome.applied in outcomes:
        return "applied"
    if plan is not None and plan.has_changes:
        return "changes_planned"
    return "no_changes"


def build_report(
    run: RunInfo,
    plan: Plan | None,
    results: list[ActionResult],
    error: str | None = None,
    guards: tuple[tuple[GuardTrip, ...], bool] = ((), False),
    budgets: Sequence[Budget] = (),
) -> dict[str, Any]:
    """The report. `budgets`: from `budgets_of` the LiteLLM users as read this run."""
    action_results = [r for r in results if r.action.kind not in DEPROVISION_KINDS]
    deprovision = [r for r in results if r.action.kind in DEPROVISION_KINDS]
    trips, forced = guards
    counts: dict[str, int] = {}
    if plan is not None:
        s = plan.stats
        counts = {
            "catalog_users": s.catalog_users,
            "catalog_users_total": s.catalog_users_total,
            "catalog_groups": s.catalog_groups,
            "litellm_users": s.litellm_users,
            "litellm_users_total": s.litellm_users_total,
            "managed_users": s.managed_users,
            "create": len(plan.creates),
            "update": len(plan.updates),
            "unchanged": len(plan.unchanged),
            "deprovision": len(plan.deprovisions),
            "conflicts": len(plan.conflicts) + sum(1 for r in results if r.outcome is Outcome.conflict),
            "warnings": len(plan.warnings),
        }
    counts["applied"] = sum(1 for r in results if r.outcome is Outcome.applied)
    counts["failed"] = sum(1 for r in results if r.outcome is Outcome.failed)
    if run.interrupted_by:
        for stopped in (Outcome.not_started, Outcome.interrupted):
            counts[stopped.value] = sum(1 for r in results if r.outcome is stopped)
    conflicts = [
        {"code": c.code, "user_id": c.user_id, "entity_ref": c.entity_ref, "message": c.message}
        for c in (plan.conflicts if plan else ())
    ] + [
        {
            "code": "apply_conflict",
            "user_id": r.action.user_id,
            "entity_ref": r.action.entity_ref,
            "message": r.error or "",
        }
        for r in results
        if r.outcome is Outcome.conflict
    ]
    return {
        "report_version": REPORT_VERSION,
        "run": {
            "run_id": run.run_id,
            "command": run.command,
            "dry_run": run.dry_run,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration_seconds": run.duration_seconds,
            "exit_code": run.exit_code,
            "timings": run.timings,
            "version": run.version,
            "config_path": run.config_path,
            "backstage_url": public_url(run.backstage_url),
            "litellm_url": public_url(run.litellm_url),
            "deprovision_mode": plan.deprovision_mode if plan else None,
            "deprovision_withheld": plan.deprovision_withheld if plan else None,
            "interrupted_by": run.interrupted_by,
        },
        "result": "interrupted"
        if run.interrupted_by
        else result_label(plan, results, error, bool(trips) and not forced),
        "guards": {
            "tripped": [
                {"guard": t.guard, "limit": t.limit, "planned": t.planned, "message": t.message}
                for t in trips
            ],
            "forced": forced,
        },
        "error": error,
        "counts": counts,
        "actions": LazyRows(action_results, _action),
        "deprovision": [
            {
                "user_id": r.action.user_id,
                "entity_ref": r.action.entity_ref,
                "action": r.action.kind.value,
                "reason": r.action.reason,
                "outcome": r.outcome.value,
                "error": r.error,
                "changes": [_change(c) for c in r.followup],
            }
            for r in deprovision
        ],
        "conflicts": conflicts,
        "warnings": [
            {"code": w.code, "subject": w.subject, "message": w.message}
            for w in (plan.warnings if plan else ())
        ],
        "budgets": LazyRows(budgets, _budget_row),
        "requests": run.requests,
    }


def _change_line(entry: Mapping[str, Any]) -> str:
    # In words (plan_view.describe), as on the terminal: a create's role and what it gives, an update's
    # changed fields; the marker as what changed in it, never as JSON.
    if entry["action"] == "create":
        text = create_words(entry["role"], {c["field"]: c["after"] for c in entry["changes"]})
    else:
        changes = ((c["field"], c["before"], c["after"]) for c in entry["changes"])
        text = update_words(changes, bool(entry.get("adopt")))
    outcome = entry["outcome"]
    mark = {
        "failed": " **FAILED**",
        "conflict": " **CONFLICT**",
        "interrupted": " **INTERRUPTED**",
        "not_started": " (not started)",
    }.get(outcome, "")
    line = f"- **{entry['action']}** `{entry['user_id']}`{mark}: " + text.replace("\n", " ")
    if entry.get("error"):
        line += f" — {entry['error']}"
    return line


def _problems(report: Mapping[str, Any]) -> str:
    """3 conflicts, 1 person left out: the people the run does not cover ("" when none)."""
    counts = report.get("counts") or {}
    return problems_words(counts.get("conflicts", 0), left_out_count(report.get("warnings") or ()))


def headline(report: Mapping[str, Any]) -> str:
    """no changes, 3 conflicts, 1 person left out: the result, and the people it does not cover."""
    problems, result = _problems(report), str(report["result"]).replace("_", " ")
    return f"{result}, {problems}" if problems else result


class MarkdownRoom:
    """What is left of the Markdown's character budget; each section takes lines while they fit."""

    def __init__(self, chars: int) -> None:
        self.chars = chars

    def section(
        self, title: str, lines: Iterable[str], total: int, max_lines: int, noun: str = "more"
    ) -> list[str]:
        out = ["", f"### {title}", ""]
        self.chars -= sum(len(line) + 1 for line in out)
        reserve = 80  # the "... and N more" line
        shown = 0
        for line in lines:
            if shown >= max_lines or len(line) + 1 > self.chars - reserve:
                break
            out.append(line)
            self.chars -= len(line) + 1
            shown += 1
        if shown < total:
            more = f"- … and {total - shown} {noun} (see the JSON report)"
            out.append(more)
            self.chars -= len(more) + 1
        return out


def render_markdown(
    report: Mapping[str, Any],
    max_changes: int = MARKDOWN_MAX_CHANGES,
    max_chars: int = MARKDOWN_MAX_CHARS,
) -> str:
    run = report["run"]
    counts = report["counts"]
    title = "catalog-sync plan" if run["dry_run"] else "catalog-sync run"
    lines = [f"## {title}: {headline(report)}", ""]
    lines.append(
        f"Run `{run['run_id']}` at {run['started_at']} (catalog-sync {run['version']}), "
        f"deprovision mode `{run.get('deprovision_mode') or '-'}`."
    )
    if report.get("error"):
        lines += ["", f"**Error:** {report['error']}"]
    guards = report.get("guards") or {}
    for trip in guards.get("tripped", []):
        verb = "overridden with --force" if guards.get("forced") else "nothing was applied"
        lines += ["", f"**Guard `{trip['guard']}` tripped ({verb}):** {trip['message']}"]
    if run.get("deprovision_withheld"):
        lines += ["", f"**No deprovisioning this run:** {run['deprovision_withheld']}"]
    lines += ["", "| | count |", "|---|---:|"]
    for key in (
        "catalog_users",
        "litellm_users",
        "managed_users",
        "create",
        "update",
        "unchanged",
        "deprovision",
        "conflicts",
        "warnings",
        "applied",
        "failed",
        "not_started",
        "interrupted",
    ):
        if key in counts:
            lines.append(f"| {key.replace('_', ' ')} | {counts[key]} |")
    # A pull-request comment holds at most 65,536 characters: every section is cut to what still fits.
    # 1,000 kept back for the headings and "... and N more" lines of sections that get no room.
    room = MarkdownRoom(max_chars - 1_000 - sum(len(line) + 1 for line in lines))
    actions = report["actions"]
    if actions:
        order = problems_first(actions)
        lines += room.section(
            f"Changes ({len(actions)})",
            (_change_line(actions[i]) for i in order),
            len(order),
            max_changes,
            "more changes",
        )
    deprovision = report["deprovision"]
    if deprovision:
        lines += room.section(
            f"Managed users no longer in the catalog ({len(deprovision)})",
            (
                f"- `{d['user_id']}` ({d['entity_ref'] or 'unknown entity'}): {d['action']} {d['outcome']}"
                + (f" — {d['error']}" if d.get("error") else "")
                for d in deprovision
            ),
            len(deprovision),
            max_changes,
            "more users",
        )
    for key, title in (("conflicts", "Conflicts"), ("warnings", "Warnings")):
        items = report[key]
        if items:
            lines += room.section(
                f"{title} ({len(items)})",
                (f"- `{c['code']}` {c['message']}" for c in items),
                len(items),
                max_changes,
                f"more {key}",
            )
    budgets = report.get("budgets") or []
    # Sorted over and nearest first, so those at or near their limit are the list's beginning.
    hot = list(itertools.takewhile(lambda b: b["status"] in ("over", "near"), budgets))
    if hot:
        lines += room.section(
            "Budgets over or near the limit",
            (
                f"- `{b['user_id']}` {b['status']}: spent {b['spend']:g} of {b['max_budget']:g}"
                + (f" ({b['used']:.0%})" if b["used"] is not None else "")
                for b in hot
            ),
            len(hot),
            max_changes,
            "more users",
        )
    return "\n".join(lines) + "\n"


def render_terminal(report: Mapping[str, Any]) -> str:
    c = report["counts"]
    head = f"{report['run']['command']}: {report['result'].replace('_', ' ')}"
    if report.get("error"):
        return f"{head}: {report['error']}"
    tripped = [t["guard"] for t in (report.get("guards") or {}).get("tripped", [])]
    if report["result"] == "guard_tripped" and tripped:
        head += f" ({', '.join(tripped)})"
    problems = _problems(report)
    if problems:  # conflicts or people left out: in the headline too, not only among the counts
        head = f"{head}, {problems} (see the report)"
    parts = [
        f"{c.get('create', 0)} to create",
        f"{c.get('update', 0)} to update",
        f"{c.get('unchanged', 0)} unchanged",
        f"{c.get('deprovision', 0)} left the catalog",
        plural(c.get("conflicts", 0), "conflict"),
        plural(c.get("warnings", 0), "warning"),
    ]
    if report["result"] == "guard_tripped" and not report["run"]["dry_run"]:
        parts.insert(0, "nothing applied")
    elif not report["run"]["dry_run"]:
        parts += [f"{c['applied']} applied", f"{c['failed']} failed"]
    if report["run"].get("interrupted_by"):
        head += f" by {report['run']['interrupted_by']}"
        parts.append(f"{c.get('not_started', 0)} not started")
        if c.get("interrupted"):
            parts.append(f"{c['interrupted']} interrupted in flight")
    return f"{head}: " + ", ".join(parts)


def _atomic_write(path: Path, text: str | Callable[[TextIO], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                text(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _rows_as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, LazyRows):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dump(value: Any, indent: str) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_rows_as_list).replace("\n", "\n" + indent)


def _copy_into(source: Path, fh: TextIO) -> None:
    with source.open(encoding="utf-8") as src:
        shutil.copyfileobj(src, fh)


def _json_line(item: Any) -> str:
    """One row as compact JSON: msgspec, ten times faster than json over the 100,000 budget rows of a big
    run; json for anything msgspec refuses. A NaN read from a server becomes null rather than json's NaN,
    which is not JSON."""
    try:
        return msgspec.json.encode(item).decode("utf-8")
    except (TypeError, ValueError):
        return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def write_json(report: Mapping[str, Any], fh: TextIO) -> None:
    """The report as indented JSON, but long lists one item per line and written as they go: a report of
    100,000 actions is never held in memory as one string."""
    fh.write("{\n")
    keys = list(report)
    for i, key in enumerate(keys):
        value = report[key]
        end = ",\n" if i < len(keys) - 1 else "\n"
        if isinstance(value, (list, LazyRows)) and value:
            fh.write(f"  {json.dumps(key)}: [\n")
            for j, item in enumerate(value):
                sep = ",\n" if j < len(value) - 1 else "\n"
                fh.write("    " + _json_line(item) + sep)
            fh.write("  ]" + end)
        else:
            fh.write(f"  {json.dumps(key)}: {_dump(value, '  ')}{end}")
    fh.write("}\n")


def write_report(
    report: Mapping[str, Any], directory: Path, formats: Iterable[ReportFormat], keep: int | None = None
) -> list[Path]:
    """Writes <dir>/catalog-sync-<run id>.{json,md,html} and refreshes latest.*; returns the paths.
    With `keep`, the reports of all but the newest `keep` runs are then deleted (see `prune_reports`)."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"catalog-sync-{report['run']['run_id']}"
    written: list[Path] = []
    for fmt in formats:
        content: str | Callable[[TextIO], None]
        if fmt is ReportFormat.json:
            content, ext = (lambda fh: write_json(report, fh)), "json"
        elif fmt is ReportFormat.html:
            content, ext = render_html(report), "html"
        else:
            content, ext = render_markdown(report), "md"
        path = directory / f"{stem}.{ext}"
        _atomic_write(path, content)
        _atomic_write(directory / f"latest.{ext}", functools.partial(_copy_into, path))
        written.append(path)
    if keep is not None:
        prune_reports(directory, keep, report["run"]["run_id"])
    return written


# A run's report files; run ids start with the UTC start time (YYYYMMDDTHHMMSS), so they sort in time order.
_REPORT_FILE = re.compile(r"^catalog-sync-(\d{8}T[^/]+)\.(?:json|md|html)$")


def prune_reports(directory: Path, keep: int, current_run: str) -> list[Path]:
    """Deletes the report files of all but the newest `keep` runs (this one always kept), by run id.
    Only files named like a run's report are candidates: latest.* and anything else are left alone."""
    runs: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        match = _REPORT_FILE.match(path.name)
        if match and path.is_file():
            runs.setdefault(match.group(1), []).append(path)
    older = sorted(run for run in runs if run != current_run)
    doomed = [path for run in older[: max(len(older) - (keep - 1), 0)] for path in runs[run]]
    for path in doomed:
        try:
            path.unlink(missing_ok=True)  # missing: another process pruned it first
        except OSError as exc:  # a report that cannot be deleted must not fail a run that went well
            structlog.get_logger("catalog_sync.report").warning(
                "report_not_pruned", path=str(path), error=exc.strerror or str(exc)
            )
    return doomed
