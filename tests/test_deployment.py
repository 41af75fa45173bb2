"""The deployment files: compose takes every credential from the environment with no
working default, Flower is published only behind its login, the image runs as a user of
its own, and each gunicorn has a control socket of its own."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from tests.helpers import ROOT, free_port, wait_until

CREDENTIALS = {
    "POSTGRES_PASSWORD": "pg-Secret-1", "REDIS_PASSWORD": "redis-Secret-2", "AWS_ACCESS_KEY_ID": "minio-Id-3",
    "AWS_SECRET_ACCESS_KEY": "minio-Secret-4", "MINIO_KMS_SECRET_KEY": "wa-key:S2V5LTU=",
    "WEBHOOK_SECRET": "webhook-Secret-6", "FLOWER_BASIC_AUTH": "ops:flower-Secret-7",
}
GRAFANA = {"GRAFANA_ADMIN_PASSWORD": "grafana-Secret-8"}  # the monitoring profile's
needs_compose = pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in CREDENTIALS and k not in GRAFANA and not k.startswith(("S3_", "FLOWER_"))}
    return subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**clean, **env})


@needs_compose
def test_compose_refuses_to_run_without_each_credential():
    for name in CREDENTIALS:
        done = compose_config({k: v for k, v in CREDENTIALS.items() if k != name})
        assert done.returncode != 0 and f"set {name}" in done.stderr, (name, done.stderr)


@needs_compose
def test_compose_takes_credentials_from_the_environment_and_encrypts():
    done = compose_config({**CREDENTIALS, **GRAFANA})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    for name in ("api", "slot1", "slot2", "control", "beat", "recorder", "flower"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgresql+psycopg://wa:pg-Secret-1@postgres:5432/wa", name
        assert env["REDIS_URL"] == "redis://:redis-Secret-2@redis:6379/0", name
        assert env["AWS_ACCESS_KEY_ID"] == "minio-Id-3" and env["AWS_SECRET_ACCESS_KEY"] == "minio-Secret-4", name
        assert env["WEBHOOK_SECRET"] == "webhook-Secret-6", name
        assert env["S3_SSE"] == "AES256", name
        assert env["API_TASKS_REQUIRE_KEY"] == "true", name  # no unkeyed wa.api.* call
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-Secret-1"
    minio = services["minio"]["environment"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == ("minio-Id-3", "minio-Secret-4")
    assert minio["MINIO_KMS_SECRET_KEY"] == "wa-key:S2V5LTU="
    redis = services["redis"]
    assert redis["environment"]["REDIS_PASSWORD"] == "redis-Secret-2"
    assert "--requirepass" in " ".join(redis["command"]) and "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    # No credential anywhere but where it was given: the old defaults are gone.
    assert not re.search(r"minioadmin|:wa@|POSTGRES_PASSWORD: wa\b", done.stdout)
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-Secret-8"  # no `admin`

    flower = services["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == "ops:flower-Secret-7"
    assert flower["command"][:3] == ["python", "-m", "workers.flower"]
    assert [published(p) for p in flower["ports"]] == ["127.0.0.1:5555:5555"]  # the host's loopback only


@needs_compose
def test_grafana_needs_its_password_only_with_the_monitoring_profile_and_refuses_to_start_without(tmp_path):
    """Compose cannot ask for one profile's variable only (it reads every service's first):
    without GRAFANA_ADMIN_PASSWORD the stack's file is valid, and the Grafana container's
    entrypoint stops before Grafana would start with its default admin/admin login."""
    assert compose_config(CREDENTIALS).returncode == 0
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    image_entrypoint = tmp_path / "run.sh"  # stands in for the image's /run.sh
    image_entrypoint.write_text("#!/bin/sh\necho grafana started\n")
    image_entrypoint.chmod(0o755)
    argv = [arg.replace("$$", "$").replace("/run.sh", str(image_entrypoint)) for arg in grafana["entrypoint"]]

    def start(password: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10,
                              env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": password})

    refused = start("")
    assert refused.returncode != 0 and "set GRAFANA_ADMIN_PASSWORD" in refused.stderr
    assert "started" not in refused.stdout
    started = start("grafana-Secret-8")
    assert started.returncode == 0 and started.stdout == "grafana started\n", started.stderr


def published(port) -> str:
    """host_ip:published:target of a port as ``docker-compose config`` writes it (v1: a
    string, v2: a mapping)."""
    if isinstance(port, dict):
        return f"{port.get('host_ip', '')}:{port['published']}:{port['target']}"
    return str(port).removesuffix("/tcp")


def test_the_image_runs_as_a_user_of_its_own():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"useradd --uid 10001\b.* app\b", dockerfile)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user == ["app"] and dockerfile.index("USER app") < dockerfile.index("CMD")
    assert "--control-socket" in dockerfile.split("CMD", 1)[1]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"var/", ".venv/", ".git/", ".env"} <= set(ignored)  # no database, logins or credentials in it


def procfile_command(name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith(f"{name}:"))


def test_each_gunicorn_has_a_control_socket_of_its_own(settings, tmp_path):
    """gunicorn's default control socket is one path per user, which a gunicorn starting
    takes over and a gunicorn stopping deletes. Two APIs started as the Procfile starts
    them get one each, named by their pid, and stopping one leaves the other's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "API_WORKERS": "1",
           "API_THREADS": "1"}
    env.pop("API_CONTROL_SOCKET", None)
    logs = [tmp_path / f"api-{i}.log" for i in range(2)]
    apis = [subprocess.Popen(["sh", "-c", procfile_command("api")], cwd=tmp_path, start_new_session=True,
                             env={**env, "API_BIND": f"127.0.0.1:{free_port()}"},
                             stdout=log.open("wb"), stderr=subprocess.STDOUT) for log in logs]
    sockets = [tmp_path / "var" / "run" / f"gunicorn-{api.pid}.ctl" for api in apis]  # exec: $$ is gunicorn's pid

    def both_listening() -> bool:
        for api, log in zip(apis, logs):
            assert api.poll() is None, f"gunicorn exited: {log.read_text(errors='replace')[-2000:]}"
        return all(s.is_socket() for s in sockets)

    try:
        wait_until(both_listening, 90, interval=0.2, what="both control sockets")
        apis[0].send_signal(signal.SIGTERM)
        apis[0].wait(30)
        assert not sockets[0].exists() and sockets[1].is_socket()
    finally:
        for api in apis:
            if api.poll() is None:
                os.killpg(api.pid, signal.SIGTERM)
                api.wait(30)
    assert "--no-control-socket" in (ROOT / "bench" / "enqueue.py").read_text()


def test_the_procfile_starts_flower_through_its_login_check():
    assert procfile_command("flower").startswith("python -m workers.flower --address=${FLOWER_ADDRESS:-127.0.0.1} ")
