"""The job's configuration: a YAML file validated by pydantic (errors carry their path; JSON Schema free).

`${ENV_VAR}` in any string value is replaced from the environment before validation, so secrets stay out
of the file. Unknown keys are errors: a typo must not silently become a default.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

# Roles /user/new and /user/update accept; anything else is a 422 (docs/litellm-api.md#roles-accepted).
UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
# LiteLLM budget durations: seconds, minutes, hours, days, weeks, months ("30d", "1mo").
BUDGET_DURATION = re.compile(r"^[1-9][0-9]*(s|m|h|d|w|mo)$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

MetadataValue = str | int | float | bool | None

# Sane bounds, so that a slip (7.6e-72, 1e300) is a config error rather than a run where every request
# times out or a budget nobody meant. Timeouts: below 0.1 s not even a loopback request completes
# reliably; above 10 min a hung server would hold the run (and the lock) for the whole cron slot.
Timeout = Annotated[float, Field(ge=0.1, le=600)]
# A billion USD per period and a billion tokens or requests a minute: far above any real grant; "no
# limit" is null, not a huge number.
Budget = Annotated[float, Field(ge=0, le=1e9)]
RateLimit = Annotated[int, Field(ge=0, le=1_000_000_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackstageConfig(_Strict):
    base_url: AnyHttpUrl = Field(description="Backstage backend root, e.g. https://backstage.example.com")
    token: SecretStr = Field(min_length=1, description="Static external-access token (use ${ENV_VAR})")
    filter: str | None = Field(
        default=None,
        description="Extra by-query conditions ANDed with kind=user, e.g. 'metadata.namespace=default'",
    )
    page_size: int = Field(default=500, ge=1, le=10000, description="Entities per by-query page")
    timeout_seconds: Timeout = Field(default=30, description="Per request, in seconds (0.1 to 600)")
    ca_bundle: Path | None = Field(default=None, description="PEM file of CAs to trust (an internal CA)")
    tls_verify: bool = Field(
        default=True, description="false turns certificate checks off: insecure, logged loudly on every run"
    )

    @field_validator("filter")
    @classmethod
    def _filter_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            return None
        for cond in value.split(","):
            key = cond.split("=", 1)[0].strip()
            if not key:
                raise ValueError(f"condition {cond!r} has no key")
            if key.lower() == "kind":
                raise ValueError("must not set kind: the job always reads kind=user")
        return value


class LiteLLMConfig(_Strict):
    base_url: AnyHttpUrl = Field(description="LiteLLM proxy root, e.g. https://llm.example.com")
    master_key: SecretStr = Field(min_length=1, description="LiteLLM master key (use ${ENV_VAR})")
    timeout_seconds: Timeout = Field(default=30, description="Per request, in seconds (0.1 to 600)")
    ca_bundle: Path | None = Field(default=None, description="PEM file of CAs to trust (an internal CA)")
    tls_verify: bool = Field(
        default=True, description="false turns certificate checks off: insecure, logged loudly on every run"
    )


class HttpConfig(_Strict):
    """Retries for both servers: connection errors, timeouts, 429, 502, 503, 504; never another 4xx."""

    retries: int = Field(default=4, ge=0, le=20, description="Retries after the first attempt")
    backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="First backoff; doubles each retry, with jitter (0, or 0.01 to 60)",
    )
    backoff_max_seconds: float = Field(
        default=30, ge=0, le=600, description="Longest single backoff (0, or 0.01 to 600)"
    )
    retry_budget_seconds: float = Field(
        default=120,
        ge=1,
        le=3600,
        description="No retry starts once this long has passed since the first failure (1 to 3600)",
    )

    @field_validator("backoff_seconds", "backoff_max_seconds")
    @classmethod
    def _no_vanishing_backoff(cls, value: float) -> float:
        # 0 means "retry at once" on purpose; a few microseconds is a slip of the exponent.
        if 0 < value < 0.01:
            raise ValueError("must be 0 (retry at once) or at least 0.01 seconds")
        return value


class UserIdSource(str, Enum):
    name = "name"
    email = "email"


class UserIdConfig(_Strict):
    source: UserIdSource = Field(
        default=UserIdSource.name,
        description="name: the entity name lower-cased (plus @domain); email: the profile e-mail",
    )
    domain: str | None = Field(
        default=None,
        description="With source=name, appended as @domain unless the name already holds an @",
        pattern=r"^[A-Za-z0-9.-]+$",
    )


class _Grant(_Strict):
    """Fields a role may set; every one is optional so that omitted ones fall back to the defaults."""

    user_role: UserRole | None = None
    max_budget: Budget | None = None
    budget_duration: str | None = None
    models: list[Annotated[str, Field(min_length=1)]] | None = None
    teams: list[Annotated[str, Field(min_length=1)]] | None = None
    tpm_limit: RateLimit | None = None
    rpm_limit: RateLimit | None = None
    metadata: dict[Annotated[str, Field(min_length=1)], MetadataValue] | None = None

    @field_validator("budget_duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not BUDGET_DURATION.match(value):
            raise ValueError("must look like 30s, 15m, 12h, 30d, 4w or 1mo")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, value: dict[str, MetadataValue] | None) -> dict[str, MetadataValue] | None:
        if value is not None:
            from catalog_sync.model import MARKER_KEY

            if MARKER_KEY in value:
                raise ValueError(f"key {MARKER_KEY!r} is reserved for the job's own bookkeeping")
        return value


class Defaults(_Grant):
    # The plugin's defaults (its config.d.ts): 10 USD per 30 days, all models, no teams.
    user_role: UserRole | None = "internal_user"
    max_budget: Budget | None = 10
    budget_duration: str | None = "30d"
    models: list[Annotated[str, Field(min_length=1)]] | None = Field(default_factory=list)
    teams: list[Annotated[str, Field(min_length=1)]] | None = Field(default_factory=list)
    metadata: dict[Annotated[str, Field(min_length=1)], MetadataValue] | None = Field(default_factory=dict)


class Role(_Grant):
    group: str = Field(
        min_length=1,
        description="Group entity ref; a bare name means group:default/<name>. Matched case-insensitively.",
    )
    optional: bool = Field(
        default=False,
        description="true: a group missing from the catalog is only a warning. Otherwise it stops the run "
        "like a guard (exit 3), since its members would silently fall to a later role or the defaults",
    )

    @field_validator("group")
    @classmethod
    def _group_ref(cls, value: str) -> str:
        ref = normalise_group_ref(value)
        if ref is None:
            raise ValueError(
                f"{value!r} is not a group reference (name, namespace/name or group:namespace/name)"
            )
        return value

    @property
    def group_ref(self) -> str:
        ref = normalise_group_ref(self.group)
        assert ref is not None  # checked by the validator
        return ref


class DeprovisionMode(str, Enum):
    report = "report"
    block = "block"
    delete = "delete"


# A count ("25") or a percentage ("10%") of the managed users.
_LIMIT = re.compile(r"^(?:0|[1-9][0-9]*)(?:\.[0-9]+)?%$")


class DeprovisionConfig(_Strict):
    mode: DeprovisionMode = Field(
        default=DeprovisionMode.report,
        description="report: list managed users who left the catalog; block: budget 0 and keys blocked, "
        "reversibly; delete: /user/delete, which deletes their keys too",
    )
    protect: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="User ids or shell-style patterns (svc-*) the job never creates, changes or deprovisions",
    )


class GuardsConfig(_Strict):
    """Checked before anything is applied; a tripped guard applies nothing and exits 3 (--force overrides)."""

    max_deprovision: Annotated[int, Field(ge=0)] | str = Field(
        default="10%", description="Most users blocked or deleted in one run: a count or a % of managed users"
    )
    max_changes: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Most creates + updates + deprovisions in one run (null: no limit)"
    )
    max_downgrades: Annotated[int, Field(ge=0)] | str = Field(
        default="10%",
        description="Most users whose max_budget, tpm_limit or rpm_limit would go down or whose model list "
        "would shrink, in one run: a count or a % of managed users",
    )

    @field_validator("max_deprovision", "max_downgrades")
    @classmethod
    def _limit(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not _LIMIT.match(value.strip()):
            raise ValueError("must be a whole number >= 0 or a percentage like 10%")
        return value.strip() if isinstance(value, str) else value

    def deprovision_limit(self, managed_users: int) -> int:
        return _limit_of(self.max_deprovision, managed_users)

    def downgrade_limit(self, managed_users: int) -> int:
        return _limit_of(self.max_downgrades, managed_users)


def _limit_of(value: int | str, managed_users: int) -> int:
    if isinstance(value, int):
        return value
    return int(float(value[:-1]) * managed_users / 100)


class ReportFormat(str, Enum):
    json = "json"
    markdown = "markdown"
    html = "html"


class ReportConfig(_Strict):
    dir: Path = Field(default=Path("reports"), description="Where reports are written (created if missing)")
    formats: list[ReportFormat] = Field(
        default_factory=lambda: [ReportFormat.json, ReportFormat.markdown, ReportFormat.html],
        description="json (complete, for tools), markdown (a pull-request comment), html (for people)",
    )
    keep: Annotated[int, Field(ge=1)] | None = Field(
        default=100,
        description="Reports of this many runs are kept (the newest; latest.* always); older ones are "
        "deleted after each run. null keeps every report (then something else must clean the directory)",
    )


class MetricsConfig(_Strict):
    textfile: Path | None = Field(
        default=None,
        description="Write Prometheus text format here after each run/apply (node_exporter's textfile "
        "collector reads *.prom files from its --collector.textfile.directory)",
    )
    pushgateway: AnyHttpUrl | None = Field(
        default=None, description="Push the same metrics to this Prometheus Pushgateway after each run/apply"
    )
    job: str = Field(default="catalog-sync", min_length=1, description="The Pushgateway job label")
    timeout_seconds: Timeout = Field(default=10, description="Pushgateway request timeout (0.1 to 600 s)")


class Config(_Strict):
    backstage: BackstageConfig
    litellm: LiteLLMConfig
    user_id: UserIdConfig = Field(default_factory=UserIdConfig)
    match_nested_groups: bool = Field(
        default=True, description="A member of a sub-group also matches a role on any ancestor group"
    )
    defaults: Defaults = Field(default_factory=Defaults)
    roles: list[Role] = Field(default_factory=list, description="Tried in order; the first match wins")
    adopt_unmanaged: bool = Field(
        default=False, description="Take over LiteLLM users with a matching id that the job did not create"
    )
    deprovision: DeprovisionConfig = Field(default_factory=DeprovisionConfig)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    concurrency: int = Field(default=4, ge=1, le=64, description="LiteLLM writes in flight at once")
    max_plan_age_minutes: float = Field(
        default=60,
        ge=1,
        le=10080,
        description="`apply` refuses a saved plan older than this (1 min to a week)",
    )
    http: HttpConfig = Field(default_factory=HttpConfig)
    lock_file: Path | None = Field(
        default=None,
        description="File locked while `run` applies, so two runs cannot both write "
        "(default: one per LiteLLM URL in the temp directory)",
    )
    report: ReportConfig = Field(default_factory=ReportConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    @model_validator(mode="after")
    def _unique_role_groups(self) -> Config:
        seen: dict[str, int] = {}
        for index, role in enumerate(self.roles):
            ref = role.group_ref
            if ref in seen:
                raise ValueError(
                    f"roles[{index}].group: {role.group!r} repeats roles[{seen[ref]}].group; "
                    "a second rule for the same group could never match"
                )
            seen[ref] = index
        return self

    def managed_teams(self) -> frozenset[str]:
        """Every team the config names: only memberships of these are the job's to add or remove."""
        teams = set(self.defaults.teams or [])
        for role in self.roles:
            teams.update(role.teams or [])
        return frozenset(teams)

    def secrets(self) -> tuple[str, ...]:
        return (self.backstage.token.get_secret_value(), self.litellm.master_key.get_secret_value())


