"""An in-process simulator of the Backstage catalog REST API (catalog-backend 4.0.0 behaviour).

Reproduces what was recorded on a real catalog (`docs/backstage-api.md`):
static-token auth and its 401 bodies, the one error envelope, `GET /entities/by-query` with
filters, projections, ordering and keyset cursors (carrying filter, order and totalItems but not
limit or fields), `by-name`, `by-refs`, `entity-facets` and the legacy `GET /entities`.

Entities are given as authored (YAML documents as dicts); the simulator derives the stored form
the way the catalog does: default namespace, uid, etag, `managed-by-*` annotations, sorted
`spec.memberOf`/`children`/`members` and the `memberOf`/`hasMember`/`childOf`/`parentOf`
relations with lower-cased full target refs. Documents the catalog would reject are never served
(see `rejected`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from .server import Query, Response, SimApp

MOUNT = "/api/catalog"
CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_LIMIT = 200
DEFAULT_TOKEN = "sync-job-static-token-0123456789"
DEFAULT_LOCATION = "file:/sim/catalog/org.yaml"

_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_NAMESPACE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ALLOWED_ROOT = {"apiVersion", "kind", "metadata", "spec", "relations", "status"}
_BY_QUERY_PARAMS = {
    "fields",
    "limit",
    "offset",
    "orderField",
    "cursor",
    "filter",
    "fullTextFilterTerm",
    "fullTextFilterFields",
}
_LEGACY_PARAMS = {"fields", "limit", "filter", "offset", "after", "order"}

# (key as given, values as given or None for "exists")
Cond = tuple[str, tuple[str, ...] | None]
FilterSet = tuple[Cond, ...]  # conditions ANDed
Filter = tuple[FilterSet, ...]  # sets ORed; () matches everything
OrderField = tuple[str, str]  # (field, "asc"|"desc")


class InputError(Exception):
    pass


class _Rev:
    """Wraps a value so that it sorts in reverse (descending order fields inside sort tuples)."""

    __slots__ = ("v",)

    def __init__(self, v: str) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __lt__(self, other: _Rev) -> bool:
        return self.v > other.v

    def __hash__(self) -> int:
        return hash(self.v)


@dataclass
class _Result:
    version: int
    keys: list[tuple[Any, ...]]
    refs: list[str]


@dataclass(frozen=True)
class Rejected:
    """An authored document the catalog would refuse (it is not served)."""

    ref: str
    reason: str


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


_RESOLVED: dict[tuple[str, str, str], str] = {}


def resolve_ref(ref: str, default_kind: str, default_namespace: str) -> str:
    """The lower-cased full ref a (possibly short) ref in a spec points at (memoised)."""
    key = (ref, default_kind, default_namespace)
    hit = _RESOLVED.get(key)
    if hit is None:
        hit = full_ref(*parse_ref(ref, default_kind, default_namespace))
        if len(_RESOLVED) < 1_000_000:
            _RESOLVED[key] = hit
    return hit


def parse_ref(ref: str, default_kind: str, default_namespace: str) -> tuple[str, str, str]:
    """`kind:namespace/name`, `kind:name`, `namespace/name` or `name` -> (kind, namespace, name)."""
    kind, rest = ref.split(":", 1) if ":" in ref else (default_kind, ref)
    namespace, name = rest.split("/", 1) if "/" in rest else (default_namespace, rest)
    if not kind or not namespace or not name or ":" in rest or "/" in name:
        raise ValueError(f"Entity reference '{ref}' had invalid form")
    return kind, namespace, name


def full_ref(kind: str, namespace: str, name: str) -> str:
    return f"{kind}:{namespace}/{name}".lower()


def _validate(raw: Any) -> str | None:
    """Why the catalog would reject this authored document, or None when it is valid."""
    if not isinstance(raw, dict):
        return "entity is not an object"
    extra = set(raw) - _ALLOWED_ROOT
    if extra:
        return f"unknown root field(s) {sorted(extra)}"
    kind = raw.get("kind")
    if kind not in ("User", "Group"):
        return f"kind {kind!r} is not spelled User or Group"
    if raw.get("apiVersion") not in _API_VERSIONS:
        return f"apiVersion {raw.get('apiVersion')!r} is not valid for {kind}"
    md = raw.get("metadata")
    if not isinstance(md, dict):
        return "metadata must be an object"
    name = md.get("name")
    if not isinstance(name, str) or not (1 <= len(name) <= 63) or not _NAME_RE.match(name):
        return (
            f'"metadata.name" is not valid; expected a string that is sequences of [a-zA-Z0-9] separated '
            f"by any of [-_.], at most 63 characters in total but found {name!r}"
        )
    ns = md.get("namespace", "default")
    if not isinstance(ns, str) or not (1 <= len(ns) <= 63) or not _NAMESPACE_RE.match(ns):
        return f'"metadata.namespace" is not valid; found {ns!r}'
    for key in ("annotations", "labels"):
        v = md.get(key)
        if v is not None and not (isinstance(v, dict) and all(isinstance(x, str) for x in v.values())):
            return f"metadata.{key} must be an object of strings"
    for key in ("title", "description"):
        if key in md and not isinstance(md[key], str):
            return f"metadata.{key} must be a string"
    if "tags" in md and not (isinstance(md["tags"], list) and all(isinstance(t, str) for t in md["tags"])):
        return "metadata.tags must be an array of strings"
    spec = raw.get("spec")
    if not isinstance(spec, dict):
        return "spec must be an object"
    profile = spec.get("profile")
    if profile is not None:
        if not isinstance(profile, dict):
            return "spec.profile must be an object"
        for key in ("displayName", "email", "picture"):
            if key in profile and not (isinstance(profile[key], str) and profile[key]):
                return f"spec.profile.{key} must be a non-empty string"
    refs: list[tuple[str, str]] = []
    if kind == "User":
        if not _is_str_list(spec.get("memberOf")):
            return "spec.memberOf must be an array of non-empty strings"
        refs += [(r, "Group") for r in spec["memberOf"]]
    else:
        if not (isinstance(spec.get("type"), str) and spec["type"]):
            return "spec.type must be a non-empty string"
        if not _is_str_list(spec.get("children")):
            return "spec.children must be an array of non-empty strings"
        if "parent" in spec and not (isinstance(spec["parent"], str) and spec["parent"]):
            return "spec.parent must be a non-empty string"
        if "members" in spec and not _is_str_list(spec["members"]):
            return "spec.members must be an array of non-empty strings"
        refs += [(r, "Group") for r in spec["children"]]
        refs += [(r, "User") for r in spec.get("members", [])]
        if "parent" in spec:
            refs.append((spec["parent"], "Group"))
    for r, default_kind in refs:
        try:
            resolve_ref(r, default_kind, ns)
        except ValueError as exc:
            return str(exc)
    return None


def _leaf_values(v: Any, out: list[str | None]) -> None:
    if isinstance(v, dict):
        out.append(None)  # the key exists, with no comparable value
    elif isinstance(v, list):
        for item in v:
            if isinstance(item, (dict, list)):
                out.append(None)
            else:
                out.append(_scalar(item))
    else:
        out.append(_scalar(v))


def _scalar(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _collect(node: Any, rest: str, out: list[str | None]) -> None:
    """Values at a lower-cased dotted path; keys may contain dots; arrays are descended."""
    if isinstance(node, dict):
        for k, v in node.items():
            kl = k.lower()
            if kl == rest:
                _leaf_values(v, out)
            elif rest.startswith(kl + "."):
                _collect(v, rest[len(kl) + 1 :], out)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _collect(item, rest, out)
            elif item is not None and _scalar(item) is not None and str(_scalar(item)).lower() == rest:
                out.append("true")  # array items match as `path.<item>=true`


def _all_strings(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for v in node.values():
            _all_strings(v, out)
    elif isinstance(node, list):
        for v in node:
            _all_strings(v, out)
    elif node is not None:
        s = _scalar(node)
        if s is not None:
            out.append(s.lower())


def _split_fields(values: Iterable[str]) -> list[list[str]]:
    paths: list[list[str]] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if part:
                paths.append(part.split("."))
    return paths


def project(entity: Mapping[str, Any], paths: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Keep only the given dotted paths (case-sensitive), like the catalog's `fields` parameter."""
    out: dict[str, Any] = {}
    whole: set[int] = set()  # ids of subtrees copied whole from the entity: never descend into them
    for parts in paths:
        src: Any = entity
        for p in parts:
            if isinstance(src, dict) and p in src:
                src = src[p]
            else:
                break
        else:
            dst = out
            for p in parts[:-1]:
                nxt = dst.get(p)
                if nxt is not None and id(nxt) in whole:
                    break
                if not isinstance(nxt, dict):
                    nxt = {}
                    dst[p] = nxt
                dst = nxt
            else:
                dst[parts[-1]] = src
                if isinstance(src, (dict, list)):
                    whole.add(id(src))
    return out


