"""`make demo` keeps its state (issue 12 item 2): a second demo, in the same var/, finds the
session linked from the first one READY without a QR; the database and the simulator agree;
a stop (--exit after the walk-through, or SIGTERM) stops slot workers before the recorder,
records their last events and leaves no process behind."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.helpers import ROOT, free_port, wait_until

USER, PHONE = "user_123456789", "919812345678"  # as scripts/demo.py walks it
# What the demo would take from the developer's environment instead of its embedded defaults.
DEMO_SETTINGS = ("REDIS_URL", "DATABASE_URL", "WA_WEB_URL", "S3_BUCKET", "PROFILE_DIR", "BROWSER_WORK_DIR",
                 "BEAT_SCHEDULE_FILE", "API_CONTROL_SOCKET", "API_BIND", "SIM_STATE_FILE", "FLOWER_BASIC_AUTH",
                 "FLOWER_AUTH")


@pytest.fixture
def demo_env():
    env = {k: v for k, v in os.environ.items() if k not in DEMO_SETTINGS}
    # Its own ports, the same for both runs: the saved login belongs to the simulator's origin.
    env.update(API_PORT=str(free_port()), SIM_PORT=str(free_port()), FLOWER_PORT=str(free_port()),
               API_WORKERS="1", API_THREADS="4", SIM_BOOT_SECONDS="0.5")
    return env


class Demo:
    """scripts/demo.py in a process of its own, its output in a file (not a terminal)."""

    def __init__(self, var: Path, env: dict, *args: str):
        self.var, self.out_path = var, var.parent / f"demo-{time.monotonic_ns()}.out"
        self.proc = subprocess.Popen([sys.executable, "scripts/demo.py", "--var", str(var), *args], cwd=ROOT,
                                     env=env, stdout=open(self.out_path, "wb"), stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)  # it stops what it started
            self.proc.wait(120)
            raise AssertionError(f"the demo did not finish in {timeout} s:\n{self.explain()}") from None

    def explain(self) -> str:
        log = (self.var / "demo.log").read_text(errors="replace").splitlines()[-60:]
        return self.output[-4000:] + "\n--- demo.log ---\n" + "\n".join(log)


def processes_using(var: Path) -> list[str]:
    """Command lines of the processes that name the demo's folder (redis, Chrome, the workers' files)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(var) in argv and "pytest" not in argv:
            found.append(argv)
    return found


def session_row(var: Path) -> tuple[str, str | None, str | None]:
    engine = create_engine(f"sqlite:///{var / 'wa.db'}")
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text("SELECT status, status_reason, phone_number FROM whatsapp_sessions "
                                           "WHERE session_id = :id"), {"id": USER}).one())
    finally:
        engine.dispose()


def stop_order(output: str) -> list[str]:
    return re.findall(r"^stopping (.+) …$", output, re.M)


def test_a_second_demo_finds_the_session_ready_without_a_qr(tmp_path, demo_env):
    var = tmp_path / "var"
    first = Demo(var, demo_env, "--exit")
    assert first.wait(300) == 0, first.explain()
    assert "scans it" in first.output  # a new session: linked by its QR
    order = stop_order(first.output)
    assert order.index("slot1") < order.index("recorder") < order.index("simulator") < order.index("redis"), order
    assert "\033" not in first.output  # not a terminal: no escape codes
    assert session_row(var)[:2] == ("DISCONNECTED", "WORKER_STOPPED")  # the slot's last event was recorded
    assert not processes_using(var)
    assert list((var / "redis").rglob("*.aof")), "the private Redis keeps an append-only file in var/"

    second = Demo(var, demo_env)  # stays up after the walk-through; SIGTERM stops it
    try:
        wait_until(lambda: "The stack is running." in second.output or second.proc.poll() is not None, 300,
                   interval=0.5, what="the second walk-through")
        assert second.proc.poll() is None, second.explain()
        assert "No QR needed" in second.output and "scans it" not in second.output, second.explain()
        status, _reason, phone = session_row(var)
        assert (status, phone) == ("READY", PHONE)
        sim = requests.get(f"http://127.0.0.1:{demo_env['SIM_PORT']}/sim/control/state", timeout=10).json()
        linked = [d for d in sim["devices"] if not d["revoked"]]
        assert [d["phone"] for d in linked] == [PHONE]  # the first demo's link, not a new one
        on_page = [c for c in sim["connections"] if not c["closed"] and c["alive"] and c["me"]]
        assert [(c["me"]["pn"], c["token"]) for c in on_page] == [(PHONE, linked[0]["token"])]
    finally:
        second.proc.send_signal(signal.SIGTERM)
    assert second.wait(120) == 0, second.explain()
    assert stop_order(second.output)[0] == "slot1" and stop_order(second.output)[-1] == "redis"
    assert session_row(var)[:2] == ("DISCONNECTED", "WORKER_STOPPED")
    assert not processes_using(var)
