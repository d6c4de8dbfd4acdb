"""The end-to-end scenarios against the built-in simulators, through the real CLI over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.envs import SimEnv
from tests.plan_scenarios import PLAN_SCENARIOS
from tests.quirks import QUIRKS
from tests.safety_scenarios import SAFETY_SCENARIOS
from tests.scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario: Callable[[SimEnv], None], sim_env: SimEnv) -> None:
    scenario(sim_env)


@pytest.mark.parametrize("quirk", QUIRKS, ids=lambda q: q.__name__)
def test_litellm_quirk(quirk: Callable[[SimEnv], None], sim_env: SimEnv) -> None:
    quirk(sim_env)


@pytest.mark.parametrize("scenario", SAFETY_SCENARIOS, ids=lambda s: s.__name__)
def test_safety_scenario(scenario: Callable[[SimEnv], None], sim_env: SimEnv) -> None:
    scenario(sim_env)


@pytest.mark.parametrize("scenario", PLAN_SCENARIOS, ids=lambda s: s.__name__)
def test_plan_scenario(scenario: Callable[[SimEnv], None], sim_env: SimEnv) -> None:
    scenario(sim_env)
