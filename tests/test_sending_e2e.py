"""Sending end to end with every part real (PostgreSQL, Redis, Celery workers with beat,
the recorder, headless Chromium, the simulator): pacing, order, caps, webhooks, the
Celery task for Python services, and a slot worker killed with SIGKILL mid-bulk."""
from __future__ import annotations

import json
import secrets
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.helpers import WebhookReceiver, wait_until
from tests.stack import link_session, network_log, running_stack
from workers.webhooks import verify

SECRET = "test-webhook-secret"
FAST = {"min_gap_seconds": 0.5, "max_gap_seconds": 0.8, "hourly_cap": 1000, "daily_cap": 0}


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, redis_client):
    env = {"DISPATCH_GRACE_SECONDS": "3", "SEND_TIMEOUT": "8", "WEBHOOK_SECRET": SECRET, "SLOT_CAPACITY": "10",
           "WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "RESTRICTION_RECHECK_SECONDS": "3",
           "SIM_LID_SHARE": "1"}  # every chat is addressed by a hidden contact id (LID), as many are in 2026
    with running_stack(settings, tmp_path_factory.mktemp("logs"), redis_client, control=True, env=env) as running:
        yield running


def new_session(client, stack, **create) -> str:
    user = f"user_{secrets.token_hex(4)}"
    link_session(client, stack["sim"], user, f"9197{secrets.randbelow(10**8):08d}", **create)
    return user


def job_when(client, job_id: str, done, timeout: float, what: str) -> dict:
    return wait_until(lambda: (j := client.get(f"/webjs/jobs/{job_id}").json) and done(j) and j, timeout, what=what)


def arrivals(stack, texts: set[str]) -> list[dict]:
    return sorted((m for m in network_log(stack["sim"]) if m.get("text") in texts), key=lambda m: m["timestamp"])


def test_a_bulk_is_paced_and_keeps_each_recipients_order(client, stack):
    session = new_session(client, stack, pacing=FAST)
    tag = secrets.token_hex(3)
    items = [{"to": f"91987650{i:04d}", "message": f"paced {tag} {i}"} for i in range(4)]
    items += [{"to": "919876500777", "message": f"ordered {tag} {i}"} for i in range(3)]
    r = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items})
    assert r.status_code == 202, r.json
    job = job_when(client, r.json["job_id"], lambda j: j["status"] == "completed", 90, "the bulk to finish")
    assert job["successful_sends"] == 7
    got = arrivals(stack, {m["message"] for m in items})
    assert len(got) == 7, "each message arrived once"
    gaps = [b["timestamp"] - a["timestamp"] for a, b in zip(got, got[1:])]
    assert min(gaps) >= FAST["min_gap_seconds"], gaps
    ordered = [m["text"] for m in got if m["text"].startswith("ordered")]
    assert ordered == [f"ordered {tag} {i}" for i in range(3)]


def test_an_hourly_cap_makes_the_rest_wait_and_then_go(client, stack, db, redis_client):
    from models import Message

    session = new_session(client, stack, pacing={**FAST, "hourly_cap": 2})
    tag = secrets.token_hex(3)
    items = [{"to": f"91987651{i:04d}", "message": f"capped {tag} {i}"} for i in range(3)]
    job_id = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items}).json["job_id"]
    job = job_when(client, job_id, lambda j: [x["message_status"] for x in j["results"]].count("scheduled") == 1
                   and j["successful_sends"] == 2, 60, "two sent, one scheduled")
    waiting = next(x for x in job["results"] if x["message_status"] == "scheduled")
    next_at = datetime.fromisoformat(waiting["next_attempt_at"])
    assert timedelta(minutes=59) < next_at - datetime.now(timezone.utc) <= timedelta(hours=1)
    assert "hourly cap" in waiting["wait_reason"] and job["status"] == "processing"
    assert len(arrivals(stack, {m["message"] for m in items})) == 2
    # An hour later (moved by hand: the reservations and the due time go back an hour).
    base = f"wa:pace:{session}"
    for key in (f"{base}:hour", f"{base}:day"):
        for member, score in redis_client.zrange(key, 0, -1, withscores=True):
            redis_client.zadd(key, {member: score - 3600})
    redis_client.hset(f"{base}:res", waiting["message_id"], f"{time.time():.3f}")
    with db.begin() as s:
        s.get(Message, waiting["message_id"]).dispatch_due_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    job_when(client, job_id, lambda j: j["status"] == "completed", 60, "the third sent")
    assert len(arrivals(stack, {m["message"] for m in items})) == 3


