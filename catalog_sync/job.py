"""One sync run, the imperative shell: read both sides, plan, apply (unless dry), write the report."""

from __future__ import annotations

import gc
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog

from catalog_sync import __version__, logs, plan_config
from catalog_sync.apply import ActionResult, ApplyContext, Outcome, apply_plan, planned_results
from catalog_sync.catalog import BackstageClient
from catalog_sync.config import Config
from catalog_sync.http import ApiError, ApiSession, Interrupted
from catalog_sync.interrupt import Interrupt, during_run, exit_code_of
from catalog_sync.interrupt import current as current_interrupt
from catalog_sync.litellm import LiteLLMClient
from catalog_sync.logs import redact
from catalog_sync.metrics import publish as publish_metrics
from catalog_sync.model import CatalogSnapshot, LiteLLMSnapshot
from catalog_sync.plan import GuardTrip, Plan, build_plan, check_guards
from catalog_sync.plan_config import grants_of
from catalog_sync.plan_view import Selection, json_extra, selected_plan
from catalog_sync.planfile import dump_plan, load_plan, save_plan_file, stale_actions
from catalog_sync.progress import Progress, ProgressReporter
from catalog_sync.report import Budget, RunInfo, budgets_of, build_report, render_terminal, write_report
from catalog_sync.roles import Explanation, explain_people
from catalog_sync.urls import public_url

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
    report_error: str | None = None  # the report could not be written: what was done, and why
    results: list[ActionResult] = field(default_factory=list)
    # Why people have their roles: those `--user` picked, and every action's person when a plan is saved.
    explanations: Mapping[str, Explanation] = field(default_factory=dict)
    plan_json: str | None = None  # `plan --json`: the plan as a saved plan, for stdout


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


def _retry(config: Config) -> dict[str, Any]:
    return {
        "retries": config.http.retries,
        "backoff_factor": config.http.backoff_seconds,
        "backoff_max": config.http.backoff_max_seconds,
        "retry_budget": config.http.retry_budget_seconds,
    }


def litellm_client(config: Config) -> LiteLLMClient:
    ll = config.litellm
    return LiteLLMClient(
        str(ll.base_url),
        ll.master_key.get_secret_value(),
        timeout=ll.timeout_seconds,
        verify=_verify("litellm", ll.tls_verify, ll.ca_bundle),
        workers=config.concurrency,
        **_retry(config),
    )


def clients_for(config: Config) -> tuple[BackstageClient, LiteLLMClient]:
    bs = config.backstage
    backstage = BackstageClient(
        str(bs.base_url),
        bs.token.get_secret_value(),
        page_size=bs.page_size,
        user_filter=bs.filter,
        timeout=bs.timeout_seconds,
        verify=_verify("backstage", bs.tls_verify, bs.ca_bundle),
        **_retry(config),
    )
    return backstage, litellm_client(config)


