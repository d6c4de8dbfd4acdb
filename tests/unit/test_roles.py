from __future__ import annotations

from catalog_sync.roles import ancestors, resolve, user_id_for
from tests.factories import catalog, config, group, user


def test_user_id_is_lowercased_name_with_domain() -> None:
    cfg = config(user_id={"domain": "Example.COM"})
    assert user_id_for(user("Mixed.Case-User-00007"), cfg) == "mixed.case-user-00007@example.com"
    # A name that already holds an @ is not given a second domain (the plugin's foo@bar.it@bar.it bug).
    assert user_id_for(user("jo@corp.io"), cfg) == "jo@corp.io"
    assert user_id_for(user("alice"), config()) == "alice"


def test_user_id_from_email() -> None:
    cfg = config(user_id={"source": "email"})
    assert user_id_for(user("alice", email="Alice@Example.com"), cfg) == "alice@example.com"
    assert user_id_for(user("bob", email=None), cfg) is None


def test_first_matching_role_in_config_order_wins() -> None:
    cfg = config(roles=[{"group": "finance", "max_budget": 20}, {"group": "ml", "max_budget": 200}])
    snap = catalog([user("amy", "ml", "finance"), user("bo", "ml")], [group("ml"), group("finance")])
    desired = {d.user_id: d for d in resolve(snap, cfg).desired}
    assert desired["amy"].role == "group:default/finance"
    assert desired["amy"].max_budget == 20
    assert desired["bo"].max_budget == 200


def test_omitted_role_fields_fall_back_to_defaults_and_explicit_null_is_kept() -> None:
    cfg = config(
        defaults={
            "max_budget": 10,
            "budget_duration": "7d",
            "tpm_limit": 100,
            "metadata": {"a": "1", "b": "2"},
        },
        roles=[{"group": "ml", "max_budget": None, "metadata": {"b": "ml"}}],
    )
    d = resolve(catalog([user("amy", "ml")], [group("ml")]), cfg).desired[0]
    assert d.max_budget is None  # explicit null in the role: no cap
    assert d.budget_duration == "7d"
    assert d.tpm_limit == 100
    assert d.metadata == {"a": "1", "b": "ml"}
    assert d.user_role == "internal_user"


def test_nested_groups_match_ancestor_roles_unless_disabled() -> None:
    groups = [group("eng"), group("platform", "eng"), group("sre", "platform")]
    snap = catalog([user("sam", "sre")], groups)
    roles = [{"group": "eng", "max_budget": 50}]
    assert resolve(snap, config(roles=roles)).desired[0].role == "group:default/eng"
    flat = resolve(snap, config(roles=roles, match_nested_groups=False)).desired[0]
    assert flat.role == "defaults"
    assert flat.max_budget == 10


def test_group_names_match_case_insensitively() -> None:
    snap = catalog([user("amy", "group:default/ml-team")], [group("ml-team")])
    assert resolve(snap, config(roles=[{"group": "ML-Team"}])).desired[0].role == "group:default/ml-team"


def test_cycle_terminates_and_is_reported() -> None:
    groups = [group("a", "b"), group("b", "a")]
    assert ancestors({g.ref: g for g in groups}, ["group:default/a"]) == {
        "group:default/a",
        "group:default/b",
    }
    res = resolve(catalog([user("x", "a")], groups), config(roles=[{"group": "b", "max_budget": 1}]))
    assert res.desired[0].max_budget == 1
    assert {w.code for w in res.warnings} == {"group_cycle"}


def test_missing_role_group_and_unmappable_user_are_warned() -> None:
    cfg = config(user_id={"source": "email"}, roles=[{"group": "ghosts"}])
    res = resolve(catalog([user("nomail", email=None), user("ok")]), cfg)
    assert [w.code for w in res.warnings] == ["role_group_missing"]
    assert [w.subject for w in res.unmapped] == ["user:default/nomail"]
    assert [d.user_id for d in res.desired] == ["ok@example.com"]


def test_two_entities_with_the_same_id_are_both_held_back() -> None:
    snap = catalog([user("Alice"), user("alice", namespace="other")])
    res = resolve(snap, config())
    assert res.desired == ()
    assert res.duplicates == {"alice": ("user:default/alice", "user:other/alice")}


def test_models_are_sorted_and_deduplicated() -> None:
    d = resolve(catalog([user("a")]), config(defaults={"models": ["b", "a", "b"]})).desired[0]
    assert d.models == ("a", "b")