class Receiver(WebhookReceiver):
    """A webhook receiver that answers 500 to the first delivery of each event."""

    def __init__(self):
        super().__init__(respond=lambda headers: 500 if self.first(headers["X-Webhook-Id"]) else 200)

    @property
    def url(self) -> str:
        return super().url + "?token=abc"

    def first(self, event_id: str) -> bool:
        return not any(headers["X-Webhook-Id"] == event_id for _path, headers, _body in self.requests)

    @property
    def calls(self) -> list[dict]:
        return [{"id": headers["X-Webhook-Id"], "body": body, "headers": headers, "answered": status}
                for (_path, headers, body), status in zip(self.requests, self.answered)]

    def delivered(self, event_type: str) -> list[dict]:
        return [c for c in self.calls if c["answered"] == 200 and json.loads(c["body"])["type"] == event_type]


def test_webhooks_are_signed_and_retried_after_a_500(client, stack):
    receiver = Receiver()
    try:
        session = new_session(client, stack, pacing=FAST)
        r = client.post(f"/webjs/sessions/{session}/send-message",
                     json={"to": "919876500888", "message": "hooked", "callback_url": receiver.url})
        job_id = r.json["job_id"]
        for event_type in ("message.sent", "job.finished", "message.read"):
            wait_until(lambda kind=event_type: receiver.delivered(kind), 60, what=f"{event_type} delivered")
    finally:
        receiver.close()
    for call in receiver.calls:
        h = call["headers"]
        assert verify(SECRET, h["X-Webhook-Timestamp"], call["body"], h["X-Webhook-Signature"]), h
    sent = receiver.delivered("message.sent")[0]
    tries = [c for c in receiver.calls if c["id"] == sent["id"]]
    assert [c["answered"] for c in tries] == [500, 200] and tries[0]["body"] == tries[1]["body"]
    data = json.loads(sent["body"])["data"]
    assert data["job_id"] == job_id and data["status"] == "sent" and data["whatsapp_message_id"]


def test_python_services_send_through_the_celery_task(app, client, stack):
    session = new_session(client, stack, pacing=FAST)
    text = f"from celery {secrets.token_hex(3)}"
    celery = app.extensions["wa"].celery
    for _ in range(2):  # the same idempotency key twice: one message
        celery.send_task("wa.api.send_message", kwargs={"session_id": session, "to": "+91 98765 00999",
                                                     "message": text, "idempotency_key": f"k-{text}"})
    # A marker after them to the same number: the control worker takes tasks in order and the
    # number's messages keep their order, so once the marker is there both copies were handled.
    marker = f"marker {secrets.token_hex(3)}"
    celery.send_task("wa.api.send_message", kwargs={"session_id": session, "to": "+91 98765 00999",
                                                 "message": marker})
    wait_until(lambda: arrivals(stack, {marker}), 60, what="the marker")
    assert [m["text"] for m in arrivals(stack, {text, marker})] == [text, marker]


def test_an_open_circuit_makes_messages_wait_not_fail(client, stack, redis_client):
    session = new_session(client, stack, pacing=FAST)
    opened_until = time.time() + 4
    redis_client.set(f"wa:cb:{session}:open_until", f"{opened_until:.3f}", ex=60)  # 5 failures just happened
    r = client.post(f"/webjs/sessions/{session}/send-message", json={"to": "919876500555", "message": "patience"})
    job = job_when(client, r.json["job_id"], lambda j: j["results"][0]["message_status"] == "scheduled", 20,
                   "the message to wait")
    assert job["results"][0]["wait_reason"] == "circuit open: too many failures in a row"
    assert job["results"][0]["attempts"] <= 1
    job = job_when(client, r.json["job_id"], lambda j: j["status"] == "completed", 30, "sent once the circuit closed")
    sent = arrivals(stack, {"patience"})
    assert len(sent) == 1 and sent[0]["timestamp"] >= opened_until


