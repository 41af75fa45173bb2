"""Guards for rules that the rest of the suite only checked through the code's own helpers.

Each test here fails when its rule is broken, and checks it against something independent
of the code under test: the webhook signature against the README's formula computed here
with hmac, the recorder's acknowledgement against a commit the database refuses, the
circuit breaker against the BREAKER_THRESHOLD setting through the real send task, and the
order per recipient against the tasks that actually reach the slot's queue in Redis.
No Chrome, no subprocess: real PostgreSQL and Redis only.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import delete, event, select

from messaging.events import GROUP, STREAM, EventBus
from models import WebhookDelivery, WhatsAppSession, enqueue_webhook, make_engine, make_sessionmaker

SECRET = "guard-secret"


# --- the webhook signature is the README's formula --------------------------------------------
def readme_signature(secret: str, timestamp: str, body: bytes) -> str:
    """README, Webhooks: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, as a receiver
    in any language would compute it."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_a_delivery_carries_the_signature_the_readme_promises_receivers(db, settings, receiver):
    from workers.webhooks import deliver_due

    hooks = replace(settings, webhook_allow_networks="127.0.0.0/8", webhook_secret=SECRET, webhook_timeout=2.0)
    with db.begin() as s:  # deliver_due takes every due row: only ours
        s.execute(delete(WebhookDelivery))
        event_id = enqueue_webhook(s, f"http://127.0.0.1:{receiver.server_address[1]}/hook", "message.sent",
                                   {"message_id": "msg_guard", "text": "héllo ✓"})
    try:
        assert deliver_due(hooks, db) == 1
    finally:
        with db.begin() as s:
            stored = s.get(WebhookDelivery, event_id).body.encode()
            s.execute(delete(WebhookDelivery))
    [(_path, headers, body)] = receiver.requests
    assert body == stored, "the body posted is the outbox row's, byte for byte"
    timestamp = headers["X-Webhook-Timestamp"]
    assert timestamp.isdigit() and abs(int(timestamp) - time.time()) < 30
    assert headers["X-Webhook-Signature"] == readme_signature(SECRET, timestamp, body)
    # Not the HMAC of the body alone, nor keyed by anything else.
    assert headers["X-Webhook-Signature"] != "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_verify_accepts_exactly_the_readme_formula():
    from workers.webhooks import verify

    body, now = b'{"id":"evt_guard","type":"message.sent"}', 1_800_000_000
    timestamp = str(now)
    assert verify(SECRET, timestamp, body, readme_signature(SECRET, timestamp, body), now=now)
    body_only = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    no_dot = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + body, hashlib.sha256).hexdigest()
    for wrong in (body_only, no_dot, readme_signature(SECRET, str(now - 1), body),
                  readme_signature(SECRET, timestamp, body)[len("sha256="):], ""):
        assert not verify(SECRET, timestamp, body, wrong, now=now), wrong


# --- the recorder acknowledges an entry only after its transaction committed -------------------
def test_an_entry_stays_pending_until_its_transaction_commits(settings, db, redis_client, user_id):
    from workers.recorder import Recorder

    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, slot="slot-x", epoch=7))
    engine = make_engine(settings.database_url)
    refusing = make_sessionmaker(engine)  # this recorder's own sessions; nobody else's
    refuse = {"on": True}

    @event.listens_for(refusing, "before_commit")
    def _database_refuses(session):
        if refuse["on"]:
            raise RuntimeError("the database refused the commit")

    consumer = f"guard-{user_id}"
    recorder = Recorder(redis_client, refusing, consumer=consumer, block_ms=100)
    recorder.ensure_group()
    EventBus(redis_client).session(user_id, 7, "AUTHENTICATED")
    [(entry_id, _fields)] = redis_client.xrevrange(STREAM, count=1)

    def status() -> str:
        with db() as s:
            return s.execute(select(WhatsAppSession.status).where(WhatsAppSession.session_id == user_id)).scalar_one()

    def pending() -> list[bytes]:
        return [p["message_id"] for p in redis_client.xpending_range(STREAM, GROUP, "-", "+", 1000,
                                                                       consumername=consumer)]

    try:
        with pytest.raises(RuntimeError, match="refused the commit"):
            recorder.run_once()
        assert status() == "INITIALIZING", "nothing was committed"
        assert entry_id in pending(), "an entry whose transaction did not commit is not acknowledged"
        assert redis_client.xrange(STREAM, entry_id, entry_id), "nor deleted from the stream"

        refuse["on"] = False  # the database is back: the pending entry is applied, then acknowledged
        recorder.drain_pending()
        assert status() == "AUTHENTICATED"
        assert entry_id not in pending()
    finally:
        engine.dispose()


# --- the send task counts failures on the breaker set by BREAKER_THRESHOLD ---------------------
class _Retried(Exception):
    def __init__(self, countdown, kwargs):
        super().__init__(countdown)
        self.countdown, self.kwargs = countdown, kwargs


