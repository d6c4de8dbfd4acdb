"""An in-process simulator of the LiteLLM proxy admin API (1.106.2 behaviour, optionally older).

Reproduces what was recorded on a real proxy (`docs/litellm-api.md`): master-key
auth and its 401 bodies, the three error envelopes, `/user/new` (409 on an existing id or e-mail,
the auto-created key, silently skipped missing teams), `/user/update` (upsert, only sent fields,
`null` clears max_budget/tpm_limit/rpm_limit/budget_duration and is dropped elsewhere,
`[]`/`{}` dropped, `metadata` replaced whole), `/user/info`
(404 or, `version="old"`, 200 with an empty record), `/user/list` (paging limits, filters, and
the unstable order of ties of #15762), `/user/delete` (all or nothing), the team endpoints
(`members_with_roles` and the users' `teams` change together) and a minimal set of key endpoints.

State lives in plain dicts guarded by the base class lock. `/user/list` sorts once per data
version and filter/order combination and then serves pages in O(page).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import secrets
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import unquote

from .server import Query, Response, SimApp

DEFAULT_MASTER_KEY = "sk-test-master"
DEFAULT_USER_ID = "default_user_id"
VALID_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
SORT_COLUMNS = ("user_id", "user_email", "created_at", "spend", "user_alias", "user_role")
ROLE_MSG = (
    "Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>, "
    "<LitellmUserRoles.PROXY_ADMIN_VIEW_ONLY: 'proxy_admin_viewer'>, "
    "<LitellmUserRoles.INTERNAL_USER: 'internal_user'> or "
    "<LitellmUserRoles.INTERNAL_USER_VIEW_ONLY: 'internal_user_viewer'>"
)
NOT_PREMIUM = (
    "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set "
    "`LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/enterprise#trial. "
    "\nPricing: https://www.litellm.ai/#pricing"
)
# fields of LiteLLM_UserTable, in the order the proxy serialises them
USER_FIELDS = (
    "user_id",
    "user_alias",
    "team_id",
    "sso_user_id",
    "organization_id",
    "object_permission_id",
    "password_reset_required",
    "last_breach_check_at",
    "teams",
    "user_role",
    "max_budget",
    "spend",
    "user_email",
    "models",
    "metadata",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "budget_reset_at",
    "allowed_cache_controls",
    "policies",
    "model_spend",
    "model_max_budget",
    "created_at",
    "updated_at",
)
_LIST_DEFAULTS: dict[str, Callable[[], Any]] = {
    "teams": list,
    "models": list,
    "metadata": dict,
    "allowed_cache_controls": list,
    "policies": list,
    "model_spend": dict,
    "model_max_budget": dict,
}
# request fields that end up on the user row
_ROW_WRITABLE = (
    "user_alias",
    "sso_user_id",
    "organization_id",
    "user_role",
    "max_budget",
    "spend",
    "user_email",
    "models",
    "metadata",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "allowed_cache_controls",
    "policies",
    "model_max_budget",
)
_CLEARED_BY_NULL = frozenset({"max_budget", "tpm_limit", "rpm_limit", "budget_duration"})
_FLOATS = ("max_budget", "soft_budget", "spend", "max_budget_in_team")
_INTS = ("tpm_limit", "rpm_limit", "max_parallel_requests", "tpd_limit")
_STRS = (
    "user_id",
    "user_email",
    "user_alias",
    "budget_duration",
    "key_alias",
    "duration",
    "sso_user_id",
    "team_id",
    "team_alias",
    "organization_id",
    "password",
)
_LISTS = ("models", "allowed_cache_controls", "policies", "guardrails", "organizations", "tags", "prompts")
_DICTS = (
    "metadata",
    "model_max_budget",
    "aliases",
    "config",
    "permissions",
    "model_rpm_limit",
    "model_tpm_limit",
)
_BOOLS = ("auto_create_key", "send_invite_email", "blocked")
_ROUTER_SETTINGS: dict[str, Any] = {
    "routing_strategy_args": None,
    "routing_strategy": None,
    "routing_groups": None,
    "retry_policy": None,
    "model_group_retry_policy": None,
    "model_group_affinity_config": None,
    "allowed_fails": None,
    "cooldown_time": None,
    "num_retries": None,
    "timeout": None,
    "max_retries": None,
    "retry_after": None,
    "fallbacks": None,
    "context_window_fallbacks": None,
    "model_group_alias": {},
    "enable_tag_filtering": None,
    "weights": None,
    "tag_routing_prefix": None,
    "optional_pre_call_checks": None,
}


class _HttpError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def proxy_error(
    status: int, message: str, type_: str = "internal_server_error", param: str | None = None
) -> Response:
    """`{"error": {message, type, param, code}}` (ProxyException)."""
    return Response.json(
        {"error": {"message": message, "type": type_, "param": param, "code": str(status)}}, status
    )


def detail_error(status: int, error: str) -> Response:
    """`{"detail": {"error": ...}}` (plain HTTPException)."""
    return Response.json({"detail": {"error": error}}, status)


def validation_error(errors: list[tuple[str, list[str | int], str]]) -> Response:
    """FastAPI's 422 `{"detail": [{type, loc, msg}]}`."""
    return Response.json({"detail": [{"type": t, "loc": loc, "msg": msg} for t, loc, msg in errors]}, 422)


def _iso(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}000Z"


