"""Metrics as monitoring sees them: the textfile node_exporter reads, and what a real Pushgateway serves."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.envs import SimEnv, group_doc, user_doc

FAST = {"retries": 0, "backoff_seconds": 0.01}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance")))
            out[(s.name, labels)] = s.value
    return out


def org(n: int) -> list[dict[str, object]]:
    return [group_doc("eng"), *(user_doc(f"m{i}", ["eng"]) for i in range(n))]


def test_textfile_after_a_run_and_last_success_survives_a_failed_run(sim_env: SimEnv, tmp_path: Path) -> None:
    prom = tmp_path / "textfile" / "catalog_sync.prom"
    sim_env.set_catalog(org(3))
    cfg = sim_env.config(metrics={"textfile": str(prom)}, http=FAST)

    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    first = samples(prom.read_text())
    assert first[("catalog_sync_last_run_success", ())] == 1
    assert first[("catalog_sync_last_run_exit_code", ())] == 0
    assert first[("catalog_sync_users", (("source", "catalog"),))] == 3
    assert first[("catalog_sync_actions", (("kind", "create"), ("outcome", "applied")))] == 3
    assert first[("catalog_sync_failures", ())] == 0
    assert first[("catalog_sync_requests", (("service", "litellm"),))] >= 4
    succeeded_at = first[("catalog_sync_last_success_timestamp_seconds", ())]
    assert abs(succeeded_at - time.time()) < 120

    # One create fails: exit 1; the failure is counted and the last success is still the first run's.
    sim_env.set_catalog(org(4))
    sim_env.litellm.inject("POST /user/new", 500, {"detail": "db down"}, times=5)
    time.sleep(1.1)  # so a wrongly refreshed timestamp would differ
    assert sim_env.cli("run", "-c", str(cfg)).code == 1
    second = samples(prom.read_text())
    assert second[("catalog_sync_last_run_success", ())] == 0
    assert second[("catalog_sync_last_run_exit_code", ())] == 1
    assert second[("catalog_sync_failures", ())] == 1
    assert second[("catalog_sync_actions", (("kind", "create"), ("outcome", "failed")))] == 1
    assert second[("catalog_sync_last_success_timestamp_seconds", ())] == succeeded_at
    assert second[("catalog_sync_last_run_timestamp_seconds", ())] > succeeded_at


def test_a_guard_trip_and_an_unreachable_server_show_in_metrics(sim_env: SimEnv, tmp_path: Path) -> None:
    prom = tmp_path / "m.prom"
    sim_env.set_catalog(org(5))
    cfg = sim_env.config(metrics={"textfile": str(prom)}, guards={"max_changes": 2}, http=FAST)
    assert sim_env.cli("run", "-c", str(cfg)).code == 3
    m = samples(prom.read_text())
    assert m[("catalog_sync_guard_tripped", ())] == 1
    assert m[("catalog_sync_last_run_exit_code", ())] == 3
    assert ("catalog_sync_last_success_timestamp_seconds", ()) not in m  # never succeeded yet

    sim_env.litellm.inject("GET /user/list", 503, {"detail": "down"}, times=50)
    assert sim_env.cli("run", "-c", str(cfg)).code == 1
    assert sim_env.litellm.faults_hit("GET /user/list") >= 1
    m = samples(prom.read_text())
    assert m[("catalog_sync_run_error", ())] == 1
    assert m[("catalog_sync_last_run_success", ())] == 0


def test_plan_never_writes_metrics(sim_env: SimEnv, tmp_path: Path) -> None:
    prom = tmp_path / "m.prom"
    sim_env.set_catalog(org(1))
    cfg = sim_env.config(metrics={"textfile": str(prom)})
    assert sim_env.cli("plan", "-c", str(cfg)).code == 0
    assert sim_env.cli("run", "-c", str(cfg), "--dry-run").code == 0
    assert not prom.exists()


def test_an_unwritable_textfile_is_logged_and_does_not_change_the_outcome(
    sim_env: SimEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    sim_env.set_catalog(org(1))
    cfg = sim_env.config(metrics={"textfile": str(blocker / "m.prom")})  # a path under a regular file
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 0
    assert "metrics_not_published" in result.stderr and "metrics.textfile" in result.stderr
    assert len(sim_env.all_users()) >= 1


# --- a real Pushgateway (Debian's prometheus-pushgateway) ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        message = "prometheus-pushgateway not installed (apt-get install prometheus-pushgateway)"
        if os.environ.get("CATALOG_SYNC_REQUIRE_PUSHGATEWAY") == "1":
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "pushgateway.log", "w") as log:
        proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if requests.get(f"{url}/-/ready", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "pushgateway did not start"
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_metrics_pushed_to_a_real_pushgateway_keep_last_success(sim_env: SimEnv, pushgateway: str) -> None:
    sim_env.set_catalog(org(2))
    cfg = sim_env.config(metrics={"pushgateway": pushgateway, "job": "catalog-sync-test"}, http=FAST)
    assert sim_env.cli("run", "-c", str(cfg)).code == 0
    served = requests.get(f"{pushgateway}/metrics", timeout=5).text
    assert 'catalog_sync_last_run_success{instance="",job="catalog-sync-test"} 1' in served
    m = samples(served)
    assert m[("catalog_sync_actions", (("kind", "create"), ("outcome", "applied")))] == 2
    succeeded_at = m[("catalog_sync_last_success_timestamp_seconds", ())]

    sim_env.litellm.inject("GET /user/list", 503, {"detail": "down"}, times=50)
    assert sim_env.cli("run", "-c", str(cfg)).code == 1
    assert sim_env.litellm.faults_hit("GET /user/list") >= 1
    m = samples(requests.get(f"{pushgateway}/metrics", timeout=5).text)
    assert m[("catalog_sync_last_run_success", ())] == 0
    assert m[("catalog_sync_last_success_timestamp_seconds", ())] == succeeded_at


def test_an_unreachable_pushgateway_is_logged_and_does_not_fail_the_run(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(1))
    dead = f"http://127.0.0.1:{_free_port()}"
    cfg = sim_env.config(metrics={"pushgateway": dead, "timeout_seconds": 2})
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 0
    assert "metrics_not_published" in result.stderr and "metrics.pushgateway" in result.stderr


def test_a_pushgateway_url_with_credentials_pushes_with_basic_auth_and_never_shows_them(
    sim_env: SimEnv, pushgateway: str
) -> None:
    password = "Pw-pushgateway-0123"
    sim_env.set_catalog(org(1))
    with_auth = pushgateway.replace("://", f"://metrics:{password}@")
    cfg = sim_env.config(metrics={"pushgateway": with_auth, "job": "catalog-sync-auth"}, http=FAST)
    result = sim_env.cli("--log-level", "debug", "run", "-c", str(cfg))
    assert result.code == 0 and "metrics_not_published" not in result.stderr, result.stderr
    served = requests.get(f"{pushgateway}/metrics", timeout=5).text
    assert 'catalog_sync_last_run_success{instance="",job="catalog-sync-auth"} 1' in served
    # Unreachable: the problem names the gateway by its public URL only.
    dead = f"http://metrics:{password}@127.0.0.1:{_free_port()}"
    cfg = sim_env.config(metrics={"pushgateway": dead, "timeout_seconds": 2}, http=FAST)
    failed = sim_env.cli("run", "-c", str(cfg))
    assert failed.code == 0 and "metrics.pushgateway http://127.0.0.1:" in failed.stderr
    for text in (result.stdout, result.stderr, failed.stdout, failed.stderr):
        assert password not in text