def test_bulk_accepted_while_redis_is_down_is_sent_when_it_is_back(app, client, stack, monkeypatch, settings):
    """The API's own Redis connection fails; the rows are durable and the sweeper sends them."""
    from dataclasses import replace

    import redis as redis_lib

    from tests.helpers import free_port
    from workers.app import make_celery

    session = new_session(client, stack, pacing=FAST)
    svc = app.extensions["wa"]
    dead = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(svc, "redis", redis_lib.Redis.from_url(dead, socket_connect_timeout=1))
    monkeypatch.setattr(svc, "celery", make_celery(replace(settings, redis_url=dead)))
    monkeypatch.setattr(svc, "settings", replace(svc.settings, dispatch_grace_seconds=3))  # the sweeper's wait
    tag = secrets.token_hex(3)
    items = [{"to": f"91987653{i:04d}", "message": f"late {tag} {i}"} for i in range(3)]
    r = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items})
    assert r.status_code == 202, r.json
    monkeypatch.undo()
    job_when(client, r.json["job_id"], lambda j: j["status"] == "completed", 60, "the sweeper to send them")
    assert len(arrivals(stack, {m["message"] for m in items})) == 3


def test_a_bulk_of_50_through_one_session_loads_the_page_at_most_once(client, stack):
    """Chats are opened inside the running app: 50 sends to 50 numbers cost the page no
    full load (one at most, for a page that had to be recovered), as the simulator counts."""
    session = new_session(client, stack, pacing={"min_gap_seconds": 0, "max_gap_seconds": 0.05,
                                                 "hourly_cap": 1000, "daily_cap": 0})
    phone = client.get(f"/webjs/sessions/{session}/status").json["phone_number"]

    def device() -> dict:
        counters = requests.get(f"{stack['sim']}/sim/control/counters", timeout=5).json()
        return next(d for d in counters["devices"] if d["phone"] == phone)

    before = device()
    tag = secrets.token_hex(3)
    items = [{"to": f"91987655{i:04d}", "message": f"bulk of 50 {tag} {i}"} for i in range(50)]
    r = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items})
    assert r.status_code == 202, r.json
    job = job_when(client, r.json["job_id"], lambda j: j["status"] == "completed", 240, "the bulk of 50")
    after_bulk = device()
    assert job["successful_sends"] == 50
    assert sorted(m["text"] for m in arrivals(stack, {m["message"] for m in items})) == \
        sorted(m["message"] for m in items)
    assert after_bulk["page_loads"] - before["page_loads"] <= 1, after_bulk["loads"][-3:]
    assert after_bulk["deep_link_opens"] == before["deep_link_opens"], "no /send?phone= loads"
    assert after_bulk["chat_opens"] - before["chat_opens"] >= 50, "each chat opened in the app"


