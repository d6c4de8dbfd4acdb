"""The LiteLLM simulator reproduces the behaviours recorded on a real proxy
(docs/litellm-api.md), one by one."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from catalog_sync.sim import LiteLLMSim, serve
from catalog_sync.sim.litellm import budget_reset_at

MASTER = "sk-test-master"
ROLE_MSG = (
    "Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>, <LitellmUserRoles.PROXY_ADMIN_VIEW_ONLY: "
    "'proxy_admin_viewer'>, <LitellmUserRoles.INTERNAL_USER: 'internal_user'> or "
    "<LitellmUserRoles.INTERNAL_USER_VIEW_ONLY: 'internal_user_viewer'>"
)


def new_user(ll: Any, **body: Any) -> requests.Response:
    r: requests.Response = ll.post("/user/new", body)
    return r


def list_ids(ll: Any, **params: Any) -> list[str]:
    return [u["user_id"] for u in ll.get("/user/list", params).json()["users"]]


# ---------------------------------------------------------------------------- auth
def test_no_key_and_bad_key_are_401_with_recorded_bodies(ll: Any) -> None:
    r = requests.get(ll.base + "/user/list", timeout=5)
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "message": "Authentication Error, No api key passed in.",
            "type": "auth_error",
            "param": "None",
            "code": "401",
        }
    }
    r = requests.get(
        ll.base + "/user/info?user_id=alice", headers={"Authorization": "Bearer sk-wrong"}, timeout=5
    )
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["type"] == "token_not_found_in_db" and err["param"] == "key" and err["code"] == "401"
    assert err["message"].startswith("Authentication Error, Invalid proxy server token passed.")


def test_unknown_route_is_fastapi_404(ll: Any) -> None:
    assert ll.get("/user/nope").json() == {"detail": "Not Found"}


# ---------------------------------------------------------------------------- /user/new
def test_auto_create_key_defaults_to_true(ll: Any, litellm: LiteLLMSim) -> None:
    body = new_user(ll, user_id="carol", user_email="carol@example.com", user_role="internal_user").json()
    assert body["key"].startswith("sk-") and body["key_name"] == f"sk-...{body['key'][-4:]}"
    assert body["teams"] is None and body["token"] is None and body["created_at"] is not None
    assert litellm.get_user("carol")["key_count"] == 1  # type: ignore[index]
    assert ll.get("/user/list").json()["users"][0]["key_count"] == 1
    body = new_user(ll, user_id="dave", auto_create_key=False).json()
    assert (
        body["key"] == ""
        and body["token"] is None
        and body["created_at"] is None
        and body["updated_at"] is None
    )
    assert body["user_role"] is None and body["router_settings"] is None
    assert litellm.get_user("dave")["key_count"] == 0  # type: ignore[index]
    info = ll.get("/user/info", {"user_id": "dave"}).json()["user_info"]
    assert info["created_at"].endswith("000Z")  # the row has timestamps even when the response has none


def test_existing_user_id_is_409_and_nothing_changes(ll: Any, litellm: LiteLLMSim) -> None:
    assert (
        new_user(
            ll, user_id="alice", user_email="alice@example.com", max_budget=10.5, auto_create_key=False
        ).status_code
        == 200
    )
    r = new_user(ll, user_id="alice", user_email="alice2@example.com", max_budget=99, auto_create_key=False)
    assert r.status_code == 409
    assert r.json() == {
        "error": {
            "message": "{'error': 'User with id alice already exists'}",
            "type": "internal_server_error",
            "param": None,
            "code": "409",
        }
    }
    row = litellm.get_user("alice")
    assert row is not None and row["max_budget"] == 10.5 and row["user_email"] == "alice@example.com"
    assert row["key_count"] == 0


def test_old_version_existing_id_is_a_silent_no_op_with_a_new_key() -> None:
    sim = LiteLLMSim(master_key=MASTER, version="old")
    with serve(sim) as url:
        h = {"Authorization": f"Bearer {MASTER}"}
        assert (
            requests.post(
                url + "/user/new", json={"user_id": "alice", "max_budget": 1}, headers=h
            ).status_code
            == 200
        )
        keys = set()
        for budget in (2, 3):
            r = requests.post(
                url + "/user/new",
                json={"user_id": "alice", "max_budget": budget, "user_role": "proxy_admin"},
                headers=h,
            )
            assert (
                r.status_code == 200 and r.json()["max_budget"] == budget
            )  # the response echoes the request
            keys.add(r.json()["key"])
        row = sim.get_user("alice")
        assert row is not None and row["max_budget"] == 1.0 and row["user_role"] is None  # row unchanged
        assert row["key_count"] == 3 and len(keys) == 2
        # e-mail of another user: 400 on old versions
        requests.post(url + "/user/new", json={"user_id": "bob", "user_email": "bob@example.com"}, headers=h)
        r = requests.post(
            url + "/user/new", json={"user_id": "bob2", "user_email": "BOB@example.com"}, headers=h
        )
        assert r.status_code == 400
        # missing user on /user/info: 200 with an empty record
        r = requests.get(url + "/user/info", params={"user_id": "ghost"}, headers=h)
        assert r.status_code == 200
        assert r.json() == {"user_id": "ghost", "user_info": {"spend": 0}, "keys": [], "teams": []}


def test_existing_email_is_409_case_insensitively(ll: Any) -> None:
    new_user(ll, user_id="alice", user_email="alice@example.com")
    r = new_user(ll, user_id="alice-dup", user_email="ALICE@Example.com", auto_create_key=False)
    assert r.status_code == 409
    assert r.json()["error"]["message"] == "{'error': 'User with email alice@example.com already exists'}"
    assert ll.get("/user/info", {"user_id": "alice-dup"}).status_code == 404


def test_invalid_role_is_422(ll: Any) -> None:
    for path, body in (
        ("/user/new", {"user_id": "erin", "user_role": "superhero"}),
        ("/user/update", {"user_id": "erin", "user_role": "team"}),
    ):
        r = ll.post(path, body)
        assert r.status_code == 422
        assert r.json() == {
            "detail": [{"type": "literal_error", "loc": ["body", "user_role"], "msg": ROLE_MSG}]
        }
    assert ll.get("/user/info", {"user_id": "erin"}).status_code == 404


def test_no_user_id_gets_a_uuid(ll: Any) -> None:
    body = new_user(ll, user_email="noid@example.com", auto_create_key=False).json()
    assert len(body["user_id"]) == 36 and body["user_id"].count("-") == 4


def test_default_internal_user_params_fill_omitted_fields() -> None:
    sim = LiteLLMSim(
        master_key=MASTER,
        default_internal_user_params={
            "user_role": "internal_user_viewer",
            "max_budget": 5,
            "models": ["fake-gpt"],
        },
    )
    with serve(sim) as url:
        h = {"Authorization": f"Bearer {MASTER}"}
        requests.post(url + "/user/new", json={"user_id": "a", "models": [], "max_budget": None}, headers=h)
        requests.post(url + "/user/new", json={"user_id": "b", "max_budget": 1, "models": ["x"]}, headers=h)
        requests.post(url + "/user/new", json={"user_id": "c", "user_role": "proxy_admin"}, headers=h)
    a, b, c = (sim.get_user(u) for u in "abc")
    assert a is not None and (a["user_role"], a["max_budget"], a["models"]) == (
        "internal_user_viewer",
        5.0,
        ["fake-gpt"],
    )
    assert b is not None and (b["max_budget"], b["models"]) == (1.0, ["x"])
    assert c is not None and (c["max_budget"], c["models"]) == (None, [])  # not for proxy_admin


def test_teams_on_new_join_existing_and_skip_missing(ll: Any, litellm: LiteLLMSim) -> None:
    assert ll.post("/team/new", {"team_id": "team-eng", "team_alias": "Engineering"}).status_code == 200
    r = new_user(
        ll,
        user_id="alice",
        user_email="alice@example.com",
        teams=["team-eng", "team-missing"],
        auto_create_key=False,
    )
    assert r.status_code == 200
    assert litellm.get_user("alice")["teams"] == ["team-eng"]  # type: ignore[index]
    members = litellm.get_team("team-eng")["members_with_roles"]  # type: ignore[index]
    assert {"user_id": "alice", "user_email": "alice@example.com", "role": "user"} in members
    r = new_user(ll, user_id="dave", teams=["team-missing"], auto_create_key=False)
    assert r.status_code == 200 and r.json()["teams"] == []
    new_user(
        ll, user_id="erin", teams=[{"team_id": "team-eng", "max_budget_in_team": 1}], auto_create_key=False
    )
    assert "team-eng" in litellm.get_user("erin")["teams"]  # type: ignore[index]


# ---------------------------------------------------------------------------- /user/update
def test_update_is_an_upsert(ll: Any, litellm: LiteLLMSim) -> None:
    r = ll.post("/user/update", {"user_id": "nobody", "max_budget": 5})
    assert r.status_code == 200
    body = r.json()
    assert (
        body["user_id"] == "nobody"
        and body["data"]["max_budget"] == 5.0
        and body["data"]["user_role"] is None
    )
    assert set(body["data"]) >= {"verified_subjects", "invitations_user", "litellm_organization_table"}
    r = ll.post("/user/update", {"user_email": "new@example.com", "max_budget": 7})
    assert r.status_code == 200 and len(r.json()["user_id"]) == 36  # created with a uuid
    r = ll.post("/user/update", {"max_budget": 1})
    assert r.status_code == 400 and r.json()["error"]["type"] == "auth_error"


def test_update_changes_only_sent_fields_and_replaces_metadata(ll: Any) -> None:
    new_user(
        ll,
        user_id="alice",
        user_email="alice@example.com",
        user_alias="Alice A",
        max_budget=10.5,
        budget_duration="30d",
        models=["fake-gpt"],
        tpm_limit=1000,
        rpm_limit=10,
        metadata={"source": "backstage", "entity_ref": "user:default/alice", "groups": ["g"]},
        auto_create_key=False,
    )
    data = ll.post(
        "/user/update",
        {
            "user_id": "alice",
            "max_budget": 20,
            "models": ["fake-gpt", "gpt-x"],
            "metadata": {"source": "backstage", "updated": True},
            "tpm_limit": 2000,
            "user_alias": "Alice B",
        },
    ).json()["data"]
    assert data["metadata"] == {"source": "backstage", "updated": True}  # replaced, not merged
    assert (data["max_budget"], data["tpm_limit"], data["rpm_limit"], data["user_alias"]) == (
        20.0,
        2000,
        10,
        "Alice B",
    )
    assert data["budget_duration"] == "30d" and data["budget_reset_at"] is not None
    # [] and {} are dropped, and None for the identity fields ...
    data = ll.post(
        "/user/update",
        {"user_id": "alice", "models": [], "metadata": {}, "user_alias": None, "user_email": None},
    ).json()["data"]
    assert data["models"] == ["fake-gpt", "gpt-x"] and data["metadata"] == {
        "source": "backstage",
        "updated": True,
    }
    assert data["user_alias"] == "Alice B" and data["tpm_limit"] == 2000
    # ... but None clears the budget and the limits
    data = ll.post(
        "/user/update",
        {"user_id": "alice", "max_budget": None, "tpm_limit": None, "metadata": {"only": "this"}},
    ).json()
    assert data["data"]["max_budget"] is None and data["data"]["metadata"] == {"only": "this"}
    assert data["data"]["tpm_limit"] is None and data["data"]["rpm_limit"] == 10
    info = ll.get("/user/info", {"user_id": "alice"}).json()["user_info"]
    assert info["max_budget"] is None and info["models"] == ["fake-gpt", "gpt-x"]
    assert info["created_at"] <= info["updated_at"]


def test_update_by_email_only(ll: Any) -> None:
    new_user(ll, user_id="carol", user_email="carol@example.com", auto_create_key=False)
    r = ll.post("/user/update", {"user_email": "carol@example.com", "max_budget": 7})
    assert r.json()["user_id"] == "carol" and r.json()["data"]["max_budget"] == 7.0


def test_metadata_comes_back_in_jsonb_key_order(ll: Any) -> None:
    new_user(
        ll,
        user_id="alice",
        metadata={"source": "backstage", "entity_ref": "x", "groups": []},
        auto_create_key=False,
    )
    assert list(ll.get("/user/info", {"user_id": "alice"}).json()["user_info"]["metadata"]) == [
        "groups",
        "source",
        "entity_ref",
    ]


# ---------------------------------------------------------------------------- /user/info
def test_info_existing_missing_and_master(ll: Any) -> None:
    ll.post("/team/new", {"team_id": "team-eng", "team_alias": "Engineering", "max_budget": 100})
    new_user(ll, user_id="bob", user_role="internal_user", teams=["team-eng"])
    body = ll.get("/user/info", {"user_id": "bob"}).json()
    assert set(body) == {"user_id", "user_info", "keys", "teams"}
    assert body["user_info"]["teams"] == ["team-eng"] and len(body["keys"]) == 1
    assert body["keys"][0]["user_id"] == "bob" and body["keys"][0]["team_alias"] == "None"
    team = body["teams"][0]
    assert team["team_id"] == "team-eng" and team["max_budget"] == 100.0
    assert team["team_memberships"][0]["user_id"] == "bob"
    r = ll.get("/user/info", {"user_id": "does-not-exist"})
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "User does-not-exist not found",
            "type": "internal_server_error",
            "param": None,
            "code": "404",
        }
    }
    master = ll.get("/user/info").json()
    assert master["user_id"] == "default_user_id" and master["user_info"]["teams"] == ["team-eng"]
    assert len(master["keys"]) == 1 and master["teams"][0]["team_id"] == "team-eng"


# ---------------------------------------------------------------------------- /user/list
@pytest.mark.parametrize(
    ("params", "detail"),
    [
        (
            {"page": 1, "page_size": 101},
            [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "page_size"],
                    "msg": "Input should be less than or equal to 100",
                }
            ],
        ),
        (
            {"page": 1, "page_size": 0},
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "page_size"],
                    "msg": "Input should be greater than or equal to 1",
                }
            ],
        ),
        (
            {"page": 0, "page_size": 10},
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "page"],
                    "msg": "Input should be greater than or equal to 1",
                }
            ],
        ),
    ],
)
def test_list_paging_limits_are_422(ll: Any, params: dict[str, int], detail: list[dict[str, Any]]) -> None:
    r = ll.get("/user/list", params)
    assert r.status_code == 422 and r.json() == {"detail": detail}


def test_list_shape_paging_and_past_the_end(ll: Any, litellm: LiteLLMSim) -> None:
    for i in range(6):
        litellm.add_user({"user_id": f"u{i}", "created_at": f"2026-01-0{i + 1}T00:00:00.000000Z"})
    body = ll.get("/user/list", {"page": 1, "page_size": 2}).json()
    assert set(body) == {"users", "total", "page", "page_size", "total_pages"}
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (6, 1, 2, 3)
    assert [u["user_id"] for u in body["users"]] == ["u5", "u4"]  # default: created_at desc
    row = body["users"][0]
    assert (
        row["key_count"] == 0 and row["organization_memberships"] is None and "verified_subjects" not in row
    )
    assert ll.get("/user/list", {"page": 99, "page_size": 2}).json() == {
        "users": [],
        "total": 6,
        "page": 99,
        "page_size": 2,
        "total_pages": 3,
    }
    assert ll.get("/user/list").json()["page_size"] == 25
    r = ll.get("/user/list", {"sort_by": "password"})
    assert r.status_code == 400
    assert r.json() == {
        "detail": {
            "error": "Invalid sort column. Must be one of: user_id, user_email, created_at, "
            "spend, user_alias, user_role"
        }
    }
    assert list_ids(ll, sort_by="user_id", sort_order="desc", page_size=3) == ["u5", "u4", "u3"]


def test_list_filters(ll: Any, litellm: LiteLLMSim) -> None:
    litellm.add_team("team-a")
    for uid, email, role, teams in (
        ("carl", "carl@x.com", "internal_user", ["team-a"]),
        ("amy", "Amy@X.com", None, []),
        ("bob", None, "proxy_admin", []),
    ):
        litellm.add_user({"user_id": uid, "user_email": email, "user_role": role, "teams": teams})
    assert sorted(list_ids(ll, user_ids="A")) == ["amy", "carl"]  # one value: case-insensitive substring
    assert sorted(list_ids(ll, user_ids="amy,bob,nobody")) == ["amy", "bob"]  # several: exact
    assert list_ids(ll, user_ids="am,bo") == []
    assert list_ids(ll, user_email="amy@x") == ["amy"]
    assert list_ids(ll, role="proxy_admin") == ["bob"]
    assert list_ids(ll, team="team-a") == ["carl"]


def test_list_includes_default_user_after_team_new(ll: Any) -> None:
    assert list_ids(ll) == []
    ll.post("/team/new", {"team_id": "t1"})
    assert list_ids(ll) == ["default_user_id"]


def test_unstable_order_of_ties_without_a_unique_sort(ll: Any, litellm: LiteLLMSim) -> None:
    same = "2026-01-01T00:00:00.000000Z"
    litellm.add_users({"user_id": f"u{i:03d}", "created_at": same, "updated_at": same} for i in range(60))

    def walk(**sort: Any) -> list[str]:
        ids: list[str] = []
        for page in (1, 2, 3):
            ids += list_ids(ll, page=page, page_size=20, **sort)
        return ids

    unsorted_walks = [walk() for _ in range(5)]
    assert any(len(set(w)) < 60 for w in unsorted_walks)  # duplicates and therefore misses (#15762)
    assert len({tuple(w) for w in unsorted_walks}) > 1  # a different order per request
    for _ in range(3):
        assert walk(sort_by="user_id", sort_order="asc") == [f"u{i:03d}" for i in range(60)]


def test_stable_ties_when_disabled() -> None:
    sim = LiteLLMSim(master_key=MASTER, unstable_ties=False)
    same = "2026-01-01T00:00:00.000000Z"
    sim.add_users({"user_id": f"u{i:02d}", "created_at": same} for i in range(30))
    with serve(sim) as url:
        h = {"Authorization": f"Bearer {MASTER}"}
        ids = [
            u["user_id"]
            for p in (1, 2, 3)
            for u in requests.get(url + "/user/list", params={"page": p, "page_size": 10}, headers=h).json()[
                "users"
            ]
        ]
    assert sorted(ids) == [f"u{i:02d}" for i in range(30)]


def test_list_pages_are_cheap_on_a_big_store(ll: Any, litellm: LiteLLMSim) -> None:
    litellm.add_users({"user_id": f"user-{i:06d}"} for i in range(20_000))
    t0 = time.monotonic()
    ids: list[str] = []
    for page in range(1, 41):
        ids += list_ids(ll, page=page, page_size=100, sort_by="user_id")
    assert ids == [f"user-{i:06d}" for i in range(4000)]
    assert time.monotonic() - t0 < 5  # one sort, then O(page) per request


def test_listings_read_after_each_kind_of_change_show_it(ll: Any, litellm: LiteLLMSim) -> None:
    # The simulator caches listings and encoded rows; every write must still show on the next read.
    for uid in ("a", "b", "c"):
        new_user(ll, user_id=uid, auto_create_key=False, max_budget=1)
    ll.post("/team/new", {"team_id": "t1"})

    def rows(**params: Any) -> dict[str, dict[str, Any]]:
        body = ll.get("/user/list", {"page_size": 100, "sort_by": "user_id", **params}).json()
        return {u["user_id"]: u for u in body["users"]}

    assert rows()["b"]["max_budget"] == 1.0
    ll.post("/user/update", {"user_id": "b", "max_budget": 5, "user_role": "internal_user_viewer"})
    after = rows()
    assert (after["a"]["max_budget"], after["b"]["max_budget"]) == (1.0, 5.0)
    assert list(rows(role="internal_user_viewer")) == ["b"]
    ll.post("/user/update", {"user_id": "d", "max_budget": 2})  # upsert: a new id
    assert list(rows()) == ["a", "b", "c", "d", "default_user_id"]
    ll.post("/team/member_add", {"team_id": "t1", "member": {"user_id": "c", "role": "user"}})
    assert rows()["c"]["teams"] == ["t1"]
    ll.post("/team/member_delete", {"team_id": "t1", "user_id": "c"})
    assert rows()["c"]["teams"] == []
    ll.post("/key/generate", {"user_id": "a"})
    assert rows()["a"]["key_count"] == 1
    ll.post("/user/delete", {"user_ids": ["a"]})
    assert "a" not in rows()


# ---------------------------------------------------------------------------- /user/delete
def test_delete_is_all_or_nothing_and_removes_keys_and_memberships(ll: Any, litellm: LiteLLMSim) -> None:
    ll.post("/team/new", {"team_id": "t1"})
    new_user(ll, user_id="bob", teams=["t1"])
    new_user(ll, user_id="gina", auto_create_key=False)
    r = ll.post("/user/delete", {"user_ids": ["gina", "ghost2"]})
    assert r.status_code == 404 and r.json() == {"detail": {"error": "User not found, passed user_id=ghost2"}}
    assert litellm.get_user("gina") is not None
    r = ll.post("/user/delete", {"user_ids": ["bob"]})
    assert r.status_code == 200 and r.json() == 1 and r.text.strip() == "1"
    assert litellm.keys_of("bob") == []
    assert all(m["user_id"] != "bob" for m in litellm.get_team("t1")["members_with_roles"])  # type: ignore[index]
    assert ll.get("/user/info", {"user_id": "bob"}).status_code == 404
    assert ll.post("/user/delete", {"user_ids": ["bob"]}).status_code == 404


# ---------------------------------------------------------------------------- teams
def test_team_new_list_info(ll: Any, litellm: LiteLLMSim) -> None:
    body = ll.post(
        "/team/new",
        {"team_id": "team-eng", "team_alias": "Engineering", "models": ["fake-gpt"], "max_budget": 100},
    ).json()
    assert body["members_with_roles"] == [{"user_id": "default_user_id", "user_email": None, "role": "admin"}]
    assert body["max_budget"] == 100.0 and body["blocked"] is False and body["spend"] == 0.0
    assert litellm.get_user("default_user_id")["teams"] == ["team-eng"]  # type: ignore[index]
    r = ll.post("/team/new", {"team_id": "team-eng"})
    assert r.status_code == 400
    teams = ll.get("/team/list").json()
    assert isinstance(teams, list) and teams[0]["team_id"] == "team-eng"
    info = ll.get("/team/info", {"team_id": "team-eng"}).json()
    assert info["team_id"] == "team-eng" and info["team_info"]["members_with_roles"][0]["user_alias"] is None
    assert ll.get("/team/info", {"team_id": "nope"}).status_code == 404


def test_member_add_errors_and_implicit_user(ll: Any, litellm: LiteLLMSim) -> None:
    ll.post("/team/new", {"team_id": "team-eng", "team_alias": "Engineering"})
    new_user(ll, user_id="alice", user_email="alice@example.com", teams=["team-eng"], auto_create_key=False)
    r = ll.post("/team/member_add", {"team_id": "team-eng", "member": {"role": "user", "user_id": "alice"}})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "team_member_already_in_team" and err["param"] == "member" and err["code"] == "400"
    assert err["message"] == (
        "User already in team. Member: user_id=alice, user_email=None. Existing members=["
        "Member(user_id='default_user_id', user_email=None, role='admin'), "
        "Member(user_id='alice', user_email='alice@example.com', role='user')]"
    )
    r = ll.post("/team/member_add", {"team_id": "team-eng", "member": {"role": "user", "user_id": "frank"}})
    assert r.status_code == 200
    assert r.json()["updated_users"][0]["user_role"] == "internal_user"
    frank = litellm.get_user("frank")
    assert frank is not None and frank["user_role"] == "internal_user" and frank["teams"] == ["team-eng"]
    r = ll.post("/team/member_add", {"team_id": "team-nope", "member": {"role": "user", "user_id": "alice"}})
    assert r.status_code == 404 and r.json() == {
        "detail": {"error": "Team doesn't exist in db. Team=team-nope. Create team via `/team/new` call."}
    }
    r = ll.post(
        "/team/member_add",
        {
            "team_id": "team-eng",
            "member": [
                {"role": "user", "user_id": "bob"},
                {"role": "admin", "user_email": "carol@example.com"},
            ],
        },
    )
    assert r.status_code == 400
    assert r.json()["detail"]["error"].startswith(
        "Assigning team admins is a premium feature. Got=user_id=None "
        "user_email='carol@example.com' role='admin'."
    )
    assert litellm.get_user("bob") is None  # nothing was added


def test_member_add_list_skips_duplicates(ll: Any, litellm: LiteLLMSim) -> None:
    ll.post("/team/new", {"team_id": "t"})
    ll.post("/team/member_add", {"team_id": "t", "member": {"role": "user", "user_id": "a"}})
    r = ll.post(
        "/team/member_add",
        {"team_id": "t", "member": [{"role": "user", "user_id": "a"}, {"role": "user", "user_id": "b"}]},
    )
    assert r.status_code == 200 and [u["user_id"] for u in r.json()["updated_users"]] == ["b"]
    r = ll.post("/team/member_add", {"team_id": "t", "member": [{"role": "user", "user_id": "a"}]})
    assert r.status_code == 400


def test_member_delete(ll: Any, litellm: LiteLLMSim) -> None:
    ll.post("/team/new", {"team_id": "t"})
    new_user(ll, user_id="carol", user_email="carol@example.com", teams=["t"], auto_create_key=False)
    r = ll.post("/team/member_delete", {"team_id": "t", "user_id": "nobody"})
    assert r.status_code == 400 and r.json() == {"detail": {"error": "User not found in team"}}
    r = ll.post("/team/member_delete", {"team_id": "nope", "user_id": "carol"})
    assert r.status_code == 400 and r.json() == {"detail": {"error": "Team id=nope does not exist in db"}}
    r = ll.post("/team/member_delete", {"team_id": "t", "user_email": "carol@example.com"})
    assert r.status_code == 200 and all(m["user_id"] != "carol" for m in r.json()["members_with_roles"])
    assert litellm.get_user("carol")["teams"] == []  # type: ignore[index]
    assert list_ids(ll, team="t") == ["default_user_id"]


# ---------------------------------------------------------------------------- keys (minimal)
def test_key_endpoints(ll: Any, litellm: LiteLLMSim) -> None:
    new_user(ll, user_id="kim", auto_create_key=False)
    key = ll.post("/key/generate", {"user_id": "kim", "key_alias": "kim-1"}).json()["key"]
    assert key.startswith("sk-") and litellm.get_user("kim")["key_count"] == 1  # type: ignore[index]
    listing = ll.get("/key/list", {"user_id": "kim"}).json()
    assert listing["total_count"] == 1 and len(listing["keys"][0]) == 64  # hashed tokens
    full = ll.get("/key/list", {"user_id": "kim", "return_full_object": "true"}).json()["keys"][0]
    assert full["key_alias"] == "kim-1" and full["user_id"] == "kim"
    assert ll.post("/key/block", {"key": key}).json()["blocked"] is True
    assert ll.post("/key/unblock", {"key": key}).json()["blocked"] is False
    assert ll.post("/key/delete", {"keys": [key]}).json() == {"deleted_keys": [key]}
    assert litellm.keys_of("kim") == [] and ll.post("/key/block", {"key": key}).status_code == 404


# ---------------------------------------------------------------------------- faults, latency, helpers
def test_faults_and_latency(ll: Any, litellm: LiteLLMSim) -> None:
    litellm.inject("POST /user/new", 500, {"error": {"message": "boom"}})
    assert new_user(ll, user_id="x").status_code == 500
    assert new_user(ll, user_id="x").status_code == 200  # the fault fired once
    litellm.inject("/user/list", 503, None, times=-1)
    assert ll.get("/user/list").status_code == 503 and ll.get("/user/list").status_code == 503
    litellm.clear_faults()
    litellm.latency = 0.05
    t0 = time.monotonic()
    assert ll.get("/user/list").status_code == 200
    assert time.monotonic() - t0 >= 0.05
    counts = litellm.request_counts()
    assert counts["POST /user/new"] == 2 and counts["GET /user/list"] == 3
    assert litellm.requests_to("POST", "/user/new")[0].json == {"user_id": "x"}


def test_clock_and_budget_reset() -> None:
    t = datetime(2026, 11, 22, 5, 42, 9, 112000, tzinfo=timezone.utc)
    sim = LiteLLMSim(clock=lambda: t)
    assert sim.add_user({"user_id": "a"})["created_at"] == "2026-11-22T05:42:09.112000Z"
    assert budget_reset_at("30d", t) == "2026-12-01T00:00:00Z"
    assert budget_reset_at("1d", t) == "2026-11-23T00:00:00Z"
    assert budget_reset_at("7d", t) == "2026-11-23T00:00:00Z"  # 2026-11-22 is a Sunday: next Monday
    assert budget_reset_at("1h", t) == "2026-11-22T06:42:09Z"


def test_concurrent_writes_are_consistent(litellm: LiteLLMSim) -> None:
    from concurrent.futures import ThreadPoolExecutor

    litellm.record_requests = False
    litellm.add_team("t")
    with serve(litellm) as url:
        session = requests.Session()
        h = {"Authorization": f"Bearer {MASTER}"}

        def create(i: int) -> int:
            body = {"user_id": f"c{i:03d}", "teams": ["t"], "auto_create_key": i % 2 == 0}
            return requests.post(url + "/user/new", json=body, headers=h, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(create, range(120))) == {200}
        total = session.get(url + "/user/list", params={"team": "t"}, headers=h).json()["total"]
    assert total == 120 and len(litellm.get_team("t")["members_with_roles"]) == 120  # type: ignore[index]
    assert len(litellm.keys) == 60
    assert litellm.requests == [] and litellm.request_counts()["POST /user/new"] == 120


def test_server_stops_cleanly() -> None:
    sim = LiteLLMSim()
    with serve(sim) as url:
        s = requests.Session()
        assert s.get(url + "/health/readiness").status_code == 200  # keep-alive connection left open
    with pytest.raises(requests.ConnectionError):
        s.get(url + "/health/readiness", timeout=2)
