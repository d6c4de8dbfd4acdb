"""The `catalog-sync` command line.

Exit codes: 0 done, nothing failed; 1 a failure (a server unreachable, some actions failed, another run
holds the lock); 2 usage or invalid config; 3 a guard tripped and nothing was applied; 4
`plan --detailed-exitcode` found changes to apply.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
import structlog

from catalog_sync import __version__
from catalog_sync.config import Config, ConfigError, load_config, schema_text
from catalog_sync.interrupt import exit_now
from catalog_sync.job import EXIT_FAILURE, EXIT_USAGE, JobResult, apply_saved_plan, run_job
from catalog_sync.lock import LockHeld, default_lock_path, run_lock
from catalog_sync.logs import configure, redact, register_secrets, terminal
from catalog_sync.plan import role_warnings
from catalog_sync.plan_config import PlanConfigMismatch
from catalog_sync.plan_view import Selection, plan_lines
from catalog_sync.planfile import PlanFileError
from catalog_sync.urls import public_url, url_secrets
from catalog_sync.words import plural

log = structlog.get_logger("catalog_sync.cli")

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    envvar="CATALOG_SYNC_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The YAML config file.",
)
REPORT_DIR_OPTION = click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write reports here instead of the config's report.dir.",
)

FORCE_OPTION = click.option(
    "--force",
    is_flag=True,
    help="Apply even if a guard (max_deprovision, max_downgrades, max_changes, a missing role group) trips, "
    "or (apply) the config's roles are not those the plan was made with; reported.",
)
WAIT_OPTION = click.option(
    "--wait-for-lock",
    type=click.FloatRange(min=0),
    is_flag=False,
    flag_value=math.inf,
    default=None,
    metavar="[SECONDS]",
    help="Wait for another run to finish instead of exiting 1: as long as it takes, or at most SECONDS "
    "(then exit 1).",
)
LOG_FORMATS = click.Choice(["auto", "console", "json"])
LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"])
_LOG_SETTINGS = "catalog_sync.log_settings"
USER_HELP = (
    "Only this person (user id, entity ref or name; a shell glob such as '*@example.com' or 'bob*'; "
    "repeatable), and why they get what they get."
)
USER_OPTION = click.option(
    "--user", "users", multiple=True, metavar="ID", help=USER_HELP + " The report stays complete."
)
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Write the plan as JSON to stdout (and nothing else there)."
)


def _selection(users: tuple[str, ...]) -> Selection | None:
    return Selection(users) if users else None


def _lock_path(config: Config) -> Path:
    # One lock per LiteLLM, whatever credentials its URL carries.
    return config.lock_file or default_lock_path(public_url(str(config.litellm.base_url)))


def _fail(message: str, code: int) -> None:
    click.echo(f"catalog-sync: {redact(message)}", err=True)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.info_name in ("plan", "run", "apply"):  # ended before a report was made
        _finished(command=ctx.info_name, result="error", error=redact(message), exit_code=code)
    sys.exit(code)


def _finished(**fields: Any) -> None:
    """The `run_finished` event, for machines reading the logs: a person at a terminal has just read the
    summary, so there it is a debug line."""
    (log.debug if terminal() is not None else log.info)("run_finished", **fields)


def _load(path: Path) -> Config:
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {redact(problem)}", err=True)
        sys.exit(EXIT_USAGE)
    register_secrets(config.secrets())
    # Credentials written into a URL (http://admin:PW@host) are as secret as the tokens.
    for url in (config.backstage.base_url, config.litellm.base_url, config.metrics.pushgateway):
        if url is not None:
            register_secrets(url_secrets(str(url)))
    return config


def _warn_about_roles(result: JobResult) -> None:
    """A role that matches nobody is a config mistake a person should see at once, not only in the report."""
    for line in role_warnings(result.plan) if result.plan is not None else ():
        click.echo(f"warning: {redact(line)}", err=True)


def _finish(
    result: JobResult, select: Selection | None = None, as_json: bool = False, stdout_taken: bool = False
) -> None:
    """The summary, each person's changes and the report paths; with `--json` or `--out -` (stdout
    carries the plan) only the plan on stdout, the summary and paths on stderr. Then `run_finished`: the
    last line on stderr."""
    _warn_about_roles(result)
    stdout_taken = stdout_taken or as_json
    if as_json and result.plan_json is not None:
        click.echo(result.plan_json)
    click.echo(result.summary, err=stdout_taken)
    if not stdout_taken and result.plan is not None and result.report.get("error") is None:
        for line in plan_lines(result.results, result.plan, select=select, explanations=result.explanations):
            click.echo(line)
    for path in result.paths:
        click.echo(f"report: {path}", err=stdout_taken)
    if result.report_error is not None:
        click.echo(f"catalog-sync: {redact(result.report_error)}", err=True)
    _finished(
        command=result.report.get("run", {}).get("command"),
        result=result.report.get("result"),
        counts=result.report.get("counts"),
        exit_code=result.exit_code,
    )
    if result.report["run"].get("interrupted_by"):
        exit_now(result.exit_code)  # not waiting for writes abandoned after the grace
    sys.exit(result.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="catalog-sync")
@click.option(
    "--log-format",
    type=LOG_FORMATS,
    default="auto",
    show_default=True,
    help="auto: readable on a terminal, JSON lines otherwise.",
)
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True)
@click.pass_context
def main(ctx: click.Context, log_format: str, log_level: str) -> None:
    """Keep LiteLLM users in line with the people in a Backstage catalog."""
    ctx.meta[_LOG_SETTINGS] = {"log_format": log_format, "log_level": log_level}
    configure(log_format, log_level)


@main.command()
@CONFIG_OPTION
@REPORT_DIR_OPTION
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 4 when there are changes to apply (0 when none)."
)
@click.option(
    "--out",
    "plan_out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Save the plan here, for review and `catalog-sync apply`; `-` writes it to stdout (and the "
    "summary to stderr).",
)
@USER_OPTION
@JSON_OPTION
def plan(
    config_path: Path,
    report_dir: Path | None,
    detailed_exitcode: bool,
    plan_out: Path | None,
    users: tuple[str, ...],
    as_json: bool,
) -> None:
    """Read both sides, plan, write the report; change nothing. Prints each person's changes."""
    if as_json and str(plan_out) == "-":
        raise click.UsageError("--json and --out - both write the plan to stdout: use one of them")
    config = _load(config_path)
    select = _selection(users)
    _finish(
        _guarded(
            lambda: run_job(
                config,
                str(config_path),
                apply=False,
                detailed_exitcode=detailed_exitcode,
                report_dir=report_dir,
                plan_out=plan_out,
                select=select,
                want_json=as_json,
            )
        ),
        select,
        as_json,
        stdout_taken=str(plan_out) == "-",
    )


