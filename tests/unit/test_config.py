from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from catalog_sync.config import Config, ConfigError, load_config, normalise_group_ref, parse_config

BASE = """\
backstage:
  base_url: https://backstage.example.com
  token: ${BS_TOKEN}
litellm:
  base_url: https://llm.example.com
  master_key: ${LITELLM_KEY}
"""
ENV = {"BS_TOKEN": "token-abcdefgh", "LITELLM_KEY": "sk-abcdefgh"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env=ENV if env is None else env)
    return info.value.problems


def test_minimal_config_gets_plugin_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), env=ENV)
    assert config.backstage.token.get_secret_value() == "token-abcdefgh"
    assert config.defaults.max_budget == 10
    assert config.defaults.budget_duration == "30d"
    assert config.defaults.user_role == "internal_user"
    assert config.defaults.models == []
    assert config.match_nested_groups is True
    assert config.adopt_unmanaged is False
    assert config.deprovision.mode.value == "report"
    assert config.backstage.page_size == 500


def test_every_problem_is_reported_in_one_pass_with_its_path(tmp_path: Path) -> None:
    text = (
        BASE
        + """\
roles:
  - group: ml
    max_budget: 5
  - group: finance
  - group: admins
    max_budget: -1
    user_role: team
    budget_duration: forever
    colour: blue
defaults:
  tpm_limit: 1.5
"""
    )
    found = problems(tmp_path, text)
    assert "roles[2].max_budget: must be a number >= 0" in found
    assert any(p.startswith("roles[2].user_role: must be one of") for p in found)
    assert any(p.startswith("roles[2].budget_duration: must look like") for p in found)
    assert "roles[2].colour: unknown key" in found
    assert "defaults.tpm_limit: must be a whole number" in found
    assert len(found) == 5


def test_unknown_top_level_key_and_missing_section(tmp_path: Path) -> None:
    found = problems(tmp_path, "backstage:\n  base_url: http://x\n  token: abcdefgh\nlitelm: {}\n")
    assert "litelm: unknown key" in found
    assert "litellm: is required" in found


def test_missing_environment_variable_names_path_and_variable(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE, env={"BS_TOKEN": "abcdefgh"})
    assert found == ["litellm.master_key: environment variable LITELLM_KEY is not set"]


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "roles: [\n")
    assert len(found) == 1
    assert found[0].startswith("line ")
    assert "not valid YAML" in found[0]


def test_not_a_mapping_and_unreadable_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "- a\n- b\n") == ["(top level): must be a mapping of settings"]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", env=ENV)
    assert "cannot read the file" in info.value.problems[0]


def test_duplicate_role_groups_are_rejected_case_insensitively(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "roles:\n  - group: ML\n  - group: group:default/ml\n")
    assert len(found) == 1
    assert "roles[1].group" in found[0] and "repeats roles[0].group" in found[0]


def test_reserved_metadata_key_and_bad_filter(tmp_path: Path) -> None:
    text = BASE.replace("  token: ${BS_TOKEN}\n", "  token: ${BS_TOKEN}\n  filter: kind=group\n")
    text += "defaults:\n  metadata:\n    catalog_sync: x\n"
    found = problems(tmp_path, text)
    assert any(p.startswith("backstage.filter: ") and "kind" in p for p in found)
    assert any(p.startswith("defaults.metadata: ") and "reserved" in p for p in found)


def test_secrets_do_not_appear_in_problems(tmp_path: Path) -> None:
    text = BASE.replace("https://llm.example.com", "not a url")
    found = problems(tmp_path, text)
    assert found and all("sk-abcdefgh" not in p and "token-abcdefgh" not in p for p in found)
    config = load_config(write(tmp_path, BASE), env=ENV)
    assert "sk-abcdefgh" not in repr(config) and "sk-abcdefgh" not in str(config)


@pytest.mark.parametrize(
    ("raw", "ref"),
    [
        ("ml", "group:default/ml"),
        ("ML-Team", "group:default/ml-team"),
        ("ops/sre", "group:ops/sre"),
        ("Group:Ops/SRE", "group:ops/sre"),
        ("user:default/x", None),
        ("a b", None),
        ("group:default/", None),
    ],
)
def test_group_refs_normalise(raw: str, ref: str | None) -> None:
    assert normalise_group_ref(raw) == ref


def test_role_fields_omitted_are_not_set() -> None:
    config = parse_config(
        {
            "backstage": {"base_url": "http://b", "token": "abcdefgh"},
            "litellm": {"base_url": "http://l", "master_key": "sk-abcdefgh"},
            "roles": [{"group": "x", "max_budget": None}],
        },
        env={},
    )
    assert config.roles[0].model_fields_set == {"group", "max_budget"}


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    config = load_config(example, env={"BACKSTAGE_TOKEN": "abcdefgh", "LITELLM_MASTER_KEY": "sk-abcdefgh"})
    assert config.roles


def _key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        for sub in (info.annotation, *get_args(info.annotation)):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                paths += _key_paths(sub, path + ".")
    return paths


def test_example_config_shows_every_key() -> None:
    """config.example.yaml documents every key: a key added to the model must be added there too."""
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    data = yaml.safe_load(example.read_text())
    commented = example.read_text()
    missing = []
    for path in _key_paths(Config):
        if path.startswith("roles.") and path not in ("roles.group", "roles.optional"):
            path = "defaults." + path.removeprefix("roles.")  # a role takes the same fields as defaults
        node: Any = data
        for part in path.split("."):
            node = node[0] if isinstance(node, list) and node else node
            node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
        # Keys shown commented out (optional features) count when written as "# key:".
        if node is KeyError and f"# {path.split('.')[-1]}:" not in commented:
            missing.append(path)
    assert missing == []


def test_an_empty_secret_is_a_config_error_not_a_401_later(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE, env={"BS_TOKEN": "", "LITELLM_KEY": "sk-abcdefgh"})
    assert found == ["backstage.token: must not be empty"]
