"""Fault injection against the simulators, through the real CLI: failing servers, bad bodies, lost answers,
hostile entities, the run lock and TLS. Every case checks what a user sees: exit code, one-line error naming
the endpoint, the report, and the state left in LiteLLM.
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from catalog_sync.lock import default_lock_path, run_lock
from catalog_sync.sim import SimServer
from tests.envs import CliResult, SimEnv, group_doc, user_doc

FAST_RETRIES = {"retries": 3, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05}


def org(n: int = 4) -> list[dict[str, Any]]:
    return [group_doc("eng"), *(user_doc(f"p{i}", ["eng"]) for i in range(n))]


def config(env: SimEnv, **kw: Any) -> Path:
    return env.config(http=FAST_RETRIES, **kw)


def ours(env: SimEnv) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in env.all_users().items() if k.startswith("p")}


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    summary = result.stdout.splitlines()[0]
    for needle in needles:
        assert needle in summary, summary


# --- failing servers -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_are_retried_on_both_servers(sim_env: SimEnv, status: int) -> None:
    sim_env.set_catalog(org())
    sim_env.backstage.inject("/api/catalog/entities/by-query", status, {"error": "busy"}, times=2)
    sim_env.litellm.inject("GET /user/list", status, {"detail": "busy"}, times=1)
    sim_env.litellm.inject("POST /user/new", status, {"detail": "busy"}, times=2)
    result = sim_env.cli("run", "-c", str(config(sim_env)))
    assert result.code == 0, result.stdout + result.stderr
    assert len(ours(sim_env)) == 4
    assert sim_env.backstage.faults_hit("/api/catalog/entities/by-query") == 2
    assert sim_env.litellm.faults_hit("GET /user/list") == 1
    assert sim_env.litellm.faults_hit("POST /user/new") == 2


def test_retry_after_is_honoured(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(1))
    sim_env.litellm.inject("GET /user/list", 429, {"detail": "slow down"}, headers={"Retry-After": "1"})
    started = time.monotonic()
    result = sim_env.cli("plan", "-c", str(config(sim_env)))
    assert result.code == 0 and time.monotonic() - started >= 1.0
    assert sim_env.litellm.faults_hit("GET /user/list") == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 500])
def test_other_errors_are_not_retried_and_fail_the_run_naming_the_endpoint(
    sim_env: SimEnv, status: int
) -> None:
    sim_env.set_catalog(org())
    sim_env.litellm.inject("GET /user/list", status, {"detail": "nope"}, times=-1)
    result = sim_env.cli("run", "-c", str(config(sim_env)))
    assert result.code == 1
    assert_one_line_error(result, "litellm GET /user/list", f"HTTP {status}", "nope")
    assert sim_env.litellm.request_counts()["GET /user/list"] == 1
    sim_env.litellm.clear_faults()
    assert ours(sim_env) == {}
    assert result.report["result"] == "error" and result.report["actions"] == []


def test_a_server_that_stays_down_fails_after_bounded_retries(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org())
    sim_env.backstage.inject("/api/catalog", 503, {"error": "down"}, times=-1)
    result = sim_env.cli("run", "-c", str(config(sim_env)))
    assert result.code == 1
    assert_one_line_error(result, "backstage GET /entities/by-query", "HTTP 503")
    assert sim_env.backstage.request_counts()["GET /api/catalog/entities/by-query"] == 1 + 3
    assert ours(sim_env) == {}


def test_dropped_connections_are_retried(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org())
    assert sim_env.cli("run", "-c", str(config(sim_env))).code == 0
    # A raised budget: the second run reads the catalog and then updates all four users.
    sim_env.backstage.inject("/api/catalog/entities/by-query", 0, times=1)
    sim_env.litellm.inject("POST /user/update", 0, times=1)
    result = sim_env.cli("run", "-c", str(config(sim_env, defaults={"max_budget": 20})))
    assert result.code == 0, result.stdout + result.stderr
    assert sim_env.backstage.faults_hit("/api/catalog/entities/by-query") == 1
    assert sim_env.litellm.faults_hit("POST /user/update") == 1
    assert {u["max_budget"] for u in ours(sim_env).values()} == {20}


def test_a_create_whose_answer_was_lost_is_retried_read_back_and_finished(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(3))
    # The server creates the user, then the connection dies: the retry gets a 409 for an id that is ours.
    sim_env.litellm.inject("POST /user/new", 0, times=2, after=True)
    result = sim_env.cli("run", "-c", str(config(sim_env)))
    assert result.code == 0, result.stdout + result.stderr
    assert sim_env.litellm.faults_hit("POST /user/new") == 2
    users = ours(sim_env)
    assert len(users) == 3 and all(u["key_count"] == 0 for u in users.values())
    assert {a["outcome"] for a in result.report["actions"]} == {"applied"}
    assert sim_env.cli("plan", "-c", str(config(sim_env)), "--detailed-exitcode").code == 0


def test_a_create_that_times_out_after_the_server_acted_converges(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(2))
    sim_env.litellm.inject("POST /user/new", 200, {}, times=1, delay=2.0, after=True)
    result = sim_env.cli("run", "-c", str(config(sim_env, litellm=_litellm(sim_env, timeout_seconds=0.5))))
    assert result.code == 0, result.stdout + result.stderr
    assert sim_env.litellm.faults_hit("POST /user/new") == 1
    assert len(ours(sim_env)) == 2
    assert sim_env.cli("plan", "-c", str(config(sim_env)), "--detailed-exitcode").code == 0


def _litellm(env: SimEnv, **kw: Any) -> dict[str, Any]:
    return {"base_url": env.litellm_url, "master_key": "${TEST_LITELLM_KEY}", **kw}


def test_one_failed_user_does_not_stop_the_others(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(5))
    sim_env.litellm.inject("POST /user/new", 400, {"detail": {"error": "db says no"}}, times=1)
    result = sim_env.cli("run", "-c", str(config(sim_env, concurrency=1)))
    assert result.code == 1
    failed = [a for a in result.report["actions"] if a["outcome"] == "failed"]
    assert len(failed) == 1 and "HTTP 400: db says no" in failed[0]["error"]
    assert len(ours(sim_env)) == 4
    assert result.report["counts"]["failed"] == 1 and result.report["result"] == "partial_failure"
    # The next run finishes the job.
    assert sim_env.cli("run", "-c", str(config(sim_env))).code == 0
    assert len(ours(sim_env)) == 5


# --- bad bodies ----------------------------------------------------------------------------------

BAD_BODIES = [
    (
        "html error page",
        200,
        "<html><body>502 Bad Gateway</body></html>",
        "text/html",
        "expected JSON, got text/html",
    ),
    ("truncated JSON", 200, '{"users": [{"user_id": "a"', "application/json", "invalid or truncated JSON"),
    ("wrong content type", 200, "users=a", "text/plain", "expected JSON, got text/plain"),
    ("wrong shape", 200, '{"users": "everyone"}', "application/json", "unexpected response"),
    ("null", 200, "null", "application/json", "unexpected response"),
]


@pytest.mark.parametrize("what,status,body,ctype,message", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
@pytest.mark.parametrize(
    "server,route,endpoint",
    [
        ("litellm", "GET /user/list", "litellm GET /user/list"),
        ("litellm", "GET /team/list", "litellm GET /team/list"),
        ("backstage", "/api/catalog/entities/by-query", "backstage GET /entities/by-query"),
    ],
)
def test_bad_bodies_give_one_clear_line_naming_the_endpoint(
    sim_env: SimEnv,
    what: str,
    status: int,
    body: str,
    ctype: str,
    message: str,
    server: str,
    route: str,
    endpoint: str,
) -> None:
    sim_env.set_catalog(org())
    app = sim_env.litellm if server == "litellm" else sim_env.backstage
    app.inject(route, status, body, content_type=ctype, times=-1)
    result = sim_env.cli("run", "-c", str(config(sim_env, deprovision={"mode": "delete"})))
    assert result.code == 1, result.stdout
    assert_one_line_error(result, endpoint)
    assert app.faults_hit(route) >= 1
    if not (server == "backstage" and what == "wrong shape"):
        assert message in result.stdout.splitlines()[0]
    app.clear_faults()
    assert ours(sim_env) == {}


def test_a_bad_body_on_a_write_fails_that_user_only(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(3))
    sim_env.litellm.inject("POST /user/new", 200, "<html>oops</html>", content_type="text/html", times=1)
    result = sim_env.cli("run", "-c", str(config(sim_env, concurrency=1)))
    assert result.code == 1
    [failed] = [a for a in result.report["actions"] if a["outcome"] == "failed"]
    assert "litellm POST /user/new" in failed["error"] and "expected JSON" in failed["error"]


# --- the lock ------------------------------------------------------------------------------------


def test_a_second_run_exits_1_while_the_lock_is_held(sim_env: SimEnv, tmp_path: Path) -> None:
    sim_env.set_catalog(org(1))
    lock = tmp_path / "run.lock"
    cfg = config(sim_env, lock_file=str(lock))
    with run_lock(lock):
        result = sim_env.cli("run", "-c", str(cfg))
        plan = sim_env.cli("plan", "-c", str(cfg))
    assert result.code == 1 and "holds the lock" in result.stderr and "--wait-for-lock" in result.stderr
    assert ours(sim_env) == {}
    assert plan.code == 0  # plan changes nothing and needs no lock


def test_wait_for_lock_waits_then_applies(sim_env: SimEnv, tmp_path: Path) -> None:
    sim_env.set_catalog(org(1))
    lock = tmp_path / "run.lock"
    cfg = config(sim_env, lock_file=str(lock))
    held = threading.Event()

    def hold() -> None:
        with run_lock(lock):
            held.set()
            time.sleep(1.5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    started = time.monotonic()
    result = sim_env.cli("run", "-c", str(cfg), "--wait-for-lock")
    thread.join()
    assert result.code == 0 and time.monotonic() - started >= 1.0
    assert len(ours(sim_env)) == 1


def test_credentials_in_the_litellm_url_do_not_make_a_second_lock(sim_env: SimEnv) -> None:
    """The default lock is one per LiteLLM whatever user info its URL carries: a run through the same proxy
    with credentials in the URL waits for (here: is refused by) a run without."""
    sim_env.set_catalog(org(1))
    lock = default_lock_path(sim_env.litellm_url + "/")
    url = sim_env.litellm_url.replace("://", "://admin:Pw-lock-0123@")
    litellm = {"base_url": url, "master_key": "${TEST_LITELLM_KEY}"}
    cfg = sim_env.config(litellm=litellm, lock_file=None)  # the default lock, named after the URL
    try:
        with run_lock(lock):
            result = sim_env.cli("run", "-c", str(cfg))
    finally:
        lock.unlink(missing_ok=True)
    assert result.code == 1 and "holds the lock" in result.stderr
    assert ours(sim_env) == {}


# --- hostile and odd entities --------------------------------------------------------------------

ODD_NAMES = ["a+b", "50%off", "with space", "zoë.ünïcode", "x" * 300, "semi;colon&amp"]


def test_odd_names_round_trip_as_ids(sim_env: SimEnv) -> None:
    sim_env.backstage.strict = False
    sim_env.set_catalog(
        [
            group_doc("eng"),
            *(user_doc(n, ["eng"], email=f"u{i}@example.com") for i, n in enumerate(ODD_NAMES)),
        ]
    )
    cfg = config(sim_env)
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    users = sim_env.all_users()
    for name in ODD_NAMES:
        uid = f"{name.lower()}@example.com"
        assert uid in users, uid
        info = sim_env.user_info(uid)  # read back by id: the id survives URL encoding exactly
        assert info is not None and info["user_info"]["user_id"] == uid
    again = sim_env.cli("plan", "-c", str(cfg), "--detailed-exitcode")
    assert again.code == 0, again.stdout


def test_a_name_that_cannot_form_a_ref_is_skipped_and_reported(sim_env: SimEnv) -> None:
    sim_env.backstage.strict = False
    sim_env.set_catalog([group_doc("eng"), user_doc("slash/name", ["eng"]), user_doc("p0", ["eng"])])
    result = sim_env.cli("run", "-c", str(config(sim_env)))
    assert result.code == 0
    [warning] = [w for w in result.report["warnings"] if w["code"] == "skipped_entity"]
    assert "slash/name" in warning["message"] and "does not form an entity ref" in warning["message"]
    assert set(ours(sim_env)) == {"p0@example.com"}


def test_malformed_entities_are_skipped_with_a_warning_and_never_deprovisioned(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(3))
    cfg = config(sim_env, deprovision={"mode": "delete"}, guards={"max_deprovision": "100%"})
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    sim_env.backstage.strict = False
    nospec = {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "p0"}}
    noprofile = {**user_doc("p1", ["eng"]), "spec": {"memberOf": ["eng"]}}
    sim_env.set_catalog([group_doc("eng"), nospec, noprofile, user_doc("p2", ["eng"])])
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    skipped = [w["subject"] for w in result.report["warnings"] if w["code"] == "skipped_entity"]
    assert skipped == ["user:default/p0"]
    no_email = [w["subject"] for w in result.report["warnings"] if w["code"] == "no_email"]
    assert no_email == ["user:default/p1"]
    assert result.report["deprovision"] == []
    assert set(ours(sim_env)) == {"p0@example.com", "p1@example.com", "p2@example.com"}


def test_two_entities_mapping_to_one_id_are_a_conflict(sim_env: SimEnv) -> None:
    sim_env.set_catalog(
        [
            group_doc("eng"),
            user_doc("Amy", ["eng"]),
            {**user_doc("amy", ["eng"]), "metadata": {"name": "amy", "namespace": "other"}},
        ]
    )
    result = sim_env.cli("run", "-c", str(config(sim_env)))
    assert result.code == 0
    assert [c["code"] for c in result.report["conflicts"]] == ["duplicate_user_id"]
    assert "amy@example.com" not in sim_env.all_users()


def test_a_group_cycle_and_a_missing_role_group_are_reported(sim_env: SimEnv) -> None:
    sim_env.set_catalog(
        [
            group_doc("a", parent="b"),
            group_doc("b", parent="a"),
            user_doc("p0", ["a"]),
        ]
    )
    # optional: a missing group is otherwise a guard trip (test_safety_e2e covers that).
    roles = [{"group": "nowhere", "optional": True, "max_budget": 1}, {"group": "b", "max_budget": 7}]
    cfg = config(sim_env, roles=roles)
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 0, result.stdout + result.stderr
    codes = {w["code"] for w in result.report["warnings"]}
    assert "role_group_missing" in codes and "group_cycle" in codes, codes
    assert sim_env.all_users()["p0@example.com"]["max_budget"] == 7


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def tls_env(tmp_path: Path) -> Any:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    env = SimEnv(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    server = SimServer(env.litellm, ssl_context=ctx)
    env.litellm_url = server.start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield env, ca_file
    server.stop()
    env.close()


def test_tls_is_verified_by_default(tls_env: Any) -> None:
    env, _ = tls_env
    env.set_catalog(org(1))
    result = env.cli("plan", "-c", str(config(env)))
    assert result.code == 1
    assert_one_line_error(result, "litellm GET /user/list", "TLS error")


def test_ca_bundle_trusts_an_internal_ca(tls_env: Any) -> None:
    env, ca_file = tls_env
    env.set_catalog(org(1))
    result = env.cli("run", "-c", str(config(env, litellm=_litellm(env, ca_bundle=str(ca_file)))))
    assert result.code == 0, result.stdout + result.stderr
    assert "tls_verification_disabled" not in result.stderr


def test_turning_verification_off_works_and_is_loud(tls_env: Any) -> None:
    env, _ = tls_env
    env.set_catalog(org(1))
    result = env.cli("plan", "-c", str(config(env, litellm=_litellm(env, tls_verify=False))))
    assert result.code == 0
    assert "tls_verification_disabled" in result.stdout + result.stderr


def test_applying_a_saved_plan_builds_no_backstage_client(sim_env: SimEnv) -> None:
    """`apply PLANFILE` never reads the catalog: no Backstage client, so no Backstage TLS warning."""
    sim_env.set_catalog(org(1))
    backstage = {"base_url": sim_env.backstage_url, "token": "${TEST_BACKSTAGE_TOKEN}", "tls_verify": False}
    cfg = str(config(sim_env, backstage=backstage))
    plan_file = sim_env.work / "plan.json"
    planned = sim_env.cli("plan", "-c", cfg, "--out", str(plan_file))
    assert planned.code == 0 and "tls_verification_disabled" in planned.stdout + planned.stderr
    sim_env.backstage.clear_requests()
    applied = sim_env.cli("apply", str(plan_file), "-c", cfg)
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "tls_verification_disabled" not in applied.stdout + applied.stderr
    assert sim_env.backstage.request_counts() == {} and len(ours(sim_env)) == 1