@during_run
def run_job(
    config: Config,
    config_path: str,
    *,
    apply: bool,
    detailed_exitcode: bool = False,
    report_dir: Path | None = None,
    force: bool = False,
    plan_out: Path | None = None,
    select: Selection | None = None,
    want_json: bool = False,
) -> JobResult:
    run, clock = _start("run" if apply else "plan", not apply, config, config_path)
    backstage, litellm = clients_for(config)
    interrupt = _interruptible(backstage.session, litellm.session)
    progress = ProgressReporter(logs.terminal())
    plan: Plan | None = None
    results: list[ActionResult] = []
    error: str | None = None
    trips: tuple[GuardTrip, ...] = ()
    budgets: list[Budget] = []
    explanations: dict[str, Explanation] = {}
    plan_json: str | None = None
    collector = _CollectorPaused()
    try:
        log.info("reading", backstage=run.backstage_url, litellm=run.litellm_url)
        catalog, users = _read_both(backstage, litellm, progress)
        log.info(
            "catalog_read", users=len(catalog.users), groups=len(catalog.groups), requests=catalog.requests
        )
        log.info("litellm_read", users=len(users.users), total=users.total, requests=users.requests)
        run.timings["read_seconds"] = round(time.monotonic() - clock, 3)
        plan = build_plan(catalog, users, config)
        run.timings["plan_seconds"] = round(time.monotonic() - clock - run.timings["read_seconds"], 3)
        if select is not None or plan_out is not None or want_json:
            explanations = _explain(catalog, config, plan, select)
        collector.resume()
        # The plan holds what the rest needs: let the snapshots go (100,000 people are worth ~200 MB).
        budgets, teams = budgets_of(users.users.values()), users.teams
        del catalog, users
        log.info(
            "planned",
            create=len(plan.creates),
            update=len(plan.updates),
            unchanged=len(plan.unchanged),
            deprovision=len(plan.deprovisions),
            conflicts=len(plan.conflicts),
        )
        trips = _check_guards(plan, config, force)
        if plan_out is not None:
            _save_plan(plan_out, plan, _plan_text(plan, run, config, teams, explanations))
        if want_json:
            shown = selected_plan(plan, select)
            plan_json = _plan_text(shown, run, config, teams, explanations, json_extra(shown))
        if apply and (force or not trips) and not interrupt.stop_requested:
            context = ApplyContext(
                config.managed_teams(),
                teams,
                config.adopt_unmanaged,
                concurrency=config.concurrency,
                interrupt=interrupt,
            )
            applying = time.monotonic()
            results = _apply(plan, litellm, context, progress)
            run.timings["apply_seconds"] = round(time.monotonic() - applying, 3)
        else:
            results = planned_results(plan)
            if apply and trips and not force:  # a guard tripped: nothing at all is applied
                results = [
                    replace(r, outcome=Outcome.blocked_by_guard) if r.outcome is Outcome.planned else r
                    for r in results
                ]
    except Interrupted:
        pass  # a read not sent because a signal came: reported below
    except ApiError as exc:
        error = redact(str(exc))
        log.error("run_failed", error=error)
    finally:
        progress.close()
        collector.end()
    results = _stopped(run, interrupt, results, apply)
    pending = detailed_exitcode and not apply and plan is not None and plan.has_changes
    run.requests = {"backstage": dict(backstage.session.requests), "litellm": dict(litellm.session.requests)}
    job = _finish(run, clock, config, report_dir, plan, results, error, trips, force, pending, budgets)
    job.explanations, job.plan_json = explanations, plan_json
    return job


@during_run
def apply_saved_plan(
    config: Config,
    config_path: str,
    plan_path: Path,
    *,
    report_dir: Path | None = None,
    force: bool = False,
) -> JobResult:
    """Applies exactly a saved plan, after checking that the users it touches are as the plan saw them."""
    saved = load_plan(
        plan_path,
        litellm_url=str(config.litellm.base_url),
        max_age=timedelta(minutes=config.max_plan_age_minutes),
        now=_now(),
    )
    differences = plan_config.check(saved.grants, config)
    if differences and not force:
        raise plan_config.PlanConfigMismatch(plan_config.mismatch_message(str(plan_path), differences))
    if differences:
        log.warning("config_differs_from_plan", differences=differences, forced=True)
    run, clock = _start("apply", False, config, config_path)
    litellm = litellm_client(config)  # a saved plan needs no catalog: no Backstage client
    interrupt = _interruptible(litellm.session)
    progress = ProgressReporter(logs.terminal())
    plan = saved.plan
    results: list[ActionResult] = planned_results(plan)
    error: str | None = None
    trips: tuple[GuardTrip, ...] = ()
    try:
        ids = sorted({a.user_id for a in plan.actions})
        log.info("rereading_users", plan=str(plan_path), users=len(ids))
        current = litellm.get_users(ids)  # a request per 100 users, not one each
        stale = stale_actions(saved, current)
        if stale:
            named = "; ".join(f"{a.user_id} ({why})" for a, why in stale[:20])
            more = f" and {len(stale) - 20} more" if len(stale) > 20 else ""
            error = (
                f"the plan is stale: {len(stale)} of its actions no longer match LiteLLM, "
                f"so nothing was applied: {named}{more}"
            )
            log.error("plan_stale", stale=len(stale))
        else:
            trips = _check_guards(plan, config, force)
            if (force or not trips) and not interrupt.stop_requested:
                context = ApplyContext(
                    saved.managed_teams,
                    saved.existing_teams,
                    saved.adopt_unmanaged,
                    config.concurrency,
                    interrupt=interrupt,
                )
                results = _apply(plan, litellm, context, progress)
            elif trips and not force:
                results = [replace(r, outcome=Outcome.blocked_by_guard) for r in results]
    except Interrupted:
        pass  # a read not sent because a signal came: reported below
    except ApiError as exc:
        error = redact(str(exc))
        log.error("run_failed", error=error)
    finally:
        progress.close()
    results = _stopped(run, interrupt, results, True)
    run.requests = {"litellm": dict(litellm.session.requests)}
    return _finish(run, clock, config, report_dir, plan, results, error, trips, force, False)