@main.command(name="apply")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@CONFIG_OPTION
@REPORT_DIR_OPTION
@FORCE_OPTION
@WAIT_OPTION
def apply_cmd(
    plan_file: Path, config_path: Path, report_dir: Path | None, force: bool, wait_for_lock: float | None
) -> None:
    """Apply exactly a plan saved by `plan --out`, if LiteLLM still matches what it saw."""
    try:
        plan_file.open("rb").close()
    except OSError as exc:  # like a config that cannot be read: a usage error, one line
        _fail(f"{plan_file}: cannot read the plan: {exc.strerror or exc}", EXIT_USAGE)
    config = _load(config_path)

    def locked() -> JobResult:
        with run_lock(_lock_path(config), wait=wait_for_lock):
            return apply_saved_plan(config, str(config_path), plan_file, report_dir=report_dir, force=force)

    _finish(_guarded(locked))


@main.command()
@CONFIG_OPTION
@REPORT_DIR_OPTION
@click.option("--dry-run", is_flag=True, help="Plan only: the same as `plan`.")
@FORCE_OPTION
@WAIT_OPTION
@USER_OPTION
def run(
    config_path: Path,
    report_dir: Path | None,
    dry_run: bool,
    force: bool,
    wait_for_lock: float | None,
    users: tuple[str, ...],
) -> None:
    """Plan and apply: create, update and deprovision LiteLLM users. Prints each person's changes."""
    config = _load(config_path)
    select = _selection(users)
    if dry_run:
        _finish(
            _guarded(
                lambda: run_job(config, str(config_path), apply=False, report_dir=report_dir, select=select)
            ),
            select,
        )

    def locked() -> JobResult:
        with run_lock(_lock_path(config), wait=wait_for_lock):
            return run_job(
                config, str(config_path), apply=True, report_dir=report_dir, force=force, select=select
            )

    _finish(_guarded(locked), select)


