"""Prometheus metrics of a run, built from its report: a textfile for node_exporter's textfile collector
and/or a push to a Pushgateway. `run` and `apply` publish; a `plan` preview never does, so it cannot make
a failing schedule look healthy."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.parser import text_string_to_metric_families

from catalog_sync.config import MetricsConfig
from catalog_sync.urls import mask_userinfo, public_url, url_secrets

log = structlog.get_logger("catalog_sync.metrics")

PREFIX = "catalog_sync"
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"


def registry_for(report: Mapping[str, Any], now: float, last_success: float | None) -> CollectorRegistry:
    """The metrics of one run. `last_success` is the previous success time, kept when this run failed."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, labels, registry=registry)

    run = report["run"]
    success = run["exit_code"] == 0
    gauge("last_run_timestamp_seconds", "When the last run finished (Unix time)").set(now)
    if success:
        last_success = now
    if last_success is not None:
        gauge("last_success_timestamp_seconds", "When a run last finished with exit code 0").set(last_success)
    gauge("last_run_success", "1 if the last run exited 0, else 0").set(1 if success else 0)
    exit_doc = "Exit code of the last run (1 failure, 3 guard tripped)"
    gauge("last_run_exit_code", exit_doc).set(run["exit_code"])
    gauge("last_run_duration_seconds", "Wall time of the last run").set(run["duration_seconds"] or 0)
    counts = report.get("counts", {})
    users = gauge("users", "Users seen by the last run", ("source",))
    sources = (("catalog", "catalog_users"), ("litellm", "litellm_users"), ("managed", "managed_users"))
    for source, key in sources:
        if key in counts:
            users.labels(source=source).set(counts[key])
    actions = gauge("actions", "Actions of the last run by kind and outcome", ("kind", "outcome"))
    tally = Counter((a["action"], a["outcome"]) for a in report.get("actions", ()))
    tally.update((d["action"], d["outcome"]) for d in report.get("deprovision", ()))
    for (kind, outcome), n in sorted(tally.items()):
        actions.labels(kind=kind, outcome=outcome).set(n)
    gauge("failures", "Actions that failed in the last run").set(counts.get("failed", 0))
    gauge("run_error", "1 if the last run stopped on an error (e.g. a server unreachable)").set(
        1 if report.get("error") else 0
    )
    gauge("conflicts", "Conflicts reported by the last run").set(len(report.get("conflicts", ())))
    gauge("warnings", "Warnings reported by the last run").set(counts.get("warnings", 0))
    gauge("guard_tripped", "1 if a safety guard stopped the last run").set(
        1 if report.get("guards", {}).get("tripped") else 0
    )
    gauge("interrupted", "1 if the last run was stopped by SIGTERM or SIGINT before it ended").set(
        1 if run.get("interrupted_by") else 0
    )
    gauge("deprovision_withheld", "1 if deprovisioning was withheld for incomplete data").set(
        1 if run.get("deprovision_withheld") else 0
    )
    requests = gauge("requests", "HTTP requests made by the last run", ("service",))
    for service, by_kind in (report.get("requests") or {}).items():
        requests.labels(service=service).set(sum(by_kind.values()))
    return registry


def previous_success(path: Path) -> float | None:
    """The last-success time recorded in an earlier textfile, so a failed run does not erase it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except ValueError:  # not ours, or damaged: start afresh rather than fail the run
        return None
    return None


def _push(url: str, config: MetricsConfig, report: Mapping[str, Any], now: float) -> str | None:
    """Pushes to the Pushgateway; credentials in its URL go as HTTP basic auth, never into a message."""
    parts = urlsplit(url)
    handler: Any = default_handler
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        handler = functools.partial(basic_auth_handler, username=user, password=password)
    shown = public_url(url)
    # pushadd (POST) replaces only the metrics sent: a failed run omits last_success, which survives.
    registry = registry_for(report, now, None)
    try:
        # The URL without user info: urllib would take "user:pw@host" for the host name.
        pushadd_to_gateway(
            shown, job=config.job, registry=registry, timeout=config.timeout_seconds, handler=handler
        )
    except Exception as exc:  # urllib raises several kinds; none may stop the run
        message = mask_userinfo(str(exc))
        for secret in url_secrets(url):
            message = message.replace(secret, "***")
        return f"metrics.pushgateway {shown}: {message}"
    return None


def publish(config: MetricsConfig, report: Mapping[str, Any], now: float) -> list[str]:
    """Writes/pushes the metrics; returns one line per problem. Monitoring trouble never changes what the
    sync did, so the caller logs these rather than failing the run."""
    problems: list[str] = []
    if config.textfile is not None:
        try:
            registry = registry_for(report, now, previous_success(config.textfile))
            config.textfile.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(config.textfile), registry)  # temp file + rename: never half-written
        except OSError as exc:
            problems.append(f"metrics.textfile {config.textfile}: {exc.strerror or exc}")
    if config.pushgateway is not None:
        problem = _push(str(config.pushgateway), config, report, now)
        if problem is not None:
            problems.append(problem)
    for problem in problems:
        log.error("metrics_not_published", problem=problem)
    return problems