class _RecordingBus:
    def __init__(self):
        self.events: list[dict] = []

    def message(self, message_id, job_id, session_id, status, **fields):
        self.events.append({"message_id": message_id, "status": str(status), **fields})

    def of(self, message_id: str) -> list[dict]:
        return [e for e in self.events if e["message_id"] == message_id]


@pytest.fixture
def slot_runtime(settings, redis_client, monkeypatch, work_dir):
    """The slot's real runtime (no browser started: its page is said to be ready and every
    send fails for a transient reason), built from settings read from the environment."""
    from browser.whatsapp import TransientSendError
    from settings import Settings
    from workers import slot_tasks
    from workers.send_rules import Availability
    from workers.slot_runtime import SlotRuntime

    monkeypatch.setenv("BREAKER_THRESHOLD", "4")
    monkeypatch.setenv("BREAKER_COOLDOWN", "120")
    monkeypatch.setenv("TASK_MAX_RETRIES", "3")
    from_env = Settings.from_env()
    slot = f"guard-{secrets.token_hex(4)}"
    rt_settings = replace(from_env, redis_url=settings.redis_url, database_url=settings.database_url,
                          slot_name=slot, profile_dir=str(work_dir / "profiles"),
                          browser_work_dir=str(work_dir / "browsers"))
    bus = _RecordingBus()
    rt = SlotRuntime(rt_settings, client=redis_client, bus=bus)
    rt.deliveries = []
    rt.succeed = set()

    def deliver(session_id, epoch, message_id, to, text, media=None, *, earlier=None):
        rt.deliveries.append(message_id)
        if message_id in rt.succeed:
            return f"true_{to}@c.us_3EB0{secrets.token_hex(4).upper()}"
        raise TransientSendError("the chat did not open")

    rt.availability = lambda session_id, epoch: (Availability.READY, None)
    rt.deliver = deliver
    monkeypatch.setattr(slot_tasks, "runtime", lambda: rt)
    task = slot_tasks.send_message
    monkeypatch.setattr(task, "retry", lambda countdown=None, kwargs=None, **_: _Retried(countdown, kwargs))
    yield rt
    rt.probes.shutdown(wait=False)
    rt.backups.shutdown(wait=False)


SEND = dict(job_id="job_guard", epoch=1, to="919876543210", text="hello",
            pacing={"min_gap_seconds": 0, "max_gap_seconds": 0, "hourly_cap": 0, "daily_cap": 0})


def _run(kwargs: dict) -> dict | None:
    """One run of the send task: the kwargs it asked to be retried with, None when it ended."""
    from workers import slot_tasks  # imported late: it imports the slot runtime and Selenium

    try:
        slot_tasks.send_message(**kwargs)
    except _Retried as retried:
        return {"countdown": retried.countdown, **retried.kwargs}
    return None


def _until_done(rt, message_id: str, session_id: str, runs: int = 10) -> list[dict]:
    """Run the task and its retries (at once, as if each countdown had passed) until it ends
    or waits on an open circuit; the retries it asked for."""
    retries, kwargs = [], {**SEND, "message_id": message_id, "session_id": session_id}
    for _ in range(runs):
        retry = _run(kwargs)
        if retry is None:
            return retries
        retries.append(retry)
        kwargs = {k: v for k, v in retry.items() if k != "countdown"}
        if rt.bus.of(message_id)[-1].get("wait_reason", "").startswith("circuit open"):
            return retries
    raise AssertionError(f"{message_id} never ended: {rt.bus.of(message_id)}")


@pytest.fixture
def names():
    """Message and session ids of this test alone (claims and pacing live in Redis by id)."""
    tag = secrets.token_hex(4)
    return lambda name: f"{name}_{tag}"


def test_the_circuit_opens_after_breaker_threshold_transient_failures(slot_runtime, names):
    rt, session_id = slot_runtime, names("guard")
    a, b, c = names("msg_a"), names("msg_b"), names("msg_c")
    assert (rt.settings.breaker_threshold, rt.settings.task_max_retries) == (4, 3)

    _until_done(rt, a, session_id)  # 3 attempts, all failed: the message fails, the circuit holds
    assert rt.deliveries == [a] * 3
    assert rt.bus.of(a)[-1]["status"] == "failed"

    before = time.time()
    retries = _until_done(rt, b, session_id)  # the 4th failure in a row opens it
    assert rt.deliveries == [a] * 3 + [b], "no attempt is made while the circuit is open"
    waiting = rt.bus.of(b)[-1]
    assert (waiting["status"], waiting["wait_reason"]) == ("scheduled", "circuit open: too many failures in a row")
    assert waiting["attempt"] == 2, "the wait uses up no attempt"
    opened_until = datetime.fromisoformat(waiting["next_attempt_at"]).timestamp()
    assert before + 120 - 1 <= opened_until <= time.time() + 120 + 1, "BREAKER_COOLDOWN (120 s)"
    assert 115 <= retries[-1]["countdown"] <= 121

    _until_done(rt, c, session_id)  # another message of the session waits too, untried
    assert c not in rt.deliveries
    assert rt.bus.of(c)[-1]["wait_reason"] == "circuit open: too many failures in a row"