def test_a_new_chat_restriction_makes_messages_wait_then_each_goes_once(client, stack):
    """WhatsApp restricts new chats (the simulator's reach-out timelock): the messages wait
    as scheduled with the restriction as their reason, the session's webhook hears
    session.restricted, no number is failed; once lifted, each message goes once."""
    receiver = Receiver()
    sim = stack["sim"]
    try:
        session = new_session(client, stack, pacing=FAST, callback_url=receiver.url)
        requests.post(f"{sim}/sim/control/config", json={"restriction": "reachout_timelock"}, timeout=5).raise_for_status()
        tag = secrets.token_hex(3)
        items = [{"to": f"91987654{i:04d}", "message": f"restricted {tag} {i}"} for i in range(3)]
        texts = {m["message"] for m in items}
        job_id = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items}).json["job_id"]
        job = job_when(client, job_id, lambda j: all(x["message_status"] == "scheduled" and
                                                     (x["wait_reason"] or "").startswith("restricted: ")
                                                     for x in j["results"]), 60, "every message to wait")
        wait_until(lambda: receiver.delivered("session.restricted"), 60, what="session.restricted delivered")
        hook = json.loads(receiver.delivered("session.restricted")[0]["body"])["data"]
        # Named by the page's flag, or by the locked compose bar a send met before the page heard of it.
        assert hook["session_id"] == session and hook["restriction"] in ("reachout_timelock", "compose_locked")
        # A recheck while still restricted (every message scheduled again, for a later time):
        # nothing goes, nothing fails.
        first = {x["message_id"]: x["next_attempt_at"] for x in job["results"]}
        job = job_when(client, job_id, lambda j: all(
            x["message_status"] == "scheduled" and x["next_attempt_at"] not in (None, first[x["message_id"]])
            for x in j["results"]), 60, "a recheck while still restricted")
        assert job["failed_sends"] == 0 and not arrivals(stack, texts)
        assert client.get(f"/webjs/sessions/{session}/status").json["status"] == "READY"
    finally:
        requests.post(f"{sim}/sim/control/config", json={"restriction": "none"}, timeout=5)
    try:
        job = job_when(client, job_id, lambda j: j["status"] == "completed", 90, "the messages to go once lifted")
        wait_until(lambda: receiver.delivered("session.unrestricted"), 30, what="session.unrestricted delivered")
    finally:
        client.patch(f"/webjs/sessions/{session}", json={"callback_url": None})
        receiver.close()
    assert job["successful_sends"] == 3 and job["failed_sends"] == 0
    got = arrivals(stack, texts)
    assert sorted(m["text"] for m in got) == sorted(texts), "each message once"


def transitions(db, session_id: str) -> list[str]:
    from sqlalchemy import select

    from models import SessionTransition

    with db() as s:
        return list(s.execute(select(SessionTransition.reason).where(SessionTransition.session_id == session_id)
                              .order_by(SessionTransition.id)).scalars())


def test_a_slot_killed_mid_bulk_sends_each_message_exactly_once(client, stack, redis_client, db):
    """Runs last in this module: it kills the slot worker (SIGKILL, its whole group)."""
    session = new_session(client, stack, pacing={**FAST, "min_gap_seconds": 0.3, "max_gap_seconds": 0.5})
    tag = secrets.token_hex(3)
    items = [{"to": f"91987652{i:04d}", "message": f"survivor {tag} {i}"} for i in range(20)]
    texts = {m["message"] for m in items}
    job_id = client.post(f"/webjs/sessions/{session}/send-bulk-messages", json={"messages": items}).json["job_id"]
    wait_until(lambda: len(arrivals(stack, texts)) >= 5, 60, what="five sent")
    slot = stack["procs"]["slot"]
    slot.stop(signal.SIGKILL)
    before = len(arrivals(stack, texts))
    assert before < 20
    slot.start()
    # The restarted slot retires its earlier life's placements; recovery places them again.
    wait_until(lambda: "WORKER_RESTARTED" in transitions(db, session), 60, what="WORKER_RESTARTED")
    phone = client.get(f"/webjs/sessions/{session}/status").json["phone_number"]

    def ready_or_scan():
        s = client.get(f"/webjs/sessions/{session}/status").json
        if s["status"] == "QR_READY":  # the login may not have reached the disk before the kill
            from browser.qr import read_qr_data_url

            qr = client.get(f"/webjs/sessions/{session}/qr").json["qr_code"]
            if qr:
                requests.post(f"{stack['sim']}/sim/phone/scan", json={"payload": read_qr_data_url(qr),
                                                                      "phone": phone}, timeout=5)
        return s["status"] == "READY"

    wait_until(ready_or_scan, 60, what="READY again")
    job = job_when(client, job_id, lambda j: j["status"] == "completed", 120, "the bulk to finish")
    got = arrivals(stack, texts)
    counts = {t: sum(1 for m in got if m["text"] == t) for t in texts}
    assert set(counts.values()) == {1}, {t: c for t, c in counts.items() if c != 1}
    assert all(m["chat"].endswith("@lid") for m in got), "the chats were LID chats"
    assert job["successful_sends"] == 20 and job["failed_sends"] == 0
