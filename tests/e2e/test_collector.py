"""run_job pauses Python's cycle collector while it reads and plans (see job._CollectorPaused): whatever
happens, the process must get it back as it was, since the job is also called in-process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from catalog_sync.config import load_config
from catalog_sync.job import run_job
from tests.envs import SimEnv, group_doc, user_doc


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_a_run_leaves_the_collector_on_and_nothing_frozen(sim_env: SimEnv) -> None:
    sim_env.set_catalog([group_doc("eng"), user_doc("p0", ["eng"]), user_doc("p1", ["eng"])])
    config = load_config(sim_env.config(), env=sim_env.cli_env())

    applied = run_job(config, "config.yaml", apply=True, report_dir=sim_env.work / "r1")
    assert applied.exit_code == 0 and applied.report["counts"]["applied"] == 2
    assert gc.isenabled() and gc.get_freeze_count() == 0

    sim_env.litellm.inject("GET /user/list", 400, {"detail": "no"})
    failed = run_job(config, "config.yaml", apply=True, report_dir=sim_env.work / "r2")
    assert failed.exit_code == 1 and sim_env.litellm.faults_hit("GET /user/list") == 1
    assert gc.isenabled() and gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector_on")
def test_a_collector_switched_off_by_the_caller_stays_off(sim_env: SimEnv) -> None:
    sim_env.set_catalog([group_doc("eng"), user_doc("p0", ["eng"])])
    config = load_config(sim_env.config(), env=sim_env.cli_env())
    gc.disable()
    result = run_job(config, "config.yaml", apply=True, report_dir=sim_env.work / "r")
    assert result.exit_code == 0
    assert not gc.isenabled() and gc.get_freeze_count() == 0