@main.command()
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", "users", multiple=True, metavar="ID", help=USER_HELP)
@click.option("--json", "as_json", is_flag=True, help="Write the saved plan as JSON to stdout.")
def show(plan_file: Path, users: tuple[str, ...], as_json: bool) -> None:
    """Print a plan saved by `plan --out`, per person, without a config or a server."""
    from catalog_sync.show import show_plan

    try:
        plan_file.open("rb").close()
    except OSError as exc:  # as `apply`: a plan file that cannot be read is a usage error
        _fail(f"{plan_file}: cannot read the plan: {exc.strerror or exc}", EXIT_USAGE)

    for line in _guarded(lambda: show_plan(plan_file, _selection(users), as_json)):
        click.echo(line)


@main.command()
@CONFIG_OPTION
@click.option(
    "--online",
    is_flag=True,
    help="Also check against the live systems, read-only: credentials, role groups, teams, models.",
)
def validate(config_path: Path, online: bool) -> None:
    """Check the config: every problem in one pass, each with its path."""
    config = _load(config_path)
    roles, teams = plural(len(config.roles), "role"), plural(len(config.managed_teams()), "team")
    click.echo(f"{config_path}: valid ({roles}, {teams} named)")
    if not online:
        return
    from catalog_sync.online import check_online

    result = _guarded(lambda: check_online(config))
    for line in result.passed:
        click.echo(f"{config_path}: {line}")
    for line in result.notes:
        click.echo(f"{config_path}: note: {line}", err=True)
    for line in result.unreachable + result.problems:
        click.echo(f"{config_path}: {line}", err=True)
    if result.unreachable:
        sys.exit(EXIT_FAILURE)
    if result.problems:
        sys.exit(EXIT_USAGE)


@main.command()
def schema() -> None:
    """Print the config's JSON Schema (the repository ships it as config.schema.json, for editors)."""
    click.echo(schema_text(), nl=False)


@main.command()
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-reports"),
    show_default=True,
    help="Where the demo writes its reports.",
)
def demo(report_dir: Path) -> None:
    """Run plan and run against the built-in simulated Backstage and LiteLLM (no set-up needed)."""
    from catalog_sync.demo import run_demo

    sys.exit(_guarded(lambda: run_demo(report_dir, click.echo)))


def _guarded(fn: Any) -> Any:
    try:
        return fn()
    except PlanConfigMismatch as exc:
        _fail(str(exc), EXIT_USAGE)
    except (LockHeld, PlanFileError) as exc:
        _fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_FAILURE)
    except Exception as exc:  # last resort: one line, not a traceback; details at debug level
        log.debug("unexpected_error", exc_info=True)
        _fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILURE)
    return None


def _log_setting(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--log-format/--log-level after the command: set over what was given (or defaulted) before it."""
    if value is None or param.name is None:
        return
    settings = ctx.find_root().meta.setdefault(_LOG_SETTINGS, {"log_format": "auto", "log_level": "info"})
    settings[param.name] = value
    configure(settings["log_format"], settings["log_level"])


# The global options are accepted after the command too (`catalog-sync plan -c x --log-format json`).
for _command in main.commands.values():
    _command.params += [
        click.Option(
            [name], type=kind, expose_value=False, callback=_log_setting, help="As before the command."
        )
        for name, kind in (("--log-format", LOG_FORMATS), ("--log-level", LOG_LEVELS))
    ]

if __name__ == "__main__":
    main()
