"""`catalog-sync demo`: the job against the built-in simulated Backstage and LiteLLM, over real HTTP.

It starts both simulators on loopback with a sample organisation, runs a plan, a run and a second plan
(which must find nothing to do), and says where the reports are.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import yaml

from catalog_sync.config import load_config
from catalog_sync.job import EXIT_FAILURE, EXIT_OK, run_job
from catalog_sync.logs import register_secrets
from catalog_sync.sim import BackstageSim, LiteLLMSim, SimServer, demo_org

DEMO_DOMAIN = "example.com"


def demo_config(backstage_url: str, litellm_url: str, report_dir: Path) -> dict[str, object]:
    return {
        "backstage": {
            "base_url": backstage_url,
            "token": "${CATALOG_SYNC_DEMO_BACKSTAGE_TOKEN}",
            "page_size": 10,
        },
        "litellm": {"base_url": litellm_url, "master_key": "${CATALOG_SYNC_DEMO_LITELLM_KEY}"},
        "user_id": {"source": "name", "domain": DEMO_DOMAIN},
        "defaults": {
            "user_role": "internal_user",
            "max_budget": 10,
            "budget_duration": "30d",
            "models": ["gpt-4o-mini"],
            "metadata": {"cost_center": "shared"},
        },
        "roles": [
            {"group": "llm-admins", "user_role": "proxy_admin", "max_budget": 500, "models": []},
            {
                "group": "ml-research",
                "max_budget": 200,
                "models": ["gpt-4o", "gpt-4o-mini", "claude-sonnet"],
                "teams": ["ml-platform"],
                "tpm_limit": 200000,
                "metadata": {"cost_center": "research"},
            },
            {
                "group": "engineering",
                "max_budget": 50,
                "models": ["gpt-4o", "gpt-4o-mini"],
                "teams": ["engineering"],
            },
            {
                "group": "finance",
                "max_budget": 20,
                "teams": ["finance-analytics"],
                "metadata": {"cost_center": "finance"},
            },
        ],
        # Adopting ada.lovelace narrows her "all models" to a role's list: one expected cut of a small org.
        "guards": {"max_downgrades": 1},
        "report": {"dir": str(report_dir), "formats": ["json", "markdown", "html"]},
    }


def _seed_litellm(sim: LiteLLMSim) -> None:
    for team in ("ml-platform", "engineering", "finance-analytics"):
        sim.add_team(team)
    # Someone made this account by hand: the job must leave it alone and report the clash.
    sim.add_user(
        {
            "user_id": f"grace.hopper@{DEMO_DOMAIN}",
            "user_email": "grace@personal.example.org",
            "max_budget": 1000.0,
            "metadata": {"note": "created by hand"},
        }
    )
    # Made by the Backstage plugin this job replaces: adopted, its extra metadata kept.
    sim.add_user(
        {
            "user_id": f"ada.lovelace@{DEMO_DOMAIN}",
            "user_email": f"ada.lovelace@{DEMO_DOMAIN}",
            "max_budget": 10.0,
            "budget_duration": "30d",
            "user_role": "internal_user",
            "metadata": {"provisioned_by": "backstage", "backstage_entity": "user:default/ada.lovelace"},
        }
    )
    # Managed, but gone from the catalog: listed for deprovisioning (report mode changes nothing).
    sim.add_user(
        {
            "user_id": f"former.employee@{DEMO_DOMAIN}",
            "user_email": f"former.employee@{DEMO_DOMAIN}",
            "metadata": {
                "catalog_sync": {
                    "managed": True,
                    "version": 1,
                    "entity_ref": "user:default/former.employee",
                    "role": "defaults",
                    "keys": [],
                }
            },
        }
    )


def _readable(paths: list[Path]) -> str:
    """The HTML report (the one to open), else whatever was written."""
    html = [p for p in paths if p.suffix == ".html" and not p.name.startswith("latest")]
    return str((html or paths)[0]) if html or paths else "(no report written)"


def run_demo(report_dir: Path, echo: Callable[[str], None]) -> int:
    token, key = secrets.token_urlsafe(16), "sk-demo-" + secrets.token_urlsafe(16)
    register_secrets([token, key])
    backstage_sim = BackstageSim(token=token)
    backstage_sim.set_entities(demo_org())
    litellm_sim = LiteLLMSim(master_key=key)
    _seed_litellm(litellm_sim)
    backstage_server, litellm_server = SimServer(backstage_sim), SimServer(litellm_sim)
    backstage_url, litellm_url = backstage_server.start(), litellm_server.start()
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        config_path = report_dir / "demo-config.yaml"
        config_path.write_text(
            yaml.safe_dump(demo_config(backstage_url, litellm_url, report_dir), sort_keys=False)
        )
        env = {**os.environ, "CATALOG_SYNC_DEMO_BACKSTAGE_TOKEN": token, "CATALOG_SYNC_DEMO_LITELLM_KEY": key}
        config = load_config(config_path, env=env)
        echo(f"simulated Backstage at {backstage_url}, simulated LiteLLM at {litellm_url}")
        echo(f"config: {config_path}")
        exit_code = EXIT_OK
        steps = (
            ("1. dry run", False, "what a run would change"),
            ("2. apply", True, "the changes made: open this one"),
            ("3. again", False, "nothing left to do"),
        )
        for step, apply, shows in steps:
            result = run_job(config, str(config_path), apply=apply)
            echo(f"{step}: {result.summary}")
            echo(f"   report ({shows}): {_readable(result.paths)}")
            if result.exit_code != EXIT_OK:
                exit_code = EXIT_FAILURE
        echo("The report of step 2 shows the changes the run made; open the .html in a browser.")
        echo(f"Each is also written as .json and .md beside it; latest.* in {report_dir} is the newest.")
        return exit_code
    finally:
        backstage_server.stop()
        litellm_server.stop()
