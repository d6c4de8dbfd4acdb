"""Environments the end-to-end scenarios run in: the built-in simulators, or the real servers.

A scenario only talks to an environment through this interface, so the same scenario runs in the fast
suite (tests/e2e) and in the contract suite against real Backstage and LiteLLM (tests/contract).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        for line in self.stdout.splitlines():
            if line.startswith("report: ") and line.endswith(".json"):
                return json.loads(Path(line[len("report: ") :]).read_text())  # type: ignore[no-any-return]
        raise AssertionError(f"no JSON report in output:\n{self.stdout}\n{self.stderr}")


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, "a secret was printed"


def group_doc(name: str, parent: str | None = None, children: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "team", "children": children or []}
    if parent:
        spec["parent"] = parent
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name}, "spec": spec}


def user_doc(
    name: str, groups: list[str], email: str | None = None, display: str | None = None
) -> dict[str, Any]:
    profile: dict[str, Any] = {"email": email or f"{name.lower()}@example.com"}
    profile["displayName"] = display or name.replace(".", " ").title()
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": name},
        "spec": {"profile": profile, "memberOf": groups},
    }


class Env:
    """What a scenario may do. Subclasses say how, for simulators or real servers."""

    backstage_url: str
    backstage_token: str
    litellm_url: str
    master_key: str
    work: Path

    # --- catalog -------------------------------------------------------------------------------------
    def set_catalog(self, entities: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    # --- LiteLLM, through its admin API (the same calls on both) ----------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.litellm_url}{path}",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {self.master_key}"},
        )

    def add_team(self, team_id: str) -> None:
        self._post("/team/new", {"team_id": team_id, "team_alias": team_id}).raise_for_status()

    def create_user(self, body: dict[str, Any]) -> None:
        self._post("/user/new", {"auto_create_key": False, **body}).raise_for_status()

    def update_user(self, user_id: str, fields: dict[str, Any]) -> None:
        self._post("/user/update", {"user_id": user_id, **fields}).raise_for_status()

    def user_info(self, user_id: str) -> dict[str, Any] | None:
        r = requests.get(
            f"{self.litellm_url}/user/info",
            # %20, not '+': the proxy reads '+' in user_id as a plus
            # (docs/litellm-api.md#user-info-id-encoding)
            params=urlencode({"user_id": user_id}, quote_via=quote),
            timeout=30,
            headers={"Authorization": f"Bearer {self.master_key}"},
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        body = r.json()
        return body if body.get("user_info", {}).get("user_id") else None

    def all_users(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            r = requests.get(
                f"{self.litellm_url}/user/list",
                timeout=30,
                params={"page": page, "page_size": 100, "sort_by": "user_id", "sort_order": "asc"},
                headers={"Authorization": f"Bearer {self.master_key}"},
            )
            r.raise_for_status()
            rows = r.json()["users"]
            out.update({row["user_id"]: row for row in rows})
            if len(rows) < 100:
                return out
            page += 1

    # --- the job ------------------------------------------------------------------------------------
    def config(self, **overrides: Any) -> Path:
        data: dict[str, Any] = {
            "backstage": {"base_url": self.backstage_url, "token": "${TEST_BACKSTAGE_TOKEN}", "page_size": 2},
            "litellm": {"base_url": self.litellm_url, "master_key": "${TEST_LITELLM_KEY}"},
            "user_id": {"source": "name", "domain": "example.com"},
            "report": {"dir": str(self.work / "reports")},
            # Under the test's own directory: the default (in the temp directory) would outlive the test.
            "lock_file": str(self.work / "run.lock"),
        }
        data.update(overrides)
        path = self.work / "config.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def cli_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TEST_BACKSTAGE_TOKEN": self.backstage_token,
            "TEST_LITELLM_KEY": self.master_key,
            "PYTHONPATH": str(REPO),
        }

    def start_cli(self, *args: str) -> subprocess.Popen[str]:
        """The CLI in the background (for tests that kill it); output goes to files in the work dir."""
        n = len(list(self.work.glob("bg-*.out")))
        out = open(self.work / f"bg-{n}.out", "w")  # noqa: SIM115 - closed by the child's exit
        return subprocess.Popen(
            [sys.executable, "-m", "catalog_sync", "--log-format", "json", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.cli_env(),
            cwd=self.work,
        )

    def keys(self, user_id: str) -> list[tuple[str, bool]]:
        info = self.user_info(user_id)
        assert info is not None, user_id
        return [(k["token"], k.get("blocked") is True) for k in info["keys"]]

    def cli(self, *args: str) -> CliResult:
        env = {
            **os.environ,
            "TEST_BACKSTAGE_TOKEN": self.backstage_token,
            "TEST_LITELLM_KEY": self.master_key,
            "PYTHONPATH": str(REPO),  # the checkout under test, whatever copy pip installed
        }
        proc = subprocess.run(
            [sys.executable, "-m", "catalog_sync", "--log-format", "json", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.work,
            timeout=600,
            check=False,
        )
        assert_no_secrets(proc.stdout + proc.stderr, self.backstage_token, self.master_key)
        for path in (self.work / "reports").glob("*"):
            assert_no_secrets(path.read_text(), self.backstage_token, self.master_key)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


class SimEnv(Env):
    def __init__(self, work: Path) -> None:
        from catalog_sync.sim import BackstageSim, LiteLLMSim, SimServer

        self.work = work
        self.backstage_token = "sim-backstage-token-0123456789"
        self.master_key = "sk-sim-master-0123456789"
        self.backstage = BackstageSim(token=self.backstage_token)
        self.litellm = LiteLLMSim(master_key=self.master_key)
        self._servers = [SimServer(self.backstage), SimServer(self.litellm)]
        self.backstage_url = self._servers[0].start()
        self.litellm_url = self._servers[1].start()

    def set_catalog(self, entities: list[dict[str, Any]]) -> None:
        self.backstage.set_entities(entities)

    def slow_writes(self, seconds: float) -> None:
        """Latency on every LiteLLM request, so that a test can kill a run part-way."""
        self.litellm.latency = seconds

    def close(self) -> None:
        for server in self._servers:
            server.stop()


REAL_VARS = (
    "LITELLM_URL",
    "LITELLM_MASTER_KEY",
    "BACKSTAGE_URL",
    "BACKSTAGE_TOKEN",
    "BACKSTAGE_CATALOG_FILE",
)


def real_missing() -> list[str]:
    return [v for v in REAL_VARS if not os.environ.get(v)]


class RealEnv(Env):
    """Real servers found through the environment (as ../shared/real/start-*.sh env prints them).

    Between scenarios LiteLLM is emptied with CATALOG_SYNC_LITELLM_RESET (default: the shared
    start-litellm.sh reset) and the catalog file is rewritten, then CATALOG_SYNC_BACKSTAGE_WAIT
    (default: start-backstage.sh wait-for) blocks until Backstage serves it.
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self.litellm_url = os.environ["LITELLM_URL"].rstrip("/")
        self.master_key = os.environ["LITELLM_MASTER_KEY"]
        self.backstage_url = os.environ["BACKSTAGE_URL"].rstrip("/")
        self.backstage_token = os.environ["BACKSTAGE_TOKEN"]
        self.catalog_file = Path(os.environ["BACKSTAGE_CATALOG_FILE"])
        scripts = Path(os.environ.get("CATALOG_SYNC_REAL_SCRIPTS", REPO.parent / "shared" / "real"))
        self.reset_cmd = os.environ.get(
            "CATALOG_SYNC_LITELLM_RESET", f"bash {scripts}/start-litellm.sh reset"
        )
        self.wait_cmd = os.environ.get(
            "CATALOG_SYNC_BACKSTAGE_WAIT", f"bash {scripts}/start-backstage.sh wait-for"
        )

    def reset(self) -> None:
        subprocess.run(self.reset_cmd, shell=True, check=True, capture_output=True, timeout=300)

    def set_catalog(self, entities: list[dict[str, Any]]) -> None:
        # Written atomically: the catalog re-reads the file on its own and could catch half of it.
        fd, tmp = tempfile.mkstemp(dir=self.catalog_file.parent, prefix=".org-", suffix=".yaml")
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump_all(entities, fh, sort_keys=False)
        os.replace(tmp, self.catalog_file)
        proc = subprocess.run(self.wait_cmd, shell=True, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"catalog did not converge: {proc.stderr[-2000:]}"
