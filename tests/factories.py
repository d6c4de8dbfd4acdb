"""Small builders for domain objects and configs, shared by the pure tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from catalog_sync.config import Config, parse_config
from catalog_sync.model import (
    MARKER_KEY,
    CatalogGroup,
    CatalogSnapshot,
    CatalogUser,
    LiteLLMSnapshot,
    LiteLLMUser,
)
from catalog_sync.plan import Plan
from catalog_sync.planfile import dump_plan

SECRET_TOKEN = "bs-token-never-print-0123456789"
SECRET_KEY = "sk-master-never-print-0123456789"


def config(**overrides: Any) -> Config:
    data: dict[str, Any] = {
        "backstage": {"base_url": "http://backstage.test", "token": SECRET_TOKEN},
        "litellm": {"base_url": "http://litellm.test", "master_key": SECRET_KEY},
    }
    data.update(overrides)
    return parse_config(data, env={})


def user(
    name: str, *groups: str, email: str | None = "", display: str | None = None, namespace: str = "default"
) -> CatalogUser:
    return CatalogUser(
        ref=f"user:{namespace}/{name}".lower(),
        name=name,
        namespace=namespace,
        email=f"{name.lower()}@example.com" if email == "" else email,
        display_name=display if display is not None else name.title(),
        groups=frozenset(g if ":" in g else f"group:default/{g}" for g in groups),
    )


def group(name: str, *parents: str) -> CatalogGroup:
    return CatalogGroup(
        ref=f"group:default/{name}", name=name, parents=frozenset(f"group:default/{p}" for p in parents)
    )


def catalog(users: list[CatalogUser], groups: list[CatalogGroup] | None = None) -> CatalogSnapshot:
    gs = {g.ref: g for g in groups or []}
    return CatalogSnapshot(users=tuple(users), groups=gs, users_total=len(users), groups_total=len(gs))


def managed_user(
    user_id: str, role: str = "defaults", extra_marker: dict[str, Any] | None = None, **fields: Any
) -> LiteLLMUser:
    """A LiteLLM user this job made, with its ownership marker; `fields` override the usual values."""
    marker = {
        "managed": True,
        "version": 1,
        "entity_ref": f"user:default/{user_id}",
        "role": role,
        "keys": [],
        **(extra_marker or {}),
    }
    base: dict[str, Any] = {
        "user_id": user_id,
        "user_email": f"{user_id}@example.com",
        "user_alias": user_id.title(),
        "user_role": "internal_user",
        "max_budget": 10.0,
        "budget_duration": "30d",
        "metadata": {MARKER_KEY: marker},
    }
    base.update(fields)
    return LiteLLMUser(**base)


def litellm(users: list[LiteLLMUser], teams: list[str] | None = None) -> LiteLLMSnapshot:
    return LiteLLMSnapshot(
        users={u.user_id: u for u in users},
        total=len(users),
        teams=frozenset(teams) if teams is not None else None,
    )


def plan_text(plan: Plan, created_at: datetime, **overrides: Any) -> str:
    """A saved plan's text with the usual test values; `overrides` for the argument a test is about."""
    args: dict[str, Any] = {
        "litellm_url": "http://litellm.test",
        "backstage_url": "http://backstage.test",
        "config_path": "c.yaml",
        "managed_teams": frozenset(),
        "existing_teams": None,
        "adopt_unmanaged": False,
        **overrides,
    }
    return dump_plan(plan, created_at=created_at, **args)
