"""The recorder writes worker events into Postgres, and loses none while it is down."""
from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import select

from browser.qr import qr_data_url
from messaging.events import GROUP, STREAM, EventBus
from models import Job, Message, SessionTransition, WhatsAppSession
from tests.helpers import ROOT, Proc, wait_until


@pytest.fixture
def bus(redis_client):
    return EventBus(redis_client)


@pytest.fixture
def recorder_env(settings):
    return {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "PYTHONPATH": str(ROOT)}


def make_session(db, session_id: str, epoch: int = 7) -> None:
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=session_id, session_id=session_id, slot="slot-x", epoch=epoch))


def make_job(db, session_id: str, n: int) -> tuple[str, list[str]]:
    with db.begin() as s:
        job = Job(session_id=session_id, kind="bulk", total=n)
        msgs = [Message(job=job, session_id=session_id, position=i, to="919876543210",
                        to_input="919876543210", text=f"m{i}") for i in range(n)]
        s.add(job)
    return job.id, [m.id for m in msgs]


def status_of(db, session_id):
    with db() as s:
        return s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == session_id)).scalar_one()


@pytest.mark.stack  # a recorder process
def test_events_published_while_recorder_is_down_all_land(db, bus, redis_client, recorder_env, tmp_path, user_id):
    make_session(db, user_id)
    job_id, msg_ids = make_job(db, user_id, 3)
    # The recorder is not running: everything waits in the stream.
    bus.session(user_id, 7, "QR_READY", qr="2@abc,k1,k2,k3", qr_code=qr_data_url("2@abc,k1,k2,k3"))
    bus.session(user_id, 7, "QR_READY", qr="2@def,k1,k2,k3", qr_code=qr_data_url("2@def,k1,k2,k3"))
    bus.session(user_id, 7, "AUTHENTICATED")
    bus.session(user_id, 7, "READY", phone_number="919876543210")
    for m in msg_ids:
        bus.message(m, job_id, user_id, "sending", attempt=1)
        bus.message(m, job_id, user_id, "sent", attempt=1, wa_message_id=f"true_919876543210@c.us_3EB0{m[-6:]}")
    assert status_of(db, user_id).status == "INITIALIZING"

    recorder = Proc("recorder", ["-m", "workers.recorder"], recorder_env, tmp_path).start()
    try:
        wait_until(lambda: status_of(db, user_id).status == "READY", 20, what="READY recorded")
        with db() as s:
            transitions = s.execute(select(SessionTransition.to_status).where(
                SessionTransition.session_id == user_id).order_by(SessionTransition.id)).scalars().all()
            assert transitions == ["QR_READY", "QR_READY", "AUTHENTICATED", "READY"]
            wait_until(lambda: s.get(Job, job_id, populate_existing=True).status == "completed", 10)
            msgs = s.execute(select(Message).where(Message.job_id == job_id)).scalars().all()
            assert {m.status for m in msgs} == {"sent"}
            assert all(m.wa_message_id.startswith("true_919876543210@c.us_3EB0") for m in msgs)
        row = status_of(db, user_id)
        assert row.phone_number == "919876543210" and row.is_ready and row.is_authenticated
        assert row.qr_code is None, "the QR is cleared once authenticated"
        # Acknowledged entries leave the stream.
        wait_until(lambda: redis_client.xpending(STREAM, GROUP)["pending"] == 0, 5)
    finally:
        recorder.stop()
        assert "Traceback" not in recorder.tail(200), recorder.tail()


@pytest.mark.stack  # a recorder process
def test_recorder_killed_mid_stream_replays_without_damage(db, bus, recorder_env, tmp_path, user_id):
    make_session(db, user_id)
    recorder = Proc("recorder2", ["-m", "workers.recorder"], recorder_env, tmp_path).start()
    try:
        bus.session(user_id, 7, "QR_READY", qr="2@one,k,k,k", qr_code=qr_data_url("2@one,k,k,k"))
        wait_until(lambda: status_of(db, user_id).status == "QR_READY", 20)
        assert status_of(db, user_id).qr_code == qr_data_url("2@one,k,k,k")
        recorder.stop(signal.SIGKILL)
        bus.session(user_id, 7, "AUTHENTICATED")
        bus.session(user_id, 7, "READY", phone_number="919876543210")
        recorder = Proc("recorder2", ["-m", "workers.recorder"], recorder_env, tmp_path).start()
        wait_until(lambda: status_of(db, user_id).status == "READY", 20)
    finally:
        recorder.stop()