def test_a_send_that_goes_out_starts_the_count_again(slot_runtime, names):
    rt, session_id = slot_runtime, names("guard")
    a, ok, c = names("msg_a"), names("msg_ok"), names("msg_c")
    _until_done(rt, a, session_id)  # 3 failures
    rt.succeed.add(ok)
    _until_done(rt, ok, session_id)
    assert rt.bus.of(ok)[-1]["status"] == "sent"
    _until_done(rt, c, session_id)  # 3 failures more: still only 3 in a row
    assert rt.deliveries == [a] * 3 + [ok] + [c] * 3
    assert rt.bus.of(c)[-1]["status"] == "failed"


# --- a message waits for the earlier one to the same number: it is not enqueued ----------------
def _queued_sends(redis_client, queue: str) -> list[dict]:
    """The kwargs of the wa.slot.send_message tasks on a queue, decoded from the Celery
    messages themselves (protocol 2: the body is base64 JSON [args, kwargs, embed])."""
    sends = []
    for raw in redis_client.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] != "wa.slot.send_message":
            continue
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        sends.append(kwargs)
    return sends


@pytest.fixture
def ready_slot(ready_on_slot):
    """A READY session and its slot's queue."""
    session_id, slot = ready_on_slot
    return session_id, f"slot.{slot}"


def test_a_second_send_to_the_same_number_is_not_enqueued(client, redis_client, ready_slot):
    session_id, queue = ready_slot
    url = f"/webjs/sessions/{session_id}/send-message"
    first = client.post(url, json={"to": "919876543210", "message": "first"})
    second = client.post(url, json={"to": "+91 98765 43210", "message": "second"})  # the same number
    other = client.post(url, json={"to": "919876543211", "message": "another number"})
    assert first.status_code == second.status_code == other.status_code == 202
    queued = [k["message_id"] for k in _queued_sends(redis_client, queue)]
    assert sorted(queued) == sorted([first.json["message_id"], other.json["message_id"]])
    assert second.json["message_id"] not in queued


def test_a_bulk_enqueues_only_the_first_message_to_each_number(client, redis_client, ready_slot):
    session_id, queue = ready_slot
    single = client.post(f"/webjs/sessions/{session_id}/send-message", json={"to": "919876543210", "message": "s"})
    r = client.post(f"/webjs/sessions/{session_id}/send-bulk-messages", json={"messages": [
        {"to": "919876543211", "message": "x1"},
        {"to": "919876543212", "message": "y"},
        {"to": "919876543211", "message": "x2"},
        {"to": "919876543210", "message": "after the single one"},
        {"to": "12345", "message": "invalid"},
    ]})
    assert r.status_code == 202, r.json
    ids = [x["message_id"] for x in r.json["results"]]
    queued = [k["message_id"] for k in _queued_sends(redis_client, queue)]
    assert sorted(queued) == sorted([single.json["message_id"], ids[0], ids[1]])


# --- what the send task is given is what the client asked for --------------------------------
def test_mark_chat_read_travels_with_the_send(client, redis_client, ready_slot):
    session_id, queue = ready_slot
    url = f"/webjs/sessions/{session_id}/send-message"
    asked = client.post(url, json={"to": "919876543210", "message": "read it", "mark_chat_read": True})
    not_asked = client.post(url, json={"to": "919876543211", "message": "leave it"})
    assert asked.status_code == not_asked.status_code == 202
    by_id = {k["message_id"]: k for k in _queued_sends(redis_client, queue)}
    assert by_id[asked.json["message_id"]]["mark_chat_read"] is True
    assert not by_id[not_asked.json["message_id"]].get("mark_chat_read")


def test_inline_items_keep_their_own_name_and_type_and_links_stay_as_they_are(tmp_path):
    """The same bytes twice in one send are stored once, but each item keeps its name and
    type; a media URL among them passes through untouched."""
    from models.sends import Recipient
    from services.accepting import store_inline_media
    from storage.media import MediaStore
    from storage.profiles import LocalBlobs

    data = base64.b64encode(b"the same bytes").decode()
    link = {"url": "https://files.example/agenda.pdf"}
    recipient = Recipient("919876543210", "919876543210", "files", media=[
        link, {"filename": "a.png", "mimetype": "image/png", "data": data},
        {"filename": "a.bin", "mimetype": "application/octet-stream", "data": data}])
    [out], refs = store_inline_media(MediaStore(LocalBlobs(tmp_path), 3600), [recipient])
    assert out.media[0] == link
    png, binary = out.media[1:]
    assert (png["filename"], png["mimetype"]) == ("a.png", "image/png")
    assert (binary["filename"], binary["mimetype"]) == ("a.bin", "application/octet-stream")
    assert png["ref"] == binary["ref"] and refs == [png["ref"]], "stored once"
    with pytest.raises(RuntimeError, match="inline media need a media store"):
        store_inline_media(None, [recipient])
