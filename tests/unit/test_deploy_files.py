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
    import kubernetes_validate  # type: ignore[import-untyped]

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
    from collections.abc import Callable
    from typing import Any

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
    broken["on"] = broken.pop(True)  # YAML 1.1 reads `on:` as true; dumped as `true:` the schema fails anyway
    round_trip = tmp_path / "round-trip.yml"
    round_trip.write_text(yaml.safe_dump(broken))
    assert check(round_trip).returncode == 0, check(round_trip).stdout  # only the mutation below may fail
    # Each mutation alone must fail (the schema accepts `runs-on: {bogus: true}`, so that one is not used).
    mutations: dict[str, Callable[[dict[str, Any]], None]] = {
        "runs-on misspelt": lambda job: job.__setitem__("runs_on", job.pop("runs-on")),
        "runs-on not a string": lambda job: job.__setitem__("runs-on", 5),
        "permission level unknown": lambda job: job["permissions"].__setitem__("pull-requests", "yes"),
        "step both uses and run": lambda job: job["steps"][0].__setitem__("run", "true"),
    }
    for name, mutate in mutations.items():
        flow = yaml.safe_load(round_trip.read_text())
        mutate(flow["jobs"]["plan"])
        bad = tmp_path / "broken.yml"
        bad.write_text(yaml.safe_dump(flow))
        assert check(bad).returncode != 0, name  # the check bites


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


# --- more: each ties a deployment file to the code or to another file it must agree with ------------

SECRET_NAMES = ("BACKSTAGE_TOKEN", "LITELLM_MASTER_KEY")


def _pod() -> dict:  # type: ignore[type-arg]
    return docs()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_the_kubernetes_schema_check_bites_on_unknown_fields_and_wrong_types_anywhere() -> None:
    # strict: a field Kubernetes does not know is an error at every level, not silently dropped.
    job = docs()["CronJob"]
    job["spec"]["concurrency"] = "Forbid"  # the field is concurrencyPolicy
    assert _k8s_errors(job) is not None
    job = docs()["CronJob"]
    job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = "yes"
    assert _k8s_errors(job) is not None
    pvc = docs()["PersistentVolumeClaim"]
    pvc["spec"]["resources"]["requests"] = "1Gi"  # must be a map
    assert _k8s_errors(pvc) is not None
    config_map = docs()["ConfigMap"]
    config_map["data"]["config.yaml"] = {"nested": "maps are not allowed in data"}
    assert _k8s_errors(config_map) is not None


def test_cronjob_values_the_schema_leaves_open_are_valid_ones() -> None:
    # The 1.30 OpenAPI schema names enum values only in descriptions (`concurrencyPolicy: Sometimes` passes
    # it), so these are checked here.
    job = docs()["CronJob"]["spec"]
    assert job["concurrencyPolicy"] in ("Allow", "Forbid", "Replace") and job["concurrencyPolicy"] == "Forbid"
    pod = _pod()
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert pod["securityContext"]["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    assert job["startingDeadlineSeconds"] > 0 and job["failedJobsHistoryLimit"] >= 1


def test_cronjob_pod_runs_as_the_image_user_without_api_access_and_every_mount_has_a_volume() -> None:
    pod = _pod()
    (container,) = pod["containers"]
    user = _dockerfile_user()
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["runAsGroup"] == sc["fsGroup"] == user
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} == set(volumes)  # no dangling mount, no unused volume
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    config_mount = next(path for path, m in mounts.items() if "configMap" in volumes[m["name"]])
    assert mounts[config_mount].get("readOnly") is True
    config_path = container["args"][container["args"].index("-c") + 1]
    assert Path(config_path).parent == Path(config_mount)
    key = Path(config_path).name
    assert key in docs()["ConfigMap"]["data"]
    # The image is pinned to a version, never :latest.
    assert ":" in container["image"] and not container["image"].endswith(":latest")
    assert container["resources"]["requests"]["cpu"]


# --- GitHub Actions, further ----------------------------------------------------------------------


def _workflow() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((CRON / "github-actions.yml").read_text())  # type: ignore[no-any-return]


def _cli_accepts(args: list[str]) -> tuple[bool, str]:
    from click.testing import CliRunner

    from catalog_sync.cli import main

    result = CliRunner().invoke(main, [*args, "--help"])
    return result.exit_code == 0, result.output


