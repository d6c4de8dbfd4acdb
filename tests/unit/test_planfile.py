from __future__ import annotations

import dataclasses
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog_sync.model import MARKER_KEY, LiteLLMUser
from catalog_sync.plan import Plan, build_plan, marker_for
from catalog_sync.planfile import PlanFileError, dump_plan, load_plan, save_plan_file, stale_actions
from tests.factories import catalog, config, litellm, plan_text, user

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
URL = "http://litellm.test/"


def saved(tmp_path: Path, plan: Plan, created: datetime = NOW) -> Path:
    path = tmp_path / "plan.json"
    text = dump_plan(
        plan,
        created_at=created,
        litellm_url=URL,
        backstage_url="http://backstage.test/",
        config_path="c.yaml",
        managed_teams=frozenset({"t1"}),
        existing_teams=frozenset({"t1"}),
        adopt_unmanaged=False,
    )
    path.write_text(text)
    return path


def a_plan() -> tuple[Plan, LiteLLMUser]:
    cfg = config(roles=[{"group": "ml", "max_budget": 99, "teams": ["t1"]}])
    first = build_plan(catalog([user("amy", "ml"), user("bo", "ml")]), litellm([], ["t1"]), cfg)
    amy = first.desired["amy"]
    current = LiteLLMUser(
        user_id="amy",
        user_email="amy@example.com",
        user_alias="Amy",
        user_role="internal_user",
        max_budget=5.0,
        budget_duration="30d",
        teams=("t1",),
        metadata={MARKER_KEY: marker_for(amy)},
    )
    return build_plan(
        catalog([user("amy", "ml"), user("bo", "ml")]), litellm([current], ["t1"]), cfg
    ), current


def test_a_saved_plan_loads_back_to_the_same_actions(tmp_path: Path) -> None:
    plan, _ = a_plan()
    loaded = load_plan(saved(tmp_path, plan), litellm_url=URL, max_age=timedelta(hours=1), now=NOW).plan
    assert loaded.actions == plan.actions
    assert loaded.desired["bo"] == plan.desired["bo"]


def test_stale_actions_name_what_changed(tmp_path: Path) -> None:
    plan, current = a_plan()
    s = load_plan(saved(tmp_path, plan), litellm_url=URL, max_age=timedelta(hours=1), now=NOW)
    assert stale_actions(s, {"amy": current, "bo": None}) == []
    changed = dataclasses.replace(current, max_budget=6.0)
    [(action, why)] = stale_actions(s, {"amy": changed, "bo": None})
    assert action.user_id == "amy" and why == "max_budget is now 6.0, the plan expected 5.0"
    appeared = LiteLLMUser(user_id="bo")
    assert [w for _, w in stale_actions(s, {"amy": current, "bo": appeared})] == ["now exists in LiteLLM"]
    assert [w for _, w in stale_actions(s, {"amy": None, "bo": None})] == ["no longer exists in LiteLLM"]


@pytest.mark.parametrize(
    "text,message",
    [
        ("{", "invalid JSON"),
        ('{"plan_version": 99}', "not a catalog-sync plan"),
        ('{"plan_version": 1}', "damaged"),
    ],
)
def test_unusable_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(PlanFileError, match=message):
        load_plan(path, litellm_url=URL, max_age=timedelta(hours=1), now=NOW)


def test_age_is_checked(tmp_path: Path) -> None:
    plan, _ = a_plan()
    path = saved(tmp_path, plan, created=NOW - timedelta(minutes=61))
    with pytest.raises(PlanFileError, match="61 min old"):
        load_plan(path, litellm_url=URL, max_age=timedelta(minutes=60), now=NOW)


def test_credentials_in_urls_are_not_saved_and_the_public_urls_are_compared(tmp_path: Path) -> None:
    plan, _ = a_plan()
    text = plan_text(
        plan,
        NOW,
        litellm_url="http://admin:Pw-0123@litellm.test/",
        backstage_url="https://bs:Pw-4567@backstage.test/",
    )
    assert "Pw-" not in text and "admin" not in text
    path = tmp_path / "sub" / "plan.json"
    save_plan_file(path, text)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == text
    config_url = "http://other:Pw-89ab@litellm.test"
    assert load_plan(path, litellm_url=config_url, max_age=timedelta(hours=1), now=NOW).plan.actions
    with pytest.raises(PlanFileError) as refused:
        load_plan(path, litellm_url="http://u:Pw-cdef@elsewhere.test/", max_age=timedelta(hours=1), now=NOW)
    assert "Pw-" not in str(refused.value) and "http://elsewhere.test/" in str(refused.value)
