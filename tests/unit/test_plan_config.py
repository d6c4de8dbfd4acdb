"""A saved plan's copy of the roles, compared with the config `apply` is given."""

from __future__ import annotations

from catalog_sync.plan_config import check, differences, grants_of
from catalog_sync.words import plural
from tests.factories import config


def test_the_same_roles_have_no_differences() -> None:
    c = config(roles=[{"group": "eng", "max_budget": 50}])
    assert check(grants_of(c), c) == []
    assert check(None, c) == []  # a plan saved before plans held their roles


def test_each_difference_is_named_with_its_path_and_both_values() -> None:
    before = config(roles=[{"group": "ops"}, {"group": "eng", "max_budget": 50, "models": ["a"]}])
    now = config(
        roles=[{"group": "ops"}, {"group": "eng", "max_budget": 100, "models": ["a", "b"]}, {"group": "fin"}],
        defaults={"max_budget": 5},
    )
    found = check(grants_of(before), now)
    assert "roles[1].max_budget is 50 in the plan's config, 100 now" in found
    assert 'roles[1].models is ["a"] in the plan\'s config, ["a", "b"] now' in found
    assert "roles[2] (group fin) is not in the plan's config, added now" in found
    assert any(f.startswith("defaults.max_budget is ") and f.endswith(", 5 now") for f in found)
    assert differences([{"group": "x"}], [], "roles") == [
        "roles[0] (group x) is in the plan's config, gone now"
    ]


def test_plural() -> None:
    assert [plural(n, "team") for n in (0, 1, 2)] == ["0 teams", "1 team", "2 teams"]
    assert plural(2, "entry", "entries") == "2 entries"
