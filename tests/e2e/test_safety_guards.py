"""Issue 13's safety items through the CLI on the simulators: budget cuts guarded, roles that match nobody
warned on the terminal, absurd config values refused, old reports pruned."""

from __future__ import annotations

from pathlib import Path

from tests.envs import SimEnv, group_doc, user_doc
from tests.scenarios import DEFAULTS, ROLES, org, setup


def people(env: SimEnv) -> dict[str, dict[str, object]]:
    return {u: v for u, v in env.all_users().items() if u.endswith("@example.com")}


def test_budget_cuts_beyond_max_downgrades_apply_nothing_and_force_overrides_once(sim_env: SimEnv) -> None:
    cfg = setup(sim_env)
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    before = people(sim_env)
    # The default budget goes from 10 to 5: carol (on the defaults) would be cut; 10% of 4 allows none.
    cut = sim_env.config(defaults={**DEFAULTS, "max_budget": 5}, roles=ROLES)
    plan_file = sim_env.work / "plan.json"
    for args in (("plan", "--out", str(plan_file)), ("run",)):
        result = sim_env.cli(*args, "-c", str(cut))
        assert result.code == 3, result.stdout + result.stderr
        [trip] = result.report["guards"]["tripped"]
        assert (trip["guard"], trip["limit"], trip["planned"]) == ("max_downgrades", 0, 1)
        message = (
            "1 user would have a budget, rate limit or model list cut, which exceeds guards.max_downgrades "
            "(10% of 4 managed users = 0) by 1: carol@example.com (max_budget)"
        )
        assert trip["message"] == message and message in result.stderr
    assert result.report["result"] == "guard_tripped"
    assert [a["outcome"] for a in result.report["actions"]] == ["blocked_by_guard"]
    assert people(sim_env) == before
    # A reviewed plan is guarded the same way.
    applied = sim_env.cli("apply", str(plan_file), "-c", str(cut))
    assert applied.code == 3 and applied.report["guards"]["tripped"][0]["guard"] == "max_downgrades"
    assert people(sim_env) == before
    forced = sim_env.cli("run", "-c", str(cut), "--force")
    assert forced.code == 0, forced.stdout + forced.stderr
    assert forced.report["guards"]["forced"] is True and forced.report["guards"]["tripped"]
    assert people(sim_env)["carol@example.com"]["max_budget"] == 5
    # --force was for that run only: the next cut trips again.
    again = sim_env.config(defaults={**DEFAULTS, "max_budget": 4}, roles=ROLES)
    assert sim_env.cli("run", "-c", str(again)).code == 3


def test_raises_pass_and_model_shrinks_are_cuts(sim_env: SimEnv) -> None:
    cfg = setup(sim_env)
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    # Every budget up: nobody is cut.
    richer = [{**ROLES[0], "max_budget": 300}, {**ROLES[1], "max_budget": 60}]
    up = sim_env.config(defaults={**DEFAULTS, "max_budget": 20}, roles=richer)
    assert sim_env.cli("run", "-c", str(up)).code == 0
    # ml-research loses gpt-4o: alice and dave lose a model.
    fewer = sim_env.config(
        defaults={**DEFAULTS, "max_budget": 20}, roles=[{**richer[0], "models": ["fake-gpt"]}, richer[1]]
    )
    result = sim_env.cli("run", "-c", str(fewer))
    assert result.code == 3, result.stdout + result.stderr
    assert "2 users would have" in result.report["guards"]["tripped"][0]["message"]
    assert "alice@example.com (models)" in result.report["guards"]["tripped"][0]["message"]
    allowed = sim_env.config(
        defaults={**DEFAULTS, "max_budget": 20},
        roles=[{**richer[0], "models": ["fake-gpt"]}, richer[1]],
        guards={"max_downgrades": 2},
    )
    assert sim_env.cli("run", "-c", str(allowed)).code == 0
    assert people(sim_env)["alice@example.com"]["models"] == ["fake-gpt"]


def test_roles_that_match_nobody_are_warned_on_the_terminal_by_plan_run_and_apply(sim_env: SimEnv) -> None:
    sim_env.add_team("ml-team")
    sim_env.add_team("eng-team")
    sim_env.set_catalog([*org(), group_doc("interns")])
    # engineering first: ml-research (nested under it) is then shadowed; nobody is in interns.
    roles = [ROLES[1], ROLES[0], {"group": "interns", "max_budget": 1}]
    cfg = sim_env.config(defaults=DEFAULTS, roles=roles)
    expected = [
        "warning: roles[1] (group:default/ml-research, written 'ml-research') matches nobody: every member "
        "of its group is taken by a role above it",
        "warning: roles[2] (group:default/interns, written 'interns') matches nobody",
    ]
    plan_file = sim_env.work / "plan.json"
    for args in (
        ("plan", "--out", str(plan_file)),
        ("run", "--dry-run"),
        ("apply", str(plan_file)),
        ("run",),
    ):
        result = sim_env.cli(*args, "-c", str(cfg))
        assert result.code == 0, result.stdout + result.stderr
        assert [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")] == expected, args
    codes = [w["code"] for w in result.report["warnings"]]
    assert codes.count("role_shadowed") == 1 and codes.count("role_unmatched") == 1


def test_validate_refuses_an_absurd_timeout_in_one_line(sim_env: SimEnv) -> None:
    cfg = sim_env.config(
        litellm={
            "base_url": sim_env.litellm_url,
            "master_key": "${TEST_LITELLM_KEY}",
            "timeout_seconds": 7.6e-72,
        }
    )
    result = sim_env.cli("validate", "-c", str(cfg))
    assert result.code == 2
    assert result.stderr.splitlines() == [f"{cfg}: litellm.timeout_seconds: must be a number >= 0.1"]


def test_reports_of_old_runs_are_pruned_and_other_files_kept(sim_env: SimEnv) -> None:
    sim_env.set_catalog([group_doc("eng"), user_doc("amy", ["eng"])])
    reports = sim_env.work / "reports"
    reports.mkdir()
    old = [f"2020010{d}T000000Z-0000{d}0" for d in range(1, 4)]
    for run in old:
        for ext in ("json", "md", "html"):
            (reports / f"catalog-sync-{run}.{ext}").write_text("{}")
    (reports / "README.txt").write_text("not a report")
    cfg = sim_env.config(report={"dir": str(reports), "keep": 2})
    first = sim_env.cli("plan", "-c", str(cfg))
    assert first.code == 0
    run1 = first.report["run"]["run_id"]
    assert names(reports) == runs(old[-1], run1) | LATEST | {"README.txt"}
    second = sim_env.cli("plan", "-c", str(cfg))
    assert names(reports) == runs(run1, second.report["run"]["run_id"]) | LATEST | {"README.txt"}


LATEST = {"latest.json", "latest.md", "latest.html"}


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def runs(*ids: str) -> set[str]:
    return {f"catalog-sync-{r}.{ext}" for r in ids for ext in ("json", "md", "html")}