def test_the_workflow_cli_check_bites_and_covers_the_commented_apply_job() -> None:
    import shlex

    # The check above asks click with --help appended: an option the CLI does not have still fails.
    assert _cli_accepts(["plan", "-c", "config.yaml", "--detailed-exitcode"])[0]
    assert not _cli_accepts(["plan", "-c", "config.yaml", "--detailed-exit-code"])[0]
    assert not _cli_accepts(["validate", "--config-file", "config.yaml"])[0]
    assert not _cli_accepts(["--log-format", "yaml", "plan", "-c", "config.yaml"])[0]
    # The commented-out apply-on-merge job must work when uncommented: its commands are real too.
    commented = [
        line.strip().lstrip("#").strip().removeprefix("- run:").strip()
        for line in (CRON / "github-actions.yml").read_text().splitlines()
        if line.strip().startswith("#")
    ]
    commands = [c for c in commented if c.startswith("catalog-sync ")]
    assert any(" run " in c for c in commands)
    for command in commands:
        ok, output = _cli_accepts(shlex.split(command)[1:])
        assert ok, (command, output)


def test_every_secret_in_the_workflow_comes_from_repository_secrets() -> None:
    import re

    text = (CRON / "github-actions.yml").read_text()
    flow = _workflow()
    seen = 0
    for job_name, job in flow["jobs"].items():
        for step in job["steps"]:
            for key, value in step.get("env", {}).items():
                if not re.search(r"TOKEN|KEY|SECRET|PASSWORD", key):
                    continue
                seen += 1
                if key == "GH_TOKEN":
                    assert value == "${{ github.token }}"
                elif job_name == "validate":
                    # validate is offline: the ${ENV} references need a value, not the secret.
                    assert value == "validate-only-placeholder", (key, value)
                else:
                    assert value == "${{ secrets." + key + " }}", (job_name, key, value)
    assert seen >= 5
    assert not re.search(r"\bsk-[A-Za-z0-9]{6,}", text)  # no LiteLLM key pasted in
    # The workflow is least-privilege by default; only the plan job may write (its comment).
    assert flow["permissions"] == {"contents": "read"}
    writers = [n for n, j in flow["jobs"].items() if "write" in j.get("permissions", {}).values()]
    assert writers == ["plan"]


def test_the_workflow_posts_the_markdown_report_that_plan_writes(tmp_path: Path) -> None:
    import shlex

    from catalog_sync.config import ReportFormat
    from catalog_sync.report import write_report
    from tests.unit.test_report import sample_report

    steps = _workflow()["jobs"]["plan"]["steps"]
    plan_cmd = next(
        shlex.split(line.strip())
        for s in steps
        if s.get("id") == "plan"
        for line in s["run"].splitlines()
        if line.strip().startswith("catalog-sync ")
    )
    report_dir = plan_cmd[plan_cmd.index("--report-dir") + 1]
    comment = next(s for s in steps if "gh pr comment" in s.get("run", ""))
    words = shlex.split(comment["run"].replace("\\\n", " ").replace("||", " "))
    body_files = {words[i + 1] for i, w in enumerate(words) if w == "--body-file"}
    assert len(body_files) == 1
    (body_file,) = body_files
    # What write_report really writes for the markdown format, in the directory plan was given.
    write_report(sample_report(), tmp_path / report_dir, [ReportFormat.markdown])
    assert (tmp_path / body_file).is_file(), sorted(p.name for p in (tmp_path / report_dir).iterdir())
    flow = _workflow()
    triggers = flow["on"] if "on" in flow else flow[True]  # YAML 1.1 reads a bare `on` key as true
    assert "config.yaml" in triggers["pull_request"]["paths"]


