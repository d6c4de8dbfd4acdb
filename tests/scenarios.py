"""End-to-end scenarios, each a function of an Env: the same code runs on simulators and real servers."""

from __future__ import annotations

from typing import Any

from tests.envs import Env, group_doc, user_doc

ORG_GROUPS = [
    group_doc("engineering", children=["ml-research"]),
    group_doc("ml-research", parent="engineering"),
    group_doc("finance"),
]
ROLES: list[dict[str, Any]] = [
    {
        "group": "ml-research",
        "max_budget": 200,
        "models": ["fake-gpt", "gpt-4o"],
        "teams": ["ml-team"],
        "tpm_limit": 5000,
        "metadata": {"cost_center": "research"},
    },
    {"group": "engineering", "max_budget": 50, "teams": ["eng-team"]},
]
DEFAULTS: dict[str, Any] = {
    "max_budget": 10,
    "budget_duration": "30d",
    "models": ["fake-gpt"],
    "metadata": {"source": "backstage"},
}


# Moving bob into ml-research gives him a tpm_limit where he had none, which guards.max_downgrades counts
# as a cut (4 managed users: its default 10% allows none). Scenarios about moves allow them.
MOVES_ALLOWED: dict[str, Any] = {"max_downgrades": "100%"}


def org() -> list[dict[str, Any]]:
    return [
        *ORG_GROUPS,
        user_doc("alice", ["ml-research"], display="Alice Archer"),
        user_doc("bob", ["engineering"]),
        user_doc("carol", ["finance"]),
        user_doc("Dave.Mixed", ["finance", "ml-research"]),
    ]


def setup(env: Env, **config: Any) -> Any:
    env.add_team("ml-team")
    env.add_team("eng-team")
    env.set_catalog(org())
    return env.config(defaults=config.pop("defaults", DEFAULTS), roles=config.pop("roles", ROLES), **config)


def first_run_creates_everyone_without_keys(env: Env) -> None:
    cfg = setup(env)
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stderr
    report = result.report
    assert report["counts"]["create"] == 4 and report["counts"]["failed"] == 0
    users = env.all_users()
    alice = users["alice@example.com"]
    assert alice["max_budget"] == 200 and sorted(alice["models"]) == ["fake-gpt", "gpt-4o"]
    assert alice["tpm_limit"] == 5000 and alice["budget_duration"] == "30d"
    assert alice["user_alias"] == "Alice Archer" and alice["user_role"] == "internal_user"
    assert alice["metadata"]["cost_center"] == "research" and alice["metadata"]["source"] == "backstage"
    assert alice["metadata"]["catalog_sync"]["entity_ref"] == "user:default/alice"
    assert "ml-team" in alice["teams"]
    bob = users["bob@example.com"]
    assert bob["max_budget"] == 50 and bob["models"] == ["fake-gpt"] and "eng-team" in bob["teams"]
    assert users["carol@example.com"]["max_budget"] == 10
    # The mixed-case name is lower-cased; ml-research (nested under engineering) is the first role it matches.
    assert users["dave.mixed@example.com"]["max_budget"] == 200
    for user_id in ("alice@example.com", "bob@example.com", "carol@example.com", "dave.mixed@example.com"):
        assert users[user_id]["key_count"] == 0, f"{user_id} was given an API key"
        info = env.user_info(user_id)
        assert info is not None and info["keys"] == []
    # No per-user reads: the LiteLLM requests are the list pages, the team list and one create per user.
    litellm_requests = report["requests"]["litellm"]
    assert litellm_requests.get("GET /user/info", 0) == 0
    assert litellm_requests["POST /user/new"] == 4


def second_run_plans_nothing(env: Env) -> None:
    cfg = setup(env)
    assert env.cli("run", "-c", str(cfg)).code == 0
    again = env.cli("plan", "-c", str(cfg), "--detailed-exitcode")
    assert again.code == 0, again.stdout + again.stderr
    assert again.report["counts"]["create"] == 0 and again.report["counts"]["update"] == 0
    assert again.report["counts"]["unchanged"] == 4
    rerun = env.cli("run", "-c", str(cfg))
    assert rerun.code == 0 and rerun.report["actions"] == []


