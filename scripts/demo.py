"""`make demo`: bring the stack up on embedded defaults and walk the seed's Quick Start.

Embedded defaults: a SQLite file (var/wa.db) unless DATABASE_URL is set, the local
profile folder unless S3_BUCKET is set, a private redis-server on a free loopback port
unless REDIS_URL is set, and the simulator as WhatsApp Web unless WA_WEB_URL is set.
The stack keeps running after the walk-through (Ctrl-C stops it); --exit stops it.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from browser.qr import qr_terminal, read_qr_data_url  # noqa: E402

USER = "user_123456789"
TO = "919876543210"
PHONE = "919812345678"  # the simulated phone that scans the QR
TEXT = "Hello from Abhyasika!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.3)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not come up on port {port}; see var/demo.log")


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def show(response: requests.Response, limit: int = 400) -> dict:
    body = response.json()
    text = json.dumps(body, indent=2)
    print(f"HTTP {response.status_code}\n{text if len(text) <= limit else text[:limit] + ' …'}")
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop the stack after the walk-through")
    args = parser.parse_args()

    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT))
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    children: list[subprocess.Popen] = []
    log = open(var / "demo.log", "ab")

    def stop(*_):
        # Newest first, each fully stopped before the next: the stack must still reach
        # Redis while it shuts down (slot workers report their sessions as stopped).
        for child in reversed(children):
            if child.poll() is not None:
                continue
            try:
                # To the process only: honcho forwards it to each of its processes, and a
                # signal to the whole group would kill Chrome before the slot closes it.
                child.send_signal(signal.SIGTERM)
                child.wait(30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        if not env.get("REDIS_URL"):
            port = free_port()
            redis_server = shutil.which("redis-server")
            if not redis_server:
                raise SystemExit("demo: redis-server is missing (apt-get install redis-server)")
            children.append(subprocess.Popen(
                [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--dir", str(var)], stdout=log, stderr=log, start_new_session=True))
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            wait_port(port, "redis-server")
            print(f"private redis-server on 127.0.0.1:{port}")
        api_port = int(env.setdefault("API_PORT", "3000"))
        env.setdefault("API_BIND", f"127.0.0.1:{api_port}")
        sim_port = int(env.setdefault("SIM_PORT", "3100"))
        env.setdefault("WA_WEB_URL", f"http://127.0.0.1:{sim_port}/")
        # The phone scans quickly in the demo; the rotation schedule stays the real one.
        env.setdefault("SIM_SYNC_DELAY", "1.0")
        # Flower on loopback, behind a password made for this demo (printed at the end).
        flower_login = "(your FLOWER_* login)"
        if not env.get("FLOWER_BASIC_AUTH") and not env.get("FLOWER_AUTH"):
            password = secrets.token_urlsafe(12)
            env["FLOWER_BASIC_AUTH"] = f"demo:{password}"
            flower_login = f"(user demo, password {password})"

        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                       stdout=log, stderr=log)
        key = subprocess.run([sys.executable, "-m", "api.keys", "create", "demo", "--admin"], cwd=ROOT, env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
        children.append(subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", "Procfile"], cwd=ROOT,
                                         env=env, stdout=log, stderr=log, start_new_session=True))
        wait_port(sim_port, "the simulator")
        wait_port(api_port, "the API")

        api = f"http://127.0.0.1:{api_port}"
        sim = f"http://127.0.0.1:{sim_port}"
        h = {"X-API-Key": key}
        print(f"API key for this demo: {key}")

        step("1. Create a session for user_123456789")
        show(requests.post(f"{api}/webjs/sessions", json={"user_id": USER}, headers=h))

        step("2. Initialize the WhatsApp client")
        deadline = time.monotonic() + 60
        while True:  # the slot worker registers a moment after start
            r = requests.post(f"{api}/webjs/sessions/{USER}/initialize", headers=h)
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        show(r)

        step("3. Get the QR code (waits up to 30 s)")
        qr = show(requests.get(f"{api}/webjs/sessions/{USER}/qr", headers=h, timeout=40), limit=300)
        if not qr.get("qr_code"):
            raise SystemExit("demo: no QR code came; see var/demo.log")
        payload = read_qr_data_url(qr["qr_code"])  # what the phone's camera sees
        print(qr_terminal(payload))
        link = requests.post(f"{api}/webjs/sessions/{USER}/link-page", headers=h, timeout=10).json()
        print(f"   The same QR on a page for the end user: {link.get('url')} (until {link.get('expires_at')})")

        step(f"   The simulated phone {PHONE} scans it")
        r = requests.post(f"{sim}/sim/phone/scan", json={"payload": payload, "phone": PHONE})
        print(f"simulator: HTTP {r.status_code} {r.text.strip()[:200]}")

        step("4. Check session status until READY")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = requests.get(f"{api}/webjs/sessions/{USER}/status", headers=h).json()
            print(f"   status: {status['status']}")
            if status["status"] == "READY":
                break
            time.sleep(1)
        show(requests.get(f"{api}/webjs/sessions/{USER}/status", headers=h))

        step(f"5. Send \"{TEXT}\" to {TO}")
        sent = show(requests.post(f"{api}/webjs/sessions/{USER}/send-message?wait=30",
                                  json={"to": TO, "message": TEXT}, headers=h, timeout=40))

        step("   The job's final state")
        show(requests.get(f"{api}/webjs/jobs/{sent['job_id']}", headers=h), limit=2000)

        print(f"""
\033[1mThe stack is running.\033[0m
  API            {api}   (header  X-API-Key: {key})
  Swagger UI     {api}/api
  Flower         http://127.0.0.1:{env.get('FLOWER_PORT', '5555')}   {flower_login}
  Simulator      {sim}/   (what the network received: {sim}/sim/control/messages)
  Logs           var/demo.log
Try:  curl -H "X-API-Key: {key}" {api}/webjs/sessions/{USER}/status
Ctrl-C stops everything.""", flush=True)
        if args.exit:
            return 0
        children[-1].wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
