"""The shipped cron and Kubernetes files: well-formed, and saying what operators rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from catalog_sync.config import parse_config

CRON = Path(__file__).resolve().parents[2] / "cron"


def docs() -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["kind"]: d for d in yaml.safe_load_all((CRON / "kubernetes-cronjob.yaml").read_text())}


def test_cronjob_forbids_overlap_reads_secrets_from_a_secret_and_keeps_reports() -> None:
    k = docs()
    job = k["CronJob"]["spec"]
    assert job["concurrencyPolicy"] == "Forbid"
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "catalog-sync-secrets"}}]
    assert not any("value" in e for e in container.get("env", []))  # no literal secrets
    config = parse_config(
        yaml.safe_load(k["ConfigMap"]["data"]["config.yaml"]),
        env={"BACKSTAGE_TOKEN": "abcdefgh", "LITELLM_MASTER_KEY": "sk-abcdefgh"},
    )
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[str(config.report.dir)] == "reports"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes["reports"]["persistentVolumeClaim"]["claimName"]
        == k["PersistentVolumeClaim"]["metadata"]["name"]
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["args"][-2:] == ["-c", "/config/config.yaml"]


def test_crontab_line_uses_flock_and_the_run_command() -> None:
    lines = [ln for ln in (CRON / "crontab").read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert len(fields[:5]) == 5 and fields[5] == "catalog-sync"
    assert "flock -n" in fields[6] and "catalog-sync --log-format json run -c" in fields[6]