@pytest.mark.stack  # a recorder process
def test_stale_and_illegal_events_are_refused(db, bus, recorder_env, tmp_path, user_id):
    make_session(db, user_id, epoch=9)
    recorder = Proc("recorder3", ["-m", "workers.recorder"], recorder_env, tmp_path).start()
    try:
        bus.session(user_id, 8, "READY", phone_number="910000000000")  # an older placement
        bus.session(user_id, 9, "READY", phone_number="919876543210")
        bus.session(user_id, 9, "QR_READY", qr="2@late,k,k,k")  # READY -> QR_READY is illegal
        bus.session(user_id, 9, "DISCONNECTED", reason="LOGOUT")
        wait_until(lambda: status_of(db, user_id).status == "DISCONNECTED", 20)
        row = status_of(db, user_id)
        assert row.phone_number == "919876543210"
        assert row.status_reason == "LOGOUT"
        with db() as s:
            transitions = s.execute(select(SessionTransition.to_status).where(
                SessionTransition.session_id == user_id).order_by(SessionTransition.id)).scalars().all()
        assert transitions == ["READY", "DISCONNECTED"]
    finally:
        recorder.stop()


def test_a_malformed_event_goes_to_dead_letters_and_does_not_block(db, bus, redis_client, user_id):
    from messaging.events import DEAD_LETTERS
    from workers.recorder import Recorder

    make_session(db, user_id)
    recorder = Recorder(redis_client, db, consumer=f"inproc-{user_id}", block_ms=100)
    recorder.ensure_group()
    before = redis_client.xlen(DEAD_LETTERS)
    refused = ['{not json', '{"type": "teleport", "session_id": "x"}',  # not JSON; a type nobody knows
               f'{{"type": "session", "session_id": "{user_id}", "epoch": 7, "status": "READY", "reason": "NAP"}}',
               f'{{"type": "message", "message_id": "m", "session_id": "{user_id}", "status": "sent"}}']  # no job_id
    for body in refused:
        redis_client.xadd(STREAM, {"e": body})
    bus.session(user_id, 7, "READY", phone_number="919876543210")
    wait_until(lambda: recorder.run_once() or status_of(db, user_id).status == "READY", 10)
    assert redis_client.xlen(DEAD_LETTERS) == before + len(refused)
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_a_restriction_makes_waiting_messages_say_so_and_reaches_the_webhook(db, user_id):
    """Waiting messages become scheduled with the restriction as wait_reason (their dispatch
    times kept, nothing failed); the session's webhook gets session.restricted and later
    session.unrestricted; an event of an older placement changes nothing."""
    from datetime import timedelta

    from models import MessageStatus, WebhookDelivery, utcnow
    from models.events import from_dict
    from models.recording import apply_event

    make_session(db, user_id)
    job_id, msg_ids = make_job(db, user_id, 2)
    due = utcnow() + timedelta(seconds=30)
    with db.begin() as s:
        row = s.execute(select(WhatsAppSession).where(WhatsAppSession.session_id == user_id)).scalar_one()
        row.callback_url = f"http://127.0.0.1:9/hooks/{user_id}"
        first = s.get(Message, msg_ids[0])
        first.dispatch_due_at = due
        s.get(Message, msg_ids[1]).status = MessageStatus.SENT.value
    event = {"type": "session_restriction", "session_id": user_id, "epoch": 7, "kind": "temporary_ban",
             "restricted": True, "reason": "restricted: temporary ban"}
    with db.begin() as s:
        assert not apply_event(s, "1-0", from_dict({**event, "epoch": 6})).applied  # an older placement
        assert apply_event(s, "1-1", from_dict(event)).applied
        assert apply_event(s, "1-2", from_dict({**event, "restricted": False})).applied
    with db() as s:
        waiting, sent = s.get(Message, msg_ids[0]), s.get(Message, msg_ids[1])
        assert waiting.status == "scheduled" and waiting.wait_reason == "restricted: temporary ban"
        assert waiting.dispatch_due_at == due and waiting.error is None
        assert sent.status == "sent"
        hooks = s.execute(select(WebhookDelivery.event_type).where(WebhookDelivery.url == f"http://127.0.0.1:9/hooks/{user_id}")
                          .order_by(WebhookDelivery.created_at)).scalars().all()
    assert sorted(hooks) == ["session.restricted", "session.unrestricted"]


