"""The HTML report: one self-contained file (inline CSS and script, no network) for people reading a run:
summary first, then every change with before and after, failures and conflicts marked, filters by action,
and each managed user's spend against their budget."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from catalog_sync.plan_view import describe

MAX_ROWS = 5_000  # per table: beyond that a browser crawls; the JSON report has everything

_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --bad:#cf222e; --badbg:#ffebe9;
  --warn:#9a6700; --warnbg:#fff8c5; --ok:#1a7f37; --okbg:#dafbe1; --info:#0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
  margin: 0 auto; max-width: 1280px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin-bottom: 16px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px; }
.r-no_changes, .r-applied { background: var(--okbg); color: var(--ok); }
.r-changes_planned { background: #ddf4ff; color: var(--info); }
.r-partial_failure, .r-error, .r-guard_tripped { background: var(--badbg); color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 8px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: var(--bg); }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); font-size: 12px; }
.card.bad { background: var(--badbg); border-color: #ffcecb; } .card.bad b { color: var(--bad); }
.alert { border-left: 4px solid var(--bad); background: var(--badbg); padding: 8px 12px; margin: 8px 0; }
.alert.warn { border-color: var(--warn); background: var(--warnbg); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--bg); position: sticky; top: 0; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
tr.failed td { background: var(--badbg); } tr.conflict td { background: var(--warnbg); }
.outcome-failed { color: var(--bad); font-weight: 600; }
.outcome-conflict { color: var(--warn); font-weight: 600; }
.chg { margin: 0; padding: 0; list-style: none; }
.chg li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 640px; }
.before { color: var(--bad); text-decoration: line-through; } .after { color: var(--ok); }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin: 8px 0;
  padding: 8px 12px; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; }
.filters label { cursor: pointer; } .filters input[type=search] { padding: 4px 8px; min-width: 240px; }
.filters .kind { white-space: nowrap; }
.filters button { font: inherit; font-size: 12px; padding: 0 6px; margin-left: 2px; cursor: pointer;
  color: var(--info); background: none; border: 1px solid var(--line); border-radius: 4px; }
.filters button:hover { background: #ddf4ff; }
.bar { position: relative; height: 10px; width: 160px; background: #eaeef2; border-radius: 5px;
  overflow: hidden; }
.bar i { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ok); }
tr.near .bar i { background: #d4a72c; } tr.over .bar i { background: var(--bad); }
tr.over td { background: var(--badbg); } tr.near td { background: var(--warnbg); }
.more { color: var(--muted); font-style: italic; }
.empty { color: var(--muted); }
"""

_SCRIPT = """
(function () {
  var boxes = document.querySelectorAll('input[data-kind]');
  var onlyBad = document.getElementById('only-problems');
  var search = document.getElementById('search');
  var shown = document.getElementById('shown');
  if (!search) return;  // no changes, no filters
  function apply() {
    var kinds = {};
    boxes.forEach(function (b) { kinds[b.dataset.kind] = b.checked; });
    var needle = (search.value || '').toLowerCase();
    var n = 0;
    document.querySelectorAll('#changes tbody tr').forEach(function (tr) {
      var ok = kinds[tr.dataset.kind] !== false
        && (!onlyBad.checked || tr.classList.contains('failed') || tr.classList.contains('conflict'))
        && (!needle || tr.dataset.user.indexOf(needle) >= 0);
      tr.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = n;
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  // "only": that kind alone; "all": every kind again.
  document.querySelectorAll('button[data-only]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      var only = btn.dataset.only;
      boxes.forEach(function (b) { b.checked = !only || b.dataset.kind === only; });
      apply();
    });
  });
  onlyBad.addEventListener('change', apply);
  search.addEventListener('input', apply);
  apply();
})();
"""

_COUNT_CARDS = (
    ("catalog_users", "catalog users"),
    ("litellm_users", "LiteLLM users"),
    ("managed_users", "managed"),
    ("create", "to create"),
    ("update", "to update"),
    ("unchanged", "unchanged"),
    ("deprovision", "left the catalog"),
    ("applied", "applied"),
    ("failed", "failed"),
    ("conflicts", "conflicts"),
    ("warnings", "warnings"),
)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return escape(str(value))


def _money(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.2f}"