def move_and_default_change_updates_exactly_the_affected_fields(env: Env) -> None:
    cfg = setup(env)
    assert env.cli("run", "-c", str(cfg)).code == 0
    # Someone else writes their own metadata key on a managed user; it must survive our updates.
    env.update_user(
        "carol@example.com",
        {"metadata": {**env.all_users()["carol@example.com"]["metadata"], "owner_note": "keep me"}},
    )
    # carol moves from finance to ml-research; the default budget changes from 10 to 15.
    entities = org()
    entities[ORG_GROUPS.__len__() + 2] = user_doc("carol", ["ml-research"])
    env.set_catalog(entities)
    cfg = env.config(defaults={**DEFAULTS, "max_budget": 15}, roles=ROLES, guards=MOVES_ALLOWED)
    plan = env.cli("plan", "-c", str(cfg), "--detailed-exitcode")
    assert plan.code == 4, plan.stdout + plan.stderr
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stderr
    changed = {a["user_id"]: {c["field"] for c in a["changes"]} for a in result.report["actions"]}
    assert set(changed) == {"carol@example.com"}, changed  # bob/alice/dave have role budgets: untouched
    assert changed["carol@example.com"] == {
        "max_budget",
        "models",
        "tpm_limit",
        "metadata.cost_center",
        "metadata.catalog_sync",
        "teams",
    }
    carol = env.all_users()["carol@example.com"]
    assert carol["max_budget"] == 200 and carol["tpm_limit"] == 5000 and "ml-team" in carol["teams"]
    assert carol["metadata"]["owner_note"] == "keep me"
    assert carol["metadata"]["cost_center"] == "research"
    # Now someone in the defaults: a default change reaches exactly them.
    entities[ORG_GROUPS.__len__() + 2] = user_doc("carol", ["finance"])
    env.set_catalog(entities)
    result = env.cli("run", "-c", str(cfg))
    changed = {a["user_id"]: {c["field"] for c in a["changes"]} for a in result.report["actions"]}
    assert changed == {
        "carol@example.com": {
            "max_budget",
            "models",
            "tpm_limit",
            "metadata.cost_center",
            "metadata.catalog_sync",
            "teams",
        }
    }
    carol = env.all_users()["carol@example.com"]
    assert carol["max_budget"] == 15 and carol["tpm_limit"] is None and "ml-team" not in carol["teams"]
    assert "cost_center" not in carol["metadata"] and carol["metadata"]["owner_note"] == "keep me"
    assert env.cli("plan", "-c", str(cfg), "--detailed-exitcode").code == 0


def unmanaged_user_with_clashing_id_is_untouched_and_reported(env: Env) -> None:
    env.create_user(
        {
            "user_id": "bob@example.com",
            "user_email": "bob@example.com",
            "max_budget": 999,
            "metadata": {"made_by": "hand"},
        }
    )
    before = env.all_users()["bob@example.com"]
    cfg = setup(env)
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stderr
    conflicts = [c for c in result.report["conflicts"] if c["user_id"] == "bob@example.com"]
    assert [c["code"] for c in conflicts] == ["unmanaged_user_exists"]
    after = env.all_users()["bob@example.com"]
    for field in ("max_budget", "metadata", "models", "teams", "user_role", "updated_at"):
        assert after.get(field) == before.get(field), field
    assert result.report["counts"]["create"] == 3


def plan_changes_nothing(env: Env) -> None:
    cfg = setup(env)
    before = env.all_users()
    result = env.cli("plan", "-c", str(cfg), "--detailed-exitcode")
    assert result.code == 4
    assert result.report["counts"]["create"] == 4
    assert env.all_users() == before
    dry = env.cli("run", "--dry-run", "-c", str(cfg))
    assert dry.code == 0 and env.all_users() == before
    assert all(a["outcome"] == "planned" for a in dry.report["actions"])


def left_the_catalog_is_reported_not_touched(env: Env) -> None:
    cfg = setup(env)
    assert env.cli("run", "-c", str(cfg)).code == 0
    env.set_catalog([e for e in org() if e["metadata"]["name"] != "bob"])
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0
    assert [d["user_id"] for d in result.report["deprovision"]] == ["bob@example.com"]
    assert result.report["deprovision"][0]["outcome"] == "reported"
    assert "bob@example.com" in env.all_users()


def validate_online_checks_groups_teams_models_and_credentials(env: Env) -> None:
    env.add_team("ml-team")
    env.set_catalog(org())
    roles = [
        {"group": "ml-research", "teams": ["ml-team"], "models": ["fake-gpt", "all-proxy-models"]},
        {"group": "no-such-group", "teams": ["no-such-team"], "models": ["no-such-model"]},
    ]
    cfg = env.config(defaults=DEFAULTS, roles=roles)
    result = env.cli("validate", "--online", "-c", str(cfg))
    assert result.code == 2, result.stdout + result.stderr
    problems = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith(str(cfg))]
    assert problems == [
        "roles[1].group: group:default/no-such-group does not exist in the catalog",
        "roles[1].teams: team no-such-team does not exist in LiteLLM",
        "roles[1].models: model no-such-model is not served by LiteLLM",
    ]
    assert "LiteLLM: credentials work" in result.stdout and "Backstage: credentials work" in result.stdout
    good = env.config(defaults=DEFAULTS, roles=roles[:1])
    assert env.cli("validate", "--online", "-c", str(good)).code == 0
    env.master_key = "sk-wrong-0123456789"
    bad_key = env.cli("validate", "--online", "-c", str(good))
    assert (
        bad_key.code == 1
        and "litellm.master_key / litellm.base_url: litellm GET /team/list: HTTP 401" in bad_key.stderr
    )


SCENARIOS = [
    first_run_creates_everyone_without_keys,
    second_run_plans_nothing,
    move_and_default_change_updates_exactly_the_affected_fields,
    unmanaged_user_with_clashing_id_is_untouched_and_reported,
    plan_changes_nothing,
    left_the_catalog_is_reported_not_touched,
    validate_online_checks_groups_teams_models_and_credentials,
]
