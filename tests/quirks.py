"""LiteLLM admin API behaviours the job relies on, checked the same way on the simulator and the real proxy.

tests/e2e runs these against the built-in simulator, tests/contract against a real LiteLLM: when the two
disagree the contract run fails and the simulator is what gets fixed.
"""

from __future__ import annotations

from collections.abc import Callable

from catalog_sync.litellm import LiteLLMClient
from tests.envs import Env

BASE = {
    "user_id": "quirk.user",
    "user_email": "quirk.user@example.com",
    "user_alias": "Quirk User",
    "user_role": "internal_user",
    "max_budget": 10.0,
    "budget_duration": "30d",
    "models": ["gpt-4o"],
    "tpm_limit": 1000,
    "rpm_limit": 10,
    "metadata": {"owner": "someone-else", "catalog_sync": {"managed": True}},
}


def update_null_clears_budget_and_limits_but_not_identity(env: Env) -> None:
    env.create_user(BASE)
    env._post(
        "/user/update",
        {
            "user_id": "quirk.user",
            "max_budget": None,
            "tpm_limit": None,
            "rpm_limit": None,
            "budget_duration": None,
            "user_email": None,
            "user_alias": None,
        },
    ).raise_for_status()
    info = env.user_info("quirk.user")
    assert info is not None
    row = info["user_info"]
    assert (row["max_budget"], row["tpm_limit"], row["rpm_limit"], row["budget_duration"]) == (
        None,
        None,
        None,
        None,
    )
    assert (row["user_email"], row["user_alias"]) == ("quirk.user@example.com", "Quirk User")


def update_drops_empty_list_and_object_and_replaces_metadata(env: Env) -> None:
    env.create_user(BASE)
    env.update_user("quirk.user", {"models": [], "metadata": {}})
    row = env.all_users()["quirk.user"]
    assert row["models"] == ["gpt-4o"]
    assert row["metadata"] == BASE["metadata"]
    env.update_user("quirk.user", {"metadata": {"only": "this"}})
    assert env.all_users()["quirk.user"]["metadata"] == {"only": "this"}


def create_existing_id_is_409_and_changes_nothing(env: Env) -> None:
    env.create_user(BASE)
    r = env._post("/user/new", {**BASE, "auto_create_key": False, "max_budget": 99.0})
    assert r.status_code == 409, r.text
    assert env.all_users()["quirk.user"]["max_budget"] == 10.0


def create_without_key_mints_none_and_missing_user_is_404(env: Env) -> None:
    env.create_user(BASE)
    info = env.user_info("quirk.user")
    assert info is not None and info["keys"] == []
    assert env.user_info("nobody.here") is None


def key_block_and_unblock_are_idempotent_and_a_missing_key_is_404(env: Env) -> None:
    env.create_user(BASE)
    token = env._post("/key/generate", {"user_id": "quirk.user"}).json()["token"]
    for path, state in (("/key/block", True), ("/key/block", True), ("/key/unblock", False)):
        r = env._post(path, {"key": token})
        assert r.status_code == 200, r.text
        info = env.user_info("quirk.user")
        assert info is not None
        assert [(k["token"], k["blocked"] is True) for k in info["keys"]] == [(token, state)]
    r = env._post("/key/unblock", {"key": "0" * 64})
    assert r.status_code == 404 and r.json()["error"]["message"] == "Key not found."


def delete_removes_keys_and_a_repeat_is_404(env: Env) -> None:
    env.create_user(BASE)
    env._post("/key/generate", {"user_id": "quirk.user"}).raise_for_status()
    assert env._post("/user/delete", {"user_ids": ["quirk.user"]}).status_code == 200
    assert env.user_info("quirk.user") is None
    r = env._post("/user/delete", {"user_ids": ["quirk.user"]})
    assert r.status_code == 404 and "not found" in r.text.lower()


def odd_ids_round_trip_through_the_client(env: Env) -> None:
    client = LiteLLMClient(env.litellm_url, env.master_key)
    for uid in (
        "a+b@example.com",
        "with space@example.com",
        "50%off@example.com",
        "zoë@example.com",
        "x" * 300,
    ):
        client.create_user({"user_id": uid, "auto_create_key": False, "max_budget": 1.0})
        user = client.get_user(uid)
        assert user is not None and user.user_id == uid, uid
        assert uid in {u for u in client.list_users().users}
        client.update_user(uid, {"max_budget": 2.0})
        assert env.all_users()[uid]["max_budget"] == 2.0
    client.close()


QUIRKS: list[Callable[[Env], None]] = [
    odd_ids_round_trip_through_the_client,
    key_block_and_unblock_are_idempotent_and_a_missing_key_is_404,
    delete_removes_keys_and_a_repeat_is_404,
    update_null_clears_budget_and_limits_but_not_identity,
    update_drops_empty_list_and_object_and_replaces_metadata,
    create_existing_id_is_409_and_changes_nothing,
    create_without_key_mints_none_and_missing_user_is_404,
]