def budget_reset_at(duration: str, now: datetime) -> str | None:
    """LiteLLM's standardised reset times: 1d next midnight, 7d next Monday, 30d first of next month."""
    m = re.fullmatch(r"\s*(\d+)\s*(s|m|h|d|w|mo)\s*", duration or "")
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    now = now.astimezone(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("s", "m", "h"):
        at = now + timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: n})
    elif (unit == "d" and n == 30) or unit == "mo":
        months = 1 if unit == "d" else n
        y, mth = divmod(now.month - 1 + months, 12)
        at = midnight.replace(year=now.year + y, month=mth + 1, day=1)
    elif (unit == "d" and n == 7) or unit == "w":
        weeks = 1 if unit == "d" else n
        at = midnight + timedelta(days=7 - now.weekday()) + timedelta(weeks=weeks - 1)
    else:
        at = midnight + timedelta(days=n)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonb(value: Any) -> Any:
    """A copy with object keys in PostgreSQL `jsonb` order (shorter keys first, then bytewise), as
    metadata read back from the database comes out."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(str(k).encode()), str(k).encode()))
        return {k: jsonb(value[k]) for k in keys}
    if isinstance(value, list):
        return [jsonb(v) for v in value]
    return value


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(obj))
    return out


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _member_repr(m: Mapping[str, Any]) -> str:
    return f"Member(user_id={m.get('user_id')!r}, user_email={m.get('user_email')!r}, role={m.get('role')!r})"


def _ids_only(key: tuple[Any, ...]) -> bool:
    """A listing key (filters, order) whose ids and order depend on nothing but which users exist."""
    filters, (column, _) = key
    return column == "user_id" and all(f is None for f in filters)


@dataclass
class _Listing:
    ids: list[str]
    group_start: list[int]  # for each position: first position of its tie group
    group_end: list[int]  # for each position: one past the last position of its tie group


class LiteLLMSim(SimApp):
    """Simulated LiteLLM proxy (admin API only). Serve it with `serve(sim)`."""

    def __init__(
        self,
        master_key: str = DEFAULT_MASTER_KEY,
        version: Literal["new", "old"] = "new",
        default_internal_user_params: Mapping[str, Any] | None = None,
        *,
        max_internal_user_budget: float | None = None,
        internal_user_budget_duration: str | None = None,
        clock: Callable[[], datetime] | None = None,
        unstable_ties: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if version not in ("new", "old"):
            raise ValueError("version must be 'new' or 'old'")
        self.master_key = master_key
        self.version = version
        self.default_internal_user_params = dict(default_internal_user_params or {})
        self.max_internal_user_budget = max_internal_user_budget
        self.internal_user_budget_duration = internal_user_budget_duration
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self.unstable_ties = unstable_ties
        self._rng = random.Random(seed)
        self.users: dict[str, dict[str, Any]] = {}
        self.teams: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, dict[str, Any]] = {}  # hashed token -> key row
        self._key_count: Counter[str] = Counter()
        self._listings: OrderedDict[tuple[Any, ...], _Listing] = OrderedDict()
        # user id -> (key_count, row JSON), dropped by `_changed` when the row changes
        self._list_rows: dict[str, tuple[int, bytes]] = {}
        self._email_index: dict[str, list[str]] | None = None
        # The proxy's model list (/v1/models): the real test proxy serves one model, fake-gpt.
        self.models: list[str] = ["fake-gpt"]

    # ------------------------------------------------------------------ helpers for tests
    def now(self) -> str:
        return _iso(self.clock())

    def add_team(self, team_id: str, **fields: Any) -> dict[str, Any]:
        """Insert a team directly (no `default_user_id` side effect). Members listed in
        `members_with_roles` that exist as users get the team in their `teams`."""
        with self.lock:
            team = self._new_team(team_id, fields)
            self.teams[team_id] = team
            for m in team["members_with_roles"]:
                user = self.users.get(m.get("user_id") or "")
                if user is not None and team_id not in user["teams"]:
                    user["teams"].append(team_id)
            self._changed()
            return _copy(team)

    def add_user(self, row_fields: Mapping[str, Any]) -> dict[str, Any]:
        """Insert (or overwrite) a user row directly, with no defaults applied and no key created.
        Teams named in `teams` that exist get the membership too, so both sides stay consistent."""
        with self.lock:
            row = self._insert_row(row_fields)
            self._changed()
            return _copy(row)

    def add_users(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Bulk `add_user` (for benchmarks): returns how many rows were inserted."""
        n = 0
        with self.lock:
            for r in rows:
                self._insert_row(r)
                n += 1
            self._changed()
        return n

    def _insert_row(self, row_fields: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(row_fields)
        user_id = str(fields.pop("user_id", None) or uuid.uuid4())
        row = self._new_row(user_id, fields)
        for k in ("created_at", "updated_at"):
            if k in fields:
                row[k] = fields[k]
        if "spend" in fields:
            row["spend"] = float(fields["spend"])
        self.users[user_id] = row
        for team_id in row["teams"]:
            team = self.teams.get(team_id)
            if team is not None and not any(m["user_id"] == user_id for m in team["members_with_roles"]):
                team["members_with_roles"].append(
                    {"user_id": user_id, "user_email": row["user_email"], "role": "user"}
                )
        return row

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.users.get(user_id)
            return None if row is None else {**_copy(row), "key_count": self._key_count[user_id]}

    def get_team(self, team_id: str) -> dict[str, Any] | None:
        with self.lock:
            team = self.teams.get(team_id)
            return None if team is None else _copy(team)

    def keys_of(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [_copy(k) for k in self.keys.values() if k["user_id"] == user_id]

    def set_user_fields(self, user_id: str, **fields: Any) -> None:
        """Change stored fields of a user directly (e.g. `spend`, `created_at`)."""
        with self.lock:
            self.users[user_id].update(fields)
            self._changed()

    # ------------------------------------------------------------------ state internals
    def _changed(self, emails_kept: bool = False, row: str | None = None) -> None:
        """State changed: drop what was cached from it, and the e-mail index unless the caller kept it
        current.

        `row` names the one existing user whose fields alone changed (an update): only that row's encoding
        goes, and listings that depend on nothing but the set of ids (unfiltered, by user_id) stay."""
        if row is None:
            self._listings.clear()
            self._list_rows.clear()
        else:
            self._list_rows.pop(row, None)
            for key in [k for k in self._listings if not _ids_only(k)]:
                del self._listings[key]
        if not emails_kept:
            self._email_index = None

    def _new_row(self, user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        now = self.now()
        row: dict[str, Any] = {}
        for f in USER_FIELDS:
            if f in _LIST_DEFAULTS:
                row[f] = _LIST_DEFAULTS[f]()
            else:
                row[f] = None
        row["user_id"] = user_id
        row["spend"] = 0.0
        row["created_at"] = now
        row["updated_at"] = now
        for k, v in fields.items():
            if k in row and k not in ("user_id", "created_at", "updated_at"):
                if v is None and k in _LIST_DEFAULTS and k != "metadata":
                    continue  # array/object columns fall back to their defaults (metadata may be null)
                row[k] = jsonb(v) if isinstance(v, (list, dict)) else v
        if row["max_budget"] is not None:
            row["max_budget"] = float(row["max_budget"])
        if row["teams"] is None:
            row["teams"] = []
        if row["budget_duration"]:
            row["budget_reset_at"] = budget_reset_at(row["budget_duration"], self.clock())
        return row

    def _new_team(self, team_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        now = self.now()
        members = [
            {"user_id": m.get("user_id"), "user_email": m.get("user_email"), "role": m.get("role", "user")}
            for m in fields.get("members_with_roles") or []
        ]
        max_budget = fields.get("max_budget")
        duration = fields.get("budget_duration")
        reset_at = None
        if duration:
            reset_at = budget_reset_at(str(duration), self.clock())
        return {
            "team_alias": fields.get("team_alias"),
            "team_id": team_id,
            "organization_id": fields.get("organization_id"),
            "admins": [],
            "members": [],
            "members_with_roles": members,
            "team_member_permissions": list(fields.get("team_member_permissions") or []),
            "metadata": dict(fields.get("metadata") or {}),
            "tpm_limit": fields.get("tpm_limit"),
            "rpm_limit": fields.get("rpm_limit"),
            "tpd_limit": fields.get("tpd_limit"),
            "max_budget": float(max_budget) if max_budget is not None else None,
            "soft_budget": fields.get("soft_budget"),
            "budget_duration": duration,
            "budget_limits": None,
            "models": list(fields.get("models") or []),
            "blocked": bool(fields.get("blocked", False)),
            "router_settings": {},
            "access_group_ids": [],
            "default_team_member_models": [],
            "spend": 0.0,
            "max_parallel_requests": fields.get("max_parallel_requests"),
            "budget_reset_at": reset_at,
            "model_id": None,
            "model_spend": {},
            "model_max_budget": dict(fields.get("model_max_budget") or {}),
            "policies": [],
            "allow_team_guardrail_config": False,
            "litellm_model_table": None,
            "object_permission": None,
            "object_permission_id": None,
            "updated_at": fields.get("updated_at", now),
            "created_at": fields.get("created_at", now),
        }

    def _create_key(self, user_id: str | None, fields: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        key = "sk-" + secrets.token_urlsafe(16)
        now = self.clock().astimezone(timezone.utc)
        stamp = f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}000"
        expires = None
        if fields.get("duration"):
            m = re.fullmatch(r"(\d+)(s|m|h|d)", str(fields["duration"]))
            if m:
                unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
                expires = _iso(now + timedelta(**{unit: int(m.group(1))}))
        max_budget = fields.get("max_budget")
        row: dict[str, Any] = {
            "token": hash_token(key),
            "key_name": f"sk-...{key[-4:]}",
            "key_alias": fields.get("key_alias"),
            "spend": 0.0,
            "total_spend": 0.0,
            "max_budget": float(max_budget) if max_budget is not None else None,
            "expires": expires,
            "models": list(fields.get("models") or []),
            "aliases": dict(fields.get("aliases") or {}),
            "config": dict(fields.get("config") or {}),
            "user_id": user_id,
            "team_id": fields.get("team_id"),
            "agent_id": None,
            "project_id": None,
            "max_parallel_requests": fields.get("max_parallel_requests"),
            "metadata": dict(fields.get("metadata") or {}),
            "tpm_limit": fields.get("tpm_limit"),
            "rpm_limit": fields.get("rpm_limit"),
            "tpd_limit": None,
            "budget_duration": fields.get("budget_duration"),
            "budget_reset_at": None,
            "allowed_cache_controls": [],
            "allowed_routes": [],
            "key_type": None,
            "permissions": {},
            "model_spend": {},
            "model_max_budget": {},
            "budget_fallbacks": {},
            "soft_budget_cooldown": False,
            "blocked": None,
            "litellm_budget_table": None,
            "budget_id": None,
            "org_id": None,
            "created_at": stamp,
            "created_by": None,
            "updated_at": stamp,
            "updated_by": None,
            "settings_updated_at": None,
            "last_active": None,
            "object_permission_id": None,
            "object_permission": None,
            "access_group_ids": [],
            "rotation_count": 0,
            "auto_rotate": False,
            "rotation_interval": None,
            "last_rotation_at": None,
            "key_rotation_at": None,
            "router_settings": {},
            "budget_limits": None,
        }
        self.keys[row["token"]] = row
        if user_id is not None:
            self._key_count[user_id] += 1
        return key, row

    def _delete_key(self, token: str) -> None:
        row = self.keys.pop(token, None)
        if row is not None and row["user_id"] is not None:
            self._key_count[row["user_id"]] -= 1
            if self._key_count[row["user_id"]] <= 0:
                del self._key_count[row["user_id"]]

    def _find_key(self, key: str) -> dict[str, Any] | None:
        return self.keys.get(key) or self.keys.get(hash_token(key))

    def _emails(self) -> dict[str, list[str]]:
        """lower-cased e-mail -> user ids, rebuilt after a change that may have touched an e-mail (a scan
        per lookup made creating 100,000 users quadratic)."""
        if self._email_index is None:
            index: dict[str, list[str]] = {}
            for uid, row in self.users.items():
                if row["user_email"] is not None:
                    index.setdefault(row["user_email"].lower(), []).append(uid)
            self._email_index = index
        return self._email_index

    def _user_by_email(self, email: str, *, insensitive: bool) -> dict[str, Any] | None:
        e = email.strip()
        for uid in self._emails().get(e.lower(), ()):
            row = self.users[uid]
            stored = row["user_email"]
            if stored is not None and ((stored.lower() == e.lower()) if insensitive else (stored == e)):
                return row
        return None

    def _join_team(
        self, user: dict[str, Any], team: dict[str, Any], role: str, email: str | None = None
    ) -> None:
        if not any(m["user_id"] == user["user_id"] for m in team["members_with_roles"]):
            team["members_with_roles"].append(
                {"user_id": user["user_id"], "user_email": email or user["user_email"], "role": role}
            )
        if team["team_id"] not in user["teams"]:
            user["teams"].append(team["team_id"])
        now = self.now()
        user["updated_at"] = now
        team["updated_at"] = now

    # ------------------------------------------------------------------ views
    def _list_row(self, row: Mapping[str, Any], key_count: bool = True) -> dict[str, Any]:
        out = {**row, "organization_memberships": None, "object_permission": None}
        if key_count:
            out["key_count"] = self._key_count[row["user_id"]]
        return out

    @staticmethod
    def _info_row(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "verified_subjects": None,
            **row,
            "litellm_organization_table": None,
            "organization_memberships": [],
            "invitations_created": None,
            "invitations_updated": None,
            "invitations_user": None,
            "object_permission": None,
            "model_max_budget_usage": {},
        }

    def _admin_info_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = self._info_row(row)
        del out["model_max_budget_usage"]  # the master key's own record comes without it
        return out

    @staticmethod
    def _update_row(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "verified_subjects": None,
            **row,
            "litellm_organization_table": None,
            "organization_memberships": None,
            "invitations_created": None,
            "invitations_updated": None,
            "invitations_user": None,
            "object_permission": None,
        }

    @staticmethod
    def _membership(user_id: str | None, team_id: str) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "team_id": team_id,
            "budget_id": None,
            "spend": 0.0,
            "total_spend": 0.0,
            "litellm_budget_table": None,
        }

    def _key_view(self, k: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(k)
        if k.get("team_id") is not None:
            team = self.teams.get(k["team_id"])
            out["team_alias"] = team["team_alias"] if team else None
        else:
            out["team_alias"] = "None"
        return out

    # ------------------------------------------------------------------ HTTP
    def dispatch(
        self,
        method: str,
        path: str,
        query: Query,
        headers: Mapping[str, str],
        body: bytes,
        raw_query: str,
    ) -> Response:
        if path in ("/health/liveliness", "/health/liveness") and method == "GET":
            return Response.json("I'm alive!")
        if path == "/health/readiness" and method == "GET":
            return Response.json({"status": "healthy", "db": "connected", "litellm_version": "1.106.2"})
        routes: dict[str, dict[str, Callable[[Query, Any, str], Response]]] = {
            "/user/new": {"POST": self._user_new},
            "/user/update": {"POST": self._user_update},
            "/user/info": {"GET": self._user_info},
            "/v2/user/info": {"GET": self._user_info_v2},
            "/user/list": {"GET": self._user_list},
            "/user/delete": {"POST": self._user_delete},
            "/team/new": {"POST": self._team_new},
            "/team/list": {"GET": self._team_list},
            "/team/info": {"GET": self._team_info},
            "/team/member_add": {"POST": self._team_member_add},
            "/team/member_delete": {"POST": self._team_member_delete},
            "/team/delete": {"POST": self._team_delete},
            "/key/generate": {"POST": self._key_generate},
            "/key/list": {"GET": self._key_list},
            "/key/info": {"GET": self._key_info},
            "/key/block": {"POST": self._key_block},
            "/key/unblock": {"POST": self._key_unblock},
            "/key/delete": {"POST": self._key_delete},
            "/v1/models": {"GET": self._models},
            "/models": {"GET": self._models},
        }
        route = routes.get(path)
        if route is None:
            return Response.json({"detail": "Not Found"}, 404)
        handler = route.get(method)
        if handler is None:
            return Response.json({"detail": "Method Not Allowed"}, 405)
        denied = self._auth(headers)
        if denied is not None:
            return denied
        payload: Any = None
        if method == "POST":
            if not body.strip():
                return validation_error([("missing", ["body"], "Field required")])
            try:
                payload = json.loads(body)
            except ValueError:
                return validation_error([("json_invalid", ["body", 0], "JSON decode error")])
            if not isinstance(payload, dict):
                return validation_error(
                    [("model_attributes_type", ["body"], "Input should be a valid dictionary")]
                )
        try:
            return handler(query, payload, raw_query)
        except _HttpError as exc:
            return exc.response

    def _auth(self, headers: Mapping[str, str]) -> Response | None:
        auth = headers.get("authorization") or headers.get("x-litellm-api-key")
        if not auth:
            return proxy_error(401, "Authentication Error, No api key passed in.", "auth_error", "None")
        scheme, _, rest = auth.partition(" ")
        key = rest.strip() if scheme.lower() == "bearer" else auth.strip()
        if key == self.master_key:
            return None
        if not key:
            return proxy_error(401, "Authentication Error, No api key passed in.", "auth_error", "None")
        return proxy_error(
            401,
            "Authentication Error, Invalid proxy server token passed. Received API Key = "
            f"{key[:3]}..., Key Hash (Token) ={hash_token(key)}. Unable to find token in cache or "
            "`LiteLLM_VerificationTokenTable`",
            "token_not_found_in_db",
            "key",
        )

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _validate_body(body: dict[str, Any]) -> None:
        errors: list[tuple[str, list[str | int], str]] = []
        for k, v in list(body.items()):
            if v is None:
                continue
            loc: list[str | int] = ["body", k]
            if k == "user_role":
                if v not in VALID_ROLES:
                    errors.append(("literal_error", loc, ROLE_MSG))
            elif k in _FLOATS:
                if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                    errors.append(("float_type", loc, "Input should be a valid number"))
                else:
                    try:
                        body[k] = float(v)
                    except ValueError:
                        errors.append(
                            (
                                "float_parsing",
                                loc,
                                "Input should be a valid number, unable to parse string as a number",
                            )
                        )
            elif k in _INTS:
                if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                    errors.append(("int_type", loc, "Input should be a valid integer"))
                else:
                    try:
                        f = float(v)
                        if f != int(f):
                            raise ValueError
                        body[k] = int(f)
                    except (ValueError, OverflowError):
                        errors.append(
                            (
                                "int_parsing",
                                loc,
                                "Input should be a valid integer, unable to parse string as an integer",
                            )
                        )
            elif k in _STRS:
                if not isinstance(v, str):
                    errors.append(("string_type", loc, "Input should be a valid string"))
            elif k in _LISTS:
                if not isinstance(v, list):
                    errors.append(("list_type", loc, "Input should be a valid list"))
            elif k in _DICTS:
                if not isinstance(v, dict):
                    errors.append(("dict_type", loc, "Input should be a valid dictionary"))
            elif k in _BOOLS:
                if v in ("true", "false", 0, 1):
                    body[k] = v in ("true", 1)
                elif not isinstance(v, bool):
                    errors.append(("bool_type", loc, "Input should be a valid boolean"))
            elif k == "teams":
                if not isinstance(v, list):
                    errors.append(("list_type", loc, "Input should be a valid list"))
                else:
                    for i, t in enumerate(v):
                        if isinstance(t, str):
                            continue
                        if not (isinstance(t, dict) and isinstance(t.get("team_id"), str)):
                            errors.append(("string_type", ["body", k, i], "Input should be a valid string"))
                        elif t.get("user_role", "user") not in ("user", "admin"):
                            errors.append(
                                (
                                    "literal_error",
                                    ["body", k, i, "user_role"],
                                    "Input should be 'admin' or 'user'",
                                )
                            )
        if errors:
            raise _HttpError(validation_error(errors))

    # ------------------------------------------------------------------ /user/*
    def _user_new(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        self._validate_body(body)
        user_id = body.get("user_id")
        email = body.get("user_email")
        existing = self.users.get(user_id.strip()) if isinstance(user_id, str) and user_id.strip() else None
        if existing is not None and self.version == "new":
            return proxy_error(409, str({"error": f"User with id {existing['user_id']} already exists"}))
        if isinstance(email, str) and email.strip():
            other = self._user_by_email(email, insensitive=True)
            if other is not None and (existing is None or other["user_id"] != existing["user_id"]):
                status = 409 if self.version == "new" else 400
                return proxy_error(
                    status, str({"error": f"User with email {other['user_email']} already exists"})
                )
        data = dict(body)
        auto_create_key = data.pop("auto_create_key", True)
        if auto_create_key is None:
            auto_create_key = True
        if data.get("user_id") is None:
            data["user_id"] = str(uuid.uuid4())
        defaults = self.default_internal_user_params
        if defaults and data.get("user_role") != "proxy_admin":
            for k, v in defaults.items():
                if k in ("available_teams", "teams"):
                    continue
                if data.get(k) is None or (k == "models" and data.get(k) == []):
                    data[k] = json.loads(json.dumps(v))
        if data.get("user_role") == "internal_user":
            if self.max_internal_user_budget is not None and data.get("max_budget") is None:
                data["max_budget"] = self.max_internal_user_budget
            if self.internal_user_budget_duration is not None and data.get("budget_duration") is None:
                data["budget_duration"] = self.internal_user_budget_duration
        teams_req = body.get("teams")
        if teams_req is None and defaults.get("teams") is not None:
            teams_req = defaults["teams"]
        uid = str(data["user_id"])
        fields = {k: data[k] for k in _ROW_WRITABLE if k in data}
        if "metadata" not in data:
            fields["metadata"] = {}
        joined: list[str] | None = None
        if existing is not None:
            # version "old": the insert is an upsert with `update={}`: nothing changes on the row
            row_view = self._new_row(uid, fields)
            joined = list(teams_req) if isinstance(teams_req, list) and teams_req else None
            joined = [t if isinstance(t, str) else t["team_id"] for t in joined] if joined else None
        else:
            row = self._new_row(uid, fields)
            self.users[uid] = row
            if teams_req is not None:
                joined = []
                for t in teams_req:
                    team_id = t if isinstance(t, str) else t.get("team_id")
                    role = "user" if isinstance(t, str) else t.get("user_role", "user")
                    team = self.teams.get(str(team_id))
                    if team is None or role != "user":  # missing team / premium admin: skipped (logged)
                        continue
                    self._join_team(row, team, "user", email=row["user_email"])
                    joined.append(team["team_id"])
            row_view = row
            if self._email_index is not None and row["user_email"] is not None:
                self._email_index.setdefault(row["user_email"].lower(), []).append(uid)
            self._changed(emails_kept=True)
        key = ""
        if auto_create_key:
            key_fields = {k: data.get(k) for k in ("models", "key_alias", "duration")}
            key, _ = self._create_key(uid, key_fields)
        return Response.json(self._new_user_response(row_view, data, key, joined))

    def _new_user_response(
        self, row: Mapping[str, Any], data: Mapping[str, Any], key: str, teams: list[str] | None
    ) -> dict[str, Any]:
        with_key = bool(key)
        now = self.now() if with_key else None
        return {
            "key_alias": data.get("key_alias"),
            "duration": data.get("duration"),
            "models": row["models"],
            "spend": 0.0,
            "max_budget": row["max_budget"],
            "user_id": row["user_id"],
            "team_id": None,
            "agent_id": None,
            "max_parallel_requests": row["max_parallel_requests"],
            "metadata": data["metadata"] if "metadata" in data else row["metadata"],  # as sent
            "tpm_limit": row["tpm_limit"],
            "rpm_limit": row["rpm_limit"],
            "budget_duration": row["budget_duration"],
            "budget_limits": None,
            "allowed_cache_controls": row["allowed_cache_controls"],
            "config": {},
            "permissions": {},
            "model_max_budget": {} if with_key else None,
            "budget_fallbacks": {} if with_key else None,
            "model_rpm_limit": None,
            "model_tpm_limit": None,
            "mcp_rpm_limit": None,
            "tag_rpm_limit": None,
            "guardrails": None,
            "policies": None,
            "prompts": None,
            "blocked": None,
            "aliases": {},
            "object_permission": None,
            "key": key,
            "tpd_limit": None,
            "default_estimated_output_tokens": None,
            "default_estimated_output_tokens_per_model": None,
            "budget_id": None,
            "end_user_budget_id": None,
            "tags": None,
            "disable_global_guardrails": None,
            "enable_prompt_caching": None,
            "throttle_on_budget_exceeded": None,
            "enforced_params": None,
            "allowed_routes": [],
            "allowed_passthrough_routes": None,
            "denied_passthrough_routes": None,
            "allowed_vector_store_indexes": None,
            "rpm_limit_type": None,
            "tpm_limit_type": None,
            "router_settings": dict(_ROUTER_SETTINGS) if with_key else None,
            "access_group_ids": [] if with_key else None,
            "key_name": f"sk-...{key[-4:]}" if with_key else None,
            "key_type": None,
            "expires": None,
            "token_id": None,
            "organization_id": None,
            "project_id": None,
            "litellm_budget_table": None,
            "token": None,
            "created_by": None,
            "updated_by": None,
            "created_at": now,
            "updated_at": now,
            "user_email": row["user_email"],
            "user_role": row["user_role"],
            "teams": teams,
            "user_alias": row["user_alias"],
        }

    def _user_update(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        self._validate_body(body)
        user_id = body.get("user_id")
        email = body.get("user_email")
        if not user_id and not email:
            return proxy_error(
                400,
                "Authentication Error, Either user_id or user_email must be provided",
                "auth_error",
                "None",
            )
        changes: dict[str, Any] = {}
        for k, v in body.items():
            # only sent fields change; [] and {} are dropped; null clears the budget and limit columns
            # and is dropped for the rest (verified on 1.106.2, see tests/quirks.py)
            if k in _CLEARED_BY_NULL or (k in _ROW_WRITABLE and v is not None and v != [] and v != {}):
                changes[k] = v
        if body.get("user_role") == "internal_user":
            if "max_budget" not in changes and self.max_internal_user_budget is not None:
                changes["max_budget"] = self.max_internal_user_budget
            if "budget_duration" not in changes and self.internal_user_budget_duration is not None:
                changes["budget_duration"] = self.internal_user_budget_duration
        created = False
        if user_id:
            row = self.users.get(user_id)
            if row is None:  # upsert: the user is created from the sent fields
                row = self._new_row(user_id, {})
                self.users[user_id] = row
                created = True
        else:
            row = self._user_by_email(str(email), insensitive=False)
            created = row is None
            if row is None:
                new_id = str(uuid.uuid4())
                row = self._new_row(new_id, {"user_email": email})
                self.users[new_id] = row
        for k, v in changes.items():
            if k == "max_budget":
                row[k] = float(v) if v is not None else None
            elif isinstance(v, (list, dict)):
                row[k] = jsonb(v)
            else:
                row[k] = v
        if changes.get("budget_duration") is not None:
            row["budget_reset_at"] = budget_reset_at(str(changes["budget_duration"]), self.clock())
        row["updated_at"] = self.now()
        kept = "user_email" not in changes and not created
        self._changed(emails_kept=kept, row=None if created else row["user_id"])
        return Response.json({"user_id": row["user_id"], "data": self._update_row(row)})

    def _user_info(self, query: Query, body: Any, raw_query: str) -> Response:
        values = [v for k, v in query if k == "user_id"]
        user_id = values[-1] if values else None
        if user_id is not None and " " in user_id:  # '+' re-parsed from the raw query, as the proxy does
            m = re.search(r"user_id=([^&]*)", raw_query)
            if m:
                user_id = unquote(m.group(1))
        if user_id is None:
            admin = self.users.get(DEFAULT_USER_ID)
            teams = sorted(self.teams.values(), key=lambda t: t["team_alias"] or "")
            return Response.json(
                {
                    "user_id": DEFAULT_USER_ID,
                    "user_info": self._admin_info_row(admin) if admin is not None else None,
                    "keys": [self._key_view(k) for k in self.keys.values()],
                    "teams": teams,
                }
            )
        row = self.users.get(user_id)
        if row is None:
            if self.version == "old":
                return Response.json({"user_id": user_id, "user_info": {"spend": 0}, "keys": [], "teams": []})
            return proxy_error(404, f"User {user_id} not found")
        team_ids = [
            t["team_id"]
            for t in self.teams.values()
            if any(m["user_id"] == user_id for m in t["members_with_roles"])
        ]
        team_ids += [t for t in row["teams"] if t in self.teams and t not in team_ids]
        teams = [
            {**self.teams[t], "team_memberships": [self._membership(user_id, t)], "keys": []}
            for t in team_ids
        ]
        teams.sort(key=lambda t: t["team_alias"] or "")
        keys = [self._key_view(k) for k in self.keys.values() if k["user_id"] == user_id]
        return Response.json(
            {"user_id": user_id, "user_info": self._info_row(row), "keys": keys, "teams": teams}
        )

    def _user_info_v2(self, query: Query, body: Any, raw_query: str) -> Response:
        values = [v for k, v in query if k == "user_id"]
        user_id = values[-1] if values else DEFAULT_USER_ID
        row = self.users.get(user_id)
        if row is None:
            return proxy_error(404, f"User not found: {user_id}")
        fields = (
            "user_id",
            "user_email",
            "user_alias",
            "user_role",
            "spend",
            "max_budget",
            "models",
            "budget_duration",
            "budget_reset_at",
            "metadata",
            "created_at",
            "updated_at",
            "sso_user_id",
            "teams",
        )
        return Response.json({f: row[f] for f in fields})

    def _user_list(self, query: Query, body: Any, raw_query: str) -> Response:
        params: dict[str, str] = {}
        for k, v in query:
            params[k] = v
        errors: list[tuple[str, list[str | int], str]] = []

        def int_param(name: str, default: int, lo: int, hi: int | None) -> int:
            raw = params.get(name)
            if raw is None:
                return default
            try:
                n = int(raw.strip())
            except ValueError:
                errors.append(
                    (
                        "int_parsing",
                        ["query", name],
                        "Input should be a valid integer, unable to parse string as an integer",
                    )
                )
                return default
            if n < lo:
                errors.append(
                    ("greater_than_equal", ["query", name], f"Input should be greater than or equal to {lo}")
                )
            elif hi is not None and n > hi:
                errors.append(
                    ("less_than_equal", ["query", name], f"Input should be less than or equal to {hi}")
                )
            return n

        page = int_param("page", 1, 1, None)
        page_size = int_param("page_size", 25, 1, 100)
        if errors:
            return validation_error(errors)
        sort_by = params.get("sort_by")
        sort_order = params.get("sort_order", "asc")
        if sort_by is not None:
            if sort_by not in SORT_COLUMNS:
                return detail_error(400, f"Invalid sort column. Must be one of: {', '.join(SORT_COLUMNS)}")
            if sort_order.lower() not in ("asc", "desc"):
                return detail_error(400, "Invalid sort order. Must be 'asc' or 'desc'")
            order = (sort_by, sort_order.lower())
        else:
            order = ("created_at", "desc")
        filters = tuple(
            params.get(k)
            for k in ("role", "user_ids", "user_email", "team", "sso_user_ids", "organization_ids")
        )
        listing = self._listing(filters, order)
        total = len(listing.ids)
        start = (page - 1) * page_size
        end = min(start + page_size, total)
        ids = self._page_ids(listing, start, end) if start < total else []
        envelope = {
            "total": total,
            "page": page,
            "page_size": page_size,
            "total_pages": math.ceil(total / page_size),
        }
        rest = json.dumps(envelope, separators=(",", ":")).encode()
        # The same bytes Response.json would give, with each row encoded once until it changes.
        rows = b",".join(map(self._encoded_list_row, ids))
        return Response(200, b'{"users":[' + rows + b"]," + rest[1:])

    def _encoded_list_row(self, user_id: str) -> bytes:
        key_count = self._key_count[user_id]
        hit = self._list_rows.get(user_id)
        if hit is not None and hit[0] == key_count:
            return hit[1]
        data = json.dumps(self._list_row(self.users[user_id]), separators=(",", ":"), ensure_ascii=False)
        encoded = data.encode("utf-8")
        self._list_rows[user_id] = (key_count, encoded)
        return encoded

    def _listing(self, filters: tuple[str | None, ...], order: tuple[str, str]) -> _Listing:
        key = (filters, order)
        hit = self._listings.get(key)
        if hit is not None:
            self._listings.move_to_end(key)
            return hit
        role, user_ids, user_email, team, sso_ids, org_ids = filters
        rows: Iterable[dict[str, Any]] = self.users.values()
        if role:
            rows = [r for r in rows if r["user_role"] == role]
        if user_ids:
            wanted = [u.strip() for u in user_ids.split(",") if u.strip()]
            if len(wanted) == 1:
                needle = wanted[0].lower()
                rows = [r for r in rows if needle in r["user_id"].lower()]
            else:
                wanted_set = set(wanted)
                rows = [r for r in rows if r["user_id"] in wanted_set]
        if user_email is not None:
            needle = user_email.lower()
            rows = [r for r in rows if r["user_email"] is not None and needle in r["user_email"].lower()]
        if team is not None:
            rows = [r for r in rows if team in r["teams"]]
        if sso_ids is not None:
            sso_set = {s.strip() for s in sso_ids.split(",") if s.strip()}
            rows = [r for r in rows if r["sso_user_id"] in sso_set]
        if org_ids:
            rows = []  # organizations are Enterprise-only: no user has a membership here
        column, direction = order
        desc = direction == "desc"

        def sort_key(r: Mapping[str, Any]) -> tuple[int, Any]:
            v = r[column]
            # PostgreSQL: NULLs last ascending, first descending
            return (1, 0) if v is None else (0, v)

        ordered = sorted(rows, key=sort_key, reverse=desc)
        ids = [r["user_id"] for r in ordered]
        keys = [sort_key(r) for r in ordered]
        n = len(ids)
        group_start = [0] * n
        group_end = [0] * n
        i = 0
        while i < n:
            j = i + 1
            while j < n and keys[j] == keys[i]:
                j += 1
            for p in range(i, j):
                group_start[p] = i
                group_end[p] = j
            i = j
        listing = _Listing(ids, group_start, group_end)
        self._listings[key] = listing
        while len(self._listings) > 32:
            self._listings.popitem(last=False)
        return listing

    def _page_ids(self, listing: _Listing, start: int, end: int) -> list[str]:
        """The ids at positions [start, end). Without a unique sort key, rows that tie come back in
        an order that differs per request (LiteLLM #15762: offset paging repeats and skips users)."""
        if not self.unstable_ties:
            return listing.ids[start:end]
        salt = self._rng.getrandbits(32)
        perms: dict[int, tuple[int, int]] = {}
        out: list[str] = []
        for p in range(start, end):
            gs, ge = listing.group_start[p], listing.group_end[p]
            size = ge - gs
            if size == 1:
                out.append(listing.ids[p])
                continue
            ab = perms.get(gs)
            if ab is None:
                r = random.Random(salt ^ (gs * 2654435761))
                a = r.randrange(1, size) if size > 2 else 1
                while math.gcd(a, size) != 1:
                    a = r.randrange(1, size)
                ab = (a, r.randrange(size))
                perms[gs] = ab
            a, b = ab
            out.append(listing.ids[gs + (a * (p - gs) + b) % size])
        return out

    def _user_delete(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        user_ids = body.get("user_ids")
        if user_ids is None:
            return detail_error(400, "No user id passed in")
        if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
            return validation_error([("list_type", ["body", "user_ids"], "Input should be a valid list")])
        for u in user_ids:
            if u not in self.users:
                return detail_error(404, f"User not found, passed user_id={u}")
        deleted = 0
        for u in dict.fromkeys(user_ids):
            row = self.users.pop(u)
            deleted += 1
            for team in self.teams.values():
                before = len(team["members_with_roles"])
                team["members_with_roles"] = [m for m in team["members_with_roles"] if m["user_id"] != u]
                if len(team["members_with_roles"]) != before:
                    team["updated_at"] = self.now()
            for token in [t for t, k in self.keys.items() if k["user_id"] == row["user_id"]]:
                self._delete_key(token)
        self._changed()
        return Response.json(deleted)

    # ------------------------------------------------------------------ /team/*
    def _team_new(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        self._validate_body(body)
        team_id = body.get("team_id") or str(uuid.uuid4())
        if team_id in self.teams:
            return proxy_error(
                400, str({"error": f"Team id = {team_id} already exists. Please use a different team id."})
            )
        members = list(body.get("members_with_roles") or [])
        for m in members:
            if not isinstance(m, dict) or m.get("role", "user") not in ("user", "admin"):
                return validation_error(
                    [("literal_error", ["body", "members_with_roles"], "Input should be 'admin' or 'user'")]
                )
        if not any(m.get("user_id") == DEFAULT_USER_ID for m in members):
            members.append({"user_id": DEFAULT_USER_ID, "user_email": None, "role": "admin"})
        team = self._new_team(team_id, {**body, "members_with_roles": members})
        self.teams[team_id] = team
        for m in team["members_with_roles"]:
            uid = m.get("user_id")
            if not uid:
                continue
            user = self.users.get(uid)
            if user is None:
                user = self._new_row(uid, {"user_role": "internal_user"})
                self.users[uid] = user
            if team_id not in user["teams"]:
                user["teams"].append(team_id)
        self._changed()
        return Response.json(team)

    def _team_list(self, query: Query, body: Any, raw_query: str) -> Response:
        user_id = next((v for k, v in query if k == "user_id"), None)
        out = []
        for t in self.teams.values():
            if user_id is not None and not any(m["user_id"] == user_id for m in t["members_with_roles"]):
                continue
            memberships = [self._membership(m["user_id"], t["team_id"]) for m in t["members_with_roles"]]
            keys = [self._key_view(k) for k in self.keys.values() if k["team_id"] == t["team_id"]]
            out.append({**t, "team_memberships": memberships, "keys": keys})
        return Response.json(out)

    def _team_info(self, query: Query, body: Any, raw_query: str) -> Response:
        team_id = next((v for k, v in query if k == "team_id"), None)
        if team_id is None:
            return proxy_error(422, str({"message": "Malformed request. No team id passed in."}))
        team = self.teams.get(team_id)
        if team is None:
            return proxy_error(404, str({"message": f"Team not found, passed team id: {team_id}."}))
        members = []
        for m in team["members_with_roles"]:
            user = self.users.get(m["user_id"] or "")
            members.append({**m, "user_alias": user["user_alias"] if user else None})
        info = {
            **team,
            "members_with_roles": members,
            "team_member_budget_table": None,
            "access_group_models": None,
            "access_group_mcp_server_ids": None,
            "access_group_agent_ids": None,
            "access_group_details": None,
            "organization_models": None,
            "model_max_budget_usage": {},
            "caller_edit_access": {"kind": "unrestricted"},
        }
        memberships = [
            {**self._membership(m["user_id"], team_id), "budget_source": "none"}
            for m in team["members_with_roles"]
        ]
        keys = [self._key_view(k) for k in self.keys.values() if k["team_id"] == team_id]
        return Response.json(
            {"team_id": team_id, "team_info": info, "keys": keys, "team_memberships": memberships}
        )

    def _parse_members(self, raw: Any) -> list[dict[str, Any]]:
        items = raw if isinstance(raw, list) else [raw]
        members: list[dict[str, Any]] = []
        errors: list[tuple[str, list[str | int], str]] = []
        for i, m in enumerate(items):
            loc: list[str | int] = ["body", "member"] + ([i] if isinstance(raw, list) else [])
            if not isinstance(m, dict):
                errors.append(("model_type", loc, "Input should be a valid dictionary or instance of Member"))
                continue
            if m.get("role") not in ("user", "admin"):
                errors.append(("literal_error", [*loc, "role"], "Input should be 'admin' or 'user'"))
                continue
            if not m.get("user_id") and not m.get("user_email"):
                errors.append(
                    ("value_error", loc, "Value error, Either user_id or user_email must be provided")
                )
                continue
            members.append(
                {"user_id": m.get("user_id"), "user_email": m.get("user_email"), "role": m["role"]}
            )
        if errors:
            raise _HttpError(validation_error(errors))
        return members

    def _team_member_add(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        team_id = body.get("team_id")
        if body.get("member") is None:
            if team_id is None:
                return detail_error(400, "No team id passed in")
            return detail_error(400, "No member/members passed in")
        members = self._parse_members(body["member"])
        if team_id is None:
            return detail_error(400, "No team id passed in")
        is_list = isinstance(body["member"], list)
        for m in members:
            if m["role"] == "admin":
                got = f"user_id={m['user_id']!r} user_email={m['user_email']!r} role='admin'"
                msg = (
                    f"Assigning team admins is a premium feature. Got={got}. {NOT_PREMIUM}. "
                    if is_list
                    else f"Assigning team admins is a premium feature. {NOT_PREMIUM}"
                )
                return detail_error(400, msg)
        team = self.teams.get(team_id)
        if team is None:
            return detail_error(
                404, f"Team doesn't exist in db. Team={team_id}. Create team via `/team/new` call."
            )

        def resolve(m: Mapping[str, Any]) -> dict[str, Any] | None:
            if m["user_id"]:
                return self.users.get(m["user_id"])
            return self._user_by_email(m["user_email"], insensitive=False)

        def is_member(m: Mapping[str, Any]) -> bool:
            user = resolve(m)
            uid = user["user_id"] if user else m["user_id"]
            return any(
                (uid is not None and x["user_id"] == uid)
                or (m["user_email"] is not None and x["user_email"] == m["user_email"])
                for x in team["members_with_roles"]
            )

        fresh = [m for m in members if not is_member(m)]
        if not fresh:
            m = members[0]
            existing = ", ".join(_member_repr(x) for x in team["members_with_roles"])
            return proxy_error(
                400,
                f"User already in team. Member: user_id={m['user_id']}, user_email={m['user_email']}. "
                f"Existing members=[{existing}]",
                "team_member_already_in_team",
                "member",
            )
        updated_users: list[dict[str, Any]] = []
        memberships: list[dict[str, Any]] = []
        for m in fresh:
            user = resolve(m)
            if user is None:
                uid = m["user_id"] or str(uuid.uuid4())
                user = self._new_row(uid, {"user_role": "internal_user", "user_email": m["user_email"]})
                self.users[uid] = user
                self._join_team(user, team, m["role"], email=m["user_email"])
                updated_users.append(self._list_row(user, key_count=False))
            else:
                updated_users.append(self._list_row(_copy(user), key_count=False))
                self._join_team(user, team, m["role"], email=m["user_email"])
            memberships.append(self._membership(user["user_id"], team_id))
        self._changed()
        return Response.json(
            {**team, "updated_users": updated_users, "updated_team_memberships": memberships}
        )

    def _team_member_delete(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        team_id = body.get("team_id")
        user_id = body.get("user_id")
        email = body.get("user_email")
        if team_id is None:
            return detail_error(400, "No team id passed in")
        if user_id is None and email is None:
            return detail_error(400, "Either user_id or user_email needs to be passed in")
        team = self.teams.get(team_id)
        if team is None:
            return detail_error(400, f"Team id={team_id} does not exist in db")
        keep = []
        found = False
        for m in team["members_with_roles"]:
            if (user_id is not None and m["user_id"] == user_id) or (
                email is not None and m["user_email"] is not None and m["user_email"] == email
            ):
                found = True
                continue
            keep.append(m)
        if not found:
            return detail_error(400, "User not found in team")
        team["members_with_roles"] = keep
        team["updated_at"] = self.now()
        for row in self.users.values():
            matches = row["user_id"] == user_id if user_id is not None else row["user_email"] == email
            if matches and team_id in row["teams"]:
                row["teams"].remove(team_id)
                row["updated_at"] = self.now()
        self._changed()
        return Response.json(team)

    def _team_delete(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        team_ids = body.get("team_ids")
        if team_ids is None:
            return detail_error(400, "No team id passed in")
        if not isinstance(team_ids, list):
            return validation_error([("list_type", ["body", "team_ids"], "Input should be a valid list")])
        for t in team_ids:
            if t not in self.teams:
                return detail_error(404, f"Team not found, passed team_id={t}")
        for t in team_ids:
            self.teams.pop(t, None)
            for token in [tok for tok, k in self.keys.items() if k["team_id"] == t]:
                self._delete_key(token)
            for row in self.users.values():
                if t in row["teams"]:
                    row["teams"].remove(t)
        self._changed()
        return Response.json({"deleted_teams": team_ids})

    def _models(self, query: Query, body: Any, raw_query: str) -> Response:
        # As 1.106.2 answers (probed by hand): the OpenAI list shape.
        data = [
            {"id": m, "object": "model", "created": 1677610602, "owned_by": "openai"} for m in self.models
        ]
        return Response.json({"data": data, "object": "list"})

    # ------------------------------------------------------------------ /key/* (minimal)
    def _key_generate(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        self._validate_body(body)
        team_id = body.get("team_id")
        if team_id is not None and team_id not in self.teams:
            return proxy_error(400, f"Team not found for team_id={team_id}", "bad_request_error", "team_id")
        key, row = self._create_key(body.get("user_id"), body)
        return Response.json(
            {
                "key_alias": row["key_alias"],
                "duration": body.get("duration"),
                "models": row["models"],
                "spend": 0.0,
                "max_budget": row["max_budget"],
                "user_id": row["user_id"],
                "team_id": row["team_id"],
                "max_parallel_requests": row["max_parallel_requests"],
                "metadata": row["metadata"],
                "tpm_limit": row["tpm_limit"],
                "rpm_limit": row["rpm_limit"],
                "budget_duration": row["budget_duration"],
                "allowed_cache_controls": [],
                "config": row["config"],
                "permissions": {},
                "aliases": row["aliases"],
                "blocked": None,
                "key": key,
                "key_name": row["key_name"],
                "expires": row["expires"],
                "token_id": row["token"],
                "token": row["token"],
                "created_by": None,
                "updated_by": None,
                "created_at": self.now(),
                "updated_at": self.now(),
            }
        )

    def _key_list(self, query: Query, body: Any, raw_query: str) -> Response:
        params = dict(query)
        rows = list(self.keys.values())
        if "user_id" in params:
            rows = [k for k in rows if k["user_id"] == params["user_id"]]
        if "team_id" in params:
            rows = [k for k in rows if k["team_id"] == params["team_id"]]
        if "key_alias" in params:
            rows = [k for k in rows if k["key_alias"] == params["key_alias"]]
        try:
            page = int(params.get("page", "1"))
            size = int(params.get("size", "10"))
        except ValueError:
            return validation_error([("int_parsing", ["query", "page"], "Input should be a valid integer")])
        if page < 1 or not 1 <= size <= 100:
            return validation_error([("greater_than_equal", ["query", "page"], "Input should be >= 1")])
        rows.sort(key=lambda k: k["created_at"], reverse=True)
        chunk = rows[(page - 1) * size : page * size]
        full = params.get("return_full_object", "false").lower() == "true"
        return Response.json(
            {
                "keys": [self._key_view(k) for k in chunk] if full else [k["token"] for k in chunk],
                "total_count": len(rows),
                "current_page": page,
                "total_pages": math.ceil(len(rows) / size),
            }
        )

    def _key_info(self, query: Query, body: Any, raw_query: str) -> Response:
        key = next((v for k, v in query if k == "key"), None)
        row = self._find_key(key) if key else None
        if row is None:
            return proxy_error(404, str({"error": f"No key found, passed key={key}"}))
        return Response.json({"key": key, "info": self._key_view(row)})

    def _set_blocked(self, body: dict[str, Any], blocked: bool) -> Response:
        key = body.get("key")
        row = self._find_key(key) if isinstance(key, str) else None
        if row is None:
            # 1.106.2 answers an unknown hashed token with exactly this (probed by hand, tests/quirks.py)
            return proxy_error(404, "Key not found.", "not_found_error", "key")
        row["blocked"] = blocked
        row["updated_at"] = self.now().rstrip("Z")
        return Response.json(self._key_view(row))

    def _key_block(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        return self._set_blocked(body, True)

    def _key_unblock(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        return self._set_blocked(body, False)

    def _key_delete(self, query: Query, body: dict[str, Any], raw_query: str) -> Response:
        keys = body.get("keys") or []
        aliases = body.get("key_aliases") or []
        if not isinstance(keys, list) or not isinstance(aliases, list):
            return validation_error([("list_type", ["body", "keys"], "Input should be a valid list")])
        tokens: list[str] = []
        for k in keys:
            row = self._find_key(str(k))
            if row is None:
                return proxy_error(404, str({"error": f"Key not found: {k}"}), "bad_request_error", "keys")
            tokens.append(row["token"])
        for alias in aliases:
            matched = [t for t, r in self.keys.items() if r["key_alias"] == alias]
            if not matched:
                return proxy_error(
                    404,
                    str({"error": f"Key not found for alias: {alias}"}),
                    "bad_request_error",
                    "key_aliases",
                )
            tokens += matched
        for t in tokens:
            self._delete_key(t)
        return Response.json({"deleted_keys": keys + aliases})
