"""The roles a saved plan was made with: `apply` refuses a plan whose config's roles have changed since.

A saved plan carries a copy of the config's `defaults` and `roles`; `apply` compares it with the config it
is given and names each difference (`roles[1].max_budget is 50 in the plan's config, 100 now`). Pure.
"""

from __future__ import annotations

import json
from typing import Any

from catalog_sync.config import Config

MAX_NAMED = 10


class PlanConfigMismatch(Exception):
    """The config given to `apply` grants other roles than the one the plan was made with."""


def grants_of(config: Config) -> dict[str, Any]:
    """What decides what people get: the defaults and the roles, as JSON."""
    return config.model_dump(mode="json", include={"defaults", "roles"})


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def differences(before: Any, now: Any, path: str = "") -> list[str]:
    """Each place where `now` differs from `before`, as `path is X in the plan's config, Y now`."""
    if isinstance(before, dict) and isinstance(now, dict):
        out: list[str] = []
        for key in [*before, *(k for k in now if k not in before)]:
            where = f"{path}.{key}" if path else key
            out += differences(before.get(key), now.get(key), where)
        return out
    if isinstance(before, list) and isinstance(now, list) and any(isinstance(v, dict) for v in before + now):
        out = []
        for i in range(max(len(before), len(now))):
            if i >= len(now):
                out.append(f"{path}[{i}] ({_label(before[i])}) is in the plan's config, gone now")
            elif i >= len(before):
                out.append(f"{path}[{i}] ({_label(now[i])}) is not in the plan's config, added now")
            else:
                out += differences(before[i], now[i], f"{path}[{i}]")
        return out
    if before == now:
        return []
    return [f"{path} is {_show(before)} in the plan's config, {_show(now)} now"]


def _label(item: Any) -> str:
    if isinstance(item, dict) and "group" in item:
        return f"group {item['group']}"
    return _show(item)


def check(saved: dict[str, Any] | None, config: Config) -> list[str]:
    """The differences, or none when the plan carries no copy (made before plans held one)."""
    if saved is None:
        return []
    return differences(saved, grants_of(config))


def mismatch_message(plan_path: str, found: list[str]) -> str:
    named = "; ".join(found[:MAX_NAMED])
    more = f"; and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
    return (
        f"{plan_path}: the config's roles differ from those the plan was made with: {named}{more}. "
        "Make a new plan, or give --force to apply this one anyway"
    )
