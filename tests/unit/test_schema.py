"""The shipped JSON Schema: current, and agreeing with the validator on what a config may be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from catalog_sync.config import ConfigError, json_schema, parse_config

REPO = Path(__file__).resolve().parents[2]
ENV = {"BACKSTAGE_TOKEN": "abcdefgh", "LITELLM_MASTER_KEY": "sk-abcdefgh"}


def test_shipped_schema_is_what_the_schema_command_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "catalog_sync", "schema"], capture_output=True, text=True, check=True
    ).stdout
    shipped = (REPO / "config.schema.json").read_text()
    assert printed == shipped, "config.schema.json is stale: run `catalog-sync schema > config.schema.json`"


def test_example_config_points_editors_at_the_schema_and_conforms_to_it() -> None:
    text = (REPO / "config.example.yaml").read_text()
    assert "# yaml-language-server: $schema=./config.schema.json" in text
    jsonschema.validate(yaml.safe_load(text), json_schema())


def _base(**extra: Any) -> dict[str, Any]:
    return {
        "backstage": {"base_url": "http://b:7007", "token": "${BACKSTAGE_TOKEN}"},
        "litellm": {"base_url": "http://l:4000", "master_key": "${LITELLM_MASTER_KEY}"},
        **extra,
    }


@pytest.mark.parametrize(
    "data",
    [
        _base(),
        _base(roles=[{"group": "ml", "max_budget": 200, "models": ["gpt-4o"]}], defaults={"max_budget": 1}),
        _base(deprovision={"mode": "block", "protect": ["svc-*"]}, guards={"max_deprovision": "5%"}),
        _base(metrics={"textfile": "/tmp/x.prom", "pushgateway": "http://pg:9091"}),
    ],
)
def test_configs_the_validator_accepts_the_schema_accepts(data: dict[str, Any]) -> None:
    parse_config(data, env=ENV)
    jsonschema.validate(data, json_schema())


@pytest.mark.parametrize(
    "data",
    [
        _base(unknown_key=1),
        _base(roles=[{"group": "ml", "max_budget": -1}]),
        _base(roles=[{"max_budget": 1}]),
        _base(deprovision={"mode": "purge"}),
        _base(concurrency=0),
        _base(metrics={"textfile": 3}),
        {"backstage": {"base_url": "http://b"}},
    ],
)
def test_configs_the_validator_rejects_the_schema_rejects(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse_config(data, env=ENV)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema())