class _CollectorPaused:
    """Python's cycle collector off while the reads and the plan build their objects.

    They make millions of small objects and no garbage cycles, and each collection re-scans the growing
    heap: it took a third of a 100,000-user plan. Reference counting still frees everything. What was built
    is then frozen (never re-scanned) while the apply runs with the collector on, and thawed at the end.
    """

    def __init__(self) -> None:
        self._was_enabled = gc.isenabled()
        self._frozen = False
        gc.disable()

    def resume(self) -> None:
        gc.freeze()
        self._frozen = True
        if self._was_enabled:
            gc.enable()

    def end(self) -> None:
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        if self._was_enabled:
            gc.enable()


def _read_both(
    backstage: BackstageClient, litellm: LiteLLMClient, progress: Progress
) -> tuple[CatalogSnapshot, LiteLLMSnapshot]:
    # The two systems are independent: read them at once, so the run waits for the slower only.
    with ThreadPoolExecutor(2, thread_name_prefix="read") as pool:
        catalog = pool.submit(backstage.read_snapshot, progress)
        users = pool.submit(litellm.list_users, progress)
        return catalog.result(), users.result()


class RunIds:
    """`20261203T183849123Z-1a2b3c`: UTC to the millisecond, then a random suffix against other processes.

    Report files are named after the run id and pruned in its order, so ids sorted as text must be in time
    order: an id in the same millisecond as the previous one (or after the clock stepped back) takes the
    millisecond after it."""

    def __init__(self) -> None:
        self._last_ms = 0
        self._lock = threading.Lock()

    def __call__(self, now: datetime) -> str:
        with self._lock:
            ms = self._last_ms = max(int(now.timestamp() * 1000), self._last_ms + 1)
        stamp = datetime.fromtimestamp(ms / 1000, timezone.utc)
        return f"{stamp:%Y%m%dT%H%M%S}{ms % 1000:03d}Z-{uuid.uuid4().hex[:6]}"


new_run_id = RunIds()


def _start(command: str, dry_run: bool, config: Config, config_path: str) -> tuple[RunInfo, float]:
    started = _now()
    run = RunInfo(
        run_id=new_run_id(started),
        command=command,
        dry_run=dry_run,
        started_at=started.isoformat(timespec="seconds"),
        version=__version__,
        config_path=config_path,
        backstage_url=public_url(str(config.backstage.base_url)),
        litellm_url=public_url(str(config.litellm.base_url)),
    )
    structlog.contextvars.bind_contextvars(run_id=run.run_id)
    return run, time.monotonic()


def _check_guards(plan: Plan, config: Config, force: bool) -> tuple[GuardTrip, ...]:
    trips = check_guards(plan, config)
    for trip in trips:
        log.warning("guard_tripped", guard=trip.guard, detail=trip.message, forced=force)
    return trips


def _interruptible(*sessions: ApiSession) -> Interrupt:
    """The run's stop request (SIGTERM, Ctrl-C), which the sessions heed: see catalog_sync.interrupt."""
    interrupt = current_interrupt()
    for session in sessions:
        session.stop_on(interrupt)
    return interrupt


def _stopped(
    run: RunInfo, interrupt: Interrupt, results: list[ActionResult], applying: bool
) -> list[ActionResult]:
    """After a signal: the run is reported as interrupted, and what a run was to apply but never began is
    `not_started`."""
    if interrupt.signum is None:
        return results
    run.interrupted_by = interrupt.name
    if not applying:
        return results
    return [replace(r, outcome=Outcome.not_started) if r.outcome is Outcome.planned else r for r in results]


def _apply(
    plan: Plan, litellm: LiteLLMClient, context: ApplyContext, progress: Progress
) -> list[ActionResult]:
    interrupt = context.interrupt
    if interrupt is not None:
        interrupt.applying = True  # from now on a first signal lets the writes in flight finish
    total = len(plan.actions)
    done = iter(range(1, total + 1))  # shared by the workers: range_iterator.__next__ is atomic in C
    return apply_plan(plan, litellm, context, lambda _: progress("actions", next(done), total))