def _change_item(c: Mapping[str, Any], create: bool, adopt: bool = False) -> str:
    # In words, as on the terminal and in the Markdown (plan_view.describe): the marker as what changed in
    # it, an empty model list as "all models", never a JSON blob.
    words = describe(str(c["field"]), c["before"], c["after"], create=create, adopt=adopt)
    field, before, after = escape(words.label), words.before, escape(words.after)
    # The line is cut with an ellipsis at 640 px: a long value is readable on hover.
    full = escape(str(words))
    title = f' title="{full}"' if len(full) > 80 else ""
    old = f'<span class="before">{escape(before)}</span> → ' if before is not None else ""
    label = f"<code>{field}</code> " if field else ""
    return f'<li{title}>{label}{old}<span class="after">{after}</span></li>'


def _changes(entry: Mapping[str, Any]) -> str:
    # A create has no "before": every field would read "— →".
    create, adopt = entry.get("action") == "create", bool(entry.get("adopt"))
    items = [_change_item(c, create, adopt) for c in entry.get("changes", ())]
    items += [_change_item(c, False) for c in entry.get("followup", ())]
    return f'<ul class="chg">{"".join(items)}</ul>' if items else '<span class="empty">—</span>'


def _more(total: int, shown: int, columns: int) -> str:
    if total <= shown:
        return ""
    return (
        f'<tr><td class="more" colspan="{columns}">… and {total - shown} more rows in the JSON report'
        "</td></tr>"
    )


def problems_first(actions: Sequence[Mapping[str, Any]]) -> list[int]:
    """Positions of the report's action rows in the order people read them: failures and conflicts first (what
    someone opening a report looks for), then by action and user id. Positions, so that lazily built rows are
    each built once here and again only if shown. Shared by the HTML and the Markdown report."""
    keys = [(a["outcome"] not in ("failed", "conflict"), a["action"], a["user_id"]) for a in actions]
    return sorted(range(len(keys)), key=keys.__getitem__)


def _summary(report: Mapping[str, Any]) -> list[str]:
    run, counts = report["run"], report.get("counts", {})
    result = str(report["result"])
    title = "plan" if run.get("dry_run") else str(run.get("command") or "run")
    out = [
        f"<h1>catalog-sync {escape(title)} "
        f'<span class="badge r-{escape(result)}" id="result">{escape(result.replace("_", " "))}</span></h1>',
        f'<div class="meta">Run <code>{_text(run.get("run_id"))}</code>'
        f" · started {_text(run.get('started_at'))}"
        f" · {_text(run.get('duration_seconds'))} s · catalog-sync {_text(run.get('version'))}<br>"
        f"Backstage {_text(run.get('backstage_url'))} · LiteLLM {_text(run.get('litellm_url'))}"
        f" · deprovision mode <code>{_text(run.get('deprovision_mode'))}</code></div>",
    ]
    if report.get("error"):
        out.append(f'<div class="alert" id="error"><b>Error:</b> {_text(report["error"])}</div>')
    guards = report.get("guards") or {}
    for trip in guards.get("tripped", ()):
        verb = "overridden with --force" if guards.get("forced") else "nothing was applied"
        out.append(
            f'<div class="alert guard"><b>Guard <code>{_text(trip["guard"])}</code> tripped ({verb}):</b> '
            f"{_text(trip['message'])}</div>"
        )
    if run.get("deprovision_withheld"):
        out.append(
            f'<div class="alert warn"><b>No deprovisioning this run:</b> {_text(run["deprovision_withheld"])}'
            "</div>"
        )
    cards = []
    for key, label in _COUNT_CARDS:
        if key in counts:
            bad = " bad" if key in ("failed", "conflicts") and counts[key] else ""
            cards.append(
                f'<div class="card{bad}" id="count-{key}"><b>{counts[key]:,}</b><span>{label}</span></div>'
            )
    out.append(f'<div class="cards">{"".join(cards)}</div>')
    return out


def _actions(report: Mapping[str, Any]) -> list[str]:
    actions: Sequence[Mapping[str, Any]] = report.get("actions") or []
    deprovision: Sequence[Mapping[str, Any]] = report.get("deprovision") or []
    kinds = Counter(a["action"] for a in actions) + Counter(d["action"] for d in deprovision)
    total = len(actions) + len(deprovision)
    out = [f'<h2>Changes (<span id="shown">{total}</span> shown of {total})</h2>']
    if not total:
        return [*out, '<p class="empty">Nothing to change.</p>']
    boxes = "".join(
        f'<span class="kind"><label><input type="checkbox" checked data-kind="{escape(k)}"> {escape(k)} ({n})'
        f'</label><button type="button" data-only="{escape(k)}" title="show {escape(k)} only">only</button>'
        "</span>"
        for k, n in sorted(kinds.items())
    )
    out.append(
        f'<div class="filters">{boxes}<button type="button" data-only="" title="show every kind">all</button>'
        '<label><input type="checkbox" id="only-problems"> failures and conflicts only</label>'
        '<input type="search" id="search" placeholder="filter by user id"></div>'
    )
    rows = []
    for i in problems_first(actions)[:MAX_ROWS]:
        a = actions[i]
        rows.append(_action_row(a, a["action"], _text(a.get("role")), _changes(a)))
    for d in deprovision[: max(0, MAX_ROWS - len(rows))]:
        rows.append(_action_row(d, d["action"], _text(d.get("reason")), _changes(d)))
    out.append(
        '<table id="changes"><thead><tr><th>user</th><th>action</th><th>outcome</th><th>role / reason</th>'
        "<th>before → after</th></tr></thead><tbody>"
        + "".join(rows)
        + _more(total, len(rows), 5)
        + "</tbody></table>"
    )
    return out


