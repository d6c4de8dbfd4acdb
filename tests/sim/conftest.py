"""Fixtures for the simulator tests: each test gets fresh simulators behind real HTTP servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from catalog_sync.sim import BackstageSim, LiteLLMSim, serve

BS_TOKEN = "sync-job-static-token-0123456789"
MASTER_KEY = "sk-test-master"


class Api:
    """A requests session bound to a base URL with default auth headers."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers.update(headers)

    def get(self, path: str, params: Any = None, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=10, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, json=json, timeout=10, **kw)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def backstage() -> BackstageSim:
    return BackstageSim(token=BS_TOKEN)


@pytest.fixture
def bs(backstage: BackstageSim) -> Iterator[Api]:
    with serve(backstage) as url:
        api = Api(url + "/api/catalog", {"Authorization": f"Bearer {BS_TOKEN}"})
        yield api
        api.close()


@pytest.fixture
def litellm() -> LiteLLMSim:
    return LiteLLMSim(master_key=MASTER_KEY, seed=7)


@pytest.fixture
def ll(litellm: LiteLLMSim) -> Iterator[Api]:
    with serve(litellm) as url:
        api = Api(url, {"Authorization": f"Bearer {MASTER_KEY}"})
        yield api
        api.close()
