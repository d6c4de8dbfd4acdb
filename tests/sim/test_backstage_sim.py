"""The Backstage simulator reproduces the behaviours recorded on a real catalog
(docs/backstage-api.md), one by one."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import requests

from catalog_sync.sim import BackstageSim, demo_org, generated_org, load_entities, serve
from catalog_sync.sim.org import DEMO_ORG_FILE, dump_entities

TOKEN = "sync-job-static-token-0123456789"
FIELDS = "kind,metadata.name,metadata.namespace,metadata.uid,spec.profile,spec.memberOf,relations"


def user(name: str, groups: list[str], email: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": name},
        "spec": {"profile": {"email": email or f"{name.lower()}@example.com"}, "memberOf": groups, **spec},
    }


def group(
    name: str, parent: str | None = None, children: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "team", "children": children or [], **spec}
    if parent:
        s["parent"] = parent
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name}, "spec": s}


def small_org() -> list[dict[str, Any]]:
    return [
        group("root", children=["eng", "ops"]),
        group("eng", parent="root", children=["ml"], members=["zed", "Mixed.Case"]),
        group("ml", parent="eng"),
        group("ops", parent="root"),
        user("alice", ["ml", "eng"]),
        user("bob", ["ops"]),
        user("Mixed.Case", ["eng"]),
        user("carol", ["ghost-group"]),
        user("zed", []),
    ]


def walk(bs: Any, params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All items and every page's pageInfo, following nextCursor and re-sending limit/fields."""
    r = bs.get("/entities/by-query", params)
    assert r.status_code == 200, r.text
    body = r.json()
    items, infos = list(body["items"]), [body["pageInfo"]]
    extra = {k: v for k, v in params.items() if k in ("limit", "fields")}
    while "nextCursor" in body["pageInfo"]:
        r = bs.get("/entities/by-query", {"cursor": body["pageInfo"]["nextCursor"], **extra})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        infos.append(body["pageInfo"])
    return items, infos


# ---------------------------------------------------------------------------- auth and errors
def test_missing_credentials_is_401_with_recorded_envelope(bs: Any) -> None:
    r = requests.get(bs.base + "/entities/by-query?filter=kind=user&limit=1", timeout=5)
    assert r.status_code == 401
    assert "www-authenticate" not in r.headers
    assert r.json() == {
        "error": {"name": "AuthenticationError", "message": "Missing credentials"},
        "request": {"method": "GET", "url": "/entities/by-query?filter=kind=user&limit=1"},
        "response": {"statusCode": 401},
    }


def test_wrong_token_is_illegal_and_basic_auth_is_missing(bs: Any) -> None:
    url = bs.base + "/entities/by-query?filter=kind=user&limit=1"
    r = requests.get(url, headers={"Authorization": "Bearer not-the-right-token-1234"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["message"] == "Illegal token"
    r = requests.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["message"] == "Missing credentials"


def test_bearer_scheme_is_case_insensitive_and_extra_tokens_work(backstage: BackstageSim) -> None:
    sim = BackstageSim(token=TOKEN, extra_tokens=["catalog-admin-token-0123456789"])
    with serve(sim) as url:
        for auth in (f"bearer {TOKEN}", f"BEARER {TOKEN}", "Bearer catalog-admin-token-0123456789"):
            r = requests.get(url + "/api/catalog/entities/by-query?limit=0", headers={"Authorization": auth})
            assert r.status_code == 200, auth


def test_short_or_spaced_tokens_are_refused() -> None:
    with pytest.raises(ValueError):
        BackstageSim(token="short")
    with pytest.raises(ValueError):
        BackstageSim(token="has a space in it")


def test_unknown_route_is_an_empty_404(bs: Any) -> None:
    r = bs.get("/users")
    assert r.status_code == 404 and r.content == b""


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filter=kind=user&pageSize=10", "Unknown query parameter 'pageSize'"),
        ("filter=kind=user&limit=abc", "request/query/limit must be integer"),
        ("filter=kind=user&orderField=metadata.name,up", "Invalid order field order, must be asc or desc"),
        (
            "filter==user",
            "Invalid filter, '=user' is not a valid statement (expected a string on the form a=b or a= or a)",
        ),
    ],
)
def test_bad_requests_are_400_input_errors(bs: Any, query: str, message: str) -> None:
    r = bs.session.get(f"{bs.base}/entities/by-query?{query}")
    assert r.status_code == 400
    assert r.json() == {
        "error": {"name": "InputError", "message": message},
        "request": {"method": "GET", "url": f"/entities/by-query?{query}"},
        "response": {"statusCode": 400},
    }


