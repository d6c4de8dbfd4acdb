"""`catalog-sync show PLANFILE`: a saved plan as people read it, or as JSON; needs no config and no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog_sync.apply import planned_results
from catalog_sync.plan_view import Selection, counts_words, plan_lines
from catalog_sync.planfile import PlanFileError, read_plan
from catalog_sync.urls import public_url


def show_plan(path: Path, select: Selection | None, as_json: bool) -> list[str]:
    """The lines to print: the saved plan per person (with `select`, those people and why), or its JSON."""
    saved = read_plan(path)  # checks that it is a plan; age and proxy only matter to `apply`
    if as_json:
        return [json.dumps(_selected_json(path, select), indent=2, ensure_ascii=False)]
    plan = saved.plan
    head = (
        f"plan made {saved.created_at.isoformat(timespec='seconds')} for LiteLLM "
        f"{public_url(saved.litellm_url)}: {counts_words(plan)}"
    )
    lines = plan_lines(
        planned_results(plan), plan, select=select, explanations=saved.explanations, more_in="the plan file"
    )
    if select is not None and not saved.explanations and plan.actions:
        lines.append("(this plan was saved by an older catalog-sync: it does not record how roles matched)")
    return [head, *lines]


def _selected_json(path: Path, select: Selection | None) -> dict[str, Any]:
    """The saved plan's own JSON; with `select`, only those people's actions, desired states and why."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # read_plan has just read it: only a race gets here
        raise PlanFileError(f"{path}: cannot read the plan: {exc}") from None
    if select is None:
        return data
    actions = [a for a in data["actions"] if select.matches(a["user_id"], a.get("entity_ref"))]
    kept = {a["user_id"] for a in actions}
    data["actions"] = actions
    data["desired"] = {u: d for u, d in data["desired"].items() if u in kept}
    rows = []
    for row in data.get("explanations") or ():
        users = [u for u in row["users"] if u in kept]
        if users:
            rows.append({**row, "users": users})
    if "explanations" in data:
        data["explanations"] = rows
    return data