def _parse_filter_param(values: Sequence[str]) -> Filter:
    sets: list[FilterSet] = []
    for value in values:
        conds: dict[str, list[str] | None] = {}
        order: list[str] = []
        for statement in value.split(","):
            statement = statement.strip()
            if not statement:
                continue
            if "=" in statement:
                key, val = statement.split("=", 1)
                key, val = key.strip(), val.strip()
            else:
                key, val = statement, None
            if not key:
                raise InputError(
                    f"Invalid filter, '{statement}' is not a valid statement "
                    "(expected a string on the form a=b or a= or a)"
                )
            if key not in conds:
                order.append(key)
                conds[key] = [] if val else None
            if val:
                existing = conds[key]
                conds[key] = [*(existing or []), val]
        if order:
            fset: list[Cond] = []
            for k in order:
                vals = conds[k]
                fset.append((k, tuple(vals) if vals is not None else None))
            sets.append(tuple(fset))
    return tuple(sets)


def _cond_json(cond: Cond) -> dict[str, Any]:
    key, values = cond
    if values is None:
        return {key: {"$exists": True}}
    if len(values) == 1:
        return {key: values[0]}
    return {key: {"$in": list(values)}}


def _filter_to_json(f: Filter) -> dict[str, Any]:
    def set_json(s: FilterSet) -> dict[str, Any]:
        return _cond_json(s[0]) if len(s) == 1 else {"$all": [_cond_json(c) for c in s]}

    if not f:
        return {}
    if len(f) == 1:
        return set_json(f[0])
    return {"$any": [set_json(s) for s in f]}