def normalise_group_ref(value: str) -> str | None:
    """`name`, `namespace/name` or `group:namespace/name` to a lower-cased full ref."""
    text = value.strip().lower()
    if ":" in text:
        kind, _, rest = text.partition(":")
        if kind != "group":
            return None
        text = rest
    namespace, _, name = text.rpartition("/")
    namespace = namespace or "default"
    if not name or "/" in namespace or any(c.isspace() for c in text):
        return None
    return f"group:{namespace}/{name}"


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one line per problem, each naming its path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _substitute(value: Any, loc: tuple[int | str, ...], env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{format_loc(loc)}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, str(k)), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), env, problems) for i, v in enumerate(value)]
    return value


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            out += f"[{part!r}]"  # an odd key (spaces, dots, control characters) stays on one line
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[
            kind
        ]
        bound = next(iter(ctx.values()), "")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be a number {op} {bound}"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        return "must be a whole number" if kind.startswith("int") else "must be a number"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    return str(error["msg"])


def parse_config(data: Any, source: str = "config", env: Mapping[str, str] | None = None) -> Config:
    """Validate already-parsed YAML; every problem is reported at once."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): must be a mapping of settings"])
    problems: list[str] = []
    data = _substitute(data, (), os.environ if env is None else env, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        unset = {p.partition(": ")[0] for p in problems}  # one line per key: "not set" says it all
        for error in exc.errors():
            loc = tuple(error["loc"])
            if loc and format_loc(loc) in unset:
                continue
            # Errors raised by the model validator carry no path of their own: the message names it.
            text = _describe(error)
            problems.append(text if not loc else f"{format_loc(loc)}: {text}")
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from None
    return parse_config(data, source, env)


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "catalog-sync config",
        "description": "Strings may hold ${ENV_VAR}, replaced from the environment before validation.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    """The JSON Schema as shipped in config.schema.json (stable key order, trailing newline)."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
