"""Beat's tasks on the control worker: re-dispatching overdue sends, reaping lost slots.

Each test's rows live in a transaction rolled back at its end (``rolled_back_db``): the
tasks see them, no other test does (the sweeper and the reaper scan every row)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from messaging import slots
from models import Message, WhatsAppSession, utcnow
from models.sends import Recipient, accept_messages
from tests.factories import make_session
from workers import control_tasks


@pytest.fixture
def db(rolled_back_db):
    return rolled_back_db


@pytest.fixture
def control(settings, wire_control):
    wire_control(settings)
    return control_tasks


def queued_tasks(redis_client, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(queue, 0, -1)]


def overdue_message(db, user_id: str, session_status: str) -> tuple[str, str]:
    """A session on slot sweep-<user> and one queued message whose dispatch is overdue."""
    slot = f"sweep-{user_id}"
    with db.begin() as s:
        make_session(s, user_id, status=session_status, slot=slot, epoch=3)
        accepted = accept_messages(s, user_id, "single", [Recipient("919876543210", "919876543210", "hi")],
                                   utcnow() - timedelta(seconds=1))
    return slot, accepted.message_ids[0]


def test_overdue_messages_are_dispatched_again_once(control, db, redis_client, user_id):
    slot, message_id = overdue_message(db, user_id, "READY")
    assert control.sweep_messages() >= 1
    tasks = queued_tasks(redis_client, f"slot.{slot}")
    assert [t["headers"]["task"] for t in tasks] == ["wa.slot.send_message"]
    assert message_id in json.dumps(tasks)
    control.sweep_messages()
    assert len(queued_tasks(redis_client, f"slot.{slot}")) == 1, "not again before the grace period"
    with db() as s:
        due = s.get(Message, message_id).dispatch_due_at
    assert due > utcnow() + timedelta(seconds=30)


def test_messages_of_a_session_that_is_not_ready_wait(control, db, redis_client, user_id):
    slot, message_id = overdue_message(db, user_id, "DISCONNECTED")
    control.sweep_messages()
    assert queued_tasks(redis_client, f"slot.{slot}") == []
    with db() as s:
        assert s.get(Message, message_id).status == "queued"


def watched_for_an_hour(redis_client) -> None:
    """As if the reaper had been looking at the slot registry without a break for an hour."""
    now = float(redis_client.time()[0])
    redis_client.hset(slots.WATCH_KEY, mapping={"last": now, "since": now - 3600})


def test_sessions_on_a_dead_slot_are_disconnected(control, db, redis_client, user_id):
    slots.heartbeat(redis_client, "alive-slot", capacity=5, ttl=30)
    watched_for_an_hour(redis_client)
    try:
        with db.begin() as s:
            make_session(s, user_id, slot="dead-slot")
            make_session(s, user_id + "b", slot="alive-slot")
        control.reap_lost_slots()
    finally:  # a registered slot without a worker would receive later tests' sessions
        slots.unregister(redis_client, "alive-slot")
    with db() as s:
        rows = {r.session_id: r for r in s.execute(select(WhatsAppSession).where(
            WhatsAppSession.session_id.in_([user_id, user_id + "b"]))).scalars()}
    assert rows[user_id].status == "DISCONNECTED" and rows[user_id].status_reason == "WORKER_LOST"
    assert rows[user_id + "b"].status == "READY"


def test_cleanup_stops_orphans_stuck_and_idle_sessions(control, db, redis_client, settings, monkeypatch):
    import secrets
    import time
    from dataclasses import replace

    from models import SessionTransition

    tag = secrets.token_hex(3)
    slot = f"clean-{tag}"
    now_ms = time.time_ns() // 1_000_000
    with db.begin() as s:
        make_session(s, f"stuck_{tag}", status="QR_READY", slot=slot,
                     epoch=now_ms - 3_600_000)  # placed an hour ago, still not linked
        make_session(s, f"idle_{tag}", slot=slot, epoch=now_ms - 7_200_000,
                     last_activity=utcnow() - timedelta(hours=2))
        make_session(s, f"busy_{tag}", slot=slot, epoch=now_ms - 7_200_000, last_activity=utcnow())
    with db.begin() as s:  # other tests' sessions (their epochs are small numbers) are out of the count
        s.execute(update(WhatsAppSession).where(WhatsAppSession.slot != slot).values(slot=None))
    # The slot runs a browser for a session that no longer exists (deleted while the slot was away).
    slots.heartbeat(redis_client, slot, 10, 30, sessions={f"gone_{tag}": 1, f"busy_{tag}": 1})
    monkeypatch.setattr(control.resources(), "settings", replace(settings, idle_timeout_minutes=60,
                                                                  stuck_timeout_seconds=600))
    try:
        counts = control.clean_sessions()
    finally:
        slots.unregister(redis_client, slot)
    assert counts == {"orphans": 1, "stuck": 1, "idle": 1}
    with db() as s:
        reasons = {r.session_id: (r.status, r.status_reason) for r in s.execute(
            select(WhatsAppSession).where(WhatsAppSession.slot == slot)).scalars()}
        logged = s.execute(select(SessionTransition.reason).where(
            SessionTransition.session_id == f"idle_{tag}")).scalars().all()
    assert reasons[f"stuck_{tag}"] == ("DISCONNECTED", "STUCK")
    assert reasons[f"idle_{tag}"] == ("DISCONNECTED", "IDLE") and "IDLE" in logged
    assert reasons[f"busy_{tag}"] == ("READY", None)
    stops = [t for t in queued_tasks(redis_client, f"slot.{slot}") if t["headers"]["task"] == "wa.slot.stop_session"]
    args = [json.loads(__import__("base64").b64decode(t["body"]))[1] for t in stops]
    assert sorted(a["session_id"] for a in args) == sorted([f"gone_{tag}", f"stuck_{tag}", f"idle_{tag}"])
    assert next(a for a in args if a["session_id"] == f"gone_{tag}")["forget"] is True
    assert next(a for a in args if a["session_id"] == f"idle_{tag}")["forget"] is False


def task_kwargs(task: dict) -> dict:
    import base64

    args, kwargs, _embed = json.loads(base64.b64decode(task["body"]))
    return kwargs


def test_a_message_dispatched_before_is_looked_for_from_what_postgresql_knows(control, db, redis_client, user_id):
    """Dispatched before and never confirmed: the sweeper's dispatch carries its first
    dispatch time and the newest message to the same number recorded as sent, for the slot's
    look in the chat. A message never dispatched (released by the one before it) carries none,
    but, as every dispatch does, the time of its first dispatch (now)."""
    slot, message_id = overdue_message(db, user_id, "READY")
    with db.begin() as s:
        accepted = accept_messages(s, user_id, "single", [Recipient("919876543210", "919876543210", "earlier")],
                                   None)
        sent = s.get(Message, accepted.message_ids[0])
        sent.status, sent.sent_at, sent.wa_message_id = "sent", utcnow(), "true_919876543210@c.us_3EB0AA"
        first_dispatch = s.get(Message, message_id).dispatched_at
        successor = accept_messages(s, user_id, "single", [Recipient("919876500001", "919876500001", "next")], None)
        later = s.get(Message, successor.message_ids[0])
        later.dispatched_at, later.dispatch_due_at = None, utcnow() - timedelta(seconds=1)  # released, never sent
    control.sweep_messages()
    by_id = {task_kwargs(t)["message_id"]: task_kwargs(t) for t in queued_tasks(redis_client, f"slot.{slot}")}
    assert by_id[message_id]["earlier"] == {"since": first_dispatch.timestamp(),
                                            "after_id": "true_919876543210@c.us_3EB0AA"}
    assert by_id[successor.message_ids[0]]["earlier"] is None
    assert by_id[message_id]["first_dispatch"] == first_dispatch.timestamp()
    with db() as s:
        dispatched = s.get(Message, successor.message_ids[0]).dispatched_at
        assert dispatched is not None, "its first dispatch is kept"
    # Should its task be redelivered or retried, the slot knows from when to look.
    assert by_id[successor.message_ids[0]]["first_dispatch"] == dispatched.timestamp()


def test_no_slot_is_judged_lost_before_the_registry_was_watched_for_a_ttl(control, db, redis_client, user_id):
    """After Redis restarted empty (the watch record is gone too) a live slot's key is missing
    until its next heartbeat: its sessions keep their browsers for a whole TTL."""
    redis_client.delete(slots.WATCH_KEY)
    with db.begin() as s:
        make_session(s, user_id, slot="quiet-slot")
    assert control.reap_lost_slots() == 0
    with db() as s:
        row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == user_id)).scalar_one()
    assert (row.status, row.status_reason) == ("READY", None)
    ttl = control.resources().settings.slot_heartbeat_ttl
    assert 0 <= slots.watched_for(redis_client, max_gap=ttl + 20) < ttl
    watched_for_an_hour(redis_client)  # ...and the slot never came back: now it is lost
    assert control.reap_lost_slots() >= 1
    with db() as s:
        row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == user_id)).scalar_one()
    assert (row.status, row.status_reason) == ("DISCONNECTED", "WORKER_LOST")


def test_what_an_emptied_redis_lost_is_put_back_from_postgres(control, db, redis_client, user_id):
    """Pacing (sends of the last day), the tasks of unsent messages, the slots' copy of the
    opt-out lists, sessions placed but not started: put back once per life of a Redis."""
    from messaging.optouts import OptOutMirror
    from messaging.pacing import Pacer
    from models.optouts import add_opt_out

    slot, waiting = overdue_message(db, user_id, "READY")
    sent_at = utcnow() - timedelta(minutes=5)
    starting = user_id + "s"
    with db.begin() as s:
        done = accept_messages(s, user_id, "single", [Recipient("919876543211", "919876543211", "hi")],
                               utcnow() + timedelta(hours=1))
        sent = s.get(Message, done.message_ids[0])
        sent.status, sent.sent_at = "sent", sent_at
        s.get(Message, waiting).dispatch_due_at = utcnow() + timedelta(hours=1)  # its task was queued
        make_session(s, starting, status="INITIALIZING", slot=slot, epoch=9)
        s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == user_id)).scalar_one().pacing = {
            "min_gap_seconds": 4, "max_gap_seconds": 5}
        add_opt_out(s, user_id, "919876500042", source="api")
    redis_client.delete(control.STATE_MARK)  # Redis restarted empty
    control.sweep_messages()
    assert not control.restore_lost_state(control.resources()), "once per life of a Redis"
    pacer = Pacer(redis_client)
    assert abs(pacer.last_sent(user_id) - sent_at.timestamp()) < 0.01
    assert redis_client.zscore(f"wa:pace:{user_id}:hour", sent.id) is not None
    next_at = float(redis_client.get(f"wa:pace:{user_id}:next"))
    assert abs(next_at - (sent_at.timestamp() + 5)) < 0.01, "the longest gap after the last send"
    tasks = queued_tasks(redis_client, f"slot.{slot}")
    names = [t["headers"]["task"] for t in tasks]
    assert names.count("wa.slot.send_message") == 1 and waiting in json.dumps(tasks), "due at once"
    assert names.count("wa.slot.initialize") == 1 and starting in json.dumps(tasks)
    assert OptOutMirror(redis_client).contains(user_id, "919876500042")
