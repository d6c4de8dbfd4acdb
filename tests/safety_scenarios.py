"""Safety scenarios (deprovisioning, guards, protection, kill-and-rerun) for simulators and real servers."""

from __future__ import annotations

import json
import signal
import stat
import time
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.envs import Env, group_doc, user_doc
from tests.scenarios import DEFAULTS, ROLES, org, setup


def _without(*names: str) -> list[dict[str, Any]]:
    return [e for e in org() if e["metadata"]["name"] not in names]


def block_is_reversible_and_a_returning_person_is_restored(env: Env) -> None:
    cfg = setup(env, deprovision={"mode": "block"}, guards={"max_deprovision": 1})
    assert env.cli("run", "-c", str(cfg)).code == 0
    token = env._post("/key/generate", {"user_id": "bob@example.com"}).json()["token"]
    other_meta = {**env.all_users()["bob@example.com"]["metadata"], "owner_note": "keep me"}
    env.update_user("bob@example.com", {"metadata": other_meta})
    env.set_catalog(_without("bob"))
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    assert [(d["user_id"], d["action"], d["outcome"]) for d in result.report["deprovision"]] == [
        ("bob@example.com", "block", "applied")
    ]
    bob = env.all_users()["bob@example.com"]
    assert bob["max_budget"] == 0
    record = bob["metadata"]["catalog_sync"]["blocked"]
    assert record["max_budget"] == 50 and record["keys"] == [token] and record["done"] is True
    assert env.keys("bob@example.com") == [(token, True)]
    # Blocking is done once: the next run has nothing to do.
    again = env.cli("plan", "-c", str(cfg), "--detailed-exitcode")
    assert again.code == 0 and again.report["deprovision"] == [], again.stdout
    # Bob comes back: budget, keys and metadata as before.
    env.set_catalog(org())
    back = env.cli("run", "-c", str(cfg))
    assert back.code == 0, back.stdout + back.stderr
    bob = env.all_users()["bob@example.com"]
    assert bob["max_budget"] == 50 and "blocked" not in bob["metadata"]["catalog_sync"]
    assert bob["metadata"]["owner_note"] == "keep me"
    assert env.keys("bob@example.com") == [(token, False)]
    assert env.cli("plan", "-c", str(cfg), "--detailed-exitcode").code == 0


def delete_mode_deletes_the_user_and_its_keys(env: Env) -> None:
    cfg = setup(env, deprovision={"mode": "delete"}, guards={"max_deprovision": "25%"})
    assert env.cli("run", "-c", str(cfg)).code == 0
    env._post("/key/generate", {"user_id": "carol@example.com"}).raise_for_status()
    env.set_catalog(_without("carol"))
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    assert [(d["action"], d["outcome"]) for d in result.report["deprovision"]] == [("delete", "applied")]
    assert env.user_info("carol@example.com") is None
    assert sorted(u for u in env.all_users() if u.endswith("@example.com")) == [
        "alice@example.com",
        "bob@example.com",
        "dave.mixed@example.com",
    ]


def a_tripped_guard_applies_nothing_and_force_overrides_it(env: Env) -> None:
    cfg = setup(env, deprovision={"mode": "delete"}, guards={"max_deprovision": "25%"})
    assert env.cli("run", "-c", str(cfg)).code == 0
    before = env.all_users()
    # Two of four leave (50% > 25%) and a newcomer arrives: nothing at all may happen.
    env.set_catalog([*_without("bob", "carol"), user_doc("erin", ["finance"])])
    plan = env.cli("plan", "-c", str(cfg))
    assert plan.code == 3, plan.stdout + plan.stderr
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 3, result.stdout + result.stderr
    assert result.report["result"] == "guard_tripped"
    [trip] = result.report["guards"]["tripped"]
    assert trip["guard"] == "max_deprovision" and (trip["limit"], trip["planned"]) == (1, 2)
    assert "by 1" in trip["message"] and result.report["guards"]["forced"] is False
    assert env.all_users() == before
    assert {a["outcome"] for a in result.report["actions"]} == {"blocked_by_guard"}
    forced = env.cli("run", "-c", str(cfg), "--force")
    assert forced.code == 0, forced.stdout + forced.stderr
    assert forced.report["guards"]["forced"] is True and forced.report["guards"]["tripped"]
    users = env.all_users()
    assert "bob@example.com" not in users and "carol@example.com" not in users
    assert "erin@example.com" in users


def max_changes_guard(env: Env) -> None:
    cfg = setup(env, guards={"max_changes": 3})
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 3 and result.report["guards"]["tripped"][0]["guard"] == "max_changes"
    assert "@example.com" not in " ".join(env.all_users())


