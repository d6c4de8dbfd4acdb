from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.envs import RealEnv, SimEnv, real_missing


@pytest.fixture
def sim_env(tmp_path: Path) -> Iterator[SimEnv]:
    env = SimEnv(tmp_path)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def real_env(tmp_path: Path) -> RealEnv:
    missing = real_missing()
    if missing:
        message = "real servers not configured: set " + ", ".join(missing) + " (see README, Tests)"
        if os.environ.get("CATALOG_SYNC_REQUIRE_CONTRACT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    env = RealEnv(tmp_path)
    env.reset()
    return env