def _filter_from_json(obj: Any) -> Filter:
    def cond(o: Any) -> Cond:
        if not isinstance(o, dict) or len(o) != 1:
            raise InputError("Malformed cursor: invalid query")
        ((key, val),) = o.items()
        if isinstance(val, str):
            return (key, (val,))
        if isinstance(val, dict) and val.get("$exists") is True:
            return (key, None)
        if isinstance(val, dict) and _is_str_list(val.get("$in")):
            return (key, tuple(val["$in"]))
        raise InputError("Malformed cursor: invalid query")

    def fset(o: Any) -> FilterSet:
        if isinstance(o, dict) and "$all" in o:
            if not isinstance(o["$all"], list):
                raise InputError("Malformed cursor: invalid query")
            return tuple(cond(c) for c in o["$all"])
        return (cond(o),)

    if not isinstance(obj, dict):
        raise InputError("Malformed cursor: invalid query")
    if not obj:
        return ()
    if "$any" in obj:
        if not isinstance(obj["$any"], list):
            raise InputError("Malformed cursor: invalid query")
        return tuple(fset(s) for s in obj["$any"])
    return (fset(obj),)


def _b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _decode_b64_json(token: str, what: str) -> Any:
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"Malformed {what}: {exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        shown = f'"{text}"' if len(text) <= 10 else f'"{text[:10]}"...'
        first = text[:1] or "end of JSON input"
        raise InputError(
            f"Malformed {what}: SyntaxError: Unexpected token '{first}', {shown} is not valid JSON"
        ) from None


