"""LiteLLMClient on bodies recorded from a real LiteLLM 1.106.2 proxy.

Fixtures are verbatim captures from a real proxy (docs/litellm-api.md); where a body was not recorded (a
/team/list array, an old-version /user/info) it is built from recorded pieces and says so.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from responses.registries import OrderedRegistry

from catalog_sync.http import ApiError, ResponseError
from catalog_sync.litellm import LiteLLMClient, parse_user_row
from catalog_sync.model import LiteLLMUser

BASE = "http://litellm.test:4000"
KEY = "sk-test-master"

USER_LIST_PAGE1 = json.loads(
    r"""
{
 "users": [
  {
   "user_id": "5bb00c4c-bacd-4a49-b725-ac30adc5a38d",
   "user_alias": null,
   "team_id": null,
   "sso_user_id": null,
   "organization_id": null,
   "object_permission_id": null,
   "password_reset_required": null,
   "last_breach_check_at": null,
   "teams": [],
   "user_role": null,
   "max_budget": null,
   "spend": 0.0,
   "user_email": "noid@example.com",
   "models": [],
   "metadata": {},
   "max_parallel_requests": null,
   "tpm_limit": null,
   "rpm_limit": null,
   "budget_duration": null,
   "budget_reset_at": null,
   "allowed_cache_controls": [],
   "policies": [],
   "model_spend": {},
   "model_max_budget": {},
   "created_at": "2026-11-22T05:42:12.479000Z",
   "updated_at": "2026-11-22T05:42:12.479000Z",
   "organization_memberships": null,
   "object_permission": null,
   "key_count": 0
  },
  {
   "user_id": "dave",
   "user_alias": null,
   "team_id": null,
   "sso_user_id": null,
   "organization_id": null,
   "object_permission_id": null,
   "password_reset_required": null,
   "last_breach_check_at": null,
   "teams": [],
   "user_role": null,
   "max_budget": null,
   "spend": 0.0,
   "user_email": "dave@example.com",
   "models": [],
   "metadata": {},
   "max_parallel_requests": null,
   "tpm_limit": null,
   "rpm_limit": null,
   "budget_duration": null,
   "budget_reset_at": null,
   "allowed_cache_controls": [],
   "policies": [],
   "model_spend": {},
   "model_max_budget": {},
   "created_at": "2026-11-22T05:42:10.532000Z",
   "updated_at": "2026-11-22T05:42:10.532000Z",
   "organization_memberships": null,
   "object_permission": null,
   "key_count": 0
  }
 ],
 "total": 6,
 "page": 1,
 "page_size": 2,
 "total_pages": 3
}
"""
)

USER_LIST_PAGE2 = json.loads(
    r"""
{
 "users": [
  {
   "user_id": "carol",
   "user_alias": null,
   "team_id": null,
   "sso_user_id": null,
   "organization_id": null,
   "object_permission_id": null,
   "password_reset_required": null,
   "last_breach_check_at": null,
   "teams": [],
   "user_role": "internal_user",
   "max_budget": null,
   "spend": 0.0,
   "user_email": "carol@example.com",
   "models": [],
   "metadata": {},
   "max_parallel_requests": null,
   "tpm_limit": null,
   "rpm_limit": null,
   "budget_duration": null,
   "budget_reset_at": null,
   "allowed_cache_controls": [],
   "policies": [],
   "model_spend": {},
   "model_max_budget": {},
   "created_at": "2026-11-22T05:42:10.066000Z",
   "updated_at": "2026-11-22T05:42:10.066000Z",
   "organization_memberships": null,
   "object_permission": null,
   "key_count": 1
  },
  {
   "user_id": "bob",
   "user_alias": null,
   "team_id": null,
   "sso_user_id": null,
   "organization_id": null,
   "object_permission_id": null,
   "password_reset_required": null,
   "last_breach_check_at": null,
   "teams": [],
   "user_role": "internal_user",
   "max_budget": null,
   "spend": 0.0,
   "user_email": "bob@example.com",
   "models": [
    "fake-gpt"
   ],
   "metadata": {},
   "max_parallel_requests": null,
   "tpm_limit": null,
   "rpm_limit": null,
   "budget_duration": null,
   "budget_reset_at": null,
   "allowed_cache_controls": [],
   "policies": [],
   "model_spend": {},
   "model_max_budget": {},
   "created_at": "2026-11-22T05:42:09.624000Z",
   "updated_at": "2026-11-22T05:42:09.624000Z",
   "organization_memberships": null,
   "object_permission": null,
   "key_count": 1
  }
 ],
 "total": 6,
 "page": 2,
 "page_size": 2,
 "total_pages": 3
}
"""
)

USER_LIST_PAST_END = json.loads(
    r"""
{
 "users": [],
 "total": 6,
 "page": 99,
 "page_size": 2,
 "total_pages": 3
}
"""
)

USER_INFO_ALICE = json.loads(
    r"""
{
 "user_id": "alice",
 "user_info": {
  "verified_subjects": null,
  "user_id": "alice",
  "user_alias": "Alice B",
  "team_id": null,
  "sso_user_id": null,
  "organization_id": null,
  "object_permission_id": null,
  "password_reset_required": null,
  "last_breach_check_at": null,
  "teams": [
   "team-eng"
  ],
  "user_role": "internal_user",
  "max_budget": null,
  "spend": 0.0,
  "user_email": "alice@example.com",
  "models": [
   "fake-gpt",
   "gpt-x"
  ],
  "metadata": {
   "only": "this"
  },
  "max_parallel_requests": null,
  "tpm_limit": 2000,
  "rpm_limit": 10,
  "budget_duration": "30d",
  "budget_reset_at": "2026-12-01T00:00:00Z",
  "allowed_cache_controls": [],
  "policies": [],
  "model_spend": {},
  "model_max_budget": {},
  "created_at": "2026-11-22T05:42:09.112000Z",
  "updated_at": "2026-11-22T05:42:21.952000Z",
  "litellm_organization_table": null,
  "organization_memberships": [],
  "invitations_created": null,
  "invitations_updated": null,
  "invitations_user": null,
  "object_permission": null,
  "model_max_budget_usage": {}
 },
 "keys": [],
 "teams": [
  {
   "team_alias": "Engineering",
   "team_id": "team-eng",
   "organization_id": null,
   "admins": [],
   "members": [],
   "members_with_roles": [
    {
     "user_id": "default_user_id",
     "user_email": null,
     "role": "admin"
    },
    {
     "user_id": "alice",
     "user_email": "alice@example.com",
     "role": "user"
    },
    {
     "user_id": "carol",
     "user_email": "carol@example.com",
     "role": "user"
    },
    {
     "user_id": "frank",
     "user_email": null,
     "role": "user"
    }
   ],
   "team_member_permissions": [],
   "metadata": {},
   "tpm_limit": null,
   "rpm_limit": null,
   "tpd_limit": null,
   "max_budget": 100.0,
   "soft_budget": null,
   "budget_duration": null,
   "budget_limits": null,
   "models": [
    "fake-gpt"
   ],
   "blocked": false,
   "router_settings": {},
   "access_group_ids": [],
   "default_team_member_models": [],
   "spend": 0.0,
   "max_parallel_requests": null,
   "budget_reset_at": null,
   "model_id": null,
   "model_spend": {},
   "model_max_budget": {},
   "policies": [],
   "allow_team_guardrail_config": false,
   "litellm_model_table": null,
   "object_permission": null,
   "object_permission_id": null,
   "updated_at": "2026-11-22T05:42:17.597000Z",
   "created_at": "2026-11-22T05:42:08.593000Z",
   "team_memberships": [
    {
     "user_id": "alice",
     "team_id": "team-eng",
     "budget_id": null,
     "spend": 0.0,
     "total_spend": 0.0,
     "litellm_budget_table": null
    }
   ],
   "keys": []
  }
 ]
}
"""
)

USER_INFO_MISSING = json.loads(
    r"""
{
 "error": {
  "message": "User does-not-exist not found",
  "type": "internal_server_error",
  "param": null,
  "code": "404"
 }
}
"""
)

USER_NEW_ALICE = json.loads(
    r"""
{
 "key_alias": null,
 "duration": null,
 "models": [
  "fake-gpt"
 ],
 "spend": 0.0,
 "max_budget": 10.5,
 "user_id": "alice",
 "team_id": null,
 "agent_id": null,
 "max_parallel_requests": null,
 "metadata": {
  "source": "backstage",
  "entity_ref": "user:default/alice",
  "groups": [
   "group:default/eng"
  ]
 },
 "tpm_limit": 1000,
 "rpm_limit": 10,
 "budget_duration": "30d",
 "budget_limits": null,
 "allowed_cache_controls": [],
 "config": {},
 "permissions": {},
 "model_max_budget": null,
 "budget_fallbacks": null,
 "model_rpm_limit": null,
 "model_tpm_limit": null,
 "mcp_rpm_limit": null,
 "tag_rpm_limit": null,
 "guardrails": null,
 "policies": null,
 "prompts": null,
 "blocked": null,
 "aliases": {},
 "object_permission": null,
 "key": "",
 "tpd_limit": null,
 "default_estimated_output_tokens": null,
 "default_estimated_output_tokens_per_model": null,
 "budget_id": null,
 "end_user_budget_id": null,
 "tags": null,
 "disable_global_guardrails": null,
 "enable_prompt_caching": null,
 "throttle_on_budget_exceeded": null,
 "enforced_params": null,
 "allowed_routes": [],
 "allowed_passthrough_routes": null,
 "denied_passthrough_routes": null,
 "allowed_vector_store_indexes": null,
 "rpm_limit_type": null,
 "tpm_limit_type": null,
 "router_settings": null,
 "access_group_ids": null,
 "key_name": null,
 "key_type": null,
 "expires": null,
 "token_id": null,
 "organization_id": null,
 "project_id": null,
 "litellm_budget_table": null,
 "token": null,
 "created_by": null,
 "updated_by": null,
 "created_at": null,
 "updated_at": null,
 "user_email": "alice@example.com",
 "user_role": "internal_user",
 "teams": [
  "team-eng"
 ],
 "user_alias": "Alice A"
}
"""
)

USER_NEW_GINA = json.loads(
    r"""
{
 "key_alias": null,
 "duration": null,
 "models": [],
 "spend": 0.0,
 "max_budget": null,
 "user_id": "gina",
 "team_id": null,
 "agent_id": null,
 "max_parallel_requests": null,
 "metadata": null,
 "tpm_limit": null,
 "rpm_limit": null,
 "budget_duration": null,
 "budget_limits": null,
 "allowed_cache_controls": [],
 "config": {},
 "permissions": {},
 "model_max_budget": null,
 "budget_fallbacks": null,
 "model_rpm_limit": null,
 "model_tpm_limit": null,
 "mcp_rpm_limit": null,
 "tag_rpm_limit": null,
 "guardrails": null,
 "policies": null,
 "prompts": null,
 "blocked": null,
 "aliases": {},
 "object_permission": null,
 "key": "",
 "tpd_limit": null,
 "default_estimated_output_tokens": null,
 "default_estimated_output_tokens_per_model": null,
 "budget_id": null,
 "end_user_budget_id": null,
 "tags": null,
 "disable_global_guardrails": null,
 "enable_prompt_caching": null,
 "throttle_on_budget_exceeded": null,
 "enforced_params": null,
 "allowed_routes": [],
 "allowed_passthrough_routes": null,
 "denied_passthrough_routes": null,
 "allowed_vector_store_indexes": null,
 "rpm_limit_type": null,
 "tpm_limit_type": null,
 "router_settings": null,
 "access_group_ids": null,
 "key_name": null,
 "key_type": null,
 "expires": null,
 "token_id": null,
 "organization_id": null,
 "project_id": null,
 "litellm_budget_table": null,
 "token": null,
 "created_by": null,
 "updated_by": null,
 "created_at": null,
 "updated_at": null,
 "user_email": "gina@example.com",
 "user_role": null,
 "teams": null,
 "user_alias": null
}
"""
)

USER_NEW_409_ID = json.loads(
    r"""
{
 "error": {
  "message": "{'error': 'User with id alice already exists'}",
  "type": "internal_server_error",
  "param": null,
  "code": "409"
 }
}
"""
)

USER_NEW_409_EMAIL = json.loads(
    r"""
{
 "error": {
  "message": "{'error': 'User with email alice@example.com already exists'}",
  "type": "internal_server_error",
  "param": null,
  "code": "409"
 }
}
"""
)

USER_NEW_422 = json.loads(
    r"""
{
 "detail": [
  {
   "type": "literal_error",
   "loc": [
    "body",
    "user_role"
   ],
   "msg": "Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>, <LitellmUserRoles.PROXY_ADMIN_VIEW_ONLY: 'proxy_admin_viewer'>, <LitellmUserRoles.INTERNAL_USER: 'internal_user'> or <LitellmUserRoles.INTERNAL_USER_VIEW_ONLY: 'internal_user_viewer'>"
  }
 ]
}
"""  # noqa: E501
)

USER_UPDATE_ALICE = json.loads(
    r"""
{
 "user_id": "alice",
 "data": {
  "verified_subjects": null,
  "user_id": "alice",
  "user_alias": "Alice B",
  "team_id": null,
  "sso_user_id": null,
  "organization_id": null,
  "object_permission_id": null,
  "password_reset_required": null,
  "last_breach_check_at": null,
  "teams": [
   "team-eng"
  ],
  "user_role": "internal_user",
  "max_budget": null,
  "spend": 0.0,
  "user_email": "alice@example.com",
  "models": [
   "fake-gpt",
   "gpt-x"
  ],
  "metadata": {
   "only": "this"
  },
  "max_parallel_requests": null,
  "tpm_limit": 2000,
  "rpm_limit": 10,
  "budget_duration": "30d",
  "budget_reset_at": "2026-12-01T00:00:00Z",
  "allowed_cache_controls": [],
  "policies": [],
  "model_spend": {},
  "model_max_budget": {},
  "created_at": "2026-11-22T05:42:09.112000Z",
  "updated_at": "2026-11-22T05:42:21.952000Z",
  "litellm_organization_table": null,
  "organization_memberships": null,
  "invitations_created": null,
  "invitations_updated": null,
  "invitations_user": null,
  "object_permission": null
 }
}
"""
)

MEMBER_ADD_ALREADY = json.loads(
    r"""
{
 "error": {
  "message": "User already in team. Member: user_id=alice, user_email=None. Existing members=[Member(user_id='default_user_id', user_email=None, role='admin'), Member(user_id='alice', user_email='alice@example.com', role='user')]",
  "type": "team_member_already_in_team",
  "param": "member",
  "code": "400"
 }
}
"""  # noqa: E501
)

MEMBER_ADD_NO_TEAM = json.loads(
    r"""
{
 "detail": {
  "error": "Team doesn't exist in db. Team=team-nope. Create team via `/team/new` call."
 }
}
"""
)

MEMBER_ADD_PREMIUM = json.loads(
    r"""
{
 "detail": {
  "error": "Assigning team admins is a premium feature. Got=user_id=None user_email='carol@example.com' role='admin'. You must be a LiteLLM Enterprise user to use this feature. If you have a license please set `LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/enterprise#trial. \nPricing: https://www.litellm.ai/#pricing. "
 }
}
"""  # noqa: E501
)

USER_DELETE_MISSING = json.loads(
    r"""
{
 "detail": {
  "error": "User not found, passed user_id=ghost"
 }
}
"""
)

BAD_KEY_401 = json.loads(
    r"""
{
 "error": {
  "message": "Authentication Error, Invalid proxy server token passed. Received API Key = sk-..., Key Hash (Token) =5416e2a4f4bc735974bdfb3b6bc0e57f49238dfecdea35212a7a35ec613acc71. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
  "type": "token_not_found_in_db",
  "param": "key",
  "code": "401"
 }
}
"""  # noqa: E501
)

TEAM_NEW = json.loads(
    r"""
{
 "team_alias": "Engineering",
 "team_id": "team-eng",
 "organization_id": null,
 "admins": [],
 "members": [],
 "members_with_roles": [
  {
   "user_id": "default_user_id",
   "user_email": null,
   "role": "admin"
  }
 ],
 "team_member_permissions": [],
 "metadata": {},
 "tpm_limit": null,
 "rpm_limit": null,
 "tpd_limit": null,
 "max_budget": 100.0,
 "soft_budget": null,
 "budget_duration": null,
 "budget_limits": null,
 "models": [
  "fake-gpt"
 ],
 "blocked": false,
 "router_settings": {},
 "access_group_ids": [],
 "default_team_member_models": [],
 "spend": 0.0,
 "max_parallel_requests": null,
 "budget_reset_at": null,
 "model_id": null,
 "model_spend": {},
 "model_max_budget": {},
 "policies": [],
 "allow_team_guardrail_config": false,
 "litellm_model_table": null,
 "object_permission": null,
 "object_permission_id": null,
 "updated_at": "2026-11-22T05:42:08.593000Z",
 "created_at": "2026-11-22T05:42:08.593000Z"
}
"""
)


def client() -> LiteLLMClient:
    return LiteLLMClient(BASE, KEY, backoff_factor=0)


def params_of(call_index: int) -> list[tuple[str, str]]:
    url = responses.calls[call_index].request.url
    assert url is not None
    return parse_qsl(urlsplit(url).query)


def body_of(call_index: int) -> Any:
    body = responses.calls[call_index].request.body
    assert body is not None
    return json.loads(body)


def row(**fields: Any) -> dict[str, Any]:
    """A /user/list row (the recorded dave row) with some fields replaced."""
    recorded: dict[str, Any] = USER_LIST_PAGE1["users"][1]
    return recorded | fields


def page(users: list[dict[str, Any]], n: int, total: int, total_pages: int) -> dict[str, Any]:
    return {"users": users, "total": total, "page": n, "page_size": 100, "total_pages": total_pages}


# --- parse_user_row ----------------------------------------------------------------------------------


def test_parse_recorded_list_row() -> None:
    user = parse_user_row(USER_LIST_PAGE2["users"][1], "/user/list")
    assert user == LiteLLMUser(
        user_id="bob",
        user_email="bob@example.com",
        user_role="internal_user",
        models=("fake-gpt",),
        metadata={},
        teams=(),
        spend=0.0,
        key_count=1,
    )


def test_parse_recorded_info_row() -> None:
    user = parse_user_row(USER_INFO_ALICE["user_info"], "/user/info")
    assert user.user_id == "alice" and user.user_alias == "Alice B"
    assert user.max_budget is None and user.budget_duration == "30d"
    assert user.models == ("fake-gpt", "gpt-x") and user.teams == ("team-eng",)
    assert user.tpm_limit == 2000 and user.rpm_limit == 10 and user.metadata == {"only": "this"}
    assert user.key_count is None


def test_parse_nulls() -> None:
    user = parse_user_row(row(models=None, metadata=None, teams=None, spend=None), "/user/list")
    assert (user.models, user.metadata, user.teams, user.spend) == ((), {}, (), 0.0)


def test_parse_numbers() -> None:
    user = parse_user_row(row(max_budget=10, tpm_limit=1000.0, rpm_limit=5, spend=1), "/user/list")
    assert user.max_budget == 10.0 and isinstance(user.max_budget, float)
    assert user.tpm_limit == 1000 and isinstance(user.tpm_limit, int)
    assert user.spend == 1.0 and isinstance(user.spend, float)


def test_parse_minimal_row_only_user_id() -> None:
    assert parse_user_row({"user_id": "x"}, "/user/list") == LiteLLMUser(user_id="x")


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param({"models": "fake-gpt"}, "models", id="models-string"),
        pytest.param({"models": [1]}, "models", id="models-numbers"),
        pytest.param({"teams": {"team-eng": 1}}, "teams", id="teams-object"),
        pytest.param({"metadata": []}, "metadata", id="metadata-list"),
        pytest.param({"max_budget": "10"}, "max_budget", id="budget-string"),
        pytest.param({"max_budget": True}, "max_budget", id="budget-bool"),
        pytest.param({"tpm_limit": 1.5}, "tpm_limit", id="tpm-fraction"),
        pytest.param({"user_email": 5}, "user_email", id="email-number"),
        pytest.param({"user_id": None}, "user_id", id="user-id-null"),
        pytest.param({"user_id": 42}, "user_id", id="user-id-number"),
    ],
)
def test_parse_wrong_types_raise_naming_the_endpoint(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ResponseError) as info:
        parse_user_row(row(**bad), "/user/list")
    assert info.value.endpoint == "/user/list" and info.value.service == "litellm"
    assert field in info.value.message
    assert str(info.value).startswith("litellm GET /user/list: ")


def test_parse_missing_user_id_and_non_object() -> None:
    no_id = {k: v for k, v in row().items() if k != "user_id"}
    values: list[Any] = [no_id, [], "alice", None]
    for value in values:
        with pytest.raises(ResponseError, match="user"):
            parse_user_row(value, "/user/update", method="POST")


# A /user/list page is decoded and type-checked in one pass; a page that pass refuses is decoded as plain
# JSON and read row by row. Both must read every row alike and refuse the same rows.
ODD_ROWS: list[dict[str, Any]] = [
    row(),
    row(user_id="u-nulls", models=None, metadata=None, teams=None, spend=None, max_budget=None),
    row(user_id="u-ints", max_budget=10, tpm_limit=1000.0, rpm_limit=5, spend=1, key_count=2.0),
    row(user_id="u-teams", teams=["team-a", {"team_id": "team-b", "team_alias": "B"}]),
    row(user_id="u-meta", metadata={"catalog_sync": {"role": "x"}, "other": [1, {"a": None}]}),
    {"user_id": "u-bare"},
]


def _page_users(rows: list[dict[str, Any]]) -> dict[str, LiteLLMUser]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/user/list", json=page(rows, 1, len(rows), 1))
        mock.get(f"{BASE}/team/list", json=[])
        return dict(client().list_users().users)


def test_list_page_reads_rows_as_parse_user_row_does() -> None:
    users = _page_users(ODD_ROWS)
    assert users == {r["user_id"]: parse_user_row(r, "/user/list") for r in ODD_ROWS}
    assert users["u-teams"].teams == ("team-a", "team-b")
    assert users["u-ints"].tpm_limit == 1000 and isinstance(users["u-ints"].key_count, int)
    assert users["u-ints"].max_budget == 10.0 and isinstance(users["u-ints"].max_budget, float)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param({"tpm_limit": 1.5}, "tpm_limit", id="tpm-fraction"),
        pytest.param({"max_budget": "10"}, "max_budget", id="budget-string"),
        pytest.param({"teams": [{"team_alias": "no id"}]}, "teams", id="team-without-id"),
        pytest.param({"metadata": []}, "metadata", id="metadata-list"),
        pytest.param({"user_email": 5}, "user_email", id="email-number"),
    ],
)
def test_list_page_with_a_wrong_row_names_the_user_and_field(bad: dict[str, Any], field: str) -> None:
    rows = [row(user_id="fine"), row(user_id="odd-one") | bad]
    with pytest.raises(ResponseError) as info:
        _page_users(rows)
    message = str(info.value)
    assert message.startswith("litellm GET /user/list: ") and "'odd-one'" in message and field in message
    assert "\n" not in message


def test_list_page_with_non_finite_budget_is_refused() -> None:
    # NaN is not JSON: the one-pass decoder refuses the page; the plain decoder reads NaN and the row
    # check refuses it, so a misread budget never reaches the plan.
    body = json.dumps(page([row(user_id="nan-budget", max_budget=float("nan"))], 1, 1, 1))
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/user/list", body=body, content_type="application/json")
        with pytest.raises(ResponseError, match="'nan-budget': max_budget should be a finite number"):
            client().list_users()


# --- list_users --------------------------------------------------------------------------------------


@responses.activate(registry=OrderedRegistry)
def test_list_users_pages_with_unique_sort_and_reads_teams() -> None:
    responses.get(f"{BASE}/user/list", json=USER_LIST_PAGE1)  # total 6, total_pages 3
    responses.get(f"{BASE}/user/list", json=USER_LIST_PAGE2)
    responses.get(f"{BASE}/user/list", json=USER_LIST_PAGE1 | {"page": 3})  # repeats: #15762
    responses.get(f"{BASE}/team/list", json=[TEAM_NEW])  # /team/list is a bare array of these objects
    snap = client().list_users()
    for i in range(3):
        assert params_of(i) == [
            ("page", str(i + 1)),
            ("page_size", "100"),
            ("sort_by", "user_id"),
            ("sort_order", "asc"),
        ]
    assert len(responses.calls) == 4 and snap.requests == 4
    assert set(snap.users) == {"5bb00c4c-bacd-4a49-b725-ac30adc5a38d", "dave", "carol", "bob"}
    assert snap.duplicates == 2 and snap.total == 6 and not snap.complete
    assert snap.teams == frozenset({"team-eng"})
    assert snap.users["bob"].key_count == 1


@responses.activate(registry=OrderedRegistry)
def test_list_users_stops_on_an_empty_page() -> None:
    responses.get(f"{BASE}/user/list", json=USER_LIST_PAGE1)  # says 3 pages
    responses.get(f"{BASE}/user/list", json=USER_LIST_PAST_END)  # but page 2 is already empty
    responses.get(f"{BASE}/team/list", json=[])
    snap = client().list_users()
    assert snap.requests == 3 and len(snap.users) == 2 and snap.total == 6


@responses.activate(registry=OrderedRegistry)
def test_list_users_requests_grow_with_pages_not_users() -> None:
    users = [row(user_id=f"u{i:04d}") for i in range(250)]
    for n in range(3):
        responses.get(f"{BASE}/user/list", json=page(users[n * 100 : (n + 1) * 100], n + 1, 250, 3))
    responses.get(f"{BASE}/team/list", json=[])
    snap = client().list_users()
    assert snap.requests == 4 and len(snap.users) == 250 and snap.complete and snap.duplicates == 0
    assert snap.teams == frozenset()


@responses.activate
def test_list_users_reads_the_other_pages_concurrently_once_page_1_gives_the_total() -> None:
    users = [row(user_id=f"u{i:04d}") for i in range(950)]
    for n in range(10):
        responses.get(
            f"{BASE}/user/list",
            json=page(users[n * 100 : (n + 1) * 100], n + 1, 950, 10),
            match=[responses.matchers.query_param_matcher({"page": str(n + 1)}, strict_match=False)],
        )
    responses.get(f"{BASE}/team/list", json=[])
    snap = LiteLLMClient(BASE, KEY, backoff_factor=0, workers=4).list_users()
    assert snap.requests == 11 and len(snap.users) == 950 and snap.complete and snap.duplicates == 0
    assert list(snap.users)[:3] == ["u0000", "u0001", "u0002"]  # merged in page order
    pages = sorted(int(dict(params_of(i))["page"]) for i in range(10))
    assert pages == list(range(1, 11))


@responses.activate(registry=OrderedRegistry)
def test_list_users_without_total_pages_computes_them() -> None:
    users = [row(user_id=f"u{i:03d}") for i in range(150)]
    first = page(users[:100], 1, 150, 0)
    del first["total_pages"]
    responses.get(f"{BASE}/user/list", json=first)
    responses.get(f"{BASE}/user/list", json=page(users[100:], 2, 150, 2))
    responses.get(f"{BASE}/team/list", json=[])
    assert len(client().list_users().users) == 150


@responses.activate(registry=OrderedRegistry)
def test_list_users_empty_proxy() -> None:
    responses.get(f"{BASE}/user/list", json=page([], 1, 0, 0))
    responses.get(f"{BASE}/team/list", json=[])
    snap = client().list_users()
    assert snap.users == {} and snap.total == 0 and snap.complete and snap.requests == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="list"),
        pytest.param({"total": 1}, id="no-users"),
        pytest.param({"users": [], "total": "1"}, id="total-string"),
        pytest.param({"users": [{"user_id": 1}], "total": 1, "total_pages": 1}, id="bad-row"),
    ],
)
@responses.activate
def test_list_users_wrong_shape(body: Any) -> None:
    responses.get(f"{BASE}/user/list", json=body)
    with pytest.raises(ResponseError) as info:
        client().list_users()
    assert info.value.endpoint == "/user/list"


@pytest.mark.parametrize("body", [{"teams": []}, [{"team_alias": "no id"}], ["team-eng"]])
@responses.activate
def test_team_list_wrong_shape(body: Any) -> None:
    responses.get(f"{BASE}/user/list", json=page([], 1, 0, 0))
    responses.get(f"{BASE}/team/list", json=body)
    with pytest.raises(ResponseError) as info:
        client().list_users()
    assert info.value.endpoint == "/team/list"


@responses.activate
def test_list_users_truncated_json() -> None:
    responses.get(f"{BASE}/user/list", body='{"users": [{"user_id": "al', content_type="application/json")
    with pytest.raises(ResponseError) as info:
        client().list_users()
    assert str(info.value).startswith("litellm GET /user/list: HTTP 200: invalid or truncated JSON")


@responses.activate(registry=OrderedRegistry)
def test_list_users_retries_a_503_page() -> None:
    responses.get(f"{BASE}/user/list", json={"detail": "busy"}, status=503)
    responses.get(f"{BASE}/user/list", json=page([row()], 1, 1, 1))
    responses.get(f"{BASE}/team/list", json=[])
    snap = client().list_users()
    assert len(responses.calls) == 3 and snap.requests == 2 and snap.complete


# --- get_user ----------------------------------------------------------------------------------------


@responses.activate
def test_get_user_existing() -> None:
    responses.get(f"{BASE}/user/info", json=USER_INFO_ALICE)
    user = client().get_user("alice")
    assert user is not None and user.user_id == "alice" and user.teams == ("team-eng",)
    assert params_of(0) == [("user_id", "alice")]


@responses.activate
def test_get_user_404_is_none() -> None:
    responses.get(f"{BASE}/user/info", json=USER_INFO_MISSING, status=404)
    assert client().get_user("does-not-exist") is None
    assert len(responses.calls) == 1 and responses.calls[0].response.status_code == 404


@responses.activate
def test_get_user_old_version_200_empty_record_is_none() -> None:
    # LiteLLM <= 1.80 (#17437): 200 with an empty record (docs/litellm-api.md#user-info-missing-user).
    old = {"user_id": "ghost", "user_info": {"spend": 0}, "keys": [], "teams": []}
    responses.get(f"{BASE}/user/info", json=old)
    assert client().get_user("ghost") is None


@responses.activate
def test_get_user_route_404_is_not_a_missing_user() -> None:
    responses.get(f"{BASE}/user/info", json={"detail": "Not Found"}, status=404)
    with pytest.raises(ApiError) as info:
        client().get_user("alice")
    assert info.value.status == 404


@responses.activate
def test_get_user_someone_else_is_a_response_error() -> None:
    responses.get(f"{BASE}/user/info", json=USER_INFO_ALICE)
    with pytest.raises(ResponseError, match="the record of 'alice x'"):
        client().get_user("alice x")


@pytest.mark.parametrize(
    "user_id", ["a+b@example.com", "a b", "dept/alice", "50%off", "jürgen", "x&user_id=y"]
)
@responses.activate
def test_get_user_awkward_ids_round_trip(user_id: str) -> None:
    responses.get(f"{BASE}/user/info", json={"user_id": user_id, "user_info": {"user_id": user_id}})
    user = client().get_user(user_id)
    assert user is not None and user.user_id == user_id
    assert params_of(0) == [("user_id", user_id)]
    url = responses.calls[0].request.url
    assert url is not None
    # A literal '+' would be read back as a space (docs/litellm-api.md#user-info-id-encoding).
    if "+" in user_id:
        assert "%2B" in url


def test_get_user_empty_id_is_refused() -> None:
    with pytest.raises(ValueError):
        client().get_user("")


@responses.activate
def test_get_user_wrong_shape() -> None:
    responses.get(f"{BASE}/user/info", json={"user_id": "alice"})
    with pytest.raises(ResponseError) as info:
        client().get_user("alice")
    assert info.value.endpoint == "/user/info"


# --- create_user -------------------------------------------------------------------------------------


@responses.activate
def test_create_user_sends_body_with_auto_create_key_false() -> None:
    responses.post(f"{BASE}/user/new", json=USER_NEW_ALICE)
    body = {"user_id": "alice", "user_email": "alice@example.com", "teams": ["team-eng"], "max_budget": 10.5}
    user = client().create_user(body)
    assert body_of(0) == body | {"auto_create_key": False}
    assert "auto_create_key" not in body  # the caller's dict is left alone
    # The response lists the team, but older versions say null/[] (#13032): teams are never trusted.
    assert user.teams == ()
    assert user.user_id == "alice" and user.max_budget == 10.5 and user.models == ("fake-gpt",)
    assert user.metadata["entity_ref"] == "user:default/alice"


@responses.activate
def test_create_user_null_fields() -> None:
    responses.post(f"{BASE}/user/new", json=USER_NEW_GINA)
    user = client().create_user({"user_id": "gina", "auto_create_key": False})
    assert user.metadata == {} and user.teams == () and user.user_role is None


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "a", "auto_create_key": True},
        {"user_id": "a", "auto_create_key": None},
        {"user_email": "x"},
    ],
)
def test_create_user_refuses_keys_and_missing_ids(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        client().create_user(body)


@responses.activate
def test_create_user_409_unwraps_the_message() -> None:
    responses.post(f"{BASE}/user/new", json=USER_NEW_409_ID, status=409)
    with pytest.raises(ApiError) as info:
        client().create_user({"user_id": "alice"})
    assert info.value.status == 409
    assert info.value.message == "User with id alice already exists"
    assert str(info.value) == "litellm POST /user/new: HTTP 409: User with id alice already exists"


@responses.activate
def test_create_user_409_email() -> None:
    responses.post(f"{BASE}/user/new", json=USER_NEW_409_EMAIL, status=409)
    with pytest.raises(ApiError) as info:
        client().create_user({"user_id": "alice-dup", "user_email": "alice@example.com"})
    assert info.value.message == "User with email alice@example.com already exists"


@responses.activate
def test_create_user_422_message() -> None:
    responses.post(f"{BASE}/user/new", json=USER_NEW_422, status=422)
    with pytest.raises(ApiError) as info:
        client().create_user({"user_id": "erin", "user_role": "superhero"})
    assert info.value.status == 422 and info.value.error_type == "literal_error"
    assert info.value.message.startswith("body.user_role: Input should be <LitellmUserRoles.PROXY_ADMIN")


@responses.activate
def test_create_user_503_is_retried_and_a_409_on_the_retry_reaches_the_caller() -> None:
    # The first attempt may have created the user: the retry's 409 says so, and the applier then reads it.
    responses.post(f"{BASE}/user/new", body="<html>503 Service Unavailable</html>", status=503)
    responses.post(f"{BASE}/user/new", json=USER_NEW_409_ID, status=409)
    with pytest.raises(ApiError) as info:
        client().create_user({"user_id": "alice"})
    assert info.value.status == 409
    assert len(responses.calls) == 2


@responses.activate
def test_create_user_gives_up_after_the_configured_retries() -> None:
    for _ in range(3):
        responses.post(f"{BASE}/user/new", body="<html>503 Service Unavailable</html>", status=503)
    with pytest.raises(ApiError) as info:
        LiteLLMClient(BASE, KEY, backoff_factor=0, retries=2).create_user({"user_id": "alice"})
    assert info.value.status == 503 and info.value.message == "<html>503 Service Unavailable</html>"
    assert len(responses.calls) == 3


@responses.activate
def test_create_user_422_is_never_retried() -> None:
    responses.post(f"{BASE}/user/new", json=USER_NEW_422, status=422)
    with pytest.raises(ApiError):
        client().create_user({"user_id": "erin", "user_role": "superhero"})
    assert len(responses.calls) == 1


# --- update_user -------------------------------------------------------------------------------------


@responses.activate
def test_update_user_sends_user_id_and_fields_and_parses_data() -> None:
    responses.post(f"{BASE}/user/update", json=USER_UPDATE_ALICE)
    fields = {"max_budget": None, "metadata": {"only": "this"}}
    user = client().update_user("alice", fields)
    assert body_of(0) == {"user_id": "alice", "max_budget": None, "metadata": {"only": "this"}}
    assert user.user_id == "alice" and user.max_budget is None and user.teams == ("team-eng",)


@pytest.mark.parametrize(("user_id", "fields"), [("", {"x": 1}), ("a", {}), ("a", {"user_id": "b", "x": 1})])
def test_update_user_refuses_bad_calls(user_id: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        client().update_user(user_id, fields)


@responses.activate
def test_update_user_without_data_is_a_response_error() -> None:
    responses.post(f"{BASE}/user/update", json={"user_id": "alice"})
    with pytest.raises(ResponseError) as info:
        client().update_user("alice", {"max_budget": 1})
    assert str(info.value).startswith("litellm POST /user/update: ")


# --- teams -------------------------------------------------------------------------------------------


@responses.activate
def test_add_team_member() -> None:
    responses.post(f"{BASE}/team/member_add", json=TEAM_NEW)
    assert client().add_team_member("team-eng", "carol") is True
    assert body_of(0) == {"team_id": "team-eng", "member": {"user_id": "carol", "role": "user"}}


@responses.activate
def test_add_team_member_already_in_team_is_false() -> None:
    responses.post(f"{BASE}/team/member_add", json=MEMBER_ADD_ALREADY, status=400)
    assert client().add_team_member("team-eng", "alice") is False
    assert len(responses.calls) == 1 and responses.calls[0].response.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (MEMBER_ADD_NO_TEAM, 404, "Team doesn't exist in db. Team=team-nope."),
        (MEMBER_ADD_PREMIUM, 400, "Assigning team admins is a premium feature."),
    ],
)
@responses.activate
def test_add_team_member_other_errors_raise(body: Any, status: int, message: str) -> None:
    responses.post(f"{BASE}/team/member_add", json=body, status=status)
    with pytest.raises(ApiError) as info:
        client().add_team_member("team-nope", "carol")
    assert info.value.status == status and info.value.message.startswith(message)
    assert "\n" not in str(info.value)


@responses.activate
def test_remove_team_member() -> None:
    responses.post(f"{BASE}/team/member_delete", json=TEAM_NEW)
    assert client().remove_team_member("team-eng", "carol") is True
    assert body_of(0) == {"team_id": "team-eng", "user_id": "carol"}


@responses.activate
def test_remove_team_member_not_a_member_is_false() -> None:
    # Body shape as recorded (docs/litellm-api.md#team-member-delete): 400 {"detail": {"error": ...}}.
    responses.post(
        f"{BASE}/team/member_delete", json={"detail": {"error": "User not found in team"}}, status=400
    )
    assert client().remove_team_member("team-eng", "zed") is False
    assert len(responses.calls) == 1 and responses.calls[0].response.status_code == 400


@responses.activate
def test_remove_team_member_missing_team_raises() -> None:
    body = {"detail": {"error": "Team id=team-nope does not exist in db"}}
    responses.post(f"{BASE}/team/member_delete", json=body, status=400)
    with pytest.raises(ApiError, match="Team id=team-nope does not exist in db"):
        client().remove_team_member("team-nope", "zed")


# --- delete_users ------------------------------------------------------------------------------------


@responses.activate
def test_delete_users() -> None:
    responses.post(f"{BASE}/user/delete", json=1)
    client().delete_users(["bob", "carl"])
    assert body_of(0) == {"user_ids": ["bob", "carl"]}


@responses.activate
def test_delete_users_empty_makes_no_request() -> None:
    client().delete_users([])
    assert len(responses.calls) == 0


@responses.activate
def test_delete_users_unknown_id() -> None:
    responses.post(f"{BASE}/user/delete", json=USER_DELETE_MISSING, status=404)
    with pytest.raises(ApiError) as info:
        client().delete_users(["ghost"])
    assert str(info.value) == "litellm POST /user/delete: HTTP 404: User not found, passed user_id=ghost"


# --- secrets -----------------------------------------------------------------------------------------


@responses.activate
def test_master_key_not_in_errors_or_repr() -> None:
    responses.get(f"{BASE}/user/info", json=BAD_KEY_401, status=401)
    c = client()
    with pytest.raises(ApiError) as info:
        c.get_user("alice")
    assert info.value.status == 401 and info.value.error_type == "token_not_found_in_db"
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in repr(c) and KEY not in repr(c.session)
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_get_users_reads_a_hundred_per_request_and_only_the_ids_asked_for() -> None:
    """Against the simulator (which models /user/list's user_ids: one value is a substring match)."""
    from catalog_sync.sim import LiteLLMSim, SimServer

    sim = LiteLLMSim(master_key=KEY)
    sim.add_users([{"user_id": f"u{i:03d}"} for i in range(250)] + [{"user_id": "a,b"}, {"user_id": "u0"}])
    server = SimServer(sim)
    url = server.start()
    try:
        client = LiteLLMClient(url, KEY, backoff_factor=0)
        wanted = [f"u{i:03d}" for i in range(0, 250, 2)] + ["ghost-1", "ghost-2", "a,b"]
        sim.clear_requests()
        found = client.get_users(wanted)
        assert set(found) == set(wanted)
        assert {k for k, v in found.items() if v is None} == {"ghost-1", "ghost-2"}
        assert all(found[u].user_id == u for u in wanted if found[u] is not None)  # type: ignore[union-attr]
        counts = sim.request_counts()
        assert counts["GET /user/list"] == 2  # 127 plain ids: two requests, not 127
        assert counts["GET /user/info"] == 1  # the id with a comma cannot go in a comma list
        # One id alone would be a substring search ("u0" matches u000..u099): it is read exactly instead.
        only = client.get_users(["u0"])
        assert only["u0"] is not None and only["u0"].user_id == "u0"
    finally:
        server.stop()
