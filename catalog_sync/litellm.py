"""LiteLLM admin API client: list, read, create and update users, and manage team memberships.

Every write targets one user; callers decide what to write. The server behaviours handled here are described
in docs/litellm-api.md and referenced by section where the code depends on them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import msgspec

from .http import ApiError, ApiSession, ResponseError, describe
from .model import LiteLLMSnapshot, LiteLLMUser
from .progress import Progress

PAGE_SIZE = 100  # /user/list maximum; 101 is a 422 (docs/litellm-api.md#user-list-paging)


def _bad(endpoint: str, method: str, message: str) -> ResponseError:
    return ResponseError("litellm", method, endpoint, None, message)


class _TeamRef(msgspec.Struct):
    team_id: str


class _Row(msgspec.Struct):
    """The fields of a LiteLLM user row the job reads, as their JSON types; every other field is skipped.

    msgspec checks the types while it decodes (a 100-row /user/list page in 0.4 ms against 1.0 ms for plain
    JSON decoding plus per-field checks) and names the path of whatever is wrong. Nulls are allowed
    everywhere but `user_id`.
    """

    user_id: Annotated[str, msgspec.Meta(min_length=1)]
    user_email: str | None = None
    user_alias: str | None = None
    user_role: str | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    models: list[str] | None = None
    tpm_limit: int | float | None = None  # an integral float is read as the integer
    rpm_limit: int | float | None = None
    metadata: dict[str, Any] | None = None
    teams: list[str | _TeamRef] | None = None  # ids; {team_id} objects read as their id
    spend: float | None = None
    key_count: int | float | None = None


class _UserListPage(msgspec.Struct):
    users: list[_Row]
    total: Any = None
    total_pages: Any = None


_PAGE = msgspec.json.Decoder(_UserListPage)


def _typed_page(content: bytes) -> _UserListPage | None:
    """A /user/list body decoded and checked in one pass, or None for anything else (NaN, a wrong type,
    another shape): the generic decoding then accepts it or says exactly what is wrong."""
    try:
        return _PAGE.decode(content)
    except msgspec.MsgspecError:
        return None


class _RowError(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")


def _finite(row: _Row, field: str) -> float | None:
    value: float | None = getattr(row, field)
    if value is None or math.isfinite(value):
        return value
    raise _RowError(field, f"should be a finite number or null, got {value!r}")


def _integral(row: _Row, field: str) -> int | None:
    value: int | float | None = getattr(row, field)
    if value is None or isinstance(value, int):  # msgspec gives int or float here, never bool
        return value
    if math.isfinite(value) and value.is_integer():
        return int(value)
    raise _RowError(field, f"should be an integer or null, got {value!r}")


def _user(row: _Row) -> LiteLLMUser:
    """The domain user of a type-checked row; _RowError for a value its JSON type alone does not rule out."""
    teams = row.teams or ()
    return LiteLLMUser(
        user_id=row.user_id,
        user_email=row.user_email,
        user_alias=row.user_alias,
        user_role=row.user_role,
        max_budget=_finite(row, "max_budget"),
        budget_duration=row.budget_duration,
        models=tuple(row.models) if row.models else (),
        tpm_limit=_integral(row, "tpm_limit"),
        rpm_limit=_integral(row, "rpm_limit"),
        metadata=row.metadata if row.metadata is not None else {},  # decoded for this row alone: no copy
        teams=tuple(t if isinstance(t, str) else t.team_id for t in teams),
        spend=_finite(row, "spend") or 0.0,
        key_count=_integral(row, "key_count"),
    )


def _users(rows: list[_Row], endpoint: str, method: str = "GET") -> list[LiteLLMUser]:
    users: list[LiteLLMUser] = []
    for row in rows:
        try:
            users.append(_user(row))
        except _RowError as exc:
            raise _bad(endpoint, method, f"user {row.user_id!r}: {exc}") from None
    return users


def parse_user_row(row: Any, endpoint: str, *, method: str = "GET") -> LiteLLMUser:
    """A user row from /user/list, /user/info (`user_info`), /user/update (`data`) or /user/new (flat).

    Tolerates nulls (models/teams -> (), metadata -> {}, spend -> 0); anything of the wrong type is a
    ResponseError naming the endpoint and the field, since building a plan on a misread row would be worse
    than stopping.
    """
    if not isinstance(row, dict):  # rows come from JSON: a dict, not the slow ABC check
        raise _bad(endpoint, method, f"expected a user object, got {describe(row)}")
    user_id = row.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise _bad(endpoint, method, f"user row without a string user_id (got {describe(user_id)})")
    try:
        return _users([msgspec.convert(row, _Row)], endpoint, method)[0]
    except msgspec.ValidationError as exc:
        raise _bad(endpoint, method, f"user {user_id!r}: {exc}") from None


def _chunks(items: list[str], size: int, max_chars: int) -> Iterator[list[str]]:
    """Runs of at most `size` items whose comma-joined length stays under `max_chars` (URL length limits)."""
    chunk: list[str] = []
    length = 0
    for item in items:
        if chunk and (len(chunk) == size or length + len(item) + 1 > max_chars):
            yield chunk
            chunk, length = [], 0
        chunk.append(item)
        length += len(item) + 1
    if chunk:
        yield chunk


def _merge(users: dict[str, LiteLLMUser], page: list[LiteLLMUser]) -> int:
    """Adds a page's users; returns how many were already there (the later read is the fresher one)."""
    repeated = 0
    for user in page:
        if user.user_id in users:
            repeated += 1
        users[user.user_id] = user
    return repeated


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class LiteLLMClient:
    """Thread-safe enough for a few workers: one pooled session, stateless methods."""

    def __init__(
        self,
        base_url: str,
        master_key: str,
        *,
        timeout: float = 30,
        verify: bool | str = True,
        retries: int = 3,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        retry_budget: float = 120.0,
        workers: int = 1,
    ) -> None:
        self.workers = workers  # /user/list pages read at once after the first
        self.session = ApiSession(
            "litellm",
            base_url,
            master_key,
            timeout=timeout,
            verify=verify,
            retries=retries,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            retry_budget=retry_budget,
            # Every POST this client sends is safe to repeat: a repeated /user/new is a 409 that the applier
            # resolves by reading the user; updates, team and key calls are idempotent
            # (docs/litellm-api.md#writes-are-safe-to-retry).
            retry_methods=frozenset({"GET", "POST"}),
        )

    def __repr__(self) -> str:
        return f"LiteLLMClient(base_url={self.session.public_url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LiteLLMClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reads ------------------------------------------------------------------------------------

    def list_users(self, progress: Progress | None = None) -> LiteLLMSnapshot:
        """Every user, page by page, plus the ids of all teams.

        /user/list pages can repeat/skip users without a unique sort
        (docs/litellm-api.md#user-list-needs-a-unique-sort): sort by user_id, de-duplicate, and let
        `LiteLLMSnapshot.complete` compare unique ids with `total`.
        """
        before = self.session.total_requests
        path = "/user/list"
        users: dict[str, LiteLLMUser] = {}
        duplicates = 0

        pages_done = 0
        total_pages = 1

        def fetch(page: int) -> tuple[Any, Any, list[LiteLLMUser]]:
            nonlocal pages_done
            # Parsed in the worker, so the raw page is dropped as soon as its users are built.
            result = self._user_list_page(page)
            if progress is not None:
                with lock:
                    pages_done += 1
                    progress("LiteLLM pages", pages_done, total_pages)
            return result

        lock = threading.Lock()
        raw_total, raw_pages, parsed = fetch(1)
        total = _count(raw_total)
        if total is None:
            raise self.session.shape_error("GET", path, "'total' (integer) on page 1", raw_total)
        pages = _count(raw_pages)
        total_pages = pages if pages is not None else math.ceil(total / PAGE_SIZE)
        rest = range(2, total_pages + 1) if parsed else range(0)  # page 1 empty: nothing after it
        if self.workers > 1 and len(rest) > 1:
            # The total is known after page 1, so the other pages can be read at once; with the unique
            # sort by user_id each page holds a fixed slice
            # (docs/litellm-api.md#user-list-needs-a-unique-sort).
            with ThreadPoolExecutor(self.workers, thread_name_prefix="user-list") as pool:
                pages_iter: Iterator[list[LiteLLMUser]] = (p for _, _, p in pool.map(fetch, rest))
                for page_users in itertools.chain([parsed], pages_iter):
                    duplicates += _merge(users, page_users)
        else:
            duplicates += _merge(users, parsed)
            for page in rest:
                _, _, page_users = fetch(page)
                if not page_users:  # a page past the end is a 200 with "users": []
                    break
                duplicates += _merge(users, page_users)
        teams = self.team_ids()
        return LiteLLMSnapshot(
            users=users,
            total=total,
            duplicates=duplicates,
            teams=teams,
            requests=self.session.total_requests - before,
        )

    def _user_list_page(self, page: int, *extra: tuple[str, str]) -> tuple[Any, Any, list[LiteLLMUser]]:
        """One full page of GET /user/list in the unique user_id order: its `total` and `total_pages` as sent
        (unchecked) and its users; a ResponseError when it has no `users` list or a row is misread."""
        path = "/user/list"
        params: list[tuple[str, str | int | float]] = [
            *extra,
            ("page", page),
            ("page_size", PAGE_SIZE),
            ("sort_by", "user_id"),
            ("sort_order", "asc"),
        ]
        body = self.session.get_json(path, params, fast=_typed_page)
        if isinstance(body, _UserListPage):
            return body.total, body.total_pages, _users(body.users, path)
        rows = body.get("users") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise self.session.shape_error("GET", path, "an object with a 'users' list", body)
        return body.get("total"), body.get("total_pages"), [parse_user_row(row, path) for row in rows]

    def team_ids(self) -> frozenset[str]:
        path = "/team/list"
        body = self.session.get_json(path)
        if not isinstance(body, list):  # a bare array (docs/litellm-api.md#teams-list-shape)
            raise self.session.shape_error("GET", path, "a list of teams", body)
        ids: set[str] = set()
        for team in body:
            team_id = team.get("team_id") if isinstance(team, dict) else None
            if not isinstance(team_id, str):
                raise self.session.shape_error("GET", path, "team objects with a string team_id", team)
            ids.add(team_id)
        return frozenset(ids)

    def model_names(self) -> frozenset[str]:
        """The models the proxy serves (GET /v1/models, the OpenAI list shape)."""
        path = "/v1/models"
        body = self.session.get_json(path)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self.session.shape_error("GET", path, "an object with a 'data' list", body)
        names = {m.get("id") for m in data if isinstance(m, dict)}
        return frozenset(n for n in names if isinstance(n, str))

    def _user_info(self, user_id: str) -> dict[str, Any] | None:
        """The /user/info body of one user, or None when it does not exist."""
        if not user_id:
            # /user/info without user_id answers with the caller's own record
            # (docs/litellm-api.md#user-info-without-user-id).
            raise ValueError("user_id must not be empty")
        path = "/user/info"
        try:
            body = self.session.get_json(path, [("user_id", user_id)])
        except ApiError as exc:
            # FastAPI's bare route 404 ({"detail": "Not Found"}) means a wrong base URL, not a missing user.
            if exc.status == 404 and not (exc.message == "Not Found" and exc.error_type is None):
                return None
            raise
        info = body.get("user_info") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            raise self.session.shape_error("GET", path, "an object with 'user_info'", body)
        # LiteLLM <= 1.80 answers a missing user with 200 and {"user_info": {"spend": 0}} (#17437).
        if info.get("user_id") is None:
            return None
        return body  # type: ignore[no-any-return]

    def get_users(self, user_ids: Iterable[str]) -> dict[str, LiteLLMUser | None]:
        """Several users by id: /user/list with `user_ids`, up to a page (100) per request, instead of one
        /user/info each. Several comma-separated values match exactly, one value is a substring match
        (docs/litellm-api.md#user-list-filter-by-ids): rows are kept only for the ids asked for. An id
        holding a comma cannot be sent that way and is read on its own, as is an id left alone in its chunk
        (a substring search)."""
        wanted = sorted(set(user_ids))
        found: dict[str, LiteLLMUser | None] = dict.fromkeys(wanted)
        alone = [u for u in wanted if "," in u]
        for chunk in _chunks([u for u in wanted if "," not in u], PAGE_SIZE, max_chars=4000):
            if len(chunk) == 1:
                alone += chunk
                continue
            _, _, users = self._user_list_page(1, ("user_ids", ",".join(chunk)))
            asked = set(chunk)
            for user in users:
                if user.user_id in asked:
                    found[user.user_id] = user
        for user_id in alone:
            found[user_id] = self.get_user(user_id)
        return found

    def get_user(self, user_id: str) -> LiteLLMUser | None:
        """One user with its team ids, or None when it does not exist."""
        body = self._user_info(user_id)
        if body is None:
            return None
        path = "/user/info"
        user = parse_user_row(body["user_info"], path)
        if user.user_id != user_id:
            # A mis-encoded id ('+' read back as a space) would otherwise silently return someone else.
            raise self.session.shape_error(
                "GET", path, f"the record of {user_id!r}", f"user_id {user.user_id!r}"
            )
        return user

    # --- writes -----------------------------------------------------------------------------------

    def create_user(self, body: Mapping[str, Any]) -> LiteLLMUser:
        """POST /user/new with the caller's body; never mints a key.

        The returned `teams` is always (): the /user/new response reports null or [] even when memberships
        were added (#13032), so it says nothing; read them back with `get_user` when they matter.
        An existing user_id is an ApiError with status 409 on LiteLLM >= PR #17559; older versions answer 200
        without changing anything (docs/litellm-api.md#user-new-existing-id-is-409).
        """
        if not isinstance(body.get("user_id"), str) or not body["user_id"]:
            raise ValueError("create_user needs a user_id (without one the server invents a UUID)")
        if body.get("auto_create_key", False) is not False:
            raise ValueError("create_user never creates keys: auto_create_key must be False")
        # auto_create_key defaults to true server-side
        # (docs/litellm-api.md#user-new-creates-a-key-by-default).
        payload = {**body, "auto_create_key": False}
        path = "/user/new"
        data = self.session.post_json(path, payload)
        user = parse_user_row(data, path, method="POST")
        return dataclasses.replace(user, teams=())

    def update_user(self, user_id: str, fields: Mapping[str, Any]) -> LiteLLMUser:
        """POST /user/update. It is an upsert (an unknown id creates the user): only call it for users known
        to exist. `metadata`, when sent, replaces the stored object whole
        (docs/litellm-api.md#user-update-is-an-upsert, docs/litellm-api.md#user-update-replaces-metadata)."""
        if not user_id:
            raise ValueError("user_id must not be empty")
        if fields.get("user_id", user_id) != user_id:
            raise ValueError("fields must not change user_id")
        if not set(fields) - {"user_id"}:
            raise ValueError("update_user needs at least one field to change")
        path = "/user/update"
        body = self.session.post_json(path, {**fields, "user_id": user_id})
        data = body.get("data") if isinstance(body, dict) else None
        if data is None:
            raise self.session.shape_error("POST", path, "an object with 'data'", body)
        return parse_user_row(data, path, method="POST")

    def add_team_member(self, team_id: str, user_id: str) -> bool:
        """True when added, False when the user already was a member. Note: an unknown user_id is created."""
        try:
            self.session.post_json(
                "/team/member_add", {"team_id": team_id, "member": {"user_id": user_id, "role": "user"}}
            )
        except ApiError as exc:
            # 400 type team_member_already_in_team (docs/litellm-api.md#team-member-add); a 400 for any
            # other reason (e.g. "premium feature") must still raise.
            already = "already in team" in exc.message.lower()
            if exc.status == 400 and (exc.error_type == "team_member_already_in_team" or already):
                return False
            raise
        return True

    def remove_team_member(self, team_id: str, user_id: str) -> bool:
        """True when removed, False when the user was not a member."""
        try:
            self.session.post_json("/team/member_delete", {"team_id": team_id, "user_id": user_id})
        except ApiError as exc:
            # Not a member: 400 "User not found in team"; a missing team is also a 400 and must raise.
            if exc.status == 400 and "not found in team" in exc.message.lower():
                return False
            raise
        return True

    def delete_users(self, user_ids: Iterable[str]) -> None:
        """POST /user/delete. Any unknown id makes the whole call a 404 and nothing is deleted."""
        ids = list(user_ids)
        if not ids:
            return
        self.session.post_json("/user/delete", {"user_ids": ids})

    def user_keys(self, user_id: str) -> tuple[tuple[str, bool], ...] | None:
        """(hashed token, blocked) for each of the user's keys (/user/info); None if the user is gone."""
        body = self._user_info(user_id)
        if body is None:
            return None
        keys = body.get("keys")
        if not isinstance(keys, list):
            raise self.session.shape_error("GET", "/user/info", "an object with a 'keys' list", body)
        out: list[tuple[str, bool]] = []
        for key in keys:
            token = key.get("token") if isinstance(key, dict) else None
            if not isinstance(token, str) or not token:
                raise self.session.shape_error("GET", "/user/info", "key objects with a string token", key)
            out.append((token, key.get("blocked") is True))
        return tuple(out)

    def set_key_blocked(self, token: str, blocked: bool) -> bool:
        """POST /key/block or /key/unblock with the hashed token; both are idempotent (seen on 1.106.2).

        False when the key no longer exists (404 "Key not found.", seen on 1.106.2): nothing left to do.
        """
        try:
            self.session.post_json("/key/block" if blocked else "/key/unblock", {"key": token})
        except ApiError as exc:
            if exc.status == 404 and "key not found" in exc.message.lower():
                return False
            raise
        return True

    def delete_user(self, user_id: str) -> bool:
        """POST /user/delete for one user (its keys go too). False when it was already gone."""
        try:
            self.delete_users([user_id])
        except ApiError as exc:
            # A retried delete whose first attempt went through, or a user deleted by hand: 404
            # {"detail":{"error":"User not found, passed user_id=..."}} (docs/litellm-api.md#user-delete).
            if exc.status == 404 and "not found" in exc.message.lower():
                return False
            raise
        return True