def test_the_plan_step_passes_on_changes_pending_and_fails_on_real_errors(tmp_path: Path) -> None:
    """Runs the step's own shell script the way GitHub does, with a stub catalog-sync exiting 0..4."""
    import os
    import shutil
    import subprocess

    bash = shutil.which("bash")
    if bash is None:
        import pytest

        pytest.skip("no bash")
    step = next(s for s in _workflow()["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    stub = stub_dir / "catalog-sync"
    stub.write_text('#!/bin/sh\nexit "$STUB_EXIT"\n')
    stub.chmod(0o755)
    outcomes = {}
    for code in range(5):
        output = tmp_path / f"out{code}"
        env = {
            **os.environ,
            "PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}",
            "STUB_EXIT": str(code),
            "GITHUB_OUTPUT": str(output),
        }
        # GitHub's default shell for `run` on Linux: bash --noprofile --norc -eo pipefail {0}
        done = subprocess.run(
            [bash, "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=env, check=False
        )
        outcomes[code] = done.returncode
        assert output.read_text().strip() == f"exit_code={code}"
    assert outcomes == {0: 0, 1: 1, 2: 2, 3: 3, 4: 0}


# --- systemd, further ---------------------------------------------------------------------------------


def _under(path: str, directory: str) -> bool:
    return Path(path) == Path(directory) or Path(directory) in Path(path).parents


def test_systemd_paths_agree_config_readable_reports_writable_secrets_not() -> None:
    import re

    text = (CRON / "catalog-sync.service").read_text()
    service = _unit("catalog-sync.service")["Service"]
    writable = service["ReadWritePaths"].split()
    state = "/var/lib/" + service["StateDirectory"]
    # The config snippet in the comments says where the reports go: inside the writable state directory.
    (report_dir,) = re.findall(r"^#\s+dir:\s+(\S+)", text, flags=re.MULTILINE)
    assert _under(report_dir, state) and any(_under(report_dir, w) for w in writable)
    assert service["WorkingDirectory"] == state  # a relative report.dir lands there too
    # ProtectHome hides /home, /root and /run/user: the config must not live there. It is read-only
    # (ProtectSystem=strict) and so are the secrets, which the job cannot rewrite.
    config = service["ExecStart"].split()[-1]
    assert service["ProtectHome"] == "yes" and service["PrivateTmp"] == "yes"
    for hidden in ("/home", "/root", "/run/user", "/tmp", "/var/tmp"):
        assert not _under(config, hidden) and not _under(service["EnvironmentFile"], hidden)
    assert not any(_under(config, w) or _under(service["EnvironmentFile"], w) for w in writable)
    assert Path(service["EnvironmentFile"]).parent == Path(config).parent
    # A run is bounded, and no secret is written into the units themselves.
    assert re.fullmatch(r"\d+(min|h|s)?", service["TimeoutStartSec"])
    for name in ("catalog-sync.service", "catalog-sync.timer"):
        for line in (CRON / name).read_text().splitlines():
            if not line.lstrip().startswith("#"):
                assert not any(secret in line for secret in SECRET_NAMES), (name, line)


def test_systemd_timer_spreads_its_start_and_the_schedule_is_every_30_minutes() -> None:
    import datetime
    import itertools
    import os
    import re
    import shutil
    import subprocess

    timer = _unit("catalog-sync.timer")["Timer"]
    assert re.fullmatch(r"\d+(min|s)", timer["RandomizedDelaySec"])
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        import pytest

        pytest.skip("no systemd-analyze: the timer's OnCalendar is checked as text above")
    done = subprocess.run(
        [analyze, "calendar", "--iterations=4", timer["OnCalendar"]],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TZ": "UTC"},
    )
    assert done.returncode == 0, done.stderr
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+)", done.stdout)
    times = [datetime.datetime.fromisoformat(s) for s in stamps]
    assert len(times) == 4
    assert {b - a for a, b in itertools.pairwise(times)} == {datetime.timedelta(minutes=30)}
    assert {t.minute for t in times} <= {0, 30}


# --- Dockerfile, further ------------------------------------------------------------------------------


def test_dockerfile_base_command_workdir_and_report_volume_match_the_cronjob() -> None:
    import json

    steps = _dockerfile()
    bases = [rest.split()[0] for instruction, rest in steps if instruction == "FROM"]
    assert bases and all(b == "python:3.11-slim" for b in bases)
    assert [json.loads(r) for i, r in steps if i == "CMD"] == [["--help"]]
    # The final stage: a WORKDIR, an install with no pip cache, files only from the build stage.
    last_from = max(n for n, (instruction, _) in enumerate(steps) if instruction == "FROM")
    final = steps[last_from + 1 :]
    assert any(i == "WORKDIR" for i, _ in final)
    assert all(r.startswith("--from=") for i, r in final if i in ("COPY", "ADD"))
    assert any(i == "RUN" and "pip install --no-cache-dir" in r for i, r in final)
    # The report volume is where the CronJob's config writes, and where it mounts the PVC.
    volumes = [v for i, r in steps if i == "VOLUME" for v in json.loads(r)]
    report_dir = yaml.safe_load(docs()["ConfigMap"]["data"]["config.yaml"])["report"]["dir"]
    assert report_dir in volumes
    (container,) = _pod()["containers"]
    assert {"name": "reports", "mountPath": report_dir} in container["volumeMounts"]
    # The USER comes after the install (root installs, the job runs unprivileged).
    kinds = [i for i, _ in final]
    assert kinds.index("USER") > max(n for n, k in enumerate(kinds) if k == "RUN")


def test_dockerignore_keeps_repository_noise_and_local_state_out_of_the_build_context() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    noise = (".git", ".tmp", ".hypothesis", "**/__pycache__", "test-artifacts", "benchmark-results.json")
    for required in noise:
        assert required in ignored, required
    # ...but nothing the image's COPY needs.
    copied = {
        name.rstrip("/")
        for instruction, rest in _dockerfile()
        if instruction == "COPY" and not rest.startswith("--from")
        for name in rest.split()[:-1]
    }
    assert copied and not copied & ignored


# --- installing as the README says ----------------------------------------------------------------


def test_the_workflow_installs_catalog_sync_the_way_the_readme_says_it_is_distributed() -> None:
    import re

    readme = (REPO / "README.md").read_text()
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "not published on PyPI" in install
    (source,) = re.findall(r'pip install "(git\+https://[^"]+)"', install)
    flow = _workflow()
    assert flow["env"]["CATALOG_SYNC"] == source
    text = (CRON / "github-actions.yml").read_text()
    installs = [line.strip().lstrip("#").strip() for line in text.splitlines() if "pip install" in line]
    # Every install, the commented apply job's too, from that source: a bare `pip install catalog-sync`
    # would take whatever PyPI holds under that name.
    assert len(installs) == 3 and set(installs) == {'- run: pip install "$CATALOG_SYNC"'}, installs


def test_shell_completion_works_as_the_readme_shows() -> None:
    import os
    import subprocess
    import sys

    readme = (REPO / "README.md").read_text()
    assert "_CATALOG_SYNC_COMPLETE=bash_source catalog-sync" in readme
    env = {**os.environ, "PYTHONPATH": str(REPO), "_CATALOG_SYNC_COMPLETE": "bash_complete"}
    env.update(COMP_WORDS="catalog-sync plan --out - --log", COMP_CWORD="4")
    proc = subprocess.run(
        [sys.executable, "-m", "catalog_sync"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "plain,--log-format" in proc.stdout.splitlines(), proc.stdout


# Measured (README, "Sizing report.dir"): a 3,000-person steady run's three reports, and a first run's.
REPORT_MB_PER_RUN = 1.2
FIRST_RUN_MB = 6.7


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    number, unit = quantity[:-2], quantity[-2:]
    return float(number) * units[unit] / 1e6  # in MB, as the report sizes are measured


def test_the_report_volume_holds_report_keep_runs_with_margin_and_the_readme_agrees() -> None:
    k = docs()
    config = parse_config(
        yaml.safe_load(k["ConfigMap"]["data"]["config.yaml"]),
        env={"BACKSTAGE_TOKEN": "abcdefgh", "LITELLM_MASTER_KEY": "sk-abcdefgh"},
    )
    keep = config.report.keep
    assert keep is not None, "keep every report and the volume fills up"
    storage = k["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"]
    needed = keep * REPORT_MB_PER_RUN + REPORT_MB_PER_RUN + FIRST_RUN_MB  # the runs, latest.*, a first run
    assert 1.5 * needed <= _mebibytes(storage) <= 4 * needed, (keep, storage)  # margin, but not wasteful
    readme = (REPO / "README.md").read_text()
    sizing = readme[readme.index("**Sizing `report.dir`.**") :].split("\n\n")[0]
    assert f"`report.keep: {keep}`" in sizing and f"**{storage}**" in sizing
    assert f"{keep} \N{MULTIPLICATION SIGN} {REPORT_MB_PER_RUN} MB" in sizing
    assert f"({FIRST_RUN_MB} MB)" in sizing
