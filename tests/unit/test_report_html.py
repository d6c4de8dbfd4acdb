"""The HTML report without a browser: what it must never contain, and how it copes with size."""

from __future__ import annotations

import re

from catalog_sync.apply import planned_results
from catalog_sync.plan import build_plan
from catalog_sync.report import build_report
from catalog_sync.report_html import MAX_ROWS, render_html
from tests.factories import catalog, config, litellm, user
from tests.unit.test_report import run_info, sample_report


def test_values_are_escaped_so_a_hostile_id_is_inert() -> None:
    report = sample_report(2)
    hostile = '<script>alert(1)</script>"&'
    report["conflicts"] = [{"code": "x", "user_id": hostile, "entity_ref": None, "message": hostile}]
    report["error"] = "<img src=x onerror=alert(2)>"
    html = render_html(report)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;" in html
    assert html.count("<script>") == 1  # the report's own filter script only


def test_self_contained_no_external_resources() -> None:
    html = render_html(sample_report(3))
    assert "default-src 'none'" in html  # the browser may fetch nothing
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html


def test_huge_reports_are_capped_with_a_pointer_to_the_json() -> None:
    n = MAX_ROWS + 250
    plan = build_plan(catalog([user(f"u{i:05d}") for i in range(n)]), litellm([]), config())
    html = render_html(build_report(run_info(), plan, planned_results(plan)))
    assert html.count('data-kind="create"') == MAX_ROWS + 1  # the rows, plus the filter checkbox
    assert "… and 250 more rows in the JSON report" in html
    assert f"create ({n})" in html
