"""What the terminal shows, through the real CLI on the simulators: progress and log lines on a terminal,
the `retrying` and `run_finished` lines, the summary's guard name and plurals, and the small options."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from catalog_sync.lock import run_lock
from tests.envs import SimEnv, assert_no_secrets, group_doc, user_doc

FAST_RETRIES = {"retries": 3, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05}


def org(n: int = 3) -> list[dict[str, Any]]:
    return [group_doc("eng"), *(user_doc(f"p{i}", ["eng"]) for i in range(n))]


def json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def run_plain(
    env: SimEnv, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI without the `--log-format json` that Env.cli puts first."""
    proc = subprocess.run(
        [sys.executable, "-m", "catalog_sync", *args],
        capture_output=True,
        text=True,
        env={**env.cli_env(), **(extra_env or {})},
        cwd=env.work,
        timeout=300,
        check=False,
    )
    assert_no_secrets(proc.stdout + proc.stderr, env.backstage_token, env.master_key)
    return proc


def run_on_a_terminal(env: SimEnv, *args: str) -> tuple[int, str, str]:
    """The CLI with stderr on a pseudo-terminal (what a person at a shell has) and stdout piped."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog_sync", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env={**env.cli_env(), "TERM": "xterm", "COLUMNS": "160"},
        cwd=env.work,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # the terminal must be read while the job writes, or it blocks
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = proc.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(master)
    terminal = b"".join(chunks).decode("utf-8", errors="replace")
    assert_no_secrets(stdout + terminal, env.backstage_token, env.master_key)
    return proc.returncode, stdout, terminal


# --- console output -------------------------------------------------------------------------------


def test_on_a_terminal_per_action_lines_give_way_to_one_summary_line(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(3))
    cfg = sim_env.config()
    code, stdout, terminal = run_on_a_terminal(sim_env, "run", "-c", str(cfg))
    assert code == 0, stdout + terminal
    assert "action_applied" not in terminal  # debug on a terminal
    summary = [line for line in terminal.splitlines() if "applied" in line and "create=3" in line]
    assert len(summary) == 1 and "[info" in summary[0], terminal
    assert not any(line.startswith("{") for line in terminal.splitlines())  # readable, not JSON
    assert stdout.startswith("run: applied")
    # Not on a terminal (JSON lines to a file): one line per action, as before, and the summary.
    sim_env.set_catalog(org(5))
    logs = json_lines(sim_env.cli("run", "-c", str(cfg)).stderr)
    assert sum(1 for line in logs if line["event"] == "action_applied") == 2
    assert [line["create"] for line in logs if line["event"] == "applied"] == [2]


def test_every_retry_logs_one_retrying_line(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(1))
    sim_env.litellm.inject("GET /user/list", 503, {"detail": "busy"}, times=2)
    result = sim_env.cli("plan", "-c", str(sim_env.config(http=FAST_RETRIES)))
    assert result.code == 0, result.stderr
    assert sim_env.litellm.request_counts()["GET /user/list"] == 3  # both faults were hit
    retrying = [line for line in json_lines(result.stderr) if line["event"] == "retrying"]
    assert [(r["service"], r["method"], r["endpoint"], r["attempt"], r["reason"]) for r in retrying] == [
        ("litellm", "GET", "/user/list", "2/4", "HTTP 503"),
        ("litellm", "GET", "/user/list", "3/4", "HTTP 503"),
    ]
    assert all(isinstance(r["wait"], (int, float)) for r in retrying)


def test_with_json_logs_the_last_line_is_run_finished(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(2))
    cfg = sim_env.config()
    for args, code in ((["plan", "-c", str(cfg)], 0), (["run", "-c", str(cfg)], 0)):
        result = sim_env.cli(*args)
        assert result.code == code, result.stderr
        last = json.loads(result.stderr.splitlines()[-1])
        assert last["event"] == "run_finished" and last["exit_code"] == code
        assert last["command"] == args[0] and last["result"] == result.report["result"]
        assert last["counts"] == result.report["counts"]
    # A guard that trips: exit 3, and still the last line.
    sim_env.set_catalog(org(5))
    guarded = sim_env.cli("run", "-c", str(sim_env.config(guards={"max_changes": 1})))
    last = json.loads(guarded.stderr.splitlines()[-1])
    assert guarded.code == 3 and last["event"] == "run_finished"
    assert last["exit_code"] == 3 and last["result"] == "guard_tripped"


def test_the_summary_names_the_guard_that_tripped_and_counts_in_good_english(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(5))
    result = sim_env.cli("run", "-c", str(sim_env.config(guards={"max_changes": 1})))
    assert result.code == 3
    summary = result.stdout.splitlines()[0]
    assert summary.startswith("run: guard tripped (max_changes): nothing applied, 5 to create"), summary
    assert "0 conflicts" in summary and "0 warnings" in summary
    plan = sim_env.cli("plan", "-c", str(sim_env.config(guards={"max_changes": 1})))
    assert plan.stdout.startswith("plan: guard tripped (max_changes): 5 to create"), plan.stdout
    # One conflict: a hand-made account with a catalog person's id.
    sim_env.create_user({"user_id": "p0@example.com", "user_email": "someone@else.example"})
    one = sim_env.cli("plan", "-c", str(sim_env.config()))
    assert ", 1 conflict," in one.stdout.splitlines()[0], one.stdout


def test_validate_counts_roles_and_teams_in_good_english(sim_env: SimEnv) -> None:
    one = sim_env.cli("validate", "-c", str(sim_env.config(roles=[{"group": "eng", "teams": ["t1"]}])))
    assert one.code == 0 and "valid (1 role, 1 team named)" in one.stdout, one.stdout
    roles = [{"group": "eng", "teams": ["t1", "t2"]}, {"group": "ops"}]
    two = sim_env.cli("validate", "-c", str(sim_env.config(roles=roles)))
    assert "valid (2 roles, 2 teams named)" in two.stdout, two.stdout


# --- run ids --------------------------------------------------------------------------------------


def test_run_ids_and_report_names_sort_in_time_order(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(1))
    cfg = sim_env.config()
    ids = [sim_env.cli("plan", "-c", str(cfg)).report["run"]["run_id"] for _ in range(3)]
    assert sorted(ids) == ids and len(set(ids)) == 3
    names = sorted(p.name for p in (sim_env.work / "reports").glob("catalog-sync-*.json"))
    assert names == [f"catalog-sync-{i}.json" for i in ids]


# --- small ones -----------------------------------------------------------------------------------


def test_out_dash_writes_the_plan_to_stdout_and_nothing_else(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(2))
    cfg = sim_env.config()
    result = sim_env.cli("plan", "-c", str(cfg), "--out", "-")
    assert result.code == 0, result.stderr
    saved = json.loads(result.stdout)  # the whole of stdout is the plan
    assert [a["user_id"] for a in saved["actions"]] == ["p0@example.com", "p1@example.com"]
    assert "plan: changes planned" in result.stderr and "report: " in result.stderr
    assert not (sim_env.work / "-").exists()
    path = sim_env.work / "plan.json"
    path.write_text(result.stdout)
    applied = sim_env.cli("apply", str(path), "-c", str(cfg))
    assert applied.code == 0, applied.stdout + applied.stderr
    assert {"p0@example.com", "p1@example.com"} <= set(sim_env.all_users())


def test_global_options_are_accepted_after_the_command(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(1))
    cfg = str(sim_env.config())
    # Env.cli puts `--log-format json` first; given again after the command, the later one wins.
    console = sim_env.cli("plan", "-c", cfg, "--log-format", "console", "--log-level", "debug")
    assert console.code == 0, console.stderr
    assert not any(line.startswith("{") for line in console.stderr.splitlines())
    assert "[debug" in console.stderr and "http_request" in console.stderr
    proc = run_plain(sim_env, "plan", "-c", cfg, "--log-level", "warning", "--log-format", "json")
    assert proc.returncode == 0 and "run_finished" not in proc.stderr  # an info line, filtered out
    proc = run_plain(sim_env, "validate", "-c", cfg, "--log-format", "json")
    assert proc.returncode == 0, proc.stderr


def test_a_missing_plan_file_exits_2_with_one_line(sim_env: SimEnv) -> None:
    missing = sim_env.work / "no-such-plan.json"
    result = sim_env.cli("apply", str(missing), "-c", str(sim_env.config()))
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"catalog-sync: {missing}: cannot read the plan: No such file or directory"
    # With JSON logs, the one line is followed by the run_finished event only.
    assert len(lines) == 2 and json.loads(lines[1])["event"] == "run_finished"
    assert json.loads(lines[1])["exit_code"] == 2 and json.loads(lines[1])["result"] == "error"


def test_apply_refuses_a_plan_made_with_other_roles_unless_forced(sim_env: SimEnv) -> None:
    sim_env.set_catalog([group_doc("ops"), *org(2)])  # ops must exist: a missing role group stops a plan
    roles = [{"group": "ops", "max_budget": 5}, {"group": "eng", "max_budget": 50}]
    plan_path = sim_env.work / "plan.json"
    made = sim_env.cli("plan", "-c", str(sim_env.config(roles=roles)), "--out", str(plan_path))
    assert made.code == 0, made.stderr
    roles[1]["max_budget"] = 100
    cfg = str(sim_env.config(roles=roles))
    refused = sim_env.cli("apply", str(plan_path), "-c", cfg)
    assert refused.code == 2, refused.stdout + refused.stderr
    assert "roles[1].max_budget is 50 in the plan's config, 100 now" in refused.stderr
    assert "--force" in refused.stderr
    assert not any(u.startswith("p") for u in sim_env.all_users())  # nothing applied
    forced = sim_env.cli("apply", str(plan_path), "-c", cfg, "--force")
    assert forced.code == 0, forced.stdout + forced.stderr
    assert any(line["event"] == "config_differs_from_plan" for line in json_lines(forced.stderr))
    assert sim_env.all_users()["p0@example.com"]["max_budget"] == 50  # the plan, as reviewed


def test_the_config_can_come_from_catalog_sync_config(sim_env: SimEnv) -> None:
    sim_env.set_catalog(org(1))
    cfg = str(sim_env.config())
    proc = run_plain(sim_env, "--log-format", "json", "plan", extra_env={"CATALOG_SYNC_CONFIG": cfg})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("plan: changes planned")
    missing = run_plain(sim_env, "plan")
    assert missing.returncode == 2 and "CATALOG_SYNC_CONFIG" in missing.stderr


def test_wait_for_lock_with_a_timeout_logs_who_holds_it_and_gives_up(sim_env: SimEnv, tmp_path: Path) -> None:
    sim_env.set_catalog(org(1))
    lock = tmp_path / "run.lock"
    cfg = str(sim_env.config(lock_file=str(lock)))
    with run_lock(lock):
        result = sim_env.cli("run", "-c", cfg, "--wait-for-lock", "0.3")
    assert result.code == 1
    waiting = [line for line in json_lines(result.stderr) if line["event"] == "waiting_for_lock"]
    assert len(waiting) == 1 and waiting[0]["holder_pid"] == str(os.getpid())
    assert waiting[0]["timeout_seconds"] == 0.3
    assert "waited 0.3 s" in result.stderr and "still holds the lock" in result.stderr
    assert not any(u.startswith("p") for u in sim_env.all_users())


def test_wait_for_lock_without_a_value_waits_for_the_holder(sim_env: SimEnv, tmp_path: Path) -> None:
    sim_env.set_catalog(org(1))
    lock = tmp_path / "run.lock"
    cfg = str(sim_env.config(lock_file=str(lock)))
    with run_lock(lock):
        proc = sim_env.start_cli("run", "-c", cfg, "--wait-for-lock")
        out = sim_env.work / "bg-0.out"
        # Released only once the run says it is waiting (the log line is the synchronisation).
        while "waiting_for_lock" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            threading.Event().wait(0.05)
    assert proc.wait(timeout=120) == 0, out.read_text()
    lines = json_lines(out.read_text())
    assert sum(1 for line in lines if line["event"] == "waiting_for_lock") == 1
    assert next(line for line in lines if line["event"] == "waiting_for_lock")["timeout_seconds"] is None
    assert "p0@example.com" in sim_env.all_users()