def _explain(
    catalog: CatalogSnapshot, config: Config, plan: Plan, select: Selection | None
) -> dict[str, Explanation]:
    """Why people have their roles: `--user`'s people, and every action's (kept in saved plans for `show`)."""
    acting = {a.user_id for a in plan.actions}
    return explain_people(
        catalog, config, lambda uid, ref: uid in acting or (select is not None and select.matches(uid, ref))
    )


def _plan_text(
    plan: Plan,
    run: RunInfo,
    config: Config,
    teams: frozenset[str] | None,
    explanations: Mapping[str, Explanation],
    extra: Mapping[str, Any] | None = None,
) -> str:
    return dump_plan(
        plan,
        created_at=datetime.fromisoformat(run.started_at),
        litellm_url=run.litellm_url,
        backstage_url=run.backstage_url,
        config_path=run.config_path,
        managed_teams=config.managed_teams(),
        existing_teams=teams,
        adopt_unmanaged=config.adopt_unmanaged,
        grants=grants_of(config),
        explanations={u: e for u, e in explanations.items() if u in plan.desired},  # `--user`: theirs only
        extra=extra,
    )


def _save_plan(path: Path, plan: Plan, text: str) -> None:
    if str(path) == "-":  # `--out -`: the plan is all that goes to stdout
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        log.info("plan_saved", path="-", actions=len(plan.actions))
        return
    save_plan_file(path, text + "\n")
    log.info("plan_saved", path=str(path), actions=len(plan.actions))


def _finish(
    run: RunInfo,
    clock: float,
    config: Config,
    report_dir: Path | None,
    plan: Plan | None,
    results: list[ActionResult],
    error: str | None,
    trips: tuple[GuardTrip, ...],
    force: bool,
    changes_pending: bool,
    budgets: Sequence[Budget] = (),
) -> JobResult:
    failed = any(r.outcome is Outcome.failed for r in results)
    if run.interrupted_by is not None:
        exit_code = exit_code_of(run.interrupted_by)
        log.warning("interrupted", signal=run.interrupted_by, exit_code=exit_code)
    elif error is not None or failed:
        exit_code = EXIT_FAILURE
    elif trips and not force:
        exit_code = EXIT_GUARD
    elif changes_pending:
        exit_code = EXIT_CHANGES_PENDING
    else:
        exit_code = EXIT_OK
    run.finished_at = _now().isoformat(timespec="seconds")
    run.duration_seconds = round(time.monotonic() - clock, 3)
    run.exit_code = exit_code
    report = build_report(run, plan, results, error, guards=(trips, force), budgets=budgets)
    paths, unwritten = _write(report, report_dir or config.report.dir, config)
    summary = render_terminal(report)
    if unwritten is not None:  # what was applied must still reach the terminal and the metrics
        summary = "\n".join([summary, *_failure_lines(report)])
        if run.interrupted_by is None:
            exit_code = run.exit_code = report["run"]["exit_code"] = EXIT_FAILURE
    if not run.dry_run:
        publish_metrics(config.metrics, report, time.time())
    structlog.contextvars.unbind_contextvars("run_id")
    return JobResult(exit_code, report, paths, plan, summary, unwritten, results)


def _write(report: dict[str, Any], directory: Path, config: Config) -> tuple[list[Path], str | None]:
    """The report's paths, or why it could not be written, saying what was applied."""
    try:
        return write_report(report, directory, config.report.formats, keep=config.report.keep), None
    except OSError as exc:
        problem = _not_written(report, f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        log.error("report_not_written", problem=problem)
        return [], problem


def _not_written(report: dict[str, Any], reason: str) -> str:
    counts = report["counts"]
    applied, failed = counts.get("applied", 0), counts.get("failed", 0)
    if report["run"]["dry_run"] or applied + failed == 0:
        return f"nothing was applied, but the report could not be written: {reason}"
    were = "change was" if applied == 1 else "changes were"
    return f"{applied} {were} applied ({failed} failed), but the report could not be written: {reason}"


def _failure_lines(report: dict[str, Any], most: int = 20) -> list[str]:
    """Each failed action, for the terminal when there is no report to look them up in."""
    failed = [r for r in [*report["actions"], *report["deprovision"]] if r["outcome"] == "failed"]
    lines = [f"failed: {r['action']} {r['user_id']}: {r['error']}" for r in failed[:most]]
    if len(failed) > most:
        lines.append(f"… and {len(failed) - most} more failed")
    return lines
