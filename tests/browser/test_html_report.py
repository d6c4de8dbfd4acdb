"""The HTML report as a person sees it: opened in Debian's Chromium (headless), filtered, screenshotted.

Skipped when Chromium or Playwright is missing, unless CATALOG_SYNC_REQUIRE_BROWSER=1 (as .ci/run sets).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.envs import SimEnv, group_doc, user_doc

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = _chromium()
    missing = [] if binary else ["Chromium (apt-get install chromium)"]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("Playwright (pip install -e '.[test]')")
    if missing or binary is None:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CATALOG_SYNC_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _org(people: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [group_doc("eng"), group_doc("ml"), *(user_doc(name, [group]) for name, group in people)]


@pytest.fixture
def html_report(sim_env: SimEnv) -> tuple[Path, dict[str, Any]]:
    """A second run with creates, an update, one failure, one conflict and users near/over budget."""
    people = [(f"dev{i}", "eng") for i in range(6)] + [("ana", "ml"), ("bo", "ml")]
    sim_env.set_catalog(_org(people))
    roles = [{"group": "ml", "max_budget": 100}]
    cfg = sim_env.config(defaults={"max_budget": 10}, roles=roles, http={"retries": 0})
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    sim_env.litellm.set_user_fields("ana@example.com", spend=130.0)  # over
    sim_env.litellm.set_user_fields("dev1@example.com", spend=9.0)  # near (90 %)
    sim_env.litellm.set_user_fields("dev2@example.com", spend=2.5)
    sim_env.litellm.add_user({"user_id": "zed@example.com", "user_email": "zed@example.com"})  # not ours
    people = [*people, ("new1", "eng"), ("new2", "eng"), ("zed", "eng")]
    people[0] = ("dev0", "ml")  # moves: max_budget 10 -> 100
    sim_env.set_catalog(_org(people))
    sim_env.litellm.inject("POST /user/new", 500, {"detail": "database is down"}, times=1)
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 1, result.stdout + result.stderr
    html = next(
        Path(line[len("report: ") :])
        for line in result.stdout.splitlines()
        if line.startswith("report: ") and line.endswith(".html")
    )
    return html, result.report


def test_the_html_report_in_a_real_browser(browser: Any, html_report: tuple[Path, dict[str, Any]]) -> None:
    path, report = html_report
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(path.resolve().as_uri())

    # The summary comes first and says what happened.
    assert page.locator("#result").inner_text() == "partial failure"
    assert page.locator("#count-create b").inner_text() == "2"
    assert page.locator("#count-update b").inner_text() == "1"
    assert page.locator("#count-failed b").inner_text() == "1"
    assert "bad" in (page.locator("#count-failed").get_attribute("class") or "")

    # Every change is a row; the failure is marked and listed first, with the server's message.
    rows = page.locator("#changes tbody tr[data-kind]")
    assert rows.count() == len(report["actions"]) + len(report["deprovision"]) == 3
    first = rows.nth(0)
    assert "failed" in (first.get_attribute("class") or "")
    assert "database is down" in first.inner_text()
    update = page.locator('#changes tr[data-kind="update"]')
    assert "dev0@example.com" in update.inner_text()
    text = update.inner_text()
    # In words, as on the terminal and in the Markdown (issue 13): 10 → 100, not 10.0 → 100.0.
    assert "max_budget 10 → 100" in text

    # Filters: "create" only hides the update; all kinds again; hide creates; only problems; by user id.
    creates = page.locator('#changes tr[data-kind="create"]')
    page.locator('button[data-only="create"]').click()
    assert update.is_hidden()
    assert creates.count() == 2 and creates.nth(0).is_visible() and creates.nth(1).is_visible()
    assert page.locator("#shown").inner_text() == "2"
    page.locator('button[data-only=""]').click()
    assert update.is_visible() and page.locator("#shown").inner_text() == "3"
    page.locator('input[data-kind="create"]').uncheck()
    assert page.locator('#changes tr[data-kind="create"]').first.is_hidden()
    assert update.is_visible()
    assert page.locator("#shown").inner_text() == "1"
    page.locator('input[data-kind="create"]').check()
    page.locator("#only-problems").check()
    assert page.locator("#shown").inner_text() == "1" and first.is_visible() and update.is_hidden()
    page.locator("#only-problems").uncheck()
    page.locator("#search").fill("dev0")
    assert page.locator("#shown").inner_text() == "1" and update.is_visible()
    page.locator("#search").fill("")

    # The conflict (an unmanaged user with the same id) is listed.
    conflict = page.locator("#conflicts tbody tr")
    assert conflict.count() == 1 and "zed@example.com" in conflict.inner_text()
    assert conflict.get_attribute("class") == "conflict"

    # Budgets: the most over budget first, then the nearest; the unmanaged user is not listed.
    budget_rows = page.locator("#budgets tbody tr")
    assert budget_rows.nth(0).locator("code").inner_text() == "ana@example.com"
    assert budget_rows.nth(0).get_attribute("class") == "over"
    assert budget_rows.nth(1).locator("code").inner_text() == "dev1@example.com"
    assert budget_rows.nth(1).get_attribute("class") == "near"
    assert "zed@example.com" not in page.locator("#budgets").inner_text()

    assert requested and all(u.startswith("file:") for u in requested), requested  # self-contained
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "html-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
