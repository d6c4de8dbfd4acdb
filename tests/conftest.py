from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.envs import RealEnv, SimEnv, real_missing

# Left behind by third-party tools on their own schedule, not by our tests.
NOT_OURS = ("playwright",)


@pytest.fixture(scope="session", autouse=True)
def temp_dir_left_clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The temp directory of the session, and of every CLI it starts, is a private one that must be empty
    at the end: a test that leaves a lock file (lock_file defaults to the temp directory) or a temporary
    directory behind fails the session. Private, so that other test sessions on the machine don't count."""
    private = tmp_path_factory.mktemp("tmpdir")  # pytest's own base directory is fixed by this first call
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(private)
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]
    left = sorted(p.name for p in private.iterdir() if not p.name.startswith(NOT_OURS))
    assert not left, f"tests left these behind in the temp directory: {left}"


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
