"""The deployment files: each gunicorn has a control socket of its own."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.helpers import ROOT, free_port, wait_until


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
    apis = [subprocess.Popen(["sh", "-c", procfile_command("api")], cwd=tmp_path, start_new_session=True,
                             env={**env, "API_BIND": f"127.0.0.1:{free_port()}"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    sockets = [tmp_path / "var" / "run" / f"gunicorn-{api.pid}.ctl" for api in apis]  # exec: $$ is gunicorn's pid
    try:
        wait_until(lambda: all(s.is_socket() for s in sockets), 90, interval=0.2, what="both control sockets")
        apis[0].send_signal(signal.SIGTERM)
        apis[0].wait(30)
        assert not sockets[0].exists() and sockets[1].is_socket()
    finally:
        for api in apis:
            if api.poll() is None:
                os.killpg(api.pid, signal.SIGTERM)
                api.wait(30)
    assert "--no-control-socket" in (ROOT / "bench" / "enqueue.py").read_text()
