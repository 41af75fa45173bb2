"""A Redis outage is ridden out (issue 9, item 8): Redis killed with SIGKILL in the middle
of a bulk and started again, empty, a moment later. Every process keeps running, the
session is READY again without a QR (its browser was kept), every message reaches the
simulator exactly once, and health said ``degraded`` while Redis was away.

Everything is real: PostgreSQL, a private ``redis-server`` of this module (no other test
shares it), the project's processes as in production (API under gunicorn, slot worker,
control worker, beat, recorder, Flower, simulator) and headless Chromium.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import replace

import pytest
import redis
import requests
from sqlalchemy import select

from tests.helpers import Proc, free_port, keyed_client, port_open, wait_until
from tests.stack import link_session, network_log, running_stack

# How long Redis stays away: the one second by default; OUTAGE_SECONDS=70 tries
# the outage every process must ride out (a minute and more) by hand.
OUTAGE_SECONDS = float(os.environ.get("OUTAGE_SECONDS", "1"))
# Gaps long enough that the slot worker holds the bulk's later sends as ETA tasks (received,
# not acknowledged) and waits idle between two sends: Redis is killed in such a moment,
# the one in which its Celery consumer used to stop at a lost broker connection.
PACING = {"min_gap_seconds": 1.0, "max_gap_seconds": 2.0, "hourly_cap": 1000, "daily_cap": 0}
BULK = 20


class PrivateRedis:
    """A ``redis-server`` of this module on a free loopback port that keeps nothing on disk:
    killed with SIGKILL and started again, it comes back empty."""

    def __init__(self, work_dir):
        self.port = free_port()
        self.dir = work_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")
        self.popen = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: port_open(self.port), 10, what="redis-server")

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(5)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.kill()


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def outage_settings(settings, private_redis):
    return replace(settings, redis_url=private_redis.url)


@pytest.fixture(scope="module")
def outage_client(outage_settings):
    """The API's code in this process, on the private Redis (the gunicorn API serves health)."""
    from api import create_app
    from api.keys import create_key

    app = create_app(outage_settings)
    _row, key = create_key(app.extensions["wa"].db, "outage", admin=True)
    client = keyed_client(app, key)
    return client


@pytest.fixture(scope="module")
def stack(outage_settings, private_redis, tmp_path_factory):
    logs = tmp_path_factory.mktemp("outage-logs")
    client = redis.Redis.from_url(private_redis.url)
    env = {"DISPATCH_GRACE_SECONDS": "3", "SEND_TIMEOUT": "8", "SLOT_CAPACITY": "4"}
    with running_stack(outage_settings, logs, client, control=True, env=env) as running:
        api_port, flower_port = free_port(), free_port()
        extra = [
            Proc("api", ["-m", "gunicorn", "--bind", f"127.0.0.1:{api_port}", "--worker-class", "gthread",
                         "--workers", "1", "--threads", "4", "--timeout", "90", "api.wsgi:app"], running["env"], logs),
            Proc("flower", ["-m", "celery", "-A", "workers.app", "flower", "--address=127.0.0.1",
                            f"--port={flower_port}"], running["env"], logs),
            # Beat as the Procfile runs it, beside the control worker's own (a second beat only
            # sends the same idempotent tasks twice).
            Proc("beat", ["-m", "celery", "-A", "workers.app", "beat", "--schedule", str(logs / "beat-alone"),
                          "--loglevel", "INFO"], running["env"], logs),
        ]
        for p in extra:
            p.start()
        try:
            wait_until(lambda: port_open(api_port) and port_open(flower_port), 30, what="api and flower")
            running["procs"].update({p.name: p for p in extra})
            running["api"] = f"http://127.0.0.1:{api_port}"
            yield running
        finally:
            for p in extra:
                p.stop()
                print(f"---- {p.name} log tail ----\n{p.tail(30)}")


def health(api: str) -> dict:
    try:
        return requests.get(f"{api}/webjs/health", timeout=10).json()
    except (requests.RequestException, ValueError) as exc:
        return {"status": f"no answer: {exc}"}


