"""`make demo`: bring the stack up on embedded defaults and walk the seed's Quick Start.

Embedded defaults: a SQLite file (var/wa.db) unless DATABASE_URL is set, the local
profile folder unless S3_BUCKET is set, a private redis-server on a free loopback port
unless REDIS_URL is set, and the simulator as WhatsApp Web unless WA_WEB_URL is set.
All of them keep their state in var/ (--var): the Redis append-only file, the simulator's
linked devices (SIM_STATE_FILE), the saved logins; a second demo finds the session linked.
The stack keeps running after the walk-through (Ctrl-C or SIGTERM stops it); --exit stops it.
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
import threading
import time
from pathlib import Path
from typing import BinaryIO

import redis
import requests
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from browser.qr import qr_terminal, read_qr_data_url  # noqa: E402

USER = "user_123456789"
TO = "919876543210"
PHONE = "919812345678"  # the simulated phone that scans the QR
TEXT = "Hello from Abhyasika!"


STOP_TIMEOUT = 30.0  # seconds a process may take to stop (a slot closes its browsers and saves their logins)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(answers, what: str, timeout: float = 60) -> None:
    """Wait until ``answers()`` is true (an exception counts as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if answers():
                return
        except (OSError, redis.RedisError, requests.RequestException):
            pass
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not answer within {timeout:.0f} s; see var/demo.log")


def http_ok(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


def bold(text: str) -> str:
    # Escape codes only for a terminal: a log file or a pipe gets the plain text.
    return f"\033[1m{text}\033[0m" if sys.stdout.isatty() else text


def step(title: str) -> None:
    print(f"\n{bold(f'== {title}')}", flush=True)


def start_rank(name: str) -> int:
    """Start order of the Procfile's processes; they stop in the reverse order. What others
    report to starts first: the simulator (the network), then the recorder (which writes the
    slots' last events), then the rest, the slot workers last (so they stop first). Redis,
    which all of them use, is rank 0."""
    return {"simulator": 1, "recorder": 2}.get(name, 4 if name.startswith("slot") else 3)


class Stack:
    """The demo's processes, each in a process group of its own (a Ctrl-C in the terminal
    reaches the demo only). Their output goes to one log, each line marked with the name.
    They stop newest first, a rank at a time (the processes of one rank together), each
    rank fully stopped before the next: a slot worker reports its sessions as stopped
    through Redis, and the recorder must still be there to write it down."""

    def __init__(self, log: BinaryIO, env: dict[str, str]):
        self.log, self.env = log, env
        self.procs: list[tuple[int, str, subprocess.Popen]] = []
        self._log_lock = threading.Lock()

    def start(self, rank: int, name: str, argv: list[str]) -> None:
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((rank, name, proc))
        threading.Thread(target=self._copy_output, args=(name, proc.stdout), daemon=True).start()

    def start_procfile(self, procfile: Path) -> None:
        processes = parse_procfile(procfile.read_text()).processes
        for name in sorted(processes, key=start_rank):
            # exec: the signal to stop reaches the program, not a shell in front of it
            command = processes[name].removeprefix("exec ")
            self.start(start_rank(name), name, ["/bin/sh", "-c", f"exec env {command}"])

    def _copy_output(self, name: str, stream: BinaryIO) -> None:
        for line in stream:
            with self._log_lock:
                self.log.write(f"{time.strftime('%H:%M:%S')} {name:<9} | ".encode() + line)
                self.log.flush()

    def exited(self) -> tuple[str, int] | None:
        """The first process that stopped by itself, and its exit code."""
        for _rank, name, proc in self.procs:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self) -> None:
        for rank in sorted({rank for rank, _, _ in self.procs}, reverse=True):
            group = [(name, proc) for r, name, proc in self.procs if r == rank]
            print(f"stopping {', '.join(name for name, _ in group)} …", flush=True)
            started = time.monotonic()
            for _name, proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name, proc in group:
                try:
                    proc.wait(max(0.0, started + STOP_TIMEOUT - time.monotonic()))
                    print(f"  {name} stopped ({time.monotonic() - started:.1f} s)", flush=True)
                except subprocess.TimeoutExpired:
                    print(f"  {name} still running after {STOP_TIMEOUT:.0f} s: killed", flush=True)
                try:  # whatever it left behind in its group (or the process itself, on a timeout)
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        self.procs.clear()


def stop_on_sigterm(*_) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: in the main flow, once


def show(response: requests.Response, limit: int = 400) -> dict:
    body = response.json()
    text = json.dumps(body, indent=2)
    print(f"HTTP {response.status_code}\n{text if len(text) <= limit else text[:limit] + ' …'}")
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop the stack after the walk-through")
    parser.add_argument("--var", type=Path, default=ROOT / "var", help="where the demo keeps its state (var/)")
    args = parser.parse_args()

    var = args.var.resolve()
    for sub in ("redis", "run"):
        (var / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT))
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    # Everything the stack keeps, in var/: a second demo finds it again.
    env.setdefault("DATABASE_URL", f"sqlite:///{var / 'wa.db'}")
    env.setdefault("PROFILE_DIR", str(var / "profiles"))
    env.setdefault("BROWSER_WORK_DIR", str(var / "browsers"))
    env.setdefault("BEAT_SCHEDULE_FILE", str(var / "celerybeat-schedule"))
    env.setdefault("API_CONTROL_SOCKET", str(var / "run" / "gunicorn-demo.ctl"))
    env.setdefault("SIM_STATE_FILE", str(var / "simulator-devices.json"))
    log = open(var / "demo.log", "ab")
    stack = Stack(log, env)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        if not env.get("REDIS_URL"):
            port = free_port()
            redis_server = shutil.which("redis-server")
            if not redis_server:
                raise SystemExit("demo: redis-server is missing (apt-get install redis-server)")
            # The append-only file keeps queues, pacing and followed acks for the next demo.
            stack.start(0, "redis", [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                      "--appendonly", "yes", "--dir", str(var / "redis")])
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis(port=port, socket_timeout=2)
            wait_for(client.ping, "redis-server")  # after loading its append-only file
            client.close()
            print(f"private redis-server on 127.0.0.1:{port} (its data in {var / 'redis'})")
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
        stack.start_procfile(ROOT / "Procfile")
        api = f"http://127.0.0.1:{api_port}"
        sim = f"http://127.0.0.1:{sim_port}"
        wait_for(lambda: http_ok(f"{sim}/sim/health"), "the simulator")
        wait_for(lambda: http_ok(f"{api}/webjs/health"), "the API")
        h = {"X-API-Key": key}
        print(f"API key for this demo: {key}")

        step("1. Create a session for user_123456789")
        earlier = requests.get(f"{api}/webjs/sessions/{USER}/status", headers=h)
        if earlier.status_code == 200:
            # Creating it again would replace it and forget its link.
            print("   It exists from an earlier demo (kept in var/): not created again.")
            show(earlier)
        else:
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
        if qr.get("status") in ("AUTHENTICATED", "READY"):
            print("   No QR needed: the session is still linked from an earlier demo "
                  "(its login and the simulator's linked devices are kept in var/).")
        else:
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
{bold("The stack is running.")}
  API            {api}   (header  X-API-Key: {key})
  Swagger UI     {api}/api
  Flower         http://127.0.0.1:{env.get('FLOWER_PORT', '5555')}   {flower_login}
  Simulator      {sim}/   (what the network received: {sim}/sim/control/messages)
  Logs           {var / 'demo.log'}
Try:  curl -H "X-API-Key: {key}" {api}/webjs/sessions/{USER}/status
Ctrl-C stops everything; the next demo finds what it did in {var}.""", flush=True)
        if args.exit:
            return 0
        while (gone := stack.exited()) is None:
            time.sleep(0.5)
        print(f"demo: {gone[0]} stopped by itself (exit code {gone[1]}); see {var / 'demo.log'}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the stop short: the slots are saving their logins.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping the stack, newest first:", flush=True)
        stack.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
