"""BackstageClient paging and the pure entity parsers, on bodies recorded from a real catalog.

Fixtures are verbatim captures from a real catalog (the API contract notes' backstage-responses.md,
sections 1a, 1b, 1g, 2a, 2b, 6b, 7d; behaviours in docs/backstage-api.md); the recorded group pages keep
the capture's own "... N more" trimming markers, which the parsers must survive.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from responses.registries import OrderedRegistry

from catalog_sync.catalog import (
    GROUP_FIELDS,
    USER_FIELDS,
    BackstageClient,
    GroupEntity,
    _typed_user_page,
    build_groups,
    catalog_url,
    normalize_ref,
    parse_group,
    parse_user,
)
from catalog_sync.http import ApiError, ResponseError
from catalog_sync.model import CatalogGroup, CatalogSnapshot, CatalogUser, SkippedEntity

ROOT = "http://backstage.test:7007"
URL = f"{ROOT}/api/catalog/entities/by-query"
TOKEN = "sync-job-static-token-0123456789"

USERS_PAGE1 = json.loads(
    r"""
{
 "items": [
  {
   "kind": "User",
   "metadata": {
    "name": "user-02486",
    "namespace": "default",
    "uid": "0001f0ce-98ab-4c28-be5c-ceebbe66808a"
   },
   "spec": {
    "profile": {
     "displayName": "User 02486",
     "email": "user-02486@example.com"
    },
    "memberOf": [
     "group-0150",
     "group-0170"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0150"
    },
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0170"
    }
   ]
  },
  {
   "kind": "User",
   "metadata": {
    "name": "user-03137",
    "namespace": "default",
    "uid": "000299a1-70cb-4d3d-b846-5cdf862a7de2"
   },
   "spec": {
    "profile": {
     "displayName": "User 03137",
     "email": "user-03137@example.com"
    },
    "memberOf": [
     "group-0197"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0197"
    }
   ]
  },
  {
   "kind": "User",
   "metadata": {
    "name": "user-05368",
    "namespace": "default",
    "uid": "0009dab3-72fe-4201-8f1b-ed8600424f27"
   },
   "spec": {
    "profile": {
     "displayName": "User 05368",
     "email": "user-05368@example.com"
    },
    "memberOf": [
     "group-0085",
     "group-0188",
     "group-0194"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0085"
    },
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0188"
    },
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0194"
    }
   ]
  }
 ],
 "totalItems": 10000,
 "pageInfo": {
  "nextCursor": "eyJvcmRlckZpZWxkcyI6W10sImlzUHJldmlvdXMiOmZhbHNlLCJxdWVyeSI6eyJraW5kIjoidXNlciJ9LCJmdWxsVGV4dEZpbHRlciI6eyJ0ZXJtIjoiIn0sIm9yZGVyRmllbGRWYWx1ZXMiOlsiMDAwOWRhYjMtNzJmZS00MjAxLThmMWItZWQ4NjAwNDI0ZjI3Il0sImZpcnN0U29ydEZpZWxkVmFsdWVzIjpbIjAwMDFmMGNlLTk4YWItNGMyOC1iZTVjLWNlZWJiZTY2ODA4YSJdLCJ0b3RhbEl0ZW1zIjoxMDAwMH0="
 }
}
"""  # noqa: E501
)

USERS_PAGE2 = json.loads(
    r"""
{
 "items": [
  {
   "kind": "User",
   "metadata": {
    "name": "user-08141",
    "namespace": "default",
    "uid": "000db9a7-6cfc-4a9f-b5f5-c14db9315ba3"
   },
   "spec": {
    "profile": {
     "displayName": "User 08141",
     "email": "user-08141@example.com"
    },
    "memberOf": [
     "group-0106"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0106"
    }
   ]
  },
  {
   "kind": "User",
   "metadata": {
    "name": "user-01705",
    "namespace": "default",
    "uid": "0013df96-5b9b-4d5e-86b3-8df1969cf83b"
   },
   "spec": {
    "profile": {
     "displayName": "User 01705",
     "email": "user-01705@example.com"
    },
    "memberOf": [
     "group-0163"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0163"
    }
   ]
  },
  {
   "kind": "User",
   "metadata": {
    "name": "user-00036",
    "namespace": "default",
    "uid": "00147ef9-a575-43cc-a1f0-81d2808276a6"
   },
   "spec": {
    "profile": {
     "displayName": "User 00036",
     "email": "user-00036@example.com"
    },
    "memberOf": [
     "group-0149"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0149"
    }
   ]
  }
 ],
 "totalItems": 10000,
 "pageInfo": {
  "nextCursor": "eyJvcmRlckZpZWxkcyI6W10sImlzUHJldmlvdXMiOmZhbHNlLCJmdWxsVGV4dEZpbHRlciI6eyJ0ZXJtIjoiIn0sIm9yZGVyRmllbGRWYWx1ZXMiOlsiMDAxNDdlZjktYTU3NS00M2NjLWExZjAtODFkMjgwODI3NmE2Il0sInF1ZXJ5Ijp7ImtpbmQiOiJ1c2VyIn0sImZpcnN0U29ydEZpZWxkVmFsdWVzIjpbIjAwMDFmMGNlLTk4YWItNGMyOC1iZTVjLWNlZWJiZTY2ODA4YSJdLCJ0b3RhbEl0ZW1zIjoxMDAwMH0=",
  "prevCursor": "eyJvcmRlckZpZWxkcyI6W10sImlzUHJldmlvdXMiOnRydWUsImZ1bGxUZXh0RmlsdGVyIjp7InRlcm0iOiIifSwib3JkZXJGaWVsZFZhbHVlcyI6WyIwMDBkYjlhNy02Y2ZjLTRhOWYtYjVmNS1jMTRkYjkzMTViYTMiXSwicXVlcnkiOnsia2luZCI6InVzZXIifSwiZmlyc3RTb3J0RmllbGRWYWx1ZXMiOlsiMDAwMWYwY2UtOThhYi00YzI4LWJlNWMtY2VlYmJlNjY4MDhhIl0sInRvdGFsSXRlbXMiOjEwMDAwfQ=="
 }
}
"""  # noqa: E501
)

USER_MIXED_CASE = json.loads(
    r"""
{
 "items": [
  {
   "kind": "User",
   "metadata": {
    "name": "Mixed.Case-User-00007",
    "namespace": "default",
    "uid": "42178f8d-8f3a-4199-b5fe-ae9576737842"
   },
   "spec": {
    "profile": {
     "displayName": "User 00007",
     "email": "mixed.case-user-00007@example.com"
    },
    "memberOf": [
     "group-0009",
     "group-0018"
    ]
   },
   "relations": [
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0009"
    },
    {
     "type": "memberOf",
     "targetRef": "group:default/group-0018"
    }
   ]
  }
 ],
 "totalItems": 1,
 "pageInfo": {}
}
"""
)

GROUPS_PAGE1 = json.loads(
    r"""
{
 "items": [
  {
   "kind": "Group",
   "metadata": {
    "name": "group-0000"
   },
   "spec": {
    "type": "organization",
    "profile": {
     "displayName": "Group 0000",
     "email": "group-0000@example.com"
    },
    "children": [
     "group-0001",
     "group-0002",
     "group-0008",
     "group-0009",
     "group-0012",
     "group-0013",
     "... 5 more"
    ]
   },
   "relations": [
    {
     "type": "parentOf",
     "targetRef": "group:default/group-0001"
    },
    {
     "type": "parentOf",
     "targetRef": "group:default/group-0002"
    },
    {
     "type": "parentOf",
     "targetRef": "group:default/group-0008"
    },
    {
     "type": "parentOf",
     "targetRef": "group:default/group-0009"
    },
    {
     "type": "parentOf",
     "targetRef": "group:default/group-0012"
    },
    {
     "type": "parentOf",
     "targetRef": "group:default/group-0013"
    },
    "... 5 more relations trimmed; counts by type: {'parentOf': 11} ..."
   ]
  },
  {
   "kind": "Group",
   "metadata": {
    "name": "group-0001"
   },
   "spec": {
    "type": "department",
    "profile": {
     "displayName": "Group 0001",
     "email": "group-0001@example.com"
    },
    "parent": "group-0000",
    "children": [
     "group-0005",
     "group-0006",
     "group-0007",
     "group-0015",
     "group-0046",
     "group-0063",
     "... 1 more"
    ]
   },
   "relations": [
    {
     "type": "childOf",
     "targetRef": "group:default/group-0000"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00129"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00326"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00351"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00982"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00999"
    },
    "... 54 more relations trimmed; counts by type: {'childOf': 1, 'hasMember': 52, 'parentOf': 7} ..."
   ]
  }
 ],
 "totalItems": 200,
 "pageInfo": {
  "nextCursor": "eyJvcmRlckZpZWxkcyI6W3siZmllbGQiOiJtZXRhZGF0YS5uYW1lIiwib3JkZXIiOiJhc2MifV0sImlzUHJldmlvdXMiOmZhbHNlLCJxdWVyeSI6eyJraW5kIjoiZ3JvdXAifSwiZnVsbFRleHRGaWx0ZXIiOnsidGVybSI6IiJ9LCJvcmRlckZpZWxkVmFsdWVzIjpbImdyb3VwLTAwMDEiLCJjNjdjNTNkYS1kOGY2LTRiYjktYmRiMi1mYjg4MGVkZDA1ODkiXSwiZmlyc3RTb3J0RmllbGRWYWx1ZXMiOlsiZ3JvdXAtMDAwMCIsIjA3YTA2MTk3LThiNGMtNDYxYi1hNWZkLWM3NjI4NTEzNTE4NyJdLCJ0b3RhbEl0ZW1zIjoyMDB9"
 }
}
"""  # noqa: E501
)

GROUPS_PAGE2 = json.loads(
    r"""
{
 "items": [
  {
   "kind": "Group",
   "metadata": {
    "name": "group-0002"
   },
   "spec": {
    "type": "department",
    "profile": {
     "displayName": "Group 0002",
     "email": "group-0002@example.com"
    },
    "parent": "group-0000",
    "children": [
     "group-0003",
     "group-0004",
     "group-0030",
     "group-0039",
     "group-0051",
     "group-0062",
     "... 2 more"
    ]
   },
   "relations": [
    {
     "type": "childOf",
     "targetRef": "group:default/group-0000"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00148"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00556"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00559"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00679"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00914"
    },
    "... 60 more relations trimmed; counts by type: {'childOf': 1, 'hasMember': 57, 'parentOf': 8} ..."
   ]
  },
  {
   "kind": "Group",
   "metadata": {
    "name": "group-0003"
   },
   "spec": {
    "type": "team",
    "profile": {
     "displayName": "Group 0003",
     "email": "group-0003@example.com"
    },
    "parent": "group-0002",
    "children": [
     "group-0011",
     "group-0016",
     "group-0019",
     "group-0022",
     "group-0038",
     "group-0041",
     "... 2 more"
    ]
   },
   "relations": [
    {
     "type": "childOf",
     "targetRef": "group:default/group-0002"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00054"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00398"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-00930"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-01077"
    },
    {
     "type": "hasMember",
     "targetRef": "user:default/user-01334"
    },
    "... 73 more relations trimmed; counts by type: {'childOf': 1, 'hasMember': 70, 'parentOf': 8} ..."
   ]
  }
 ],
 "totalItems": 200,
 "pageInfo": {
  "nextCursor": "eyJvcmRlckZpZWxkcyI6W3siZmllbGQiOiJtZXRhZGF0YS5uYW1lIiwib3JkZXIiOiJhc2MifV0sImlzUHJldmlvdXMiOmZhbHNlLCJmdWxsVGV4dEZpbHRlciI6eyJ0ZXJtIjoiIn0sIm9yZGVyRmllbGRWYWx1ZXMiOlsiZ3JvdXAtMDAwMyIsImVkZjBkZTc2LWEwOGQtNGJhNi1iNDhjLTNjYmI1NjdhMWE1NCJdLCJxdWVyeSI6eyJraW5kIjoiZ3JvdXAifSwiZmlyc3RTb3J0RmllbGRWYWx1ZXMiOlsiZ3JvdXAtMDAwMCIsIjA3YTA2MTk3LThiNGMtNDYxYi1hNWZkLWM3NjI4NTEzNTE4NyJdLCJ0b3RhbEl0ZW1zIjoyMDB9",
  "prevCursor": "eyJvcmRlckZpZWxkcyI6W3siZmllbGQiOiJtZXRhZGF0YS5uYW1lIiwib3JkZXIiOiJhc2MifV0sImlzUHJldmlvdXMiOnRydWUsImZ1bGxUZXh0RmlsdGVyIjp7InRlcm0iOiIifSwib3JkZXJGaWVsZFZhbHVlcyI6WyJncm91cC0wMDAyIiwiZjhiNjdhOWUtMTRiNC00OGQ5LWI3ZWYtM2NlMzU5M2Q1MDA3Il0sInF1ZXJ5Ijp7ImtpbmQiOiJncm91cCJ9LCJmaXJzdFNvcnRGaWVsZFZhbHVlcyI6WyJncm91cC0wMDAwIiwiMDdhMDYxOTctOGI0Yy00NjFiLWE1ZmQtYzc2Mjg1MTM1MTg3Il0sInRvdGFsSXRlbXMiOjIwMH0="
 }
}
"""  # noqa: E501
)

ILLEGAL_TOKEN_401 = json.loads(
    r"""
{
 "error": {
  "name": "AuthenticationError",
  "message": "Illegal token"
 },
 "request": {
  "method": "GET",
  "url": "/entities/by-query?filter=kind=user&limit=1"
 },
 "response": {
  "statusCode": 401
 }
}
"""
)

UNKNOWN_PARAM_400 = json.loads(
    r"""
{
 "error": {
  "name": "InputError",
  "message": "Unknown query parameter 'pageSize'"
 },
 "request": {
  "method": "GET",
  "url": "/entities/by-query?filter=kind=user&pageSize=10"
 },
 "response": {
  "statusCode": 400
 }
}
"""
)


def last_page(items: list[Any], total: int) -> dict[str, Any]:
    return {"items": items, "totalItems": total, "pageInfo": {"prevCursor": "cHJldg=="}}


def client(**kwargs: Any) -> BackstageClient:
    kwargs.setdefault("backoff_factor", 0)
    return BackstageClient(ROOT, TOKEN, **kwargs)


def params_of(call_index: int) -> list[tuple[str, str]]:
    url = responses.calls[call_index].request.url
    assert url is not None
    return parse_qsl(urlsplit(url).query)


# --- paging ------------------------------------------------------------------------------------------


@responses.activate(registry=OrderedRegistry)
def test_pages_resend_limit_and_fields_and_send_filter_only_first() -> None:
    responses.get(URL, json=USERS_PAGE1)
    responses.get(URL, json=USERS_PAGE2)
    responses.get(URL, json=last_page(USER_MIXED_CASE["items"], 999))
    responses.get(URL, json=GROUPS_PAGE1)
    responses.get(URL, json=GROUPS_PAGE2 | {"pageInfo": {"prevCursor": "x"}})
    snap = client(page_size=3).read_snapshot()

    cursor1 = USERS_PAGE1["pageInfo"]["nextCursor"]
    cursor2 = USERS_PAGE2["pageInfo"]["nextCursor"]
    assert params_of(0) == [("filter", "kind=user"), ("limit", "3"), ("fields", USER_FIELDS)]
    assert params_of(1) == [("cursor", cursor1), ("limit", "3"), ("fields", USER_FIELDS)]
    assert params_of(2) == [("cursor", cursor2), ("limit", "3"), ("fields", USER_FIELDS)]
    assert params_of(3) == [("filter", "kind=group"), ("limit", "3"), ("fields", GROUP_FIELDS)]
    cursor_g = GROUPS_PAGE1["pageInfo"]["nextCursor"]
    assert params_of(4) == [("cursor", cursor_g), ("limit", "3"), ("fields", GROUP_FIELDS)]
    assert len(responses.calls) == 5 and snap.requests == 5

    # totalItems comes from the first page only (later pages may say anything)
    assert snap.users_total == 10000 and snap.groups_total == 200
    assert [u.name for u in snap.users] == [
        "user-02486",
        "user-03137",
        "user-05368",
        "user-08141",
        "user-01705",
        "user-00036",
        "Mixed.Case-User-00007",
    ]
    assert set(snap.groups) == {f"group:default/group-000{i}" for i in range(4)}
    assert not snap.skipped and not snap.complete


@responses.activate(registry=OrderedRegistry)
def test_user_filter_is_anded_and_base_urls_are_tolerated() -> None:
    for base in (ROOT, ROOT + "/", ROOT + "/api/catalog", ROOT + "/api/catalog/"):
        responses.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
        responses.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
        bc = BackstageClient(base, TOKEN, user_filter=" metadata.namespace=default,spec.profile.email=x ")
        snap = bc.read_snapshot()
        assert snap.requests == 2 and snap.complete
    assert params_of(0)[0] == ("filter", "kind=user,metadata.namespace=default,spec.profile.email=x")
    assert params_of(1)[0] == ("filter", "kind=group")
    assert all(c.request.url and c.request.url.startswith(URL + "?") for c in responses.calls)


def test_catalog_url() -> None:
    assert catalog_url("https://b.example.com") == "https://b.example.com/api/catalog"
    assert catalog_url("https://b.example.com/backstage/") == "https://b.example.com/backstage/api/catalog"
    assert catalog_url("https://b.example.com/api/catalog/") == "https://b.example.com/api/catalog"


@responses.activate(registry=OrderedRegistry)
def test_single_page_with_empty_page_info_stops() -> None:
    responses.get(URL, json=USER_MIXED_CASE)
    responses.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
    snap = client().read_snapshot()
    assert len(responses.calls) == 2
    assert snap.users_total == 1 and snap.complete
    (user,) = snap.users
    assert user == CatalogUser(
        ref="user:default/mixed.case-user-00007",
        name="Mixed.Case-User-00007",
        namespace="default",
        email="mixed.case-user-00007@example.com",
        display_name="User 00007",
        groups=frozenset({"group:default/group-0009", "group:default/group-0018"}),
    )


@responses.activate(registry=OrderedRegistry)
def test_cursor_loop_is_a_response_error() -> None:
    responses.get(URL, json=USERS_PAGE1)
    responses.get(URL, json=USERS_PAGE1)  # the same cursor again
    with pytest.raises(ResponseError) as info:
        client(page_size=3).read_snapshot()
    assert info.value.endpoint == "/entities/by-query" and "repeated" in info.value.message
    assert len(responses.calls) == 2


@responses.activate(registry=OrderedRegistry)
def test_empty_page_with_next_cursor_is_a_response_error() -> None:
    responses.get(URL, json={"items": [], "totalItems": 5, "pageInfo": {"nextCursor": "abc"}})
    with pytest.raises(ResponseError, match="items on a page with a nextCursor"):
        client().read_snapshot()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="list"),
        pytest.param({"totalItems": 1, "pageInfo": {}}, id="no-items"),
        pytest.param({"items": {}, "totalItems": 1, "pageInfo": {}}, id="items-object"),
        pytest.param({"items": [], "pageInfo": {}}, id="no-total"),
        pytest.param({"items": [], "totalItems": "3", "pageInfo": {}}, id="total-string"),
        pytest.param({"items": [], "totalItems": 0}, id="no-page-info"),
        pytest.param({"items": [{}], "totalItems": 9, "pageInfo": {"nextCursor": 7}}, id="cursor-number"),
    ],
)
@responses.activate
def test_wrong_shape_is_a_response_error_naming_the_endpoint(body: Any) -> None:
    responses.get(URL, json=body)
    with pytest.raises(ResponseError) as info:
        client().read_snapshot()
    assert str(info.value).startswith("backstage GET /entities/by-query: ")


@responses.activate
def test_html_page_is_a_response_error() -> None:
    responses.get(URL, body="<!doctype html><html><body>Backstage</body></html>", content_type="text/html")
    with pytest.raises(ResponseError) as info:
        client().read_snapshot()
    assert info.value.message.startswith("expected JSON, got text/html: <!doctype html>")


@responses.activate
def test_backstage_error_message_and_no_token_in_errors_or_repr() -> None:
    responses.get(URL, json=ILLEGAL_TOKEN_401, status=401)
    bc = client()
    with pytest.raises(ApiError) as info:
        bc.read_snapshot()
    assert str(info.value) == "backstage GET /entities/by-query: HTTP 401: AuthenticationError: Illegal token"
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert TOKEN not in repr(bc) and TOKEN not in repr(bc.session)


@responses.activate
def test_400_message() -> None:
    responses.get(URL, json=UNKNOWN_PARAM_400, status=400)
    with pytest.raises(ApiError) as info:
        client().read_snapshot()
    assert info.value.status == 400
    assert info.value.message == "InputError: Unknown query parameter 'pageSize'"


@responses.activate(registry=OrderedRegistry)
def test_retry_on_503_then_continue_paging() -> None:
    responses.get(URL, json=USERS_PAGE1)
    responses.get(URL, body="<html>503</html>", status=503, content_type="text/html")
    responses.get(URL, json=last_page([], 3))
    responses.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
    snap = client(page_size=3).read_snapshot()
    assert len(responses.calls) == 4 and snap.requests == 3 and len(snap.users) == 3


@responses.activate(registry=OrderedRegistry)
def test_requests_grow_with_pages_not_users() -> None:
    entities = [
        {"kind": "User", "metadata": {"name": f"u{i}"}, "relations": [], "spec": {}} for i in range(1000)
    ]
    for start in range(0, 1000, 500):
        more = {"nextCursor": f"c{start}"} if start < 500 else {}
        responses.get(
            URL, json={"items": entities[start : start + 500], "totalItems": 1000, "pageInfo": more}
        )
    responses.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
    snap = client().read_snapshot()
    assert snap.requests == 3 and len(snap.users) == 1000 and snap.complete


# --- refs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("group-0039", "group:ns/group-0039"),
        ("Team-A", "group:ns/team-a"),
        ("other/Team-A", "group:other/team-a"),
        ("group:other/Team-A", "group:other/team-a"),
        ("GROUP:Default/X", "group:default/x"),
        ("group:Team-A", "group:ns/team-a"),
        ("ns/name:with:colons", "group:ns/name:with:colons"),
        (" padded ", "group:ns/padded"),
        ("", None),
        ("group:", None),
        ("a/b/c", None),
        ("/x", None),
    ],
)
def test_normalize_ref(ref: str, expected: str | None) -> None:
    assert normalize_ref(ref, "group", "ns") == expected


# --- users -------------------------------------------------------------------------------------------


def test_parse_real_user() -> None:
    user = parse_user(USERS_PAGE1["items"][2])
    assert user == CatalogUser(
        ref="user:default/user-05368",
        name="user-05368",
        namespace="default",
        email="user-05368@example.com",
        display_name="User 05368",
        groups=frozenset(
            {"group:default/group-0085", "group:default/group-0188", "group:default/group-0194"}
        ),
    )


def test_user_groups_union_of_relations_and_spec_refs() -> None:
    entity = {
        "kind": "User",
        "metadata": {"name": "Carl", "namespace": "eng"},
        "spec": {"memberOf": ["Short", "other/Partial", "group:third/Full", 42, ""]},
        "relations": [
            {"type": "memberOf", "targetRef": "group:eng/from-relation"},
            {"type": "ownerOf", "targetRef": "component:eng/not-a-group"},
            {"type": "memberOf", "target": {"kind": "group", "namespace": "old", "name": "Shape"}},
            "... 5 more relations trimmed ...",
        ],
    }
    user = parse_user(entity)
    assert isinstance(user, CatalogUser)
    assert user.ref == "user:eng/carl" and user.name == "Carl" and user.namespace == "eng"
    assert user.groups == {
        "group:eng/short",  # short ref takes the user's namespace
        "group:other/partial",
        "group:third/full",
        "group:eng/from-relation",
        "group:old/shape",
    }


def test_user_membership_of_missing_group_is_kept() -> None:
    # The catalog keeps memberOf for groups that do not exist
    # (docs/backstage-api.md#relations-may-name-missing-groups).
    entity = {"kind": "User", "metadata": {"name": "a"}, "spec": {"memberOf": ["removed-group"]}}
    user = parse_user(entity)
    assert isinstance(user, CatalogUser) and user.groups == {"group:default/removed-group"}


@pytest.mark.parametrize(
    "entity",
    [
        pytest.param({"kind": "User", "metadata": {"name": "a"}, "spec": {}}, id="no-profile"),
        pytest.param({"kind": "User", "metadata": {"name": "a"}, "spec": {"profile": []}}, id="profile-list"),
        pytest.param(
            {"kind": "User", "metadata": {"name": "a"}, "spec": {"profile": {"email": 5, "displayName": ""}}},
            id="email-not-string",
        ),
        pytest.param({"metadata": {"name": "a"}, "spec": {"profile": {}}}, id="no-kind-in-projection"),
    ],
)
def test_user_without_profile_is_kept_with_none(entity: dict[str, Any]) -> None:
    user = parse_user(entity)
    assert isinstance(user, CatalogUser)
    assert (user.ref, user.email, user.display_name, user.groups) == (
        "user:default/a",
        None,
        None,
        frozenset(),
    )


@pytest.mark.parametrize(
    ("entity", "reason"),
    [
        pytest.param({"kind": "User", "metadata": {"name": "a"}}, "no spec object", id="no-spec"),
        pytest.param(
            {"kind": "User", "metadata": {"name": "a"}, "spec": None}, "no spec object", id="spec-null"
        ),
        pytest.param(
            {"kind": "User", "metadata": {"namespace": "x"}}, "no usable metadata.name", id="no-name"
        ),
        pytest.param(
            {"kind": "User", "metadata": {"name": "  "}}, "no usable metadata.name", id="blank-name"
        ),
        pytest.param({"kind": "User", "metadata": {"name": 7}}, "no usable metadata.name", id="name-number"),
        pytest.param({"kind": "User"}, "no usable metadata.name", id="no-metadata"),
        pytest.param({"kind": "User", "metadata": {"name": "a/b"}}, "does not form", id="name-with-slash"),
        pytest.param("... 199 more items trimmed ...", "not a JSON object", id="string"),
        pytest.param(None, "not a JSON object", id="null"),
        pytest.param({"kind": "Group", "metadata": {"name": "g"}}, "kind is 'Group'", id="wrong-kind"),
    ],
)
def test_unusable_user_is_skipped(entity: Any, reason: str) -> None:
    result = parse_user(entity)
    assert isinstance(result, SkippedEntity)
    assert result.kind == "user" and reason in result.reason


@responses.activate(registry=OrderedRegistry)
def test_skipped_entities_count_towards_complete() -> None:
    items = [USERS_PAGE1["items"][0], {"kind": "User", "metadata": {}}, "junk"]
    responses.get(URL, json={"items": items, "totalItems": 3, "pageInfo": {}})
    responses.get(
        URL, json={"items": [{"kind": "Group", "metadata": {"name": "g"}}], "totalItems": 1, "pageInfo": {}}
    )
    snap = client().read_snapshot()
    assert len(snap.users) == 1 and len(snap.skipped) == 2 and snap.complete


@responses.activate(registry=OrderedRegistry)
def test_duplicate_user_refs_are_reported_not_doubled() -> None:
    items = [
        {"kind": "User", "metadata": {"name": "Ann"}, "spec": {"memberOf": []}},
        {"kind": "User", "metadata": {"name": "ann"}, "spec": {"memberOf": []}},
    ]
    responses.get(URL, json={"items": items, "totalItems": 2, "pageInfo": {}})
    responses.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
    snap = client().read_snapshot()
    assert [u.name for u in snap.users] == ["Ann"]
    assert snap.skipped == (SkippedEntity("user", "user:default/ann", "duplicate entity ref in the listing"),)


# --- groups ------------------------------------------------------------------------------------------


def group(name: str, **spec: Any) -> dict[str, Any]:
    relations = spec.pop("relations", [])
    return {"kind": "Group", "metadata": {"name": name}, "spec": spec, "relations": relations}


def parsed(entity: Any) -> GroupEntity:
    result = parse_group(entity)
    assert isinstance(result, GroupEntity)
    return result


def test_parse_real_groups_with_trim_markers() -> None:
    root = parsed(GROUPS_PAGE1["items"][0])
    assert root.ref == "group:default/group-0000" and root.parents == frozenset()
    assert "group:default/group-0001" in root.children
    g1 = parsed(GROUPS_PAGE1["items"][1])
    assert g1.parents == {"group:default/group-0000"}
    groups = build_groups([root, g1, *map(parsed, GROUPS_PAGE2["items"])])
    assert groups["group:default/group-0003"] == CatalogGroup(
        "group:default/group-0003", "group-0003", frozenset({"group:default/group-0002"})
    )
    assert groups["group:default/group-0000"].parents == frozenset()


def test_parent_from_each_source() -> None:
    entities = [
        group("Root"),
        group("via-spec-parent", parent="Root"),
        group("via-childof", relations=[{"type": "childOf", "targetRef": "group:default/root"}]),
        group("via-parentof"),
        group("via-children"),
        group(
            "Lister",
            children=["via-children", "ghost-child"],
            relations=[
                {"type": "parentOf", "targetRef": "group:default/via-parentof"},
            ],
        ),
        group("other-ns-parent", parent="elsewhere/Top"),
    ]
    groups = build_groups(parsed(e) for e in entities)
    assert groups["group:default/via-spec-parent"].parents == {"group:default/root"}
    assert groups["group:default/via-childof"].parents == {"group:default/root"}
    assert groups["group:default/via-parentof"].parents == {"group:default/lister"}
    assert groups["group:default/via-children"].parents == {"group:default/lister"}
    assert groups["group:default/other-ns-parent"].parents == {"group:elsewhere/top"}  # kept though unknown
    assert "group:default/ghost-child" not in groups  # a listed child that does not exist is not invented
    assert groups["group:default/root"].name == "Root"


def test_group_short_refs_use_the_group_namespace_and_self_parent_is_dropped() -> None:
    entity = {
        "kind": "Group",
        "metadata": {"name": "Team", "namespace": "eng"},
        "spec": {"parent": "dept", "children": ["sub", "team"]},
        "relations": [{"type": "childOf", "targetRef": "group:eng/team"}],
    }
    g = parsed(entity)
    assert g.ref == "group:eng/team"
    assert g.parents == {"group:eng/dept"} and g.children == {"group:eng/sub"}


def test_parent_seen_from_both_sides_is_one_parent() -> None:
    entities = [
        group("p", children=["c"], relations=[{"type": "parentOf", "targetRef": "group:default/c"}]),
        group("c", parent="p", relations=[{"type": "childOf", "targetRef": "group:default/p"}]),
    ]
    groups = build_groups(parsed(e) for e in entities)
    assert groups["group:default/c"].parents == {"group:default/p"}


@pytest.mark.parametrize(
    "entity",
    [
        pytest.param({"kind": "Group", "metadata": {}}, id="no-name"),
        pytest.param({"kind": "User", "metadata": {"name": "u"}}, id="wrong-kind"),
        pytest.param([1, 2], id="list"),
    ],
)
def test_unusable_group_is_skipped(entity: Any) -> None:
    result = parse_group(entity)
    assert isinstance(result, SkippedEntity) and result.kind == "group"


def test_fixtures_are_not_mutated_by_parsing() -> None:
    before = copy.deepcopy(GROUPS_PAGE1)
    build_groups(parsed(e) for e in GROUPS_PAGE1["items"])
    assert before == GROUPS_PAGE1
    assert json.dumps(before)  # plain JSON all the way down


# --- the one-pass decoding of user pages ----------------------------------------------------------
# A page of usual User entities is decoded into typed entities by msgspec; any other page is decoded as
# plain JSON and read by parse_user. Whatever the page, each entity must be read the same way.

_piece = st.sampled_from(["alice", "Bob", "group-1", "team a", " padded ", "", " ", "a/b", "x:y", "default"])
_refs = st.lists(
    st.one_of(
        _piece,
        st.builds(lambda n: f"group:default/{n}", _piece),
        st.builds(
            lambda k, ns, n: f"{k}:{ns}/{n}", st.sampled_from(["Group", "group", "user"]), _piece, _piece
        ),
    ),
    max_size=3,
)
_usual_user = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": _piece}, optional={"namespace": st.one_of(st.none(), _piece)}
        ),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "profile": st.one_of(
                    st.fixed_dictionaries(
                        {"email": st.one_of(_piece, st.none()), "displayName": st.one_of(_piece, st.none())}
                    ),
                    st.none(),
                    st.just({}),
                ),
                "memberOf": st.one_of(st.none(), _refs),
            },
        ),
    },
    optional={
        "kind": st.one_of(st.none(), st.sampled_from(["User", "user", "USER", "Group"])),
        "relations": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["memberOf", "ownerOf", "childOf"]),
                        "targetRef": _refs.map(" ".join),
                    }
                ),
                max_size=3,
            ),
        ),
    },
)


def _read_user_page(body: dict[str, Any]) -> CatalogSnapshot:
    """read_snapshot of a catalog whose users are this one page and which has no groups."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            URL,
            json=body,
            match=[responses.matchers.query_param_matcher({"filter": "kind=user"}, strict_match=False)],
        )
        mock.get(URL, json={"items": [], "totalItems": 0, "pageInfo": {}})
        return client().read_snapshot()


