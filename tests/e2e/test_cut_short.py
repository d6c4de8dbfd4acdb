"""Runs cut short, through the CLI on the simulators: what was applied is never lost from sight."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.envs import SimEnv, group_doc, user_doc

FAST = {"retries": 0, "backoff_seconds": 0.01}


def metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_a_report_that_cannot_be_written_still_says_what_was_applied(sim_env: SimEnv, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    prom = tmp_path / "metrics" / "catalog_sync.prom"
    sim_env.set_catalog([group_doc("eng"), *(user_doc(f"u{i}", ["eng"]) for i in range(5))])
    sim_env.litellm.inject("POST /user/new", 400, {"detail": "no room for u-something"}, times=1)
    cfg = sim_env.config(report={"dir": str(blocker / "reports")}, metrics={"textfile": str(prom)}, http=FAST)
    result = sim_env.cli("run", "-c", str(cfg))
    assert result.code == 1
    assert (
        f"catalog-sync: 4 changes were applied (1 failed), but the report could not be written: "
        f"{blocker / 'reports'}: Not a directory"
    ) in result.stderr.splitlines()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run: partial failure: 5 to create,") and "4 applied, 1 failed" in lines[0]
    [failed] = [line for line in lines if line.startswith("failed: ")]
    assert failed.startswith("failed: create u") and "HTTP 400: no room for u-something" in failed
    assert not any(line.startswith("report: ") for line in lines)
    assert len([u for u in sim_env.all_users() if u.startswith("u")]) == 4
    m = metrics(prom)
    assert m[("catalog_sync_actions", (("kind", "create"), ("outcome", "applied")))] == 4
    assert m[("catalog_sync_actions", (("kind", "create"), ("outcome", "failed")))] == 1
    assert m[("catalog_sync_last_run_exit_code", ())] == 1


def test_a_plan_whose_report_cannot_be_written_says_nothing_was_applied(
    sim_env: SimEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sim_env.set_catalog([group_doc("eng"), user_doc("amy", ["eng"])])
    cfg = sim_env.config(report={"dir": str(blocker / "reports")})
    result = sim_env.cli("plan", "-c", str(cfg))
    assert result.code == 1 and result.stdout.startswith("plan: changes planned: 1 to create")
    assert (
        f"catalog-sync: nothing was applied, but the report could not be written: "
        f"{blocker / 'reports'}: Not a directory"
    ) in result.stderr.splitlines()