def test_a_consumer_group_lost_with_redis_is_created_again(db, bus, redis_client, user_id):
    """A Redis that restarted empty has no stream and no consumer group (NOGROUP): the
    recorder creates the group again and goes on recording."""
    import threading

    from workers.recorder import Recorder

    make_session(db, user_id)
    recorder = Recorder(redis_client, db, consumer=f"nogroup-{user_id}", block_ms=100)
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    try:
        bus.session(user_id, 7, "QR_READY", qr="2@one,k,k,k")
        wait_until(lambda: status_of(db, user_id).status == "QR_READY", 10)
        redis_client.delete(STREAM)  # the stream and its consumer group, as in an emptied Redis
        bus.session(user_id, 7, "AUTHENTICATED")
        wait_until(lambda: status_of(db, user_id).status == "AUTHENTICATED", 10,
                   what="an event after the group was lost")
        assert any(g["name"] == GROUP.encode() for g in redis_client.xinfo_groups(STREAM))
    finally:
        recorder.stopping.set()
        thread.join(5)


def test_outcomes_and_send_latency_are_counted_once_for_metrics(db, bus, redis_client, user_id):
    """The recorder counts what a message reached (sent, failed) and a sent message's
    latency into the counters /metrics exports; an event replayed is refused, not counted."""
    from datetime import timedelta

    from messaging import send_metrics
    from models import utcnow
    from workers.recorder import Recorder

    make_session(db, user_id)
    job_id, (sent, failed) = make_job(db, user_id, 2)
    with db.begin() as s:
        s.get(Message, sent).created_at = utcnow() - timedelta(seconds=3)  # sent about 3 s after acceptance
    recorder = Recorder(redis_client, db, consumer=f"metrics-{user_id}", block_ms=100)
    recorder.ensure_group()
    recorder.drain_pending()
    while recorder.run_once():  # what earlier tests left in the stream
        pass
    outcomes, buckets, total = send_metrics.read(redis_client)
    for m, outcome in ((sent, "sent"), (failed, "failed")):
        bus.message(m, job_id, user_id, "sending", attempt=1)
        bus.message(m, job_id, user_id, outcome, attempt=1, error=None if outcome == "sent" else "x",
                    wa_message_id="true_919876543210@c.us_3EB0AA" if outcome == "sent" else None)
    bus.message(sent, job_id, user_id, "sent", attempt=1, wa_message_id="true_919876543210@c.us_3EB0AA")  # again
    wait_until(lambda: recorder.run_once() == 0 and redis_client.xlen(STREAM) == 0, 10, what="all recorded")
    after, buckets_after, total_after = send_metrics.read(redis_client)
    assert {o: after[o] - outcomes[o] for o in after} == {"sent": 1, "failed": 1, "cancelled": 0}
    added = {le: n - dict(buckets)[le] for le, n in buckets_after}
    assert added["2.0"] == 0 and added["5.0"] == 1 and added["+Inf"] == 1
    assert 2.5 < total_after - total < 10


def test_events_already_in_the_stream_are_recorded_before_the_recorder_stops(db, bus, redis_client, user_id):
    """Told to stop, the recorder still applies what the stream holds (a slot that stopped
    just before it reported its sessions as stopped), then returns."""
    from workers.recorder import Recorder

    make_session(db, user_id)
    bus.session(user_id, 7, "READY", phone_number="919876543210")
    bus.session(user_id, 7, "DISCONNECTED", reason="WORKER_STOPPED")
    recorder = Recorder(redis_client, db, consumer=f"finish-{user_id}", block_ms=100)
    recorder.stopping.set()  # the stop came before the recorder read anything
    recorder.run()
    row = status_of(db, user_id)
    assert (row.status, row.status_reason) == ("DISCONNECTED", "WORKER_STOPPED")
