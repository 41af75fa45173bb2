"""The project's processes for end-to-end tests: simulator, recorder, slot worker(s),
and optionally the control worker with beat, each started as in production."""
from __future__ import annotations

import os
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path

import requests

from browser.qr import read_qr_data_url
from messaging import slots
from tests.helpers import ROOT, Proc, free_port, port_open, wait_until


def empty_world(database_url: str) -> None:
    """No sessions or jobs from earlier test modules: a control worker would otherwise
    recover their sessions (their slots are gone) onto this module's slots."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM jobs")
        conn.execute("DELETE FROM whatsapp_sessions")


@contextmanager
def running_stack(settings, logs: Path, redis_client, *, control: bool = False, env: dict | None = None):
    empty_world(settings.database_url)
    sim_port = free_port()
    slot = f"e2e-{secrets.token_hex(3)}"
    environ = {
        **os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url, "WA_WEB_URL": f"http://127.0.0.1:{sim_port}/",
        "BROWSER_WORK_DIR": settings.browser_work_dir, "PROFILE_DIR": settings.profile_dir, "SLOT_NAME": slot,
        "SLOT_CAPACITY": "4", "SIM_SYNC_DELAY": "0.3", "SIM_DELIVER_DELAY": "0.3", "SIM_READ_DELAY": "0.3",
        # The 2026 page (the simulator's default profile), with a short boot per page load.
        "SIM_PROFILE": "2026", "SIM_BOOT_SECONDS": "0.3", "SIM_ONBOARDING_DELAY": "0.3",
        "LOG_LEVEL": "INFO", "MEDIA_ALLOW_NETWORKS": "127.0.0.0/8",  # the tests' media servers are on loopback
        **(env or {}),
    }
    procs = [
        Proc("simulator", ["-m", "simulator", "--host", "127.0.0.1", "--port", str(sim_port)], environ, logs),
        Proc("recorder", ["-m", "workers.recorder"], environ, logs),
        Proc("slot", ["-m", "workers.slot"], environ, logs),
    ]
    if control:
        procs.append(Proc("control", ["-m", "celery", "-A", "workers.app", "worker", "--queues", "control",
                                      "--pool", "solo", "--beat", "--schedule", str(logs / "beat-schedule"),
                                      "--hostname", f"control-{slot}@%h", "--without-gossip", "--without-mingle",
                                      "--loglevel", "INFO"], environ, logs))
    for p in procs:
        p.start()
    try:
        wait_until(lambda: port_open(sim_port), 20, what="simulator")
        wait_until(lambda: any(s.name == slot for s in slots.live_slots(redis_client)), 60, what="slot registration")
        yield {"sim": f"http://127.0.0.1:{sim_port}", "slot": slot, "procs": {p.name: p for p in procs},
               "env": environ}
    finally:
        for p in reversed(procs):
            p.stop()
        # A browser left behind by a worker that did not shut down cleanly must not
        # slow down the rest of the suite.
        subprocess.run(["pkill", "-f", f"wa-owner={slot}"], check=False)
        for p in procs:
            print(f"---- {p.name} log tail ----\n{p.tail(30)}")


def link_session(client, sim: str, user_id: str, phone: str, **create) -> dict:
    """Create, initialize, scan the QR the API returns, wait for READY."""
    assert client.post("/webjs/sessions", json={"user_id": user_id, **create}).status_code == 201
    assert client.post(f"/webjs/sessions/{user_id}/initialize").status_code == 200
    payload = read_qr_data_url(client.get(f"/webjs/sessions/{user_id}/qr").json["qr_code"])
    assert requests.post(f"{sim}/sim/phone/scan", json={"payload": payload, "phone": phone}, timeout=5).ok
    return wait_until(lambda: (s := client.get(f"/webjs/sessions/{user_id}/status").json)["status"] == "READY" and s,
                      30, what="READY")


def network_log(sim: str) -> list[dict]:
    body = requests.get(f"{sim}/sim/control/messages", timeout=5).json()
    return body.get("messages", body) if isinstance(body, dict) else body
