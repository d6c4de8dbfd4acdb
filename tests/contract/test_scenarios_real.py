"""The same end-to-end scenarios against the REAL Backstage and LiteLLM (../shared/real, or your own).

Skipped unless LITELLM_URL, LITELLM_MASTER_KEY, BACKSTAGE_URL, BACKSTAGE_TOKEN and BACKSTAGE_CATALOG_FILE
are set; CATALOG_SYNC_REQUIRE_CONTRACT=1 turns that skip into a failure (CI sets it).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.envs import RealEnv
from tests.plan_scenarios import PLAN_SCENARIOS
from tests.quirks import QUIRKS
from tests.safety_scenarios import SAFETY_SCENARIOS
from tests.scenarios import SCENARIOS

pytestmark = pytest.mark.contract


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario: Callable[[RealEnv], None], real_env: RealEnv) -> None:
    scenario(real_env)


@pytest.mark.parametrize("quirk", QUIRKS, ids=lambda q: q.__name__)
def test_litellm_quirk(quirk: Callable[[RealEnv], None], real_env: RealEnv) -> None:
    quirk(real_env)


@pytest.mark.parametrize("scenario", SAFETY_SCENARIOS, ids=lambda s: s.__name__)
def test_safety_scenario(scenario: Callable[[RealEnv], None], real_env: RealEnv) -> None:
    scenario(real_env)


@pytest.mark.parametrize("scenario", PLAN_SCENARIOS, ids=lambda s: s.__name__)
def test_plan_scenario(scenario: Callable[[RealEnv], None], real_env: RealEnv) -> None:
    scenario(real_env)
