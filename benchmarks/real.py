"""Against the real LiteLLM and Backstage (../shared/real): the job's create and update throughput next to a
plain concurrent loop sending the very same requests at the same concurrency.

Needs a LiteLLM from start-litellm.sh (LITELLM_URL, LITELLM_MASTER_KEY) and a Backstage serving a generated
org of at least `users` people (BACKSTAGE_URL, BACKSTAGE_TOKEN), e.g.
    BACKSTAGE_DIR=/tmp/backstage-2k BACKSTAGE_PORT=7027 bash ../shared/real/start-backstage.sh start 2000 50
LiteLLM is reset (start-litellm.sh reset) before each half.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench import REPO, plain_loop, run_cli

SCRIPTS = Path(os.environ.get("CATALOG_SYNC_REAL_SCRIPTS", REPO.parent / "shared" / "real"))


def _config(work: Path, concurrency: int, budget: float) -> Path:
    data = {
        "backstage": {
            "base_url": os.environ["BACKSTAGE_URL"],
            "token": "${BACKSTAGE_TOKEN}",
            "page_size": 1000,
        },
        "litellm": {"base_url": os.environ["LITELLM_URL"], "master_key": "${LITELLM_MASTER_KEY}"},
        "user_id": {"domain": "example.com"},
        "defaults": {"max_budget": budget, "budget_duration": "30d", "models": []},
        "concurrency": concurrency,
        "guards": {"max_changes": None},
        "report": {"dir": str(work / "reports"), "formats": ["json"]},
        "lock_file": str(work / "run.lock"),
    }
    path = work / f"config-{budget:g}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _plain_loop(path: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    url = os.environ["LITELLM_URL"].rstrip("/") + path
    return plain_loop(url, os.environ["LITELLM_MASTER_KEY"], bodies, concurrency)


def _reset() -> None:
    subprocess.run(["bash", str(SCRIPTS / "start-litellm.sh"), "reset"], check=True, capture_output=True)


def _planned(work: Path, cfg: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    plan_file = work / "plan.json"
    run_cli(["plan", "-c", str(cfg), "--out", str(plan_file)], env)
    return json.loads(plan_file.read_text())["actions"]  # type: ignore[no-any-return]


def compare_with_plain_loop(users: int, concurrency: int) -> dict[str, dict[str, Any]]:
    env = {k: os.environ[k] for k in ("BACKSTAGE_TOKEN", "LITELLM_MASTER_KEY")}
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cs-bench-real-") as tmp:
        work = Path(tmp)
        # Creates: the job, then (after a reset) the plain loop with the bodies the job planned; then the
        # other way round, twice over, so that neither side is favoured by a warmer database (a real proxy
        # and PostgreSQL on two cores vary by tens of percent from one round to the next).
        first = _config(work, concurrency, 10)
        job_create: list[float] = []
        loop_create: list[float] = []
        creates: list[dict[str, Any]] = []
        for job_first in (True, False, True, False):
            _reset()
            actions = _planned(work, first, env)
            creates = [{"user_id": a["user_id"], **a["payload"]} for a in actions if a["kind"] == "create"]
            if job_first:
                job_create.append(_job_apply(first, env))
                _reset()
                loop_create.append(_plain_loop("/user/new", creates, concurrency))
            else:
                loop_create.append(_plain_loop("/user/new", creates, concurrency))
                _reset()
                job_create.append(_job_apply(first, env))
        out["create"] = _rates(len(creates), job_create, loop_create)
        # Updates: a default budget changes for everyone, alternately by the job and by the loop sending the
        # same /user/update bodies with the next budget, so every request really changes a row.
        job_update: list[float] = []
        loop_update: list[float] = []
        updates: list[dict[str, Any]] = []
        rounds = ((11, True), (12, False), (13, False), (14, True), (15, True), (16, False))
        for budget, by_job in rounds:
            cfg = _config(work, concurrency, budget)
            if by_job:
                job_update.append(_job_apply(cfg, env))
            else:
                actions = _planned(work, cfg, env)
                updates = [
                    {"user_id": a["user_id"], **a["payload"]} for a in actions if a["kind"] == "update"
                ]
                loop_update.append(_plain_loop("/user/update", updates, concurrency))
        out["update"] = _rates(len(updates), job_update, loop_update)
    if len(creates) < users:
        raise RuntimeError(f"the catalog has {len(creates)} users, fewer than the {users} asked for")
    return out


def _job_apply(cfg: Path, env: dict[str, str]) -> float:
    """Seconds the job spent applying (its reads and planning are not part of the comparison)."""
    report, _, _ = run_cli(["run", "-c", str(cfg)], env)
    return float(report["run"]["timings"]["apply_seconds"])


def _rates(n: int, job_rounds: list[float], loop_rounds: list[float]) -> dict[str, Any]:
    """Total rates over all rounds; every round's seconds are kept, in the order they ran."""
    job, loop = n * len(job_rounds) / sum(job_rounds), n * len(loop_rounds) / sum(loop_rounds)
    return {
        "requests": n,
        "rounds": len(job_rounds),
        "job_round_seconds": job_rounds,
        "loop_round_seconds": loop_rounds,
        "job_seconds": sum(job_rounds),
        "loop_seconds": sum(loop_rounds),
        "job_per_s": job,
        "loop_per_s": loop,
        "ratio": job / loop,
    }
