"""A plan a person can read, through the CLI on the simulators: the per-person diff of plan, run and show,
`--user` with why, `--json`, changes in words in every report, and conflicts in the headline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.envs import CliResult, SimEnv, group_doc, user_doc
from tests.scenarios import DEFAULTS, MOVES_ALLOWED, ORG_GROUPS, ROLES, org, setup

BOB_MOVES = (
    "~ bob@example.com  role engineering → ml-research, max_budget 50 → 200, tpm_limit no limit → 5000, "
    "models +gpt-4o, metadata.cost_center none → research, teams +ml-team -eng-team"
)
ERIN_JOINS = "+ erin@example.com  defaults (no role matched): max_budget 10, models fake-gpt, teams none"
BOB_WHY = "    why: role ml-research (roles[0]): member of team-b → ml-research (nested)"


def moved(env: SimEnv, **config: Any) -> Path:
    """Everyone created; then bob moves to team-b (under ml-research), erin joins, zed exists unmanaged."""
    # bob's move lifts his tpm_limit from none to 5000, which the downgrade guard counts as a cut.
    cfg = setup(env, guards=MOVES_ALLOWED, **config)
    assert env.cli("run", "-c", str(cfg)).code == 0
    entities = org()
    entities[len(ORG_GROUPS) + 1] = user_doc("bob", ["team-b"])
    env.create_user({"user_id": "zed@example.com", "user_email": "zed@example.com"})
    env.set_catalog(
        [
            *entities,
            group_doc("team-b", parent="ml-research"),
            user_doc("erin", ["finance"]),
            user_doc("zed", []),
        ]
    )
    return cfg


def body(result: CliResult) -> list[str]:
    """stdout without the summary line and the report paths: the per-person list."""
    return [line for line in result.stdout.splitlines()[1:] if not line.startswith("report: ")]


def test_plan_and_dry_run_print_each_person_field_by_field(sim_env: SimEnv) -> None:
    cfg = moved(sim_env)
    plan = sim_env.cli("plan", "-c", str(cfg))
    assert plan.code == 0, plan.stderr
    assert plan.stdout.splitlines()[0].startswith(
        "plan: changes planned, 1 conflict (see the report): 1 to create"
    )
    assert body(plan) == [
        ERIN_JOINS,
        BOB_MOVES,
        "! zed@example.com  conflict: LiteLLM user zed@example.com exists but was not created by "
        "catalog-sync; left untouched (set adopt_unmanaged to take it over)",
    ]
    assert plan.report["counts"]["update"] == 1  # the report lines are still there
    assert body(sim_env.cli("run", "--dry-run", "-c", str(cfg))) == body(plan)


def test_run_prints_what_it_applied_and_marks_failures(sim_env: SimEnv) -> None:
    cfg = moved(sim_env, http={"retries": 0})
    sim_env.litellm.inject("POST /user/update", 500, {"detail": "database is down"}, times=1)
    run = sim_env.cli("run", "-c", str(cfg))
    assert run.code == 1
    lines = body(run)
    assert lines[0].startswith(BOB_MOVES + "  FAILED: ") and "database is down" in lines[0]
    assert lines[1] == ERIN_JOINS
    assert run.report["counts"]["failed"] == 1


def test_deprovisioning_is_listed_with_its_mode(sim_env: SimEnv) -> None:
    cfg = setup(
        sim_env, deprovision={"mode": "block", "protect": []}, guards={**MOVES_ALLOWED, "max_deprovision": 5}
    )
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    sim_env.set_catalog([e for e in org() if e["metadata"]["name"] != "carol"])
    assert body(sim_env.cli("plan", "-c", str(cfg))) == ["- carol@example.com  block (not in the catalog)"]
    report_mode = sim_env.config(defaults=DEFAULTS, roles=ROLES)
    sim_env.set_catalog([e for e in org() if e["metadata"]["name"] != "carol"])
    assert body(sim_env.cli("plan", "-c", str(report_mode))) == [
        "- carol@example.com  not in the catalog (deprovision.mode report: listed only)"
    ]


def test_user_limits_the_list_and_says_why_through_a_nested_group(sim_env: SimEnv) -> None:
    cfg = moved(sim_env)
    result = sim_env.cli(
        "plan", "-c", str(cfg), "--user", "bob*", "--user", "alice@example.com", "--user", "zed"
    )
    assert result.code == 0, result.stderr
    lines = body(result)
    assert lines[:3] == [
        BOB_MOVES,
        BOB_WHY,
        "    gets: max_budget 200, budget_duration 30d, models fake-gpt, gpt-4o, teams ml-team, "
        "tpm_limit 5000, rpm_limit no limit",
    ]
    assert lines[3].startswith("! zed@example.com  conflict:")
    assert (
        lines[4]
        == "    why: defaults: no role matched (member of no groups; roles tried: ml-research, engineering)"
    )
    assert lines[6:8] == [
        "  alice@example.com  unchanged",
        "    why: role ml-research (roles[0]): member of ml-research (directly)",
    ]
    assert not any("erin@" in line or "carol@" in line for line in lines)
    assert result.report["counts"]["create"] == 1  # the report stays complete
    # The same answer from run --dry-run, and for someone who gets the defaults.
    carol = body(sim_env.cli("run", "--dry-run", "-c", str(cfg), "--user", "CAROL@example.com"))
    assert carol == [
        "  carol@example.com  unchanged",
        "    why: defaults: no role matched (member of finance; roles tried: ml-research, engineering)",
        "    gets: max_budget 10, budget_duration 30d, models fake-gpt, teams none",
    ]
    nobody = body(sim_env.cli("plan", "-c", str(cfg), "--user", "nobody*"))
    assert nobody == ["? nobody*  no one in this plan matches"]


def test_show_prints_a_saved_plan_with_why_without_a_catalog(sim_env: SimEnv) -> None:
    cfg = moved(sim_env)
    plan_file = sim_env.work / "reviewed.json"
    planned = sim_env.cli("plan", "-c", str(cfg), "--out", str(plan_file))
    assert planned.code == 0
    sim_env.close()  # show needs neither the catalog nor LiteLLM, nor a config
    shown = sim_env.cli("show", str(plan_file))
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("plan made ") and lines[0].endswith(": 1 to create, 1 to update")
    assert lines[1:] == [ERIN_JOINS, BOB_MOVES]
    why = sim_env.cli("show", str(plan_file), "--user", "*@example.com").stdout.splitlines()
    assert BOB_WHY in why
    assert (
        "    why: defaults: no role matched (member of finance; roles tried: ml-research, engineering)" in why
    )
    only_bob = sim_env.cli("show", str(plan_file), "--user", "bob*", "--json")
    data = json.loads(only_bob.stdout)
    assert [a["user_id"] for a in data["actions"]] == ["bob@example.com"]
    assert data["explanations"][0]["path"] == ["group:default/team-b", "group:default/ml-research"]


def test_show_reads_a_plan_saved_before_explanations_existed(sim_env: SimEnv) -> None:
    cfg = moved(sim_env)
    plan_file = sim_env.work / "old.json"
    assert sim_env.cli("plan", "-c", str(cfg), "--out", str(plan_file)).code == 0
    data = json.loads(plan_file.read_text())
    del data["explanations"]
    plan_file.write_text(json.dumps(data))
    shown = sim_env.cli("show", str(plan_file), "--user", "bob@example.com")
    assert shown.code == 0
    assert shown.stdout.splitlines()[1:3] == [
        BOB_MOVES,
        "    why: role ml-research (how it matched is not recorded)",
    ]
    assert sim_env.cli("apply", str(plan_file), "-c", str(cfg)).code == 0  # and apply still takes it


def test_plan_json_is_the_only_thing_on_stdout(sim_env: SimEnv) -> None:
    cfg = moved(sim_env)
    result = sim_env.cli("plan", "-c", str(cfg), "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert [a["user_id"] for a in data["actions"]] == ["erin@example.com", "bob@example.com"]
    assert data["unchanged"] == ["alice@example.com", "carol@example.com", "dave.mixed@example.com"]
    assert [c["user_id"] for c in data["conflicts"]] == ["zed@example.com"]
    assert "plan: changes planned" in result.stderr and "report: " in result.stderr
    mine = json.loads(sim_env.cli("plan", "-c", str(cfg), "--json", "--user", "bob*").stdout)
    assert [a["user_id"] for a in mine["actions"]] == ["bob@example.com"] and mine["unchanged"] == []
    # It is a saved plan: apply takes it as it is.
    saved = sim_env.work / "from-json.json"
    saved.write_text(result.stdout)
    assert sim_env.cli("apply", str(saved), "-c", str(cfg)).code == 0
    assert sim_env.all_users()["bob@example.com"]["max_budget"] == 200


def _reports(result: CliResult) -> str:
    paths = [
        Path(line[len("report: ") :]) for line in result.stdout.splitlines() if line.startswith("report: ")
    ]
    md = next(p for p in paths if p.suffix == ".md").read_text()
    html = next(p for p in paths if p.suffix == ".html").read_text()
    return result.stdout + md + html


def test_the_marker_and_empty_model_lists_are_never_shown_raw(sim_env: SimEnv) -> None:
    roles = [
        {"group": "ml-research", "max_budget": 200, "models": []},
        {"group": "engineering", "max_budget": 50},
    ]
    cfg = setup(
        sim_env,
        roles=roles,
        adopt_unmanaged=True,
        deprovision={"mode": "block"},
        guards={**MOVES_ALLOWED, "max_deprovision": 5},
    )
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    # carol leaves and is blocked; then she comes back, bob moves role, and a hand-made user is adopted.
    sim_env.set_catalog([e for e in org() if e["metadata"]["name"] != "carol"])
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    entities = org()
    entities[len(ORG_GROUPS) + 1] = user_doc("bob", ["ml-research"])
    sim_env.create_user({"user_id": "hand@example.com", "user_email": "hand@example.com", "models": ["x"]})
    sim_env.set_catalog([*entities, user_doc("hand", ["ml-research"])])
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stderr
    text = _reports(result)
    for needle in (
        "restored after block",
        "role engineering → ml-research",
        "now managed by catalog-sync (adopted)",
        "models fake-gpt → all models",
        "models x → all models",
    ):
        assert needle in result.stdout, needle
    assert '"managed"' not in text and "&quot;managed&quot;" not in text and "'managed'" not in text
    assert "[]" not in text and "all-proxy-models" not in text
    assert "restored after block" in text.split("report: ")[-1]  # in the HTML too


def test_a_plan_of_conflicts_only_is_headlined_with_them(sim_env: SimEnv) -> None:
    sim_env.set_catalog([user_doc("amy", []), user_doc("bo", [])])
    for name in ("amy", "bo"):
        sim_env.create_user({"user_id": f"{name}@example.com", "user_email": f"{name}@example.com"})
    result = sim_env.cli("plan", "-c", str(sim_env.config()))
    assert result.code == 0
    assert result.stdout.splitlines()[0].startswith(
        "plan: no changes, 2 conflicts (see the report): 0 to create"
    )
    assert result.report["result"] == "no_changes"
    md = next(Path(line[8:]) for line in result.stdout.splitlines() if line.endswith(".md")).read_text()
    assert md.splitlines()[0] == "## catalog-sync plan: no changes, 2 conflicts"


def test_long_lists_are_cut_with_a_count(sim_env: SimEnv) -> None:
    sim_env.set_catalog([user_doc(f"p{i:03d}", []) for i in range(60)])
    cfg = sim_env.config(backstage={"base_url": sim_env.backstage_url, "token": "${TEST_BACKSTAGE_TOKEN}"})
    lines = body(sim_env.cli("plan", "-c", str(cfg)))
    assert len(lines) == 51 and lines[-1] == "… and 10 more (see the report)"
    assert lines[0].startswith("+ p000@example.com  defaults (no role matched): ")


def test_show_and_json_refuse_what_they_cannot_do(sim_env: SimEnv) -> None:
    missing = sim_env.cli("show", str(sim_env.work / "nope.json"))
    assert missing.code == 2 and "cannot read the plan" in missing.stderr and missing.stdout == ""
    both = sim_env.cli("plan", "-c", str(sim_env.config()), "--json", "--out", "-")
    assert both.code == 2 and "--json and --out - both write the plan to stdout" in both.stderr
    assert both.stdout == ""
