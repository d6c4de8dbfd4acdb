"""One sync run, the imperative shell: read both sides, plan, apply (unless dry), write the report."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from catalog_sync import __version__, logs
from catalog_sync.apply import ActionResult, ApplyContext, Outcome, apply_plan, planned_results
from catalog_sync.catalog import BackstageClient
from catalog_sync.config import Config
from catalog_sync.http import ApiError
from catalog_sync.litellm import LiteLLMClient
from catalog_sync.logs import redact
from catalog_sync.plan import GuardTrip, Plan, build_plan, check_guards
from catalog_sync.progress import ProgressReporter
from catalog_sync.report import RunInfo, build_report, render_terminal, write_report

log = structlog.get_logger("catalog_sync.job")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_GUARD = 3
EXIT_CHANGES_PENDING = 4


@dataclass
class JobResult:
    exit_code: int
    report: dict[str, Any]
    paths: list[Path]
    plan: Plan | None
    summary: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _verify(service: str, tls_verify: bool, ca_bundle: Path | None) -> bool | str:
    if not tls_verify:
        log.warning(
            "tls_verification_disabled",
            service=service,
            detail="certificates are NOT checked: anyone on the path can read the credentials",
        )
        return False
    return str(ca_bundle) if ca_bundle is not None else True


def clients_for(config: Config) -> tuple[BackstageClient, LiteLLMClient]:
    retry: dict[str, Any] = {
        "retries": config.http.retries,
        "backoff_factor": config.http.backoff_seconds,
        "backoff_max": config.http.backoff_max_seconds,
        "retry_budget": config.http.retry_budget_seconds,
    }
    bs, ll = config.backstage, config.litellm
    backstage = BackstageClient(
        str(bs.base_url),
        bs.token.get_secret_value(),
        page_size=bs.page_size,
        user_filter=bs.filter,
        timeout=bs.timeout_seconds,
        verify=_verify("backstage", bs.tls_verify, bs.ca_bundle),
        **retry,
    )
    litellm = LiteLLMClient(
        str(ll.base_url),
        ll.master_key.get_secret_value(),
        timeout=ll.timeout_seconds,
        verify=_verify("litellm", ll.tls_verify, ll.ca_bundle),
        workers=config.concurrency,
        **retry,
    )
    return backstage, litellm


def run_job(
    config: Config,
    config_path: str,
    *,
    apply: bool,
    detailed_exitcode: bool = False,
    report_dir: Path | None = None,
    force: bool = False,
) -> JobResult:
    started = _now()
    clock = time.monotonic()
    run = RunInfo(
        run_id=started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
        command="run" if apply else "plan",
        dry_run=not apply,
        started_at=started.isoformat(timespec="seconds"),
        version=__version__,
        config_path=config_path,
        backstage_url=str(config.backstage.base_url),
        litellm_url=str(config.litellm.base_url),
    )
    structlog.contextvars.bind_contextvars(run_id=run.run_id)
    backstage, litellm = clients_for(config)
    progress = ProgressReporter(tty=sys.stderr.isatty() and not logs.JSON_LOGS)
    plan: Plan | None = None
    results: list[ActionResult] = []
    error: str | None = None
    trips: tuple[GuardTrip, ...] = ()
    try:
        log.info("reading_catalog", url=run.backstage_url)
        catalog = backstage.read_snapshot(progress)
        log.info(
            "catalog_read", users=len(catalog.users), groups=len(catalog.groups), requests=catalog.requests
        )
        log.info("reading_litellm", url=run.litellm_url)
        users = litellm.list_users(progress)
        log.info("litellm_read", users=len(users.users), total=users.total, requests=users.requests)
        plan = build_plan(catalog, users, config)
        log.info(
            "planned",
            create=len(plan.creates),
            update=len(plan.updates),
            unchanged=len(plan.unchanged),
            deprovision=len(plan.deprovisions),
            conflicts=len(plan.conflicts),
        )
        trips = check_guards(plan, config)
        for trip in trips:
            log.warning("guard_tripped", guard=trip.guard, detail=trip.message, forced=force)
        if apply and (force or not trips):
            context = ApplyContext(
                config.managed_teams(), users.teams, config.adopt_unmanaged, concurrency=config.concurrency
            )
            total = len(plan.actions)
            done = iter(range(1, total + 1))  # shared by the workers: range_iterator.__next__ is atomic in C
            results = apply_plan(plan, litellm, context, lambda _: progress("actions", next(done), total))
        else:
            results = planned_results(plan)
            if apply:  # a guard tripped: nothing at all is applied
                results = [
                    replace(r, outcome=Outcome.blocked_by_guard) if r.outcome is Outcome.planned else r
                    for r in results
                ]
    except ApiError as exc:
        error = redact(str(exc))
        log.error("run_failed", error=error)
    finally:
        progress.close()
    failed = any(r.outcome is Outcome.failed for r in results)
    if error is not None or failed:
        exit_code = EXIT_FAILURE
    elif trips and not force:
        exit_code = EXIT_GUARD
    elif detailed_exitcode and not apply and plan is not None and plan.has_changes:
        exit_code = EXIT_CHANGES_PENDING
    else:
        exit_code = EXIT_OK
    finished = _now()
    run.finished_at = finished.isoformat(timespec="seconds")
    run.duration_seconds = round(time.monotonic() - clock, 3)
    run.exit_code = exit_code
    run.requests = {"backstage": dict(backstage.session.requests), "litellm": dict(litellm.session.requests)}
    report = build_report(run, plan, results, error, guards=(trips, force))
    paths = write_report(report, report_dir or config.report.dir, config.report.formats)
    structlog.contextvars.unbind_contextvars("run_id")
    return JobResult(exit_code, report, paths, plan, render_terminal(report))