class BackstageSim(SimApp):
    """Simulated Backstage catalog. Mount it with `serve(sim)`; the API lives under `/api/catalog`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        extra_tokens: Iterable[str] = (),
        *,
        location: str = DEFAULT_LOCATION,
        seed: int = 0,
        with_location_entity: bool = True,
    ) -> None:
        super().__init__()
        tokens = [token, *extra_tokens]
        for t in tokens:
            if len(t) < 8 or any(c.isspace() for c in t):
                raise ValueError("Backstage refuses static tokens shorter than 8 characters or with spaces")
        self.tokens = frozenset(tokens)
        self.location = location
        self._salt = f"backstage-sim:{seed}:"
        self._version = 0
        self._generation: Counter[str] = Counter()
        self._base: dict[str, dict[str, Any]] = {}  # ref -> stored entity without relations
        self._kind: dict[str, str] = {}  # ref -> lower-case kind
        self._contrib: dict[str, list[tuple[str, str, str]]] = {}  # declarer -> (source, type, target)
        self._rels: dict[str, Counter[tuple[str, str]]] = {}  # source -> (type, target) -> count
        self._full: dict[str, dict[str, Any]] = {}  # cache: ref -> entity with relations
        # cache: ref -> fields -> (the _full entry it came from, its JSON); stale once that entry is replaced
        self._encoded: dict[str, dict[str, tuple[dict[str, Any], bytes]]] = {}
        self._by_uid: dict[str, str] = {}
        self._cache: OrderedDict[tuple[str, str, str], _Result] = OrderedDict()
        self.rejected: list[Rejected] = []
        # False serves documents the real catalog would refuse (odd names, no spec), as a custom
        # processor or another catalog implementation might: for the job's hostile-input tests.
        self.strict = True
        if with_location_entity:
            self._put_location_entity()

    # ------------------------------------------------------------------ state helpers
    def set_entities(self, entities: Iterable[Mapping[str, Any]]) -> None:
        """Replace every User/Group with these authored documents (invalid ones are skipped)."""
        with self.lock:
            self.rejected = []
            served: set[str] = set()
            for raw in entities:
                ref = self._upsert(raw)  # an entity that stays keeps its uid, as in the real catalog
                if ref is not None:
                    served.add(ref)
            for ref in [r for r, k in self._kind.items() if k in ("user", "group") and r not in served]:
                self._drop(ref)
            self._changed()

    def upsert_entity(self, entity: Mapping[str, Any]) -> bool:
        """Add or replace one authored document; False (and not served) when it is invalid."""
        with self.lock:
            ref = self._upsert(entity)
            if ref is None and self.rejected and self.rejected[-1].ref in self._base:
                stale = self.rejected[-1].ref
                if self._kind.get(stale) in ("user", "group"):
                    self._drop(stale)  # a document that became invalid is no longer served
            self._changed()
            return ref is not None

    def remove_entity(self, kind: str, name: str, namespace: str = "default") -> bool:
        with self.lock:
            ref = full_ref(kind, namespace, name)
            if ref not in self._base:
                return False
            self._drop(ref)
            self._changed()
            return True

    def orphan_entity(self, kind: str, name: str, namespace: str = "default") -> bool:
        """Mark an entity as removed from its source but not yet cleaned up (`backstage.io/orphan`)."""
        with self.lock:
            ref = full_ref(kind, namespace, name)
            base = self._base.get(ref)
            if base is None:
                return False
            md = dict(base["metadata"])
            md["annotations"] = {**md.get("annotations", {}), "backstage.io/orphan": "true"}
            self._generation[ref] += 1
            md["etag"] = self._etag(ref)
            self._base[ref] = {**base, "metadata": md}
            self._full.pop(ref, None)
            self._changed()
            return True

    def get_entity(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        """The stored form (with relations), as the API would serve it."""
        with self.lock:
            ref = full_ref(kind, namespace, name)
            return json.loads(json.dumps(self._entity(ref))) if ref in self._base else None

    @property
    def entity_count(self) -> int:
        with self.lock:
            return len(self._base)

    # ------------------------------------------------------------------ store internals
    def _uid(self, ref: str) -> str:
        h = hashlib.sha1(f"{self._salt}{ref}:{self._generation['#created:' + ref]}".encode()).hexdigest()
        variant = "89ab"[int(h[16], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"  # a random-looking v4 uuid

    def _etag(self, ref: str) -> str:
        return hashlib.sha1(f"{self._salt}{ref}:{self._generation[ref]}".encode()).hexdigest()

    def _changed(self) -> None:
        self._version += 1
        self._cache.clear()

    def _put_location_entity(self) -> None:
        name = "generated-" + hashlib.sha1(self.location.encode()).hexdigest()[:40]
        ref = full_ref("Location", "default", name)
        uid = self._uid(ref)
        kind, target = self.location.split(":", 1) if ":" in self.location else ("file", self.location)
        self._base[ref] = {
            "metadata": {
                "namespace": "default",
                "annotations": {
                    "backstage.io/managed-by-location": "bootstrap:bootstrap",
                    "backstage.io/managed-by-origin-location": "bootstrap:bootstrap",
                },
                "name": name,
                "uid": uid,
                "etag": self._etag(ref),
            },
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Location",
            "spec": {"type": kind, "target": target},
        }
        self._kind[ref] = "location"
        self._by_uid[uid] = ref

    def _upsert(self, raw: Mapping[str, Any]) -> str | None:
        """Store one authored document; its ref, or None when the catalog would reject it."""
        reason = _validate(raw) if self.strict else None
        md_raw = raw.get("metadata") if isinstance(raw, Mapping) else None
        name = md_raw.get("name") if isinstance(md_raw, Mapping) else None
        ns_raw = md_raw.get("namespace", "default") if isinstance(md_raw, Mapping) else "default"
        kind_raw = raw.get("kind") if isinstance(raw, Mapping) else None
        if reason is not None:
            guess = full_ref(str(kind_raw), str(ns_raw), str(name)) if name is not None else "(no name)"
            self.rejected.append(Rejected(guess, reason))
            return None
        assert isinstance(md_raw, Mapping) and isinstance(name, str) and isinstance(kind_raw, str)
        ns = str(ns_raw)
        ref = full_ref(kind_raw, ns, name)
        spec = dict(raw.get("spec") or {})
        for key in ("memberOf", "children", "members"):
            if isinstance(spec.get(key), list):
                spec[key] = sorted(spec[key])
        annotations = {
            "backstage.io/managed-by-location": self.location,
            "backstage.io/managed-by-origin-location": self.location,
            **(md_raw.get("annotations") or {}),
        }
        metadata: dict[str, Any] = {"namespace": ns, "annotations": annotations, "name": name}
        for k, v in md_raw.items():
            if k not in ("name", "namespace", "annotations", "uid", "etag", "generation"):
                metadata[k] = v
        stored = self._base.get(ref)
        if stored is not None:
            if self._unchanged(stored, raw, kind_raw, metadata, spec):
                # Re-reading an unchanged document changes nothing, etag included, as in the real catalog
                # (seen on it: only the moved user's and its two groups' etags changed).
                return ref
            self._drop(ref, keep_uid=True)
        uid = self._uid(ref)
        self._generation[ref] += 1
        metadata["uid"] = uid
        metadata["etag"] = self._etag(ref)
        self._base[ref] = {
            "metadata": metadata,
            "apiVersion": raw["apiVersion"],
            "kind": kind_raw,
            "spec": spec,
        }
        if not self.strict and "spec" not in raw:
            del self._base[ref]["spec"]
        self._kind[ref] = kind_raw.lower()
        self._by_uid[uid] = ref
        self._full.pop(ref, None)
        # relations this document declares (on itself and, inverted, on the targets)
        contrib: list[tuple[str, str, str]] = []

        def emit(targets: Iterable[str], default_kind: str, out_type: str, in_type: str) -> None:
            for t in targets:
                target = resolve_ref(t, default_kind, ns)
                contrib.append((ref, out_type, target))
                contrib.append((target, in_type, ref))

        if kind_raw == "User":
            emit(spec.get("memberOf", []), "Group", "memberOf", "hasMember")
        else:
            if "parent" in spec:
                emit([spec["parent"]], "Group", "childOf", "parentOf")
            emit(spec.get("children", []), "Group", "parentOf", "childOf")
            emit(spec.get("members", []), "User", "hasMember", "memberOf")
        self._contrib[ref] = contrib
        rels, full = self._rels, self._full
        for source, rtype, target in contrib:
            counter = rels.get(source)
            if counter is None:
                counter = rels[source] = Counter()
            counter[(rtype, target)] += 1
            full.pop(source, None)
        return ref

    def _unchanged(
        self,
        stored: Mapping[str, Any],
        raw: Mapping[str, Any],
        kind: str,
        metadata: Mapping[str, Any],
        spec: Mapping[str, Any],
    ) -> bool:
        if stored["kind"] != kind or stored["apiVersion"] != raw.get("apiVersion"):
            return False
        if ("spec" in stored) != (self.strict or "spec" in raw) or stored.get("spec", {}) != spec:
            return False
        kept = {k: v for k, v in stored["metadata"].items() if k not in ("uid", "etag")}
        return kept == metadata

    def _drop(self, ref: str, keep_uid: bool = False) -> None:
        base = self._base.pop(ref, None)
        if base is None:
            return
        self._kind.pop(ref, None)
        self._by_uid.pop(base["metadata"]["uid"], None)
        self._full.pop(ref, None)
        self._encoded.pop(ref, None)
        if not keep_uid:
            self._generation["#created:" + ref] += 1  # re-created later: a new uid, as in the real catalog
        for source, rtype, target in self._contrib.pop(ref, []):
            counter = self._rels.get(source)
            if counter is None:
                continue
            counter[(rtype, target)] -= 1
            if counter[(rtype, target)] <= 0:
                del counter[(rtype, target)]
            if not counter:
                del self._rels[source]
            self._full.pop(source, None)

    def _relations(self, ref: str) -> list[dict[str, str]]:
        counter = self._rels.get(ref)
        if not counter:
            return []
        return [{"type": t, "targetRef": target} for t, target in sorted(counter)]

    def _entity(self, ref: str) -> dict[str, Any]:
        cached = self._full.get(ref)
        if cached is None:
            base = self._base[ref]
            relations = self._relations(ref)
            metadata = base["metadata"]
            if relations:
                # The etag is the stitched entity's: it changes with the relations others give it (a member
                # moving to another group changes both groups' etags; seen on the real catalog).
                stitched = metadata["etag"] + json.dumps(relations, sort_keys=True)
                metadata = {**metadata, "etag": hashlib.sha1(stitched.encode()).hexdigest()}
            cached = {**base, "metadata": metadata, "relations": relations}
            self._full[ref] = cached
        return cached

    # ------------------------------------------------------------------ matching
    def _values(self, ref: str, key: str) -> list[str | None]:
        kl = key.lower()
        if kl == "kind":
            return [self._base[ref]["kind"]]
        if kl.startswith("relations."):
            rtype = kl[len("relations.") :]
            return [target for (t, target) in self._rels.get(ref, ()) if t.lower() == rtype]
        out: list[str | None] = []
        _collect(self._base[ref], kl, out)
        return out

    def _matches(self, ref: str, f: Filter) -> bool:
        if not f:
            return True
        for fset in f:
            for key, values in fset:
                found = self._values(ref, key)
                if not found:
                    break
                if values is not None:
                    wanted = {v.lower() for v in values}
                    if not any(v is not None and v.lower() in wanted for v in found):
                        break
            else:
                return True
        return False

    def _fulltext(self, ref: str, term: str, fields: Sequence[str]) -> bool:
        if not term:
            return True
        t = term.lower()
        values: list[str] = []
        if fields:
            for fld in fields:
                values += [v.lower() for v in self._values(ref, fld) if v is not None]
        else:
            _all_strings(self._entity(ref), values)
        return any(t in v for v in values)

    def _sort_key(self, ref: str, order: Sequence[OrderField]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for fld, direction in order:
            vals = [v.lower() for v in self._values(ref, fld) if v is not None]
            v = min(vals) if vals else None
            parts.append(self._key_part(v, direction))
        parts.append(self._base[ref]["metadata"]["uid"])
        return tuple(parts)

    @staticmethod
    def _key_part(v: str | None, direction: str) -> tuple[int, Any]:
        # missing values sort last in both directions (a guess; see the module README)
        flag = 1 if v is None else 0
        return (flag, _Rev(v or "") if direction == "desc" else (v or ""))

    def _cursor_values(self, ref: str, order: Sequence[OrderField]) -> list[str | None]:
        vals: list[str | None] = []
        for fld, _ in order:
            found = [v.lower() for v in self._values(ref, fld) if v is not None]
            vals.append(min(found) if found else None)
        vals.append(self._base[ref]["metadata"]["uid"])
        return vals

    def _key_from_values(self, values: Sequence[Any], order: Sequence[OrderField]) -> tuple[Any, ...]:
        if len(values) != len(order) + 1 or not isinstance(values[-1], str):
            raise InputError("Malformed cursor: orderFieldValues do not match orderFields")
        parts: list[Any] = []
        for v, (_, direction) in zip(values[:-1], order, strict=True):
            if v is not None and not isinstance(v, str):
                raise InputError("Malformed cursor: orderFieldValues must be strings")
            parts.append(self._key_part(v, direction))
        parts.append(values[-1])
        return tuple(parts)

    def _query(
        self,
        f: Filter,
        order: Sequence[OrderField],
        term: str = "",
        term_fields: Sequence[str] = (),
        *,
        by_ref: bool = False,
    ) -> _Result:
        """Matching refs in sort order (keys alongside), cached until the data changes."""
        cache_key = (
            json.dumps(_filter_to_json(f), sort_keys=True),
            json.dumps(list(order)) if not by_ref else "by-ref",
            json.dumps([term, list(term_fields)]),
        )
        hit = self._cache.get(cache_key)
        if hit is not None and hit.version == self._version:
            self._cache.move_to_end(cache_key)
            return hit
        matched = [r for r in self._base if self._matches(r, f) and self._fulltext(r, term, term_fields)]
        if by_ref:
            keyed = sorted(((r,), r) for r in matched)
        else:
            keyed = sorted(((self._sort_key(r, order), r) for r in matched), key=lambda kr: kr[0])
        result = _Result(self._version, [k for k, _ in keyed], [r for _, r in keyed])
        self._cache[cache_key] = result
        while len(self._cache) > 64:
            self._cache.popitem(last=False)
        return result

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
        if not (path == MOUNT or path.startswith(MOUNT + "/")):
            return Response.empty(404)
        sub = path[len(MOUNT) :] or "/"
        url = sub + (f"?{raw_query}" if raw_query else "")
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._error(401, "AuthenticationError", "Missing credentials", method, url)
        if token.strip() not in self.tokens:
            return self._error(401, "AuthenticationError", "Illegal token", method, url)
        try:
            if sub == "/entities/by-query" and method == "GET":
                return self._by_query(query)
            if sub.startswith("/entities/by-name/") and method == "GET":
                return self._by_name(sub, query, method, url)
            if sub.startswith("/entities/by-uid/") and method == "GET":
                return self._by_uid_route(sub, query, method, url)
            if sub == "/entities/by-refs" and method == "POST":
                return self._by_refs(query, body)
            if sub == "/entity-facets" and method == "GET":
                return self._facets(query)
            if sub == "/entities" and method == "GET":
                return self._legacy(query)
        except InputError as exc:
            return self._error(400, "InputError", str(exc), method, url)
        return Response.empty(404)

    @staticmethod
    def _error(status: int, name: str, message: str, method: str, url: str) -> Response:
        return Response.json(
            {
                "error": {"name": name, "message": message},
                "request": {"method": method, "url": url},
                "response": {"statusCode": status},
            },
            status,
            content_type=CONTENT_TYPE,
        )

    @staticmethod
    def _ok(obj: Any, headers: Mapping[str, str] | None = None) -> Response:
        return Response.json(obj, 200, content_type=CONTENT_TYPE, headers=headers)

    @staticmethod
    def _check_params(query: Query, allowed: set[str]) -> None:
        for k, _ in query:
            if k not in allowed:
                raise InputError(f"Unknown query parameter '{k}'")

    @staticmethod
    def _int_param(query: Query, name: str) -> int | None:
        vals = [v for k, v in query if k == name]
        if not vals:
            return None
        v = vals[-1].strip()
        if not re.fullmatch(r"-?\d+", v):
            raise InputError(f"request/query/{name} must be integer")
        n = int(v)
        if n < 0:
            raise InputError(f"request/query/{name} must be >= 0")
        return n

    @staticmethod
    def _order_param(query: Query) -> list[OrderField]:
        order: list[OrderField] = []
        for k, v in query:
            if k != "orderField":
                continue
            fld, _, direction = v.partition(",")
            fld = fld.strip()
            direction = (direction or "asc").strip().lower()
            if not fld:
                raise InputError("Invalid order field, must be a field name")
            if direction not in ("asc", "desc"):
                raise InputError("Invalid order field order, must be asc or desc")
            order.append((fld, direction))
        return order

    def _by_query(self, query: Query) -> Response:
        self._check_params(query, _BY_QUERY_PARAMS)
        limit = self._int_param(query, "limit")
        offset = self._int_param(query, "offset") or 0
        limit = DEFAULT_LIMIT if limit is None else limit
        fields = _split_fields(v for k, v in query if k == "fields")
        cursor_raw = [v for k, v in query if k == "cursor"]
        is_prev = False
        position: list[Any] | None = None
        first_values: list[Any] | None = None
        if cursor_raw:
            c = _decode_b64_json(cursor_raw[-1], "cursor")
            if not isinstance(c, dict) or not isinstance(c.get("orderFieldValues"), list):
                raise InputError("Malformed cursor: missing orderFieldValues")
            f = _filter_from_json(c.get("query", {}))
            raw_order = c.get("orderFields", [])
            if not isinstance(raw_order, list) or not all(
                isinstance(o, dict) and isinstance(o.get("field"), str) and o.get("order") in ("asc", "desc")
                for o in raw_order
            ):
                raise InputError("Malformed cursor: invalid orderFields")
            order = [(o["field"], o["order"]) for o in raw_order]
            ft = c.get("fullTextFilter") or {}
            term = str(ft.get("term") or "") if isinstance(ft, dict) else ""
            term_fields = [str(x) for x in ft.get("fields") or []] if isinstance(ft, dict) else []
            total = c.get("totalItems")
            if not isinstance(total, int):
                raise InputError("Malformed cursor: missing totalItems")
            is_prev = bool(c.get("isPrevious"))
            position = c["orderFieldValues"]
            fv = c.get("firstSortFieldValues")
            first_values = fv if isinstance(fv, list) else None
            self._key_from_values(position, order)  # validates the shape
        else:
            f = _parse_filter_param([v for k, v in query if k == "filter"])
            order = self._order_param(query)
            term = next((v for k, v in reversed(query) if k == "fullTextFilterTerm"), "").strip()
            term_fields = [
                ".".join(p) for p in _split_fields(v for k, v in query if k == "fullTextFilterFields")
            ]
            total = -1
        result = self._query(f, order, term, term_fields)
        if total < 0:
            total = len(result.refs)
        if limit == 0:
            return self._ok({"items": [], "totalItems": total, "pageInfo": {}})
        if position is None:
            start = min(offset, len(result.refs))
            end = min(start + limit, len(result.refs))
        elif is_prev:
            end = bisect_left(result.keys, self._key_from_values(position, order))
            start = max(0, end - limit)
        else:
            start = bisect_right(result.keys, self._key_from_values(position, order))
            end = min(start + limit, len(result.refs))
        page = result.refs[start:end]
        has_more = end < len(result.refs)
        fields_key = json.dumps(fields)
        encoded = [self._encoded_item(r, fields, fields_key) for r in page]
        page_info: dict[str, str] = {}
        if page:
            firsts = self._cursor_values(page[0], order)
            if first_values is None:
                first_values = firsts
            base_cursor = {
                "orderFields": [{"field": fld, "order": d} for fld, d in order],
                "isPrevious": False,
                "query": _filter_to_json(f),
                "fullTextFilter": {"term": term, **({"fields": list(term_fields)} if term_fields else {})},
                "orderFieldValues": [],
                "firstSortFieldValues": first_values,
                "totalItems": total,
            }
            if has_more or is_prev:
                page_info["nextCursor"] = _b64(
                    {**base_cursor, "orderFieldValues": self._cursor_values(page[-1], order)}
                )
            if position is not None and firsts != first_values:
                page_info["prevCursor"] = _b64(
                    {**base_cursor, "isPrevious": True, "orderFieldValues": firsts}
                )
        # Each item's JSON is kept between requests, so a 100,000-user catalog (benchmarks/) costs
        # the simulator little; the bytes are what json.dumps of the whole page would give.
        tail = json.dumps({"totalItems": total, "pageInfo": page_info}, separators=(",", ":"))
        body = b'{"items":[' + b",".join(encoded) + b"]," + tail[1:].encode("utf-8")
        return Response(200, body, CONTENT_TYPE, {})

    def _encoded_item(self, ref: str, fields: list[list[str]], fields_key: str) -> bytes:
        entity = self._entity(ref)
        by_fields = self._encoded.setdefault(ref, {})
        hit = by_fields.get(fields_key)
        if hit is not None and hit[0] is entity:
            return hit[1]
        item = project(entity, fields) if fields else entity
        data = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        by_fields[fields_key] = (entity, data)
        return data

    def _by_name(self, sub: str, query: Query, method: str, url: str) -> Response:
        parts = [unquote(p) for p in sub[len("/entities/by-name/") :].split("/")]
        if len(parts) != 3 or not all(parts):
            return Response.empty(404)
        self._check_params(query, set())
        kind, namespace, name = parts
        ref = full_ref(kind, namespace, name)
        if ref not in self._base:
            return self._error(
                404,
                "NotFoundError",
                f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'",
                method,
                url,
            )
        return self._ok(self._entity(ref))

    def _by_uid_route(self, sub: str, query: Query, method: str, url: str) -> Response:
        uid = unquote(sub[len("/entities/by-uid/") :])
        self._check_params(query, set())
        ref = self._by_uid.get(uid)
        if ref is None:
            return self._error(404, "NotFoundError", f"No entity with uid {uid}", method, url)
        return self._ok(self._entity(ref))

    def _by_refs(self, query: Query, body: bytes) -> Response:
        self._check_params(query, {"filter"})
        try:
            payload = json.loads(body) if body else None
        except ValueError as exc:
            raise InputError(f"Malformed JSON body: {exc}") from exc
        if not isinstance(payload, dict) or "entityRefs" not in payload:
            raise InputError("request/body must have required property 'entityRefs'")
        refs = payload["entityRefs"]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise InputError("request/body/entityRefs must be array")
        fields_raw = payload.get("fields")
        if fields_raw is not None and not (
            isinstance(fields_raw, list) and all(isinstance(x, str) for x in fields_raw)
        ):
            raise InputError("request/body/fields must be array")
        fields = _split_fields(fields_raw or [])
        f = _parse_filter_param([v for k, v in query if k == "filter"])
        items: list[dict[str, Any] | None] = []
        for r in refs:
            if r in self._base and self._matches(r, f):  # exact string: only lower-case full refs resolve
                e = self._entity(r)
                items.append(project(e, fields) if fields else e)
            else:
                items.append(None)
        return self._ok({"items": items})

    def _facets(self, query: Query) -> Response:
        self._check_params(query, {"facet", "filter"})
        facets = [v for k, v in query if k == "facet"]
        if not facets:
            raise InputError("request/query must have required property 'facet'")
        f = _parse_filter_param([v for k, v in query if k == "filter"])
        refs = [r for r in self._base if self._matches(r, f)]
        out: dict[str, list[dict[str, Any]]] = {}
        for facet in facets:
            counts: Counter[str] = Counter()
            for r in refs:
                if facet.lower() == "kind":
                    vals: list[str | None] = [self._base[r]["kind"]]
                elif facet.lower().startswith("relations."):
                    vals = list(dict.fromkeys(self._values(r, facet)))
                else:
                    vals = []
                    _collect(self._base[r], facet.lower(), vals)
                for v in dict.fromkeys(x for x in vals if x is not None):
                    counts[v] += 1
            out[facet] = [{"value": v, "count": n} for v, n in sorted(counts.items())]
        return self._ok({"facets": out})

    def _legacy(self, query: Query) -> Response:
        self._check_params(query, _LEGACY_PARAMS)
        limit = self._int_param(query, "limit")
        offset = self._int_param(query, "offset") or 0
        after = [v for k, v in query if k == "after"]
        if after:
            a = _decode_b64_json(after[-1], "cursor")
            if not (isinstance(a, dict) and isinstance(a.get("offset"), int)):
                raise InputError("Malformed cursor: expected limit and offset")
            offset = a["offset"]
            if isinstance(a.get("limit"), int):
                limit = a["limit"]
        fields = _split_fields(v for k, v in query if k == "fields")
        f = _parse_filter_param([v for k, v in query if k == "filter"])
        refs = self._query(f, [], by_ref=True).refs
        end = len(refs) if limit is None else min(len(refs), offset + limit)
        page = refs[offset:end]
        items = [project(self._entity(r), fields) if fields else self._entity(r) for r in page]
        headers: dict[str, str] = {}
        if limit is not None and end < len(refs):
            params = [(k, v) for k, v in query if k not in ("offset", "after")]
            params.append(("after", _b64({"limit": limit, "offset": end})))
            headers["link"] = f'</entities?{urlencode(params)}>; rel="next"'
        return self._ok(items, headers)