@settings(max_examples=300, deadline=None)
@given(st.lists(_usual_user, min_size=1, max_size=6))
def test_user_page_decoded_in_one_pass_reads_each_entity_as_parse_user(entities: list[Any]) -> None:
    body = {"items": entities, "totalItems": len(entities), "pageInfo": {}}
    assert _typed_user_page(json.dumps(body).encode()) is not None  # the one-pass path is the one tested
    snap = _read_user_page(body)
    expected = [parse_user(copy.deepcopy(e)) for e in entities]
    kept: dict[str, CatalogUser] = {}  # the first of a repeated ref is kept, the others skipped
    for user in expected:
        if isinstance(user, CatalogUser):
            kept.setdefault(user.ref, user)
    skipped = [s for s in expected if isinstance(s, SkippedEntity)]
    assert {u.ref: u for u in snap.users} == kept
    assert [s for s in snap.skipped if s.reason != "duplicate entity ref in the listing"] == skipped


def test_user_page_of_another_shape_is_still_read_entity_by_entity() -> None:
    odd = [
        {"metadata": {"name": "alice"}, "spec": {"memberOf": ["team-a"]}},  # usual
        {"metadata": {"name": "bob"}, "spec": []},  # spec of another type: skipped, the page still read
        {
            "metadata": {"name": "carol"},
            "spec": {},
            "relations": [
                {"type": "memberOf", "target": {"kind": "group", "namespace": "default", "name": "old"}}
            ],
        },
    ]
    body = {"items": odd, "totalItems": 3, "pageInfo": {}}
    assert _typed_user_page(json.dumps(body).encode()) is None
    snap = _read_user_page(body)
    users = {u.name: u for u in snap.users}
    assert users["alice"].groups == {"group:default/team-a"}
    assert users["carol"].groups == {"group:default/old"}
    assert [(s.ref, s.reason) for s in snap.skipped] == [("user:default/bob", "no spec object")]