def test_garbage_cursor_is_400(bs: Any) -> None:
    r = bs.get("/entities/by-query", {"cursor": "garbage"})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("Malformed cursor: SyntaxError: Unexpected token")


# ---------------------------------------------------------------------------- by-query paging
def test_cursor_pages_have_the_recorded_page_info_shapes(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(generated_org(10, 3))
    items, infos = walk(bs, {"filter": "kind=user", "limit": 3, "fields": FIELDS})
    assert [set(i) for i in infos] == [
        {"nextCursor"},
        {"nextCursor", "prevCursor"},
        {"nextCursor", "prevCursor"},
        {"prevCursor"},
    ]
    assert len(items) == 10 == len({i["metadata"]["name"] for i in items})
    uids = [i["metadata"]["uid"] for i in items]
    assert uids == sorted(uids)  # default order: metadata.uid
    single = bs.get("/entities/by-query", {"filter": "kind=user", "limit": 50}).json()
    assert single["pageInfo"] == {} and single["totalItems"] == 10


def test_cursor_carries_filter_order_and_total_but_not_limit_or_fields(
    backstage: BackstageSim, bs: Any
) -> None:
    backstage.set_entities(generated_org(450, 10))
    first = bs.get(
        "/entities/by-query", {"filter": "kind=user", "limit": 3, "fields": "metadata.name"}
    ).json()
    cursor = first["pageInfo"]["nextCursor"]
    decoded = json.loads(base64.b64decode(cursor))
    assert decoded["query"] == {"kind": "user"} and decoded["totalItems"] == 450
    assert "limit" not in decoded and "fields" not in decoded
    # without limit and fields: the default 200 full entities
    r = bs.get("/entities/by-query", {"cursor": cursor})
    assert r.status_code == 200
    page = r.json()
    assert len(page["items"]) == 200
    assert {"apiVersion", "kind", "metadata", "spec", "relations"} <= set(page["items"][0])
    assert set(page["pageInfo"]) == {"nextCursor", "prevCursor"}
    # filter and orderField next to a cursor are silently ignored
    r = bs.get(
        "/entities/by-query",
        {
            "cursor": cursor,
            "filter": "kind=group",
            "orderField": "metadata.name,desc",
            "limit": 3,
            "fields": "kind",
        },
    )
    assert r.status_code == 200 and {i["kind"] for i in r.json()["items"]} == {"User"}


def test_default_limit_is_200(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(generated_org(250, 5))
    page = bs.get("/entities/by-query", {"filter": "kind=user"}).json()
    assert len(page["items"]) == 200 and page["totalItems"] == 250 and set(page["pageInfo"]) == {"nextCursor"}


def test_limit_zero_counts_only_and_unknown_kind_is_empty(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    assert bs.get("/entities/by-query", {"filter": "kind=user", "limit": 0}).json() == {
        "items": [],
        "totalItems": 5,
        "pageInfo": {},
    }
    assert bs.get("/entities/by-query", {"filter": "kind=usr", "limit": 5}).json() == {
        "items": [],
        "totalItems": 0,
        "pageInfo": {},
    }


def test_total_items_is_computed_once_and_keyset_survives_changes(backstage: BackstageSim, bs: Any) -> None:
    org = generated_org(30, 4)
    backstage.set_entities(org)
    first = bs.get("/entities/by-query", {"filter": "kind=user", "limit": 10, "fields": "metadata"}).json()
    seen = [i["metadata"]["name"] for i in first["items"]]
    # between pages: remove one already seen, remove one not yet seen, add three
    not_seen = next(u for u in org if u["kind"] == "User" and u["metadata"]["name"] not in seen)
    backstage.remove_entity("User", seen[0])
    backstage.remove_entity("User", not_seen["metadata"]["name"])
    for i in range(3):
        backstage.upsert_entity(user(f"late-{i}", ["group-0001"]))
    body, names = first, list(seen)
    while "nextCursor" in body["pageInfo"]:
        body = bs.get(
            "/entities/by-query",
            {"cursor": body["pageInfo"]["nextCursor"], "limit": 10, "fields": "metadata"},
        ).json()
        assert body["totalItems"] == 30  # from the cursor, not recounted
        names += [i["metadata"]["name"] for i in body["items"]]
    assert len(names) == len(set(names))  # keyset paging: no duplicates
    assert not_seen["metadata"]["name"] not in names
    uid_cut = first["items"][-1]["metadata"]["uid"]
    late = {n for n in names if n.startswith("late-")}
    expected_late = {
        f"late-{i}"
        for i in range(3)
        if backstage.get_entity("User", f"late-{i}")["metadata"]["uid"] > uid_cut  # type: ignore[index]
    }
    assert late == expected_late


def test_prev_cursor_goes_back(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(generated_org(9, 2))
    p1 = bs.get("/entities/by-query", {"filter": "kind=user", "limit": 3}).json()
    p2 = bs.get("/entities/by-query", {"cursor": p1["pageInfo"]["nextCursor"], "limit": 3}).json()
    back = bs.get("/entities/by-query", {"cursor": p2["pageInfo"]["prevCursor"], "limit": 3}).json()
    assert [i["metadata"]["uid"] for i in back["items"]] == [i["metadata"]["uid"] for i in p1["items"]]
    assert set(back["pageInfo"]) == {"nextCursor"}


def test_order_field_sorts_case_insensitively_and_pages_consistently(
    backstage: BackstageSim, bs: Any
) -> None:
    backstage.set_entities(small_org())
    params = {"filter": "kind=user", "limit": 2, "fields": "metadata.name", "orderField": "metadata.name,asc"}
    items, _ = walk(bs, params)
    assert [i["metadata"]["name"] for i in items] == ["alice", "bob", "carol", "Mixed.Case", "zed"]
    first = bs.get("/entities/by-query", {**params, "orderField": "metadata.name,desc"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["zed", "Mixed.Case"]
    cursor = json.loads(base64.b64decode(first["pageInfo"]["nextCursor"]))
    assert cursor["orderFields"] == [{"field": "metadata.name", "order": "desc"}]
    assert cursor["orderFieldValues"][0] == "mixed.case"  # lower-cased sort value + uid tiebreak
    assert len(cursor["orderFieldValues"]) == 2


# ---------------------------------------------------------------------------- filters and fields
def test_filters_match_keys_and_values_case_insensitively(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    for f in (
        "kind=USER,metadata.name=MIXED.CASE",
        "KIND=user,spec.profile.email=MIXED.CASE@EXAMPLE.COM",
        "Kind=User,Metadata.Name=mixed.case",
    ):
        body = bs.get("/entities/by-query", {"filter": f}).json()
        assert [i["metadata"]["name"] for i in body["items"]] == ["Mixed.Case"], f


def test_filter_or_and_exists(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())

    def count(**p: Any) -> int:
        total: int = bs.get("/entities/by-query", {"limit": 0, **p}).json()["totalItems"]
        return total

    assert count(filter=["kind=user", "kind=group"]) == 9
    assert count(filter="kind") == 10  # "has a kind": includes the Location entity
    assert count(filter="kind=user,kind=group") == 9  # same key twice inside one filter: any of the values
    assert count(filter="kind=user,spec.profile.email=bob@example.com") == 1
    assert count(filter="kind=group,spec.parent") == 3
    assert count(filter="kind=user,spec.memberof.ml=true") == 1  # array items as keys


def test_relation_filter_and_no_transitive_membership(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())

    def q(f: str) -> list[str]:
        return [i["metadata"]["name"] for i in bs.get("/entities/by-query", {"filter": f}).json()["items"]]

    assert sorted(q("kind=user,relations.memberOf=group:default/eng"), key=str.lower) == [
        "alice",
        "Mixed.Case",
        "zed",
    ]
    assert q("kind=user,relations.memberof=GROUP:DEFAULT/ML") == ["alice"]
    assert q("kind=user,relations.memberOf=group:default/root") == []


def test_fields_projection_merges_repeated_params(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    r = bs.session.get(
        bs.base + "/entities/by-query",
        params=[("filter", "metadata.name=bob"), ("fields", "kind,metadata.name"), ("fields", "relations")],
    )
    assert r.json()["items"] == [
        {
            "kind": "User",
            "metadata": {"name": "bob"},
            "relations": [{"type": "memberOf", "targetRef": "group:default/ops"}],
        }
    ]


def test_full_text_filter(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    body = bs.get(
        "/entities/by-query", {"fullTextFilterTerm": "BOB@", "fullTextFilterFields": "spec.profile.email"}
    )
    assert [i["metadata"]["name"] for i in body.json()["items"]] == ["bob"]


# ---------------------------------------------------------------------------- stored form
def test_stored_form_and_relations(backstage: BackstageSim) -> None:
    backstage.set_entities(small_org())
    alice = backstage.get_entity("User", "alice")
    assert alice is not None
    md = alice["metadata"]
    assert md["namespace"] == "default" and len(md["uid"]) == 36 and len(md["etag"]) == 40
    assert md["annotations"]["backstage.io/managed-by-location"].startswith("file:")
    assert md["annotations"]["backstage.io/managed-by-origin-location"].startswith("file:")
    assert alice["spec"]["memberOf"] == ["eng", "ml"]  # sorted, short refs kept as authored
    assert alice["relations"] == [
        {"type": "memberOf", "targetRef": "group:default/eng"},
        {"type": "memberOf", "targetRef": "group:default/ml"},
    ]
    eng = backstage.get_entity("Group", "eng")
    assert eng is not None
    assert eng["spec"]["members"] == ["Mixed.Case", "zed"]
    assert eng["relations"] == [  # sorted by type then target; lower-cased refs; merged and de-duplicated
        {"type": "childOf", "targetRef": "group:default/root"},
        {"type": "hasMember", "targetRef": "user:default/alice"},
        {"type": "hasMember", "targetRef": "user:default/mixed.case"},
        {"type": "hasMember", "targetRef": "user:default/zed"},
        {"type": "parentOf", "targetRef": "group:default/ml"},
    ]
    zed = backstage.get_entity("User", "zed")  # memberOf only via the group's spec.members
    assert zed is not None and zed["relations"] == [{"type": "memberOf", "targetRef": "group:default/eng"}]
    root = backstage.get_entity("Group", "root")
    assert root is not None and {r["type"] for r in root["relations"]} == {
        "parentOf"
    }  # no transitive members


def test_membership_of_a_missing_group_is_kept(backstage: BackstageSim) -> None:
    backstage.set_entities(small_org())
    carol = backstage.get_entity("User", "carol")
    assert carol is not None and carol["relations"] == [
        {"type": "memberOf", "targetRef": "group:default/ghost-group"}
    ]
    backstage.remove_entity("Group", "ops")
    bob = backstage.get_entity("User", "bob")
    assert bob is not None and bob["relations"] == [{"type": "memberOf", "targetRef": "group:default/ops"}]
    root = backstage.get_entity("Group", "root")
    assert root is not None and {"type": "parentOf", "targetRef": "group:default/ops"} in root["relations"]


def test_removing_and_moving_a_user_updates_group_relations(backstage: BackstageSim) -> None:
    backstage.set_entities(small_org())
    backstage.upsert_entity(user("alice", ["ops"]))
    uid_before = backstage.get_entity("User", "bob")["metadata"]["uid"]  # type: ignore[index]
    ml = backstage.get_entity("Group", "ml")
    assert ml is not None and all(r["type"] != "hasMember" for r in ml["relations"])
    backstage.remove_entity("User", "bob")
    ops = backstage.get_entity("Group", "ops")
    assert ops is not None and [r["targetRef"] for r in ops["relations"] if r["type"] == "hasMember"] == [
        "user:default/alice"
    ]
    backstage.upsert_entity(user("bob", ["ops"]))
    assert backstage.get_entity("User", "bob")["metadata"]["uid"] != uid_before  # type: ignore[index]


def test_invalid_documents_are_never_served(backstage: BackstageSim, bs: Any) -> None:
    bad = [
        user("has space", ["eng"]),
        user("x" * 64, ["eng"]),
        {**user("lower-kind", []), "kind": "user"},
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": "no-memberof"},
            "spec": {},
        },
        {**group("no-type"), "spec": {"children": []}},
    ]
    backstage.set_entities([*small_org(), *bad])
    assert len(backstage.rejected) == 5
    assert bs.get("/entities/by-query", {"filter": "kind=user", "limit": 0}).json()["totalItems"] == 5
    ok = user("y" * 63, ["eng"])
    assert backstage.upsert_entity(ok) is True


def test_namespaced_refs_resolve_in_the_entity_namespace(backstage: BackstageSim) -> None:
    u = user("nina", ["team-a", "group:other/team-b"])
    u["metadata"]["namespace"] = "emea"
    backstage.set_entities([u])
    nina = backstage.get_entity("User", "nina", "emea")
    assert nina is not None and [r["targetRef"] for r in nina["relations"]] == [
        "group:emea/team-a",
        "group:other/team-b",
    ]


def test_orphaned_entities_keep_their_memberships(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    assert backstage.orphan_entity("User", "bob")
    body = bs.get("/entities/by-query", {"filter": "metadata.annotations.backstage.io/orphan=true"}).json()
    assert [i["metadata"]["name"] for i in body["items"]] == ["bob"]
    assert body["items"][0]["relations"] == [{"type": "memberOf", "targetRef": "group:default/ops"}]


# ---------------------------------------------------------------------------- other endpoints
def test_by_name(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    r = bs.get("/entities/by-name/USER/Default/MIXED.CASE")
    assert r.status_code == 200 and r.json()["metadata"]["name"] == "Mixed.Case"
    r = bs.get("/entities/by-name/user/default/nobody")
    assert r.status_code == 404
    assert r.json()["error"] == {
        "name": "NotFoundError",
        "message": "No entity named 'nobody' found, with kind 'user' in namespace 'default'",
    }
    assert r.json()["request"]["url"] == "/entities/by-name/user/default/nobody"
    r = bs.get("/entities/by-name/user/default/bob", {"fields": "metadata.name"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "Unknown query parameter 'fields'"


def test_by_refs_is_case_sensitive_and_keeps_request_order(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    refs = [
        "user:default/mixed.case",
        "user:default/Mixed.Case",
        "USER:DEFAULT/BOB",
        "user:bob",
        "bob",
        "group:default/eng",
        "user:default/nobody",
    ]
    r = bs.post("/entities/by-refs", {"entityRefs": refs, "fields": ["metadata.name"]})
    assert r.json() == {
        "items": [
            {"metadata": {"name": "Mixed.Case"}},
            None,
            None,
            None,
            None,
            {"metadata": {"name": "eng"}},
            None,
        ]
    }
    r = bs.post(
        "/entities/by-refs?filter=kind=group",
        {"entityRefs": ["user:default/bob", "group:default/eng"], "fields": ["metadata.name"]},
    )
    assert r.json() == {"items": [None, {"metadata": {"name": "eng"}}]}
    r = bs.post("/entities/by-refs?fields=metadata.name", {"entityRefs": ["user:default/bob"]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "Unknown query parameter 'fields'"
    r = bs.post("/entities/by-refs", {})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "request/body must have required property 'entityRefs'"


def test_entity_facets(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    assert bs.get("/entity-facets", {"facet": "kind"}).json() == {
        "facets": {
            "kind": [
                {"value": "Group", "count": 4},
                {"value": "Location", "count": 1},
                {"value": "User", "count": 5},
            ]
        }
    }


def test_legacy_entities_endpoint_with_link_header(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    r = bs.get("/entities", {"filter": "kind=user", "limit": 2, "offset": 2, "fields": "metadata.name"})
    assert r.json() == [{"metadata": {"name": "carol"}}, {"metadata": {"name": "Mixed.Case"}}]  # by ref
    link = r.headers["link"]
    assert link.startswith("</entities?filter=kind%3Duser&limit=2&fields=metadata.name&after=")
    assert link.endswith('>; rel="next"')
    after = link[link.index("after=") + 6 : link.index(">")]
    r2 = bs.session.get(bs.base + "/entities?filter=kind%3Duser&limit=2&fields=metadata.name&after=" + after)
    assert r2.json() == [{"metadata": {"name": "zed"}}] and "link" not in r2.headers
    assert len(bs.get("/entities", {"filter": "kind=user"}).json()) == 5  # no limit: everything


# ---------------------------------------------------------------------------- faults and latency
def test_fault_injection_counts_and_clears(backstage: BackstageSim, bs: Any) -> None:
    backstage.set_entities(small_org())
    backstage.inject("/api/catalog/entities/by-query", 503, {"error": "down"}, times=2)
    statuses = [bs.get("/entities/by-query", {"limit": 0}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert backstage.faults_hit("/api/catalog/entities/by-query") == 2 and backstage.faults_left() == []
    backstage.inject("GET /api/catalog/entity-facets", 500, b"boom", times=-1, content_type="text/plain")
    for _ in range(3):
        r = bs.get("/entity-facets", {"facet": "kind"})
        assert r.status_code == 500 and r.text == "boom"
    assert backstage.faults_left() == ["GET /api/catalog/entity-facets"]
    backstage.clear_faults()
    assert bs.get("/entity-facets", {"facet": "kind"}).status_code == 200
    assert backstage.faults_hit("GET /api/catalog/entity-facets") == 3 and backstage.faults_hit() == 5
    counts = backstage.request_counts()
    assert counts["GET /api/catalog/entities/by-query"] == 3 and counts["GET /api/catalog/entity-facets"] == 4
    assert backstage.requests[0].param("limit") == "0" and backstage.requests[0].status == 503


def test_dropped_connection_and_delayed_fault(backstage: BackstageSim, bs: Any) -> None:
    backstage.inject("/api/catalog", 0)
    with pytest.raises(requests.ConnectionError):
        bs.get("/entities/by-query", {"limit": 0})
    backstage.inject("/api/catalog", 429, {"error": "slow down"}, delay=0.2, headers={"Retry-After": "1"})
    t0 = time.monotonic()
    r = bs.get("/entities/by-query", {"limit": 0})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and time.monotonic() - t0 >= 0.2


def test_latency_is_added_to_every_request(backstage: BackstageSim, bs: Any) -> None:
    backstage.latency = 0.1
    t0 = time.monotonic()
    for _ in range(3):
        assert bs.get("/entities/by-query", {"limit": 0}).status_code == 200
    assert time.monotonic() - t0 >= 0.3


# ---------------------------------------------------------------------------- organisations
def test_generated_org_is_deterministic_and_shaped_like_the_real_one() -> None:
    org = generated_org(2000, 40, seed=42)
    assert org == generated_org(2000, 40, seed=42) and org != generated_org(2000, 40, seed=43)
    users = [e for e in org if e["kind"] == "User"]
    groups = [e for e in org if e["kind"] == "Group"]
    assert len(users) == 2000 and len(groups) == 40
    assert users[7]["metadata"]["name"] == "Mixed.Case-User-00007"
    assert users[7]["spec"]["profile"] == {
        "displayName": "User 00007",
        "email": "mixed.case-user-00007@example.com",
    }
    sizes = [len(u["spec"]["memberOf"]) for u in users]
    assert 0.15 < sizes.count(2) / 2000 < 0.25 and 0.02 < sizes.count(3) / 2000 < 0.08
    assert groups[0]["metadata"]["name"] == "group-0000" and "parent" not in groups[0]["spec"]
    by_name = {g["metadata"]["name"]: g for g in groups}
    for g in groups[1:]:
        assert g["metadata"]["name"] in by_name[g["spec"]["parent"]]["spec"]["children"]
        assert len(g["spec"].get("members", [])) <= 3
    sim = BackstageSim()
    sim.set_entities(org)
    assert sim.rejected == [] and sim.entity_count == 2041


def test_big_generated_org_is_fast() -> None:
    t0 = time.monotonic()
    org = generated_org(100_000, 500)
    assert len(org) == 100_500
    assert time.monotonic() - t0 < 10


def test_demo_org_and_yaml_round_trip(tmp_path: Any) -> None:
    org = demo_org()
    people = [e for e in org if e["kind"] == "User"]
    assert 25 <= len(people) <= 35
    assert any(len(p["spec"]["memberOf"]) == 2 for p in people)
    assert any(p["metadata"]["name"] != p["metadata"]["name"].lower() for p in people)
    assert all(p["spec"]["profile"]["email"].endswith("@example.com") for p in people)
    sim = BackstageSim()
    sim.set_entities(org)
    assert sim.rejected == []
    eng = sim.get_entity("Group", "engineering")
    assert eng is not None
    assert {r["targetRef"] for r in eng["relations"] if r["type"] == "parentOf"} == {
        "group:default/platform",
        "group:default/ml-research",
    }
    path = tmp_path / "org.yaml"
    dump_entities(org, path)
    assert load_entities(path) == org
    assert load_entities(DEMO_ORG_FILE) == org  # the shipped YAML copy has not drifted


def test_set_entities_keeps_uids_of_entities_that_stay(backstage: BackstageSim) -> None:
    backstage.set_entities(small_org())
    uid = backstage.get_entity("User", "alice")["metadata"]["uid"]  # type: ignore[index]
    org = [e for e in small_org() if e["metadata"]["name"] != "bob"]
    backstage.set_entities(org)
    assert backstage.get_entity("User", "alice")["metadata"]["uid"] == uid  # type: ignore[index]
    assert backstage.get_entity("User", "bob") is None
    broken = user("alice", ["eng"])
    broken["spec"]["profile"]["email"] = ""  # minLength 1
    assert not backstage.upsert_entity(broken)  # invalid now: no longer served
    assert backstage.get_entity("User", "alice") is None


def test_re_reading_documents_changes_only_the_changed_ones(backstage: BackstageSim, bs: Any) -> None:
    # As on the real catalog (file-served, bob moved from eng to ops, the file re-read): the others keep their
    # etags; bob's and both groups' change (their relations did); every uid stays.
    def listing() -> dict[str, dict[str, Any]]:
        query = {"filter": ["kind=user", "kind=group"], "fields": FIELDS + ",metadata.etag"}
        return {e["metadata"]["name"]: e for e in walk(bs, query)[0]}

    org = [group("eng"), group("ops"), user("alice", ["eng"]), user("bob", ["eng"]), user("carol", ["eng"])]
    backstage.set_entities(org)
    before = listing()
    next(e for e in org if e["metadata"]["name"] == "bob")["spec"]["memberOf"] = ["ops"]
    backstage.set_entities(org)
    after = listing()
    etag_changed = sorted(n for n in after if after[n]["metadata"]["etag"] != before[n]["metadata"]["etag"])
    assert etag_changed == ["bob", "eng", "ops"]
    assert all(after[n]["metadata"]["uid"] == before[n]["metadata"]["uid"] for n in after)
    assert all(after[n] == before[n] for n in ("alice", "carol"))
    assert {r["targetRef"] for r in after["bob"]["relations"]} == {"group:default/ops"}
    assert {r["targetRef"] for r in after["ops"]["relations"]} == {"user:default/bob"}