def transitions(outage_settings, session_id: str) -> list[tuple[str, str | None, int]]:
    from models import SessionTransition, make_engine, make_sessionmaker

    engine = make_engine(outage_settings.database_url)
    try:
        with make_sessionmaker(engine)() as s:
            return [tuple(r) for r in s.execute(
                select(SessionTransition.to_status, SessionTransition.reason, SessionTransition.epoch)
                .where(SessionTransition.session_id == session_id).order_by(SessionTransition.id)).all()]
    finally:
        engine.dispose()


def test_a_redis_restarted_empty_mid_bulk_is_ridden_out(outage_client, outage_settings, stack, private_redis):
    client, sim = outage_client, stack["sim"]
    session = f"user_{secrets.token_hex(4)}"
    link_session(client, sim, session, f"9197{secrets.randbelow(10**8):08d}", pacing=PACING)
    epoch = transitions(outage_settings, session)[-1][2]
    tag = secrets.token_hex(3)
    items = [{"to": f"91987654{i:04d}", "message": f"outage {tag} {i}"} for i in range(BULK)]
    texts = {m["message"] for m in items}
    r = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items})
    assert r.status_code == 202, r.json
    job_id = r.json["job_id"]

    def arrived() -> list[dict]:
        return [m for m in network_log(sim) if m.get("text") in texts]

    from models import Message, make_engine, make_sessionmaker

    engine = make_engine(outage_settings.database_url)
    rows = make_sessionmaker(engine)

    def between_two_sends() -> bool:
        """No message is being sent and the slot worker holds later ones as ETA tasks (a
        message scheduled more than half a second ahead; the rows' own times, the API's
        have whole seconds). Not "the next one is due later": on a loaded machine each
        send starts its gap late, so the next message is always already due and sleeps
        through the rest of its gap in its task."""
        with rows() as s:
            results = s.execute(select(Message.status, Message.next_attempt_at)
                                .where(Message.job_id == job_id)).all()
        due = [at.timestamp() for status, at in results if status == "scheduled" and at]
        return (not any(status == "sending" for status, _ in results)
                and bool(due) and max(due) - time.time() > 0.5)

    try:
        wait_until(lambda: len(arrived()) >= 4 and between_two_sends(), 60, what="the slot idle between two sends")
    finally:
        engine.dispose()
    private_redis.kill()
    killed_at = time.monotonic()
    assert len(arrived()) < BULK, "Redis went away in the middle of the bulk"
    during = health(stack["api"])
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - killed_at)))
    assert not [name for name, p in stack["procs"].items() if not p.running], "every process rode out the outage"
    private_redis.start()  # empty: nothing was kept on disk

    job = wait_until(lambda: (j := client.get(f"/webjs/jobs/{job_id}").json)["status"] == "completed" and j,
                     120, interval=0.5, what="the bulk to finish after the outage")
    counts = {t: sum(1 for m in arrived() if m["text"] == t) for t in texts}
    assert {t: c for t, c in counts.items() if c != 1} == {}, "each message reached the simulator exactly once"
    assert job["successful_sends"] == BULK and job["failed_sends"] == 0

    dead = {name: p.tail(40) for name, p in stack["procs"].items() if not p.running}
    assert not dead, f"processes that died in the outage: {list(dead)}\n{dead}"
    assert client.get(f"/webjs/sessions/{session}/status").json["status"] == "READY"
    after = transitions(outage_settings, session)
    assert after[-1][0] == "READY" and {e for _to, _reason, e in after} == {epoch}, \
        f"the same placement all along (its browser was kept): {after}"
    linked = [to for to, _reason, _epoch in after].index("READY")
    assert "QR_READY" not in [to for to, _reason, _epoch in after[linked:]], f"no QR after linking: {after}"
    assert during["status"] == "degraded" and during["redis"] is False and during["database"] is True, during
    assert health(stack["api"])["status"] == "healthy"
