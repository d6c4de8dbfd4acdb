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


# --- schema checks: the files are what Kubernetes, GitHub Actions and systemd accept ---------------

REPO = CRON.parent
KUBERNETES_VERSION = "1.30"


def _k8s_errors(doc: dict) -> str | None:  # type: ignore[type-arg]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return str(exc)
    return None


def test_every_kubernetes_document_is_valid_against_the_official_schema() -> None:
    documents = list(yaml.safe_load_all((CRON / "kubernetes-cronjob.yaml").read_text()))
    assert {d["kind"] for d in documents} == {"ConfigMap", "PersistentVolumeClaim", "CronJob"}
    for doc in documents:
        assert _k8s_errors(doc) is None, (doc["kind"], _k8s_errors(doc))


def test_the_kubernetes_schema_check_bites() -> None:
    job = docs()["CronJob"]
    job["spec"]["jobTemplate"]["spec"]["backoffLimit"] = "once"  # wrong type
    assert _k8s_errors(job) is not None
    job = docs()["CronJob"]
    job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["enviroment"] = []  # typo
    assert _k8s_errors(job) is not None


def test_cronjob_is_locked_down_and_bounded() -> None:
    job = docs()["CronJob"]["spec"]
    spec = job["jobTemplate"]["spec"]
    assert spec["backoffLimit"] <= 2 and spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsUser"] == 10001 == _dockerfile_user()
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    # A read-only root needs a writable /tmp for the run lock (lock_file defaults to the temp directory).
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]


# --- GitHub Actions -------------------------------------------------------------------------------


def test_github_workflow_is_valid_against_the_workflow_schema(tmp_path: Path) -> None:
    import subprocess
    import sys

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "check_jsonschema",
                "--builtin-schema",
                "vendor.github-workflows",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = check(CRON / "github-actions.yml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = yaml.safe_load((CRON / "github-actions.yml").read_text())
    broken["jobs"]["plan"]["runs-on"] = {"bogus": True}
    bad = tmp_path / "broken.yml"
    bad.write_text(yaml.safe_dump(broken))
    assert check(bad).returncode != 0  # the check bites


def test_github_workflow_runs_real_commands_and_takes_secrets_from_secrets() -> None:
    import shlex

    from click.testing import CliRunner

    from catalog_sync.cli import main

    text = (CRON / "github-actions.yml").read_text()
    flow = yaml.safe_load(text)
    runs = [
        line.strip()
        for job in flow["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("catalog-sync ")
    ]
    assert any(" validate " in r for r in runs) and any(" plan " in r for r in runs)
    for command in runs:
        args = shlex.split(command)[1:]
        # Every option used exists: click's own parser, with --help so nothing runs.
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0, (command, result.output)
    plan_env = next(s["env"] for s in flow["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    assert plan_env == {
        "BACKSTAGE_TOKEN": "${{ secrets.BACKSTAGE_TOKEN }}",
        "LITELLM_MASTER_KEY": "${{ secrets.LITELLM_MASTER_KEY }}",
    }
    assert flow["jobs"]["plan"]["permissions"]["pull-requests"] == "write"
    assert "reports/latest.md" in text and "--detailed-exitcode" in text


# --- systemd ----------------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, dict[str, str]]:
    import configparser

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((CRON / name).read_text())
    return {s: dict(parser[s]) for s in parser.sections()}


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    binary = shutil.which("catalog-sync")
    if analyze is None or binary is None:
        import pytest

        pytest.skip("systemd-analyze or the catalog-sync script is missing; the parse checks below still run")
    # verify insists that ExecStart exists: point it at this machine's catalog-sync.
    service = (CRON / "catalog-sync.service").read_text().replace("/usr/local/bin/catalog-sync", binary)
    (tmp_path / "catalog-sync.service").write_text(service)
    shutil.copy(CRON / "catalog-sync.timer", tmp_path / "catalog-sync.timer")
    units = [str(tmp_path / "catalog-sync.service"), str(tmp_path / "catalog-sync.timer")]
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    (tmp_path / "catalog-sync.timer").write_text(
        (CRON / "catalog-sync.timer").read_text().replace("OnCalendar=*:0/30", "OnCalendar=every half hour")
    )
    bad = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
    assert bad.returncode != 0  # the check bites


def test_systemd_service_runs_the_job_unprivileged_with_secrets_from_a_file() -> None:
    service = _unit("catalog-sync.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] not in ("", "root") and service.get("NoNewPrivileges") == "yes"
    assert service["EnvironmentFile"] == "/etc/catalog-sync/secrets.env"
    assert not any(k == "Environment" and ("TOKEN" in v or "KEY" in v) for k, v in service.items())
    exec_start = service["ExecStart"].split()
    assert exec_start[0].endswith("/catalog-sync") and exec_start[-3:] == ["run", "-c", exec_start[-1]]
    assert exec_start[-1].startswith("/etc/catalog-sync/")
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/catalog-sync"
    assert service["StateDirectory"] == "catalog-sync"


def test_systemd_timer_fires_every_half_hour_and_catches_up() -> None:
    timer = _unit("catalog-sync.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/30"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "catalog-sync.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


# --- Dockerfile -------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _dockerfile_user() -> int:
    users = [rest for instruction, rest in _dockerfile() if instruction == "USER"]
    return int(users[-1].split(":")[0])


def test_dockerfile_installs_the_package_and_runs_it_as_a_non_root_user() -> None:
    steps = _dockerfile()
    assert _dockerfile_user() == 10001
    import json

    entry = [json.loads(rest) for instruction, rest in steps if instruction == "ENTRYPOINT"]
    assert entry == [["catalog-sync"]]
    assert any(i == "RUN" and "pip wheel" in r and r.rstrip().endswith(" .") for i, r in steps)
    assert any(i == "RUN" and "pip install" in r for i, r in steps)
    copied = " ".join(r for i, r in steps if i == "COPY")
    assert "pyproject.toml" in copied and "catalog_sync" in copied
    for instruction, rest in steps:
        if instruction in ("ENV", "ARG"):
            assert not any(word in rest.upper() for word in ("TOKEN", "KEY", "SECRET", "PASSWORD")), rest
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".git" in ignored and "tests" in ignored


def test_the_files_the_dockerfile_copies_are_enough_to_build_the_package(tmp_path: Path) -> None:
    """The build stage, without Docker (no engine here): COPY the same files, `pip wheel` them."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for instruction, rest in _dockerfile():
        if instruction == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for name in sources:
                path = REPO / name
                if path.is_dir():
                    shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, src / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", "out", "."],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (src / "out").glob("catalog_sync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "catalog_sync/cli.py" in names and "catalog_sync/report_html.py" in names
    assert any(n.startswith("catalog_sync/sim/") and n.endswith(".yaml") for n in names)  # the demo's org
    assert any(n.endswith("entry_points.txt") for n in names)