def protected_users_are_never_touched(env: Env) -> None:
    cfg = setup(env, deprovision={"mode": "delete", "protect": ["bob@*", "svc-*"]})
    assert env.cli("run", "-c", str(cfg)).code == 0
    assert "bob@example.com" not in env.all_users()  # protected: not even created
    env.create_user(
        {"user_id": "svc-robot", "metadata": {"catalog_sync": {"managed": True, "entity_ref": "user:x/y"}}}
    )
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0 and result.report["deprovision"] == []
    assert "svc-robot" in env.all_users()
    assert any(w["code"] == "protected_user" for w in result.report["warnings"])


def an_empty_catalog_deprovisions_nobody(env: Env) -> None:
    cfg = setup(env, deprovision={"mode": "delete"}, guards={"max_deprovision": "100%"})
    assert env.cli("run", "-c", str(cfg)).code == 0
    env.set_catalog([group_doc("engineering"), group_doc("ml-research"), group_doc("finance")])
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    assert {d["outcome"] for d in result.report["deprovision"]} == {"withheld"}
    assert "no usable users" in result.report["run"]["deprovision_withheld"]
    assert len([u for u in env.all_users() if u.endswith("@example.com")]) == 4


def _big_org(n: int) -> list[dict[str, Any]]:
    return [group_doc("engineering"), *(user_doc(f"p{i:03d}", ["engineering"]) for i in range(n))]


