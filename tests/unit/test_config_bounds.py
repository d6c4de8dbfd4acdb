"""Sane bounds: a slip of the exponent is a config error with a one-line message, not a broken run."""

from __future__ import annotations

from typing import Any

import pytest

from catalog_sync.config import ConfigError
from tests.factories import config


def problems(**overrides: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config(**overrides)
    return info.value.problems


BS = {"base_url": "http://backstage.test", "token": "t-0123456789"}
LL = {"base_url": "http://litellm.test", "master_key": "sk-0123456789"}


@pytest.mark.parametrize(
    "overrides,problem",
    [
        ({"litellm": {**LL, "timeout_seconds": 7.6e-72}}, "litellm.timeout_seconds: must be a number >= 0.1"),
        ({"backstage": {**BS, "timeout_seconds": 0}}, "backstage.timeout_seconds: must be a number >= 0.1"),
        ({"backstage": {**BS, "timeout_seconds": 1e9}}, "backstage.timeout_seconds: must be a number <= 600"),
        ({"metrics": {"timeout_seconds": 1e-9}}, "metrics.timeout_seconds: must be a number >= 0.1"),
        (
            {"http": {"backoff_seconds": 1e-9}},
            "http.backoff_seconds: must be 0 (retry at once) or at least 0.01 seconds",
        ),
        (
            {"http": {"backoff_max_seconds": 0.001}},
            "http.backoff_max_seconds: must be 0 (retry at once) or at least 0.01 seconds",
        ),
        ({"http": {"backoff_seconds": 1e6}}, "http.backoff_seconds: must be a number <= 60"),
        ({"http": {"retry_budget_seconds": 1e-3}}, "http.retry_budget_seconds: must be a number >= 1"),
        ({"max_plan_age_minutes": 1e-6}, "max_plan_age_minutes: must be a number >= 1"),
        ({"defaults": {"max_budget": 1e300}}, "defaults.max_budget: must be a number <= 1000000000"),
        ({"defaults": {"max_budget": float("inf")}}, "defaults.max_budget: must be a number <= 1000000000"),
        (
            {"roles": [{"group": "g", "tpm_limit": 10**12}]},
            "roles[0].tpm_limit: must be a number <= 1000000000",
        ),
        ({"roles": [{"group": "g", "rpm_limit": -1}]}, "roles[0].rpm_limit: must be a number >= 0"),
        ({"report": {"keep": 0}}, "report.keep: must be a number >= 1"),
        (
            {"guards": {"max_downgrades": "ten"}},
            "guards.max_downgrades: must be a whole number >= 0 or a percentage like 10%",
        ),
    ],
)
def test_absurd_values_are_one_clear_line(overrides: dict[str, Any], problem: str) -> None:
    assert problems(**overrides) == [problem]


def test_the_edges_are_accepted() -> None:
    cfg = config(
        backstage={**BS, "timeout_seconds": 0.1},
        litellm={**LL, "timeout_seconds": 600},
        http={"backoff_seconds": 0, "backoff_max_seconds": 0.01, "retry_budget_seconds": 1},
        defaults={"max_budget": 1e9, "tpm_limit": 10**9, "rpm_limit": 0},
        report={"keep": None},
        guards={"max_downgrades": 3},
    )
    assert cfg.report.keep is None and cfg.http.backoff_seconds == 0
    assert config().report.keep == 100 and config().guards.max_downgrades == "10%"
