"""Flower starts only behind authentication, except on loopback (workers/flower.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import requests

from tests.helpers import ROOT, Proc, free_port, port_open, wait_until
from workers.flower import refusal


def test_flower_needs_authentication_unless_it_listens_on_loopback():
    assert refusal(["--address=127.0.0.1"], {}) is None
    assert refusal([], {"FLOWER_ADDRESS": "::1"}) is None
    assert refusal(["--unix-socket=/run/flower.sock"], {}) is None
    for address in ("--address=0.0.0.0", "--address=", "--address=flower.internal", "--port=5555"):
        assert "FLOWER_BASIC_AUTH" in refusal([address], {}), address
    assert refusal(["--address=0.0.0.0"], {"FLOWER_BASIC_AUTH": "ops:s3cret,other:pw"}) is None
    assert refusal(["--address=0.0.0.0", "--basic_auth=ops:s3cret"], {}) is None
    for weak in ("ops", "ops:", ":pw", "ops:pw,"):
        assert "user:password" in refusal(["--address=0.0.0.0"], {"FLOWER_BASIC_AUTH": weak}), weak
    oauth = {"FLOWER_AUTH": ".*@example.com", "FLOWER_AUTH_PROVIDER": "flower.views.auth.GithubLoginHandler",
             "FLOWER_OAUTH2_KEY": "k", "FLOWER_OAUTH2_SECRET": "s"}
    assert refusal(["--address=0.0.0.0"], oauth) is None
    assert "FLOWER_OAUTH2_SECRET" in refusal(["--address=0.0.0.0"], {**oauth, "FLOWER_OAUTH2_SECRET": ""})
    # Not even on loopback: a half-made OAuth set-up is a mistake to report.
    assert "FLOWER_AUTH_PROVIDER" in refusal(["--address=127.0.0.1"], {"FLOWER_AUTH": ".*@example.com"})


def test_flower_refuses_to_start_on_every_interface_without_authentication(settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    done = subprocess.run([sys.executable, "-m", "workers.flower", "--address=0.0.0.0", f"--port={free_port()}"],
                          cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT), "REDIS_URL": settings.redis_url},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "flower not started" in done.stderr and "FLOWER_BASIC_AUTH" in done.stderr


def test_flower_asks_for_its_basic_auth_credentials(settings, tmp_path):
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}, "PYTHONPATH": str(ROOT),
           "REDIS_URL": settings.redis_url, "DATABASE_URL": settings.database_url,
           "FLOWER_BASIC_AUTH": "ops:correct-horse"}
    flower = Proc("flower", ["-m", "workers.flower", "--address=127.0.0.1", f"--port={port}"], env, tmp_path).start()
    try:
        wait_until(lambda: port_open(port), 90, interval=0.3, what="flower")
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/tasks", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/tasks", auth=("ops", "wrong"), timeout=10).status_code == 401
        assert requests.get(f"{base}/tasks", auth=("ops", "correct-horse"), timeout=10).status_code == 200
    finally:
        flower.stop()
        print(f"---- flower log tail ----\n{flower.tail(20)}")
