"""CPU per write: the job's applier against a plain concurrent loop sending the same /user/update bodies, both
against the simulators (no latency) in a child process. CPU time of this process is what the two cost the
client; unlike throughput against a real proxy, it does not move with what the server is doing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench import config, plain_loop
from benchmarks.simhost import KEY, TOKEN, SimHost
from catalog_sync import logs
from catalog_sync.apply import ApplyContext, apply_plan
from catalog_sync.config import load_config
from catalog_sync.job import clients_for
from catalog_sync.plan import build_plan


def cpu_per_write(work: Path, users: int = 2000, concurrency: int = 4, rounds: int = 3) -> dict[str, Any]:
    """Milliseconds of client CPU per /user/update, job and loop alternating, each round a new budget."""
    env = {"BENCH_T": TOKEN, "BENCH_K": KEY}
    # The job logs a line per action, as the CLI does (JSON at info level), here into /dev/null.
    logs.configure("json", "info", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the process
    job_ms: list[float] = []
    loop_ms: list[float] = []
    with SimHost(users, max(10, users // 50), 0.0) as host:
        path = config(host, work, concurrency)
        for budget in range(10, 11 + 2 * rounds):
            data = yaml.safe_load(path.read_text())
            data["defaults"]["max_budget"] = budget
            data["roles"] = []
            path.write_text(yaml.safe_dump(data))
            cfg = load_config(path, env={**os.environ, **env})
            backstage, litellm = clients_for(cfg)
            catalog, snapshot = backstage.read_snapshot(), litellm.list_users()
            plan = build_plan(catalog, snapshot, cfg)
            actions = plan.creates + plan.updates
            by_job = budget == 10 or budget % 2 == 1  # budget 10 creates everyone; then alternate
            started = time.process_time()
            if by_job:
                context = ApplyContext(cfg.managed_teams(), snapshot.teams, False, concurrency=concurrency)
                apply_plan(plan, litellm, context)
            else:
                bodies = [{"user_id": a.user_id, **a.payload} for a in actions]
                plain_loop(host.litellm_url + "/user/update", KEY, bodies, concurrency)
            per = (time.process_time() - started) / len(actions) * 1000
            if budget > 10:
                (job_ms if by_job else loop_ms).append(per)
            litellm.close()
            backstage.close()
    return {"users": users, "job_ms": job_ms, "loop_ms": loop_ms, "ratio": min(loop_ms) / min(job_ms)}
