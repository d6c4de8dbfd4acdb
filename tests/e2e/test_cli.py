"""The command line as a user meets it: validate, exit codes, failing servers, secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.envs import REPO, SimEnv, assert_no_secrets, user_doc

TOKEN, KEY = "cli-test-token-0123456789", "sk-cli-test-key-0123456789"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the checkout under test, whatever copy pip installed
    env = {"PATH": "/usr/bin:/bin", "BT": TOKEN, "LK": KEY, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "catalog_sync", "--log-format", "json", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert_no_secrets(proc.stdout + proc.stderr, TOKEN, KEY)
    return proc


def write_config(tmp_path: Path, **over: object) -> Path:
    data = {
        "backstage": {"base_url": "http://127.0.0.1:9", "token": "${BT}"},
        "litellm": {"base_url": "http://127.0.0.1:9", "master_key": "${LK}"},
        "report": {"dir": str(tmp_path / "reports")},
    }
    data.update(over)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_accepts_a_good_config(tmp_path: Path) -> None:
    proc = cli(tmp_path, "validate", "-c", str(write_config(tmp_path, roles=[{"group": "ml"}])))
    assert proc.returncode == 0
    assert "valid (1 role, 0 teams named)" in proc.stdout


def test_validate_lists_every_problem_with_its_path_and_exits_2(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        roles=[{"group": "ml"}, {"group": "x"}, {"group": "y", "max_budget": -5}],
        defaults={"user_role": "team", "budget": 3},
    )
    proc = cli(tmp_path, "validate", "-c", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert f"{path}: roles[2].max_budget: must be a number >= 0" in lines
    assert f"{path}: defaults.budget: unknown key" in lines
    assert any(line.startswith(f"{path}: defaults.user_role: must be one of") for line in lines)
    assert len(lines) == 3
    assert "Traceback" not in proc.stderr


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli(tmp_path, "plan", "-c", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "cannot read the file" in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_server_exits_1_with_one_line_and_a_report(tmp_path: Path) -> None:
    proc = cli(tmp_path, "plan", "-c", str(write_config(tmp_path)))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    summary = proc.stdout.splitlines()[0]
    assert summary == "plan: error: backstage GET /entities/by-query: connection refused (127.0.0.1:9)"
    report = json.loads((tmp_path / "reports" / "latest.json").read_text())
    assert report["result"] == "error" and report["run"]["exit_code"] == 1
    assert report["actions"] == []


def test_wrong_tokens_exit_1_naming_the_endpoint(sim_env: SimEnv) -> None:
    sim_env.set_catalog([user_doc("amy", [])])
    cfg = sim_env.config()
    sim_env.backstage_token = "wrong-token-0123456789"
    result = sim_env.cli("plan", "-c", str(cfg))
    assert result.code == 1
    assert "HTTP 401" in result.stdout and "by-query" in result.stdout


def test_help_does_not_show_secrets(tmp_path: Path) -> None:
    proc = cli(tmp_path, "--help")
    assert proc.returncode == 0 and "plan" in proc.stdout and "validate" in proc.stdout


def test_no_help_text_shows_a_secret(tmp_path: Path) -> None:
    for command in ("plan", "run", "validate", "demo"):
        proc = cli(tmp_path, command, "--help")  # cli() fails the test if a secret is printed
        assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_debug_logs_reports_and_errors_never_hold_a_secret(sim_env: SimEnv) -> None:
    """Debug level, a failing write and a failing read: the secrets appear nowhere the job writes."""
    sim_env.set_catalog([user_doc("amy", []), user_doc("bob", [])])
    # A server that echoes the key back in its error body must not get it into our output either.
    sim_env.litellm.inject("POST /user/new", 400, {"detail": f"bad key {sim_env.master_key}"}, times=1)
    cfg = sim_env.config(http={"retries": 0})
    result = sim_env.cli("--log-level", "debug", "run", "-c", str(cfg))
    assert result.code == 1 and "<redacted>" in json.dumps(result.report)
    assert sim_env.litellm.faults_hit("POST /user/new") == 1
    sim_env.backstage.inject("/api/catalog", 500, {"error": {"message": sim_env.backstage_token}}, times=-1)
    failed = sim_env.cli("--log-level", "debug", "plan", "-c", str(cfg))
    assert failed.code == 1 and sim_env.backstage.faults_hit("/api/catalog") >= 1
    # Env.cli has already scanned stdout, stderr and every report file for both secrets.
    assert any('"level": "debug"' in line for line in result.stdout.splitlines() + result.stderr.splitlines())


def test_demo_needs_nothing_and_ends_with_nothing_left_to_do(tmp_path: Path) -> None:
    """The README's first command: built-in simulators, plan, run, plan again; all three reports written."""
    proc = subprocess.run(
        [sys.executable, "-m", "catalog_sync", "demo", "--report-dir", str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    dry = next(line for line in lines if line.startswith("1. dry run: plan: changes planned"))
    assert "0 to create" not in dry
    assert any(line.startswith("2. apply: run: applied") and "0 failed" in line for line in lines)
    assert any(line.startswith("3. again: plan: no changes") for line in lines)
    latest = tmp_path / "reports"
    assert {p.name for p in latest.glob("latest.*")} == {"latest.json", "latest.md", "latest.html"}
    assert json.loads((latest / "latest.json").read_text())["result"] == "no_changes"
    # Where each step's report is, and which one shows the changes.
    reports = [line.rsplit(": ", 1)[1] for line in lines if line.startswith("   report (")]
    assert len(reports) == 3 and all(Path(r).is_file() and r.endswith(".html") for r in reports)
    assert sorted(reports) == reports  # run ids in time order
    assert "the changes made: open this one" in next(line for line in lines if reports[1] in line)
    assert any(line.startswith("The report of step 2 shows the changes") for line in lines)


def test_a_server_echoing_a_url_with_credentials_does_not_get_them_printed(sim_env: SimEnv) -> None:
    """The password of a base URL is masked in error messages too, and in the report's errors."""
    password = "Pw-echoed-0123"
    url = sim_env.litellm_url.replace("://", f"://admin:{password}@")
    sim_env.set_catalog([user_doc("amy", [])])
    sim_env.litellm.inject(
        "POST /user/new", 400, {"detail": f"cannot reach {url}/x, nor {password}"}, times=1
    )
    cfg = sim_env.config(litellm={"base_url": url, "master_key": "${TEST_LITELLM_KEY}"}, http={"retries": 0})
    result = sim_env.cli("--log-level", "debug", "run", "-c", str(cfg))
    assert result.code == 1 and result.report["counts"]["failed"] == 1
    [action] = result.report["actions"]
    assert action["error"] is not None and "cannot reach http://***@" in action["error"]
    reports = [p.read_text() for p in (sim_env.work / "reports").iterdir()]
    for text in [result.stdout, result.stderr, *reports]:
        assert password not in text