def _action_row(entry: Mapping[str, Any], kind: str, role: str, changes: str) -> str:
    outcome = str(entry["outcome"])
    cls = outcome if outcome in ("failed", "conflict") else ""
    error = f'<br><span class="outcome-failed">{_text(entry["error"])}</span>' if entry.get("error") else ""
    user = str(entry["user_id"])
    return (
        f'<tr class="{cls}" data-kind="{escape(kind)}" data-user="{escape(user.lower())}">'
        f"<td><code>{escape(user)}</code><br><small>{_text(entry.get('entity_ref'))}</small></td>"
        f'<td>{escape(kind)}</td><td class="outcome-{escape(outcome)}">{escape(outcome)}{error}</td>'
        f"<td>{role}</td><td>{changes}</td></tr>"
    )


def _notices(report: Mapping[str, Any]) -> list[str]:
    out = []
    for key, title in (("conflicts", "Conflicts"), ("warnings", "Warnings")):
        items: Sequence[Mapping[str, Any]] = report.get(key) or []
        if not items:
            continue
        rows = "".join(
            f'<tr class="{"conflict" if key == "conflicts" else ""}"><td><code>{_text(n["code"])}</code></td>'
            f"<td>{_text(n['message'])}</td></tr>"
            for n in items[:MAX_ROWS]
        )
        out.append(
            f'<h2>{title} ({len(items)})</h2><table id="{key}"><thead><tr><th>code</th><th>message</th></tr>'
            f"</thead><tbody>{rows}{_more(len(items), min(len(items), MAX_ROWS), 2)}</tbody></table>"
        )
    return out


def _budgets(report: Mapping[str, Any]) -> list[str]:
    budgets: Sequence[Mapping[str, Any]] = report.get("budgets") or []
    statuses = Counter(b["status"] for b in budgets)
    head = (
        f"<h2>Budgets ({len(budgets)} managed users: {statuses['over']} over, {statuses['near']} near)</h2>"
        '<p class="meta">Spend and budget as LiteLLM reported them when this run read it, before its changes.'
        "</p>"
    )
    if not budgets:
        return [head, '<p class="empty">No managed users were read from LiteLLM in this run.</p>']
    rows = []
    for b in budgets[:MAX_ROWS]:
        used = b.get("used")
        width = 100 if b["status"] == "over" else min(100.0, (used or 0) * 100)
        pct = f"{used:.0%}" if used is not None else ("over" if b["status"] == "over" else "—")
        rows.append(
            f'<tr class="{escape(b["status"])}"><td><code>{escape(str(b["user_id"]))}</code></td>'
            f'<td class="num">{_money(b["spend"])}</td><td class="num">{_money(b["max_budget"])}</td>'
            f"<td>{_text(b.get('budget_duration'))}</td>"
            f'<td><div class="bar"><i style="width:{width:.1f}%"></i></div></td>'
            f'<td class="num">{pct}</td><td>{escape(b["status"])}</td></tr>'
        )
    return [
        head,
        '<table id="budgets"><thead><tr><th>user</th><th class="num">spend</th><th class="num">budget</th>'
        '<th>period</th><th></th><th class="num">used</th><th>status</th></tr></thead><tbody>'
        + "".join(rows)
        + _more(len(budgets), len(rows), 7)
        + "</tbody></table>",
    ]


def render_html(report: Mapping[str, Any]) -> str:
    run = report["run"]
    title = f"catalog-sync {run.get('command', 'run')} {run.get('run_id', '')}: {report['result']}"
    body = [*_summary(report), *_actions(report), *_notices(report), *_budgets(report)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network: nothing may be fetched, whatever a value in the report says.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script></body></html>\n"
    )
