"""Backstage catalog reader: all User and Group entities through cursor-paged `GET /entities/by-query`.

The parse functions are pure (no I/O) so they can be tested on their own; `BackstageClient.read_snapshot`
only pages and hands each entity to them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from .http import ApiSession
from .model import CatalogGroup, CatalogSnapshot, CatalogUser, SkippedEntity
from .progress import Progress

BY_QUERY = "/entities/by-query"
USER_FIELDS = "kind,metadata.name,metadata.namespace,spec.profile,spec.memberOf,relations"
GROUP_FIELDS = "kind,metadata.name,metadata.namespace,spec.parent,spec.children,relations"
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class GroupEntity:
    """One Group entity as read: its own view of the hierarchy, before `build_groups` merges all of them."""

    ref: str
    name: str
    namespace: str
    parents: frozenset[str]  # spec.parent and childOf targets
    children: frozenset[str]  # spec.children and parentOf targets


# --- refs -----------------------------------------------------------------------------------------


def normalize_ref(ref: str, default_kind: str, default_namespace: str) -> str | None:
    """`name`, `ns/name` or `kind:ns/name` -> lower-cased `kind:ns/name`; None when unusable.

    Backstage lower-cases every relation targetRef but keeps spec values as authored
    (`memberOf: ["group-0039"]`), so joins must be on lower-cased full refs
    (docs/backstage-api.md#refs-are-lower-cased).
    """
    ref = ref.strip()
    colon, slash = ref.find(":"), ref.find("/")
    # Same rule as Backstage's parseEntityRef: a ':' after the '/' belongs to the name.
    if colon != -1 and (slash == -1 or colon < slash):
        kind, rest = ref[:colon], ref[colon + 1 :]
    else:
        kind, rest = default_kind, ref
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = default_namespace, rest
    kind, namespace, name = kind.strip(), namespace.strip(), name.strip()
    if not (kind and namespace and name) or "/" in name:
        return None
    return f"{kind}:{namespace}/{name}".lower()


# Memberships name the same few thousand groups over and over: normalise each spelling once.
_group_ref = functools.lru_cache(maxsize=1 << 16)(normalize_ref)


def _relation_targets(entity: Mapping[str, Any], relation_type: str, found: set[str]) -> set[str]:
    """Adds the group refs of `entity`'s relations of this type to `found`; returns it."""
    relations = entity.get("relations")
    if not isinstance(relations, list):
        return found
    for rel in relations:
        if not isinstance(rel, dict) or rel.get("type") != relation_type:
            continue
        target = rel.get("targetRef")
        if isinstance(target, str):
            ref = _group_ref(target, "group", DEFAULT_NAMESPACE)
        else:
            # Backstage before the targetRef-only shape: {"target": {kind, namespace, name}}.
            old = rel.get("target")
            if not isinstance(old, dict):
                continue
            kind, ns, name = old.get("kind"), old.get("namespace"), old.get("name")
            if not (isinstance(kind, str) and isinstance(ns, str) and isinstance(name, str)):
                continue
            ref = normalize_ref(f"{kind}:{ns}/{name}", "group", DEFAULT_NAMESPACE)
        if ref is not None:
            found.add(ref)
    return found


def _spec_refs(value: Any, namespace: str, found: set[str]) -> set[str]:
    """Adds spec.memberOf / spec.children (lists) or spec.parent (a string) as group refs to `found`."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else ()
    for item in values:
        if isinstance(item, str):
            ref = _group_ref(item, "group", namespace)
            if ref is not None:
                found.add(ref)
    return found


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


# Entities come from JSON, so objects are dicts: `isinstance(x, dict)` rather than the much slower ABC
# check against Mapping, made several times for each of 100,000 entities.
def _identity(entity: Any, kind: str) -> tuple[str, str, str] | SkippedEntity:
    """(name, namespace, ref) of an entity of `kind`, or why it cannot be used."""
    if not isinstance(entity, dict):
        return SkippedEntity(kind, "?", f"entity is not a JSON object (got {type(entity).__name__})")
    metadata = entity.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return _named(
        kind, entity.get("kind"), metadata.get("name"), metadata.get("namespace"), metadata.get("uid")
    )


def _named(
    kind: str, actual: Any, raw_name: Any, raw_namespace: Any, uid: Any
) -> tuple[str, str, str] | SkippedEntity:
    """(name, namespace, ref) from an entity's kind and metadata values as read, or why they do not name
    an entity of `kind`."""
    namespace = _text(raw_namespace) or DEFAULT_NAMESPACE
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    # kind is in the projection; when a server drops it, trust the kind filter that selected the entity.
    if actual is not None and (not isinstance(actual, str) or actual.lower() != kind):
        reason = f"kind is {actual!r}, expected {kind.capitalize()}"
        return SkippedEntity(kind, _hint(kind, namespace, name, uid), reason)
    if not name:
        return SkippedEntity(kind, _hint(kind, namespace, name, uid), "no usable metadata.name")
    if "/" in name or "/" in namespace or ":" in namespace:
        ref = normalize_ref(f"{kind}:{namespace}/{name}", kind, namespace)
        if ref is None:
            reason = f"metadata.name {name!r} does not form an entity ref"
            return SkippedEntity(kind, _hint(kind, namespace, name, uid), reason)
    else:  # what normalize_ref gives for the usual, already stripped name and namespace
        ref = f"{kind}:{namespace}/{name}".lower()
    return name, namespace, ref


def _hint(kind: str, namespace: str, name: str, uid: Any) -> str:
    """How a skipped entity is named in the report."""
    hint = f"{kind}:{namespace}/{name}" if name else str(uid or f"{kind}:{namespace}/?")
    return hint.lower()


# The usual User entity, typed: a by-query page of them is decoded and type-checked by msgspec in one pass
# (about half the time of JSON decoding plus reading dicts). A page holding anything else (a field of
# another type, an old-style relation) is decoded as plain JSON and each entity read by parse_user; both
# read the same entity alike (tests/unit/test_catalog_client.py).
class _Metadata(msgspec.Struct):
    name: str
    namespace: str | None = None
    uid: str | None = None


class _Profile(msgspec.Struct):
    email: str | None = None
    displayName: str | None = None  # JSON's own spelling


class _UserSpec(msgspec.Struct):
    profile: _Profile | None = None
    memberOf: list[str] | None = None


class _Relation(msgspec.Struct):
    type: str
    targetRef: str


class _User(msgspec.Struct):
    metadata: _Metadata
    spec: _UserSpec
    kind: str | None = None
    relations: list[_Relation] | None = None


class _UserPage(msgspec.Struct):
    items: list[_User]
    pageInfo: dict[str, Any]
    totalItems: Any = None


_USER_PAGE = msgspec.json.Decoder(_UserPage)


def _typed_user_page(content: bytes) -> _UserPage | None:
    """A page of usual User entities, or None for any other page (the plain JSON path reads those)."""
    try:
        return _USER_PAGE.decode(content)
    except msgspec.MsgspecError:
        return None


def _typed_user(entity: _User) -> CatalogUser | SkippedEntity:
    meta = entity.metadata
    ident = _named("user", entity.kind, meta.name, meta.namespace, meta.uid)
    if isinstance(ident, SkippedEntity):
        return ident
    name, namespace, ref = ident
    groups: set[str] = set()
    for rel in entity.relations or ():
        if rel.type == "memberOf":
            target = _group_ref(rel.targetRef, "group", DEFAULT_NAMESPACE)
            if target is not None:
                groups.add(target)
    groups = _spec_refs(entity.spec.memberOf, namespace, groups)
    profile = entity.spec.profile
    return CatalogUser(
        ref=ref,
        name=name,
        namespace=namespace,
        email=_text(profile.email) if profile else None,
        display_name=_text(profile.displayName) if profile else None,
        groups=frozenset(groups),
    )


def parse_user(entity: Any) -> CatalogUser | SkippedEntity:
    if type(entity) is _User:
        return _typed_user(entity)
    ident = _identity(entity, "user")
    if isinstance(ident, SkippedEntity):
        return ident
    name, namespace, ref = ident
    spec = entity.get("spec")
    if not isinstance(spec, dict):
        # Every valid User has a spec (memberOf is required): without one its groups, and so its role,
        # cannot be trusted. Skipped and reported; a skipped entity is never taken for a leaver.
        return SkippedEntity("user", ref, "no spec object")
    profile = spec.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    # Relations are already resolved full refs; spec.memberOf may be short and is only complete once
    # stitching has caught up after a restart, so take the union
    # (docs/backstage-api.md#freshness-after-restart).
    groups = _spec_refs(spec.get("memberOf"), namespace, _relation_targets(entity, "memberOf", set()))
    return CatalogUser(
        ref=ref,
        name=name,
        namespace=namespace,
        email=_text(profile.get("email")),
        display_name=_text(profile.get("displayName")),
        groups=frozenset(groups),
    )


def parse_group(entity: Any) -> GroupEntity | SkippedEntity:
    ident = _identity(entity, "group")
    if isinstance(ident, SkippedEntity):
        return ident
    name, namespace, ref = ident
    spec = entity.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    parents = _spec_refs(spec.get("parent"), namespace, _relation_targets(entity, "childOf", set()))
    children = _spec_refs(spec.get("children"), namespace, _relation_targets(entity, "parentOf", set()))
    return GroupEntity(
        ref=ref,
        name=name,
        namespace=namespace,
        parents=frozenset(parents - {ref}),
        children=frozenset(children - {ref}),
    )


def build_groups(entities: Iterable[GroupEntity]) -> dict[str, CatalogGroup]:
    """Merge each group's own parents with the groups that list it as a child.

    Relations are one level and either side may be missing while the catalog is still stitching, so a
    parent found from either end counts.
    """
    entities = list(entities)
    names: dict[str, str] = {}
    parents: dict[str, set[str]] = {}
    for group in entities:
        names.setdefault(group.ref, group.name)
        parents.setdefault(group.ref, set()).update(group.parents)
    for group in entities:
        for child in group.children:
            if child in parents and child != group.ref:  # a child that is not a known group is dropped
                parents[child].add(group.ref)
    return {ref: CatalogGroup(ref=ref, name=names[ref], parents=frozenset(parents[ref])) for ref in parents}


# --- client ---------------------------------------------------------------------------------------


def catalog_url(base_url: str) -> str:
    """Backend root (or a URL already ending in /api/catalog) -> the catalog plugin mount."""
    base = base_url.strip().rstrip("/")
    return base if base.endswith("/api/catalog") else f"{base}/api/catalog"


_E = TypeVar("_E", CatalogUser, GroupEntity)


def _collector(
    kind: str,
    parse: Callable[[Any], _E | SkippedEntity],
    into: dict[str, _E],
    skipped: list[SkippedEntity],
) -> Callable[[list[Any]], None]:
    """Parses a page of entities into `into` (by ref); unusable ones and repeats go to `skipped`."""

    def add(page: list[Any]) -> None:
        for entity in page:
            parsed = parse(entity)
            if isinstance(parsed, SkippedEntity):
                skipped.append(parsed)
            elif parsed.ref in into:
                # Refs are case-insensitive in Backstage; a repeat means the data moved under the cursor.
                skipped.append(SkippedEntity(kind, parsed.ref, "duplicate entity ref in the listing"))
            else:
                into[parsed.ref] = parsed

    return add


class BackstageClient:
    """Reads all users and groups. Requests grow with pages, never with entities."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        page_size: int = 500,
        user_filter: str | None = None,
        timeout: float = 30,
        verify: bool | str = True,
        retries: int = 3,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        retry_budget: float = 120.0,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1 (limit=0 only counts)")
        self.page_size = page_size
        extra = (user_filter or "").strip().strip(",").strip()
        self.user_filter = extra or None
        self.session = ApiSession(
            "backstage",
            catalog_url(base_url),
            token,
            timeout=timeout,
            verify=verify,
            retries=retries,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            retry_budget=retry_budget,
        )

    def __repr__(self) -> str:
        return f"BackstageClient(base_url={self.session.public_url!r}, page_size={self.page_size})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> BackstageClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read_snapshot(self, progress: Progress | None = None) -> CatalogSnapshot:
        """Users and groups; each page is parsed as it arrives, so raw entities never pile up in memory."""
        before = self.session.total_requests
        user_filter = "kind=user" + (f",{self.user_filter}" if self.user_filter else "")
        skipped: list[SkippedEntity] = []
        users: dict[str, CatalogUser] = {}
        groups: dict[str, GroupEntity] = {}
        add_users = _collector("user", parse_user, users, skipped)
        add_groups = _collector("group", parse_group, groups, skipped)
        users_total = self._query(
            user_filter, USER_FIELDS, add_users, progress, "catalog users", fast=_typed_user_page
        )
        groups_total = self._query("kind=group", GROUP_FIELDS, add_groups, progress, "catalog groups")
        return CatalogSnapshot(
            users=tuple(users.values()),
            groups=build_groups(list(groups.values())),
            users_total=users_total,
            groups_total=groups_total,
            skipped=tuple(skipped),
            requests=self.session.total_requests - before,
        )

    def group_refs(self) -> frozenset[str]:
        """Every group's ref (what `validate --online` checks role groups against)."""
        refs: set[str] = set()

        def add(page: list[Any]) -> None:
            for entity in page:
                group = parse_group(entity)
                if not isinstance(group, SkippedEntity):
                    refs.add(group.ref)

        self._query("kind=group", GROUP_FIELDS, add)
        return frozenset(refs)

    def _query(
        self,
        filter_: str,
        fields: str,
        consume: Callable[[list[Any]], None],
        progress: Progress | None = None,
        label: str = "",
        fast: Callable[[bytes], Any] | None = None,
    ) -> int:
        """Every item of one by-query filter, page by page into `consume`, following nextCursor; returns the
        first page's totalItems. `fast` may decode a page into a typed envelope (items, pageInfo,
        totalItems) in one pass.

        The cursor carries the filter, order and totalItems but not limit or fields, and a filter sent next
        to a cursor is ignored: so limit+fields go on every page, the filter on the first only
        (docs/backstage-api.md#by-query-cursor-paging).
        """
        # Pages are parsed on a helper thread while the next one is fetched (one page in hand at most).
        with ThreadPoolExecutor(1, thread_name_prefix="catalog-parse") as parser:
            parsing: Future[None] | None = None

            def hand_over(items: list[Any]) -> None:
                nonlocal parsing
                if parsing is not None:
                    parsing.result()
                parsing = parser.submit(consume, items)

            total = self._pages(filter_, fields, hand_over, progress, label, fast)
            if parsing is not None:
                parsing.result()
            return total

    def _pages(
        self,
        filter_: str,
        fields: str,
        consume: Callable[[list[Any]], None],
        progress: Progress | None,
        label: str,
        fast: Callable[[bytes], Any] | None,
    ) -> int:
        common = [("limit", str(self.page_size)), ("fields", fields)]
        params = [("filter", filter_), *common]
        total: int | None = None
        seen: set[str] = set()
        pages = 0
        count_so_far = 0
        while True:
            page = self.session.get_json(BY_QUERY, params, fast=fast)
            pages += 1
            page_items: Any
            page_info: Any
            if isinstance(page, _UserPage):
                page_items, page_info, count = page.items, page.pageInfo, page.totalItems
            elif isinstance(page, dict):
                page_items, page_info, count = page.get("items"), page.get("pageInfo"), page.get("totalItems")
            else:
                raise self.session.shape_error(
                    "GET", BY_QUERY, "an object with items/totalItems/pageInfo", page
                )
            if not isinstance(page_items, list) or not isinstance(page_info, dict):
                raise self.session.shape_error(
                    "GET", BY_QUERY, "'items' (list) and 'pageInfo' (object)", page
                )
            if total is None:
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise self.session.shape_error(
                        "GET", BY_QUERY, "'totalItems' (integer) on the first page"
                    )
                total = count
            consume(page_items)
            count_so_far += len(page_items)
            if progress is not None:
                progress(label, count_so_far, total)
            cursor = page_info.get("nextCursor")
            if cursor is None:
                return total
            if not isinstance(cursor, str) or not cursor:
                raise self.session.shape_error("GET", BY_QUERY, "pageInfo.nextCursor to be a string", cursor)
            if not page_items:
                raise self.session.shape_error(
                    "GET", BY_QUERY, f"items on a page with a nextCursor ({filter_}, page {pages})"
                )
            if cursor in seen:
                raise self.session.shape_error(
                    "GET", BY_QUERY, f"a new cursor: nextCursor repeated ({filter_}, page {pages})"
                )
            # Backstop for a server minting endless fresh cursors: far more pages than totalItems allows.
            if pages > 2 * (total // self.page_size + 1) + 10:
                raise self.session.shape_error(
                    "GET", BY_QUERY, f"at most about {total} items, still paging after {pages} pages"
                )
            seen.add(cursor)
            params = [("cursor", cursor), *common]