def _kill_when(env: Env, args: list[str], ready: Any, timeout: float = 120) -> None:
    proc = env.start_cli(*args)
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def killed_runs_converge_on_the_next_run(env: Env) -> None:
    """SIGKILL in the middle of creating, then of blocking: the next run finishes the job."""
    n = 60
    env.set_catalog(_big_org(n))
    cfg = env.config(
        defaults=DEFAULTS,
        roles=[{"group": "engineering", "max_budget": 50}],
        deprovision={"mode": "block"},
        guards={"max_deprovision": "100%"},
        concurrency=2,
    )
    slow = getattr(env, "slow_writes", None)
    if slow:
        slow(0.05)
    _kill_when(env, ["run", "-c", str(cfg)], lambda: sum(u.startswith("p") for u in env.all_users()) >= 5)
    partial = len([u for u in env.all_users() if u.startswith("p")])
    assert 0 < partial < n, partial
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    users = {k: v for k, v in env.all_users().items() if k.startswith("p")}
    assert len(users) == n and all(u["max_budget"] == 50 for u in users.values())
    assert all(u["key_count"] == 0 for u in users.values()), "a killed run left a key behind"
    # Now half of them leave, with keys, and the blocking run is killed part-way.
    for i in range(n // 2):
        env._post("/key/generate", {"user_id": f"p{i:03d}@example.com"}).raise_for_status()
    env.set_catalog([_big_org(n)[0], *_big_org(n)[1 + n // 2 :]])

    def some_blocked() -> bool:
        return sum(1 for u in env.all_users().values() if u.get("max_budget") == 0) >= 3

    _kill_when(env, ["run", "-c", str(cfg)], some_blocked)
    if slow:
        slow(0)
    result = env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    users = env.all_users()
    for i in range(n):
        user = users[f"p{i:03d}@example.com"]
        if i < n // 2:
            assert user["max_budget"] == 0 and user["metadata"]["catalog_sync"]["blocked"]["done"] is True
            assert all(blocked for _, blocked in env.keys(f"p{i:03d}@example.com")), i
        else:
            assert user["max_budget"] == 50
    assert env.cli("plan", "-c", str(cfg), "--detailed-exitcode").code == 0


def a_misspelt_role_group_stops_the_run_unless_optional_or_forced(env: Env) -> None:
    """The issue's case: `finanse` for `finance` would silently cut its people to the defaults."""
    env.add_team("ml-team")
    env.add_team("eng-team")
    env.set_catalog([*org(), user_doc("erin", ["finance"])])
    # ROLES without gpt-4o, which the servers do not serve (validate --online must pass in the end).
    roles = [{**ROLES[0], "models": ["fake-gpt"]}, ROLES[1]]
    finance = {"group": "finance", "max_budget": 25}
    right = env.config(defaults=DEFAULTS, roles=[*roles, finance])
    assert env.cli("run", "-c", str(right)).code == 0
    people = {u: v for u, v in env.all_users().items() if u.endswith("@example.com")}
    assert people["carol@example.com"]["max_budget"] == 25 and people["erin@example.com"]["max_budget"] == 25
    typo = env.config(defaults=DEFAULTS, roles=[*roles, {**finance, "group": "finanse"}])
    online = env.cli("validate", "--online", "-c", str(typo))
    assert online.code == 2 and "roles[2].group: group:default/finanse does not exist" in online.stderr
    # carol and erin hold the finance role today (dave matches ml-research first): 2 people would move.
    for command in ("plan", "run"):
        result = env.cli(command, "-c", str(typo))
        assert result.code == 3, result.stdout + result.stderr
        [trip] = [t for t in result.report["guards"]["tripped"] if t["guard"] == "role_group_missing"]
        assert trip["planned"] == 2
        for text in (trip["message"], result.stderr):
            assert "roles[2] (group:default/finanse, written 'finanse')" in text, text
            assert "does not exist in the catalog (did you mean group:default/finance?)" in text, text
            assert "; 2 people would change role because of it" in text, text
    assert result.report["result"] == "guard_tripped"
    assert {a["outcome"] for a in result.report["actions"]} == {"blocked_by_guard"}
    assert {u: v for u, v in env.all_users().items() if u.endswith("@example.com")} == people
    # --force: applied once, and said so.
    forced = env.cli("run", "-c", str(typo), "--force")
    assert forced.code == 0, forced.stdout + forced.stderr
    assert forced.report["guards"]["forced"] is True
    assert "role_group_missing" in {t["guard"] for t in forced.report["guards"]["tripped"]}
    assert env.all_users()["carol@example.com"]["max_budget"] == 10
    # optional: true: a warning on the terminal, and the run goes ahead (budget cuts allowed here).
    right = env.config(defaults=DEFAULTS, roles=[*roles, finance])  # (env.config rewrites one file)
    back = env.cli("run", "-c", str(right))
    assert back.code == 0, back.stdout + back.stderr
    optional = env.config(
        defaults=DEFAULTS,
        roles=[*roles, {**finance, "group": "finanse", "optional": True}],
        guards={"max_downgrades": "100%"},
    )
    online = env.cli("validate", "--online", "-c", str(optional))
    assert online.code == 0, online.stdout + online.stderr
    assert "note: roles[2].group: group:default/finanse does not exist in the catalog" in online.stderr
    result = env.cli("run", "-c", str(optional))
    assert result.code == 0, result.stdout + result.stderr
    assert result.report["guards"]["tripped"] == []
    assert "warning: roles[2] (group:default/finanse, written 'finanse'): the group does not exist" in (
        result.stderr
    )
    assert env.all_users()["erin@example.com"]["max_budget"] == 10
# --- credentials written into URLs --------------------------------------------------------------------

URL_PASSWORD = "Pw-in-the-url-0123"


def _with_userinfo(url: str) -> str:
    return url.replace("://", f"://admin:{URL_PASSWORD}@", 1)


def credentials_in_urls_are_never_shown(env: Env) -> None:
    """Base URLs with user info: the password is in no output, saved plan, report or metric, in either log
    format; the saved plan is the owner's only (0600) and still applies to the same (public) URL."""
    env.add_team("ml-team")
    env.add_team("eng-team")
    env.set_catalog(org())
    prom = env.work / "metrics" / "catalog_sync.prom"
    tokens = {"token": "${TEST_BACKSTAGE_TOKEN}", "page_size": 2}
    cfg = env.config(
        backstage={"base_url": _with_userinfo(env.backstage_url), **tokens},
        litellm={"base_url": _with_userinfo(env.litellm_url), "master_key": "${TEST_LITELLM_KEY}"},
        defaults=DEFAULTS,
        roles=ROLES,
        metrics={"textfile": str(prom)},
    )
    plan_file = env.work / "plans" / "plan.json"
    planned = env.cli("--log-level", "debug", "plan", "-c", str(cfg), "--out", str(plan_file))
    assert planned.code == 0, planned.stdout + planned.stderr
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    saved = json.loads(plan_file.read_text())
    assert saved["litellm_url"] == env.litellm_url + "/" and "@" not in saved["backstage_url"]
    applied = env.cli("--log-format", "console", "apply", str(plan_file), "-c", str(cfg))
    assert applied.code == 0, applied.stdout + applied.stderr
    assert len([u for u in env.all_users() if u.endswith("@example.com")]) == 4
    env.set_catalog([*org(), user_doc("erin", ["finance"])])
    ran = env.cli("--log-format", "console", "--log-level", "debug", "run", "-c", str(cfg))
    assert ran.code == 0 and ran.report["counts"]["applied"] == 1, ran.stdout + ran.stderr
    assert ran.report["run"]["litellm_url"] == env.litellm_url + "/"
    # "reading" names both servers on every run: by their public URLs.
    assert env.litellm_url in ran.stderr and "admin:" not in ran.stderr
    assert prom.exists()
    written = [plan_file, prom, *(env.work / "reports").iterdir()]
    for text in [r.stdout + r.stderr for r in (planned, applied, ran)] + [p.read_text() for p in written]:
        assert URL_PASSWORD not in text, "the password in a URL was shown"


# --- SIGTERM / Ctrl-C --------------------------------------------------------------------------------


def signal_when(env: Env, args: list[str], ready: Any, signum: int, timeout: float = 120) -> tuple[int, str]:
    """Starts the CLI, sends `signum` once `ready()`, and returns its exit code and output."""
    out = env.work / f"bg-{len(list(env.work.glob('bg-*.out')))}.out"
    proc = env.start_cli(*args)
    deadline = time.monotonic() + timeout
    while not ready(out):
        assert proc.poll() is None, "the run ended before it could be signalled:\n" + out.read_text()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    proc.send_signal(signum)
    code = proc.wait(timeout=60)
    return code, out.read_text()


def people_in_litellm(env: Env) -> int:
    return sum(u.startswith("p") for u in env.all_users())


def interrupted_report(env: Env, signum: int) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((env.work / "reports" / "latest.json").read_text())
    assert report["result"] == "interrupted", report["result"]
    assert report["run"]["interrupted_by"] == signal.Signals(signum).name
    assert report["run"]["exit_code"] == 128 + signum
    return report


def a_signal_mid_apply_stops_cleanly_and_the_next_run_converges(
    env: Env, signum: int = signal.SIGTERM
) -> None:
    """SIGTERM (a Kubernetes deadline) part-way through the writes: the writes in flight finish, no new one
    starts, the report and the metrics say what was applied and what not, exit 143; the next run converges."""
    slow = getattr(env, "slow_writes", None)
    n = 40 if slow else 150  # the real LiteLLM takes ~25 ms a write
    env.set_catalog(_big_org(n))
    prom = env.work / "metrics" / "catalog_sync.prom"
    roles = [{"group": "engineering", "max_budget": 50}]
    cfg = env.config(defaults=DEFAULTS, roles=roles, concurrency=2, metrics={"textfile": str(prom)})
    if slow:
        slow(0.1)
    code, output = signal_when(env, ["run", "-c", str(cfg)], lambda _: people_in_litellm(env) >= 5, signum)
    if slow:
        slow(0)
    assert code == 128 + signum, output
    assert f"run: interrupted by {signal.Signals(signum).name}: {n} to create" in output
    assert "Traceback" not in output
    report = interrupted_report(env, signum)
    outcomes = Counter(a["outcome"] for a in report["actions"])
    assert set(outcomes) <= {"applied", "not_started"} and outcomes["not_started"] > 0, outcomes
    counts = report["counts"]
    assert counts["applied"] == outcomes["applied"] >= 5 and counts["not_started"] == outcomes["not_started"]
    users = env.all_users()
    for action in report["actions"]:
        assert (action["user_id"] in users) is (action["outcome"] == "applied"), action
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert families["catalog_sync_interrupted"].samples[0].value == 1
    assert families["catalog_sync_last_run_exit_code"].samples[0].value == 128 + signum
    by_outcome = {s.labels["outcome"]: s.value for s in families["catalog_sync_actions"].samples}
    assert by_outcome == {"applied": outcomes["applied"], "not_started": outcomes["not_started"]}
    rerun = env.cli("run", "-c", str(cfg))
    assert rerun.code == 0 and rerun.report["counts"]["create"] == outcomes["not_started"], rerun.stdout
    assert people_in_litellm(env) == n
    assert env.cli("plan", "-c", str(cfg), "--detailed-exitcode").code == 0


SAFETY_SCENARIOS = [
    block_is_reversible_and_a_returning_person_is_restored,
    delete_mode_deletes_the_user_and_its_keys,
    a_tripped_guard_applies_nothing_and_force_overrides_it,
    max_changes_guard,
    protected_users_are_never_touched,
    an_empty_catalog_deprovisions_nobody,
    killed_runs_converge_on_the_next_run,
    a_misspelt_role_group_stops_the_run_unless_optional_or_forced,
    credentials_in_urls_are_never_shown,
    a_signal_mid_apply_stops_cleanly_and_the_next_run_converges,
]
