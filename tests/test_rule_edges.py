"""Edges of the rules that mutation testing (``make mutate``, docs/mutation-testing.md)
found unguarded: each test here kills mutants that survived the rest of the suite.
Plain values, and real PostgreSQL and Redis where the rule lives there; no Chrome."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
import redis
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from messaging.pacing import DAY, CircuitBreaker, Claims, Pacer, PacingPolicy
from models import IdempotencyKey, Job, Message, WhatsAppSession, utcnow
from models.access import Scope
from models.sends import Recipient
from models.states import message_transition_allowed
from workers import send_rules as rules
from workers.send_rules import Availability, Outcome, Restriction

NOW = 1_000_000.0
T0 = 1_800_000_000.0


def lowest(a, b):
    return a


def highest(a, b):
    return b


@pytest.fixture
def tag():
    return secrets.token_hex(4)


# --- message states ---------------------------------------------------------------------------
def test_a_message_being_sent_may_still_fail_but_not_be_cancelled():
    assert message_transition_allowed("sending", "failed")
    assert not message_transition_allowed("sending", "cancelled")


def test_a_repeated_progress_event_is_refused():
    for status in ("sent", "delivered", "read"):
        assert not message_transition_allowed(status, status), status


# --- send rules -------------------------------------------------------------------------------
def facts(**overrides):
    return {**dict(now=NOW, attempt=1, availability=Availability.READY, restriction=None, breaker_open_until=None,
                   reserved_at=NOW, reserved_reason="now", last_sent=0.0, min_gap=1.0, max_gap=2.0,
                   uniform=lowest), **overrides}


def test_offline_waits_are_2_s_more_than_a_backoff_of_base_5_s_capped_at_30_s():
    assert rules.offline_wait(NOW, 1, uniform=lowest).at == NOW + 2.5 + 2.0
    assert rules.offline_wait(NOW, 10, uniform=highest).at == NOW + 30.0 + 2.0
    assert rules.offline_wait(NOW, 2, uniform=highest).at == NOW + 20.0 + 2.0
    # Both callers pass their random source on.
    assert rules.before_send(**facts(availability=Availability.OFFLINE, uniform=highest, attempt=10)).at == NOW + 32.0
    assert rules.after_failure(now=NOW, attempt=10, max_retries=3, outcome=Outcome.OFFLINE, error="x",
                               uniform=highest).at == NOW + 32.0


def test_task_retries_back_off_up_to_a_minute_by_default():
    assert rules.backoff_seconds(10, uniform=highest) == 60.0
    assert rules.backoff_seconds(1, uniform=lowest) == 1.0


def test_an_unknown_restriction_is_named_as_it_came():
    assert rules.restriction_reason("brand_new_limit") == "restricted: brand_new_limit"


def test_a_restriction_counts_only_when_the_session_is_restricted():
    restriction = Restriction("temporary_ban", NOW + 300)
    assert rules.before_send(**facts(restriction=restriction)) == rules.Go(sleep=0.0)
    after = rules.after_failure(now=NOW, attempt=1, max_retries=3, outcome=Outcome.TRANSIENT, error="boom",
                                restriction=restriction, uniform=lowest)
    assert after == rules.Wait(NOW + 1.0, "retrying after: boom", attempt=2)


def test_a_pacing_wait_of_exactly_short_wait_is_slept_through():
    assert rules.before_send(**facts(reserved_at=NOW + rules.SHORT_WAIT, reserved_reason="gap")) == rules.Go(0.0)
    assert isinstance(rules.before_send(**facts(reserved_at=NOW + rules.SHORT_WAIT + 0.001, reserved_reason="gap")),
                      rules.Wait)


def test_a_pacing_reason_without_words_is_given_as_it_came():
    wait = rules.before_send(**facts(reserved_at=NOW + 60, reserved_reason="weekly"))
    assert wait == rules.Wait(NOW + 60, "weekly")


# --- pacing -----------------------------------------------------------------------------------
def test_a_session_pacing_overrides_each_default_it_names():
    default = PacingPolicy(1.0, 2.0, 100, 1000)
    assert PacingPolicy.from_dict(None, default) is default
    assert PacingPolicy.from_dict({"min_gap_seconds": 3, "max_gap_seconds": 5, "hourly_cap": 20, "daily_cap": 90},
                                  default) == PacingPolicy(3.0, 5.0, 20, 90)
    assert PacingPolicy.from_dict({"hourly_cap": 20}, default) == PacingPolicy(1.0, 2.0, 20, 1000)
    assert PacingPolicy.from_dict({"min_gap_seconds": 0}, default) == PacingPolicy(0.0, 2.0, 100, 1000)


def test_reservations_work_on_a_client_that_decodes_answers(redis_url, tag):
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    reservation = Pacer(decoding).reserve(f"dec_{tag}", "m1", PacingPolicy(0, 0, 0, 0), now=T0)
    assert (reservation.at, reservation.reason) == (T0, "now")


def test_a_sent_message_gives_up_its_reservation_but_not_its_place_in_the_caps(redis_client, tag):
    pacer, session = Pacer(redis_client), f"fgt_{tag}"
    policy = PacingPolicy(0.0, 0.0, hourly_cap=1, daily_cap=0)
    assert pacer.reserve(session, "m1", policy, now=T0).at == T0
    pacer.forget(session, "m1")
    again = pacer.reserve(session, "m1", policy, now=T0 + 5)
    assert again.reason == "hourly", "no longer held, and its place in the hourly cap still counts"


def test_the_last_send_is_remembered_for_a_day(redis_client, tag):
    pacer, session = Pacer(redis_client), f"last_{tag}"
    assert pacer.last_sent(session) == 0.0
    pacer.mark_sent(session, at=T0)
    assert pacer.last_sent(session) == T0
    assert DAY - 5 <= redis_client.ttl(f"wa:pace:{session}:last") <= DAY


def test_a_rebuild_restores_windows_and_gap_and_keeps_what_came_since(redis_client, tag):
    pacer, session = Pacer(redis_client), f"rb_{tag}"
    policy = PacingPolicy(1.0, 2.0, 100, 1000)
    pacer.rebuild(session, {"a": T0 - 10, "b": T0}, policy)
    base = f"wa:pace:{session}"
    assert redis_client.get(f"{base}:last") == b"%.3f" % T0
    assert redis_client.get(f"{base}:next") == b"%.3f" % (T0 + 2.0)
    assert 2 * DAY - 5 <= redis_client.ttl(f"{base}:hour") <= 2 * DAY
    assert 2 * DAY - 5 <= redis_client.ttl(f"{base}:day") <= 2 * DAY
    assert DAY - 5 <= redis_client.ttl(f"{base}:last") <= DAY
    assert 2 * DAY - 5 <= redis_client.ttl(f"{base}:next") <= 2 * DAY
    # A send since Redis came back: its later "last" and "next" win over the rebuild's.
    pacer.mark_sent(session, at=T0 + 100)
    redis_client.set(f"{base}:next", "%.3f" % (T0 + 101))
    pacer.rebuild(session, {"c": T0 + 50}, policy)
    assert pacer.last_sent(session) == T0 + 100
    assert redis_client.get(f"{base}:next") == b"%.3f" % (T0 + 101)


# --- circuit breaker --------------------------------------------------------------------------
def test_the_breaker_defaults_are_the_seeds_5_failures_and_60_s(redis_client, tag):
    breaker, session = CircuitBreaker(redis_client), f"cb_{tag}"
    assert [breaker.failure(session, now=T0) for _ in range(4)] == [None] * 4
    assert breaker.failure(session, now=T0) == T0 + 60


def test_an_open_circuit_closes_at_its_time_and_its_key_outlives_it_by_a_minute(redis_client, tag):
    breaker, session = CircuitBreaker(redis_client, threshold=1, cooldown=100), f"cb_{tag}"
    until = breaker.failure(session, now=T0)
    assert until == T0 + 100
    assert breaker.open_until(session, now=until - 0.01) == until
    assert breaker.open_until(session, now=until) is None
    assert 155 <= redis_client.ttl(f"wa:cb:{session}:open_until") <= 160


# --- send claims ------------------------------------------------------------------------------
class _Interfering:
    """A Redis client under which another client changes a claim at a chosen moment: just
    before a GET (``before_get``), just after it (``after_get``), between WATCH and MULTI
    (``before_multi``), or before the second SET (``before_second_set``); each once."""

    def __init__(self, client, before_get=None, after_get=None, before_multi=None, before_second_set=None):
        self.client, self.before_get, self.after_get, self.before_multi = client, before_get, after_get, before_multi
        self.before_second_set, self.sets = before_second_set, 0

    def set(self, *args, **kwargs):
        self.sets += 1
        if self.sets == 2 and self.before_second_set:
            self.before_second_set()
        return self.client.set(*args, **kwargs)

    def get(self, key):
        if self.before_get:
            hook, self.before_get = self.before_get, None
            hook()
        value = self.client.get(key)
        if self.after_get:
            hook, self.after_get = self.after_get, None
            hook()
        return value

    def delete(self, key):
        return self.client.delete(key)

    def pipeline(self, *args, **kwargs):
        pipe = self.client.pipeline(*args, **kwargs)
        if self.before_multi:
            hook, self.before_multi = self.before_multi, None
            multi = pipe.multi

            def interfered():
                hook()
                multi()
            pipe.multi = interfered
        return pipe


EARLIER_LIFE = "slot-1|old-boot|"


def earlier_life(holder: str) -> bool:
    return holder.startswith(EARLIER_LIFE)


def test_a_claim_is_a_lease_of_the_time_asked(redis_client, tag):
    claims, message_id = Claims(redis_client), f"msg_{tag}"
    assert claims.take(message_id, "task-1", lease=60) is None
    assert 59_000 < redis_client.pttl(Claims.key(message_id)) <= 60_000
    assert claims.take(message_id, "task-1", lease=30) is None  # the holder renews it
    assert 29_000 < redis_client.pttl(Claims.key(message_id)) <= 30_000


def test_a_lease_that_ran_out_between_two_looks_is_taken(redis_client, tag):
    message_id = f"msg_{tag}"
    key = Claims.key(message_id)
    redis_client.set(key, "someone-else", px=60_000)
    client = _Interfering(redis_client, before_get=lambda: redis_client.delete(key))
    assert Claims(client).take(message_id, "task-1", lease=60) is None
    assert redis_client.get(key) == b"task-1"
    assert 59_000 < redis_client.pttl(key) <= 60_000


def test_after_a_lease_ran_out_a_dead_holder_that_came_in_is_still_taken_over(redis_client, tag):
    message_id = f"msg_{tag}"
    key = Claims.key(message_id)
    redis_client.set(key, "slot-2|boot|t", px=60_000)
    client = _Interfering(redis_client, before_get=lambda: redis_client.delete(key),
                          before_second_set=lambda: redis_client.set(key, EARLIER_LIFE + "t5", px=60_000))
    assert Claims(client).take(message_id, "slot-1|new-boot|t", lease=60, dead=earlier_life) is None
    assert redis_client.get(key) == b"slot-1|new-boot|t"


def take_from_an_earlier_life(redis_client, message_id: str, **interference):
    """A claim held by a task of the slot's earlier life, taken by this life's task while
    ``interference`` (``_Interfering``'s hooks) changes it; what ``take`` answered."""
    redis_client.set(Claims.key(message_id), EARLIER_LIFE + "t1", px=60_000)
    return Claims(_Interfering(redis_client, **interference)).take(
        message_id, "slot-1|new-boot|t", lease=60, dead=earlier_life)


# Between the look and the WATCH, or during the takeover (before MULTI).
@pytest.mark.parametrize("moment", ["after_get", "before_multi"])
def test_a_claim_another_task_of_the_dead_life_took_meanwhile_is_judged_again(redis_client, tag, moment):
    message_id = f"msg_{tag}"
    key = Claims.key(message_id)
    meanwhile = {moment: lambda: redis_client.set(key, EARLIER_LIFE + "t2", px=60_000)}  # still a dead holder
    assert take_from_an_earlier_life(redis_client, message_id, **meanwhile) is None
    assert redis_client.get(key) == b"slot-1|new-boot|t"
    assert 59_000 < redis_client.pttl(key) <= 60_000


def test_a_live_holder_that_came_in_during_the_takeover_keeps_the_claim(redis_client, tag):
    message_id = f"msg_{tag}"
    key = Claims.key(message_id)
    assert take_from_an_earlier_life(
        redis_client, message_id, before_multi=lambda: redis_client.set(key, "slot-2|boot|t", px=60_000)
    ) == b"slot-2|boot|t"


def test_only_the_holder_releases_a_claim(redis_client, tag):
    claims, message_id = Claims(redis_client), f"msg_{tag}"
    claims.take(message_id, "task-1", lease=60)
    claims.release(message_id, "task-2")
    assert redis_client.get(Claims.key(message_id)) == b"task-1"
    claims.release(message_id, "task-1")
    assert redis_client.get(Claims.key(message_id)) is None


def test_a_cancel_is_kept_a_week(redis_client, tag):
    claims, message_id = Claims(redis_client), f"msg_{tag}"
    assert claims.cancel(message_id)
    assert 7 * DAY - 5 <= redis_client.ttl(Claims.key(message_id)) <= 7 * DAY


# --- accepting a send -------------------------------------------------------------------------
@pytest.fixture
def ready(db, user_id):
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, status="READY", slot=f"edge-{user_id}", epoch=3,
                              pacing={"min_gap_seconds": 4}))
    return user_id


class _Celery:
    """Records what would be enqueued; ``fail_after`` enqueues succeed, then Redis is away."""

    def __init__(self, fail_after: int | None = None):
        self.sent, self.fail_after = [], fail_after

    def send_task(self, name, kwargs=None, queue=None, **options):
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise redis.ConnectionError("Redis is away")
        self.sent.append((name, queue, kwargs))


def accept(db, settings, session_id, recipients, **kw):
    from services.accepting import accept_send

    return accept_send(db, settings, session_id, "bulk", recipients, scope=kw.pop("scope", Scope(admin=True)), **kw)


def to(number, text="hi", **kw):
    return Recipient(number, number, text, **kw)


def test_dispatch_enqueues_what_may_go_with_everything_the_task_needs(db, settings, ready):
    media = [{"url": "https://example.com/a.png"}]
    acceptance = accept(db, settings, ready, [to("919876543210", "a"), to("919876543210", "b"),
                                              to("919876543211", "c", media=media)])
    celery = _Celery()
    assert acceptance.dispatch(celery) == 2, "the one waiting for the first is not enqueued, the one after it is"
    first, third = acceptance.accepted.messages[0], acceptance.accepted.messages[2]
    assert celery.sent == [
        ("wa.slot.send_message", f"slot.edge-{ready}", {
            "message_id": first.id, "job_id": acceptance.accepted.job_id, "session_id": ready, "epoch": 3,
            "to": "919876543210", "text": "a", "media": None, "pacing": {"min_gap_seconds": 4}, "attempt": 1,
            "earlier": None, "first_dispatch": acceptance.accepted.created_at.timestamp()}),
        ("wa.slot.send_message", f"slot.edge-{ready}", {
            "message_id": third.id, "job_id": acceptance.accepted.job_id, "session_id": ready, "epoch": 3,
            "to": "919876543211", "text": "c", "media": media, "pacing": {"min_gap_seconds": 4}, "attempt": 1,
            "earlier": None, "first_dispatch": acceptance.accepted.created_at.timestamp()}),
    ]


def test_dispatch_stops_at_the_first_enqueue_redis_refuses(db, settings, ready):
    acceptance = accept(db, settings, ready, [to(f"91987654321{i}") for i in range(3)])
    celery = _Celery(fail_after=1)
    assert acceptance.dispatch(celery) == 1
    assert len(celery.sent) == 1


def test_the_rows_say_who_sent_them_where_to_call_back_and_when_to_dispatch_again(db, settings, ready):
    from services.accepting import Idempotency

    before = utcnow()
    key = Idempotency.of("scope-x", f"k-{ready}", "send-bulk-messages", {"a": 1})
    acceptance = accept(db, settings, ready, [to("919876543210")], scope=Scope(admin=True, key_id="key_edge"),
                        callback_url="https://example.com/hook", idempotency=key)
    with db() as s:
        job = s.get(Job, acceptance.accepted.job_id)
        msg = s.get(Message, acceptance.accepted.message_ids[0])
        seen = s.get(IdempotencyKey, ("scope-x", f"k-{ready}"))
    assert (job.callback_url, job.api_key_id) == ("https://example.com/hook", "key_edge")
    grace = timedelta(seconds=settings.dispatch_grace_seconds)
    assert before + grace <= msg.dispatch_due_at <= utcnow() + grace
    assert (seen.job_id, seen.status_code, seen.response) == (job.id, 202, acceptance.body)


def test_a_session_not_ready_refuses_sends_even_with_a_slot(db, settings, user_id):
    from services.accepting import AcceptError

    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, status="DISCONNECTED", slot="edge", epoch=1))
    with pytest.raises(AcceptError) as refused:
        accept(db, settings, user_id, [to("919876543210")])
    assert refused.value.status == 400 and str(refused.value) == refused.value.message


def test_a_key_used_twice_at_once_answers_from_the_request_that_committed(db, settings, ready, monkeypatch):
    """Two requests with one Idempotency-Key at once: the loser's insert fails (forced here);
    it reads the winner's answer instead of failing."""
    from services import accepting

    real, calls = accepting._accept, []

    def racing(*args):
        calls.append(args)
        if len(calls) == 1:
            real(*args)  # the other request's commit, with the same key and body
            raise IntegrityError("INSERT INTO idempotency_keys", {}, Exception("duplicate key"))
        return real(*args)

    monkeypatch.setattr(accepting, "_accept", racing)
    key = accepting.Idempotency.of("scope-y", f"race-{ready}", "send-bulk-messages", {"b": 2})
    acceptance = accept(db, settings, ready, [to("919876543210")], callback_url="https://example.com/h",
                        idempotency=key)
    assert acceptance.replayed and len(calls) == 2
    assert calls[1] == calls[0] == (db, settings, ready, "bulk", calls[0][4], Scope(admin=True),
                                    "https://example.com/h", key)
    monkeypatch.setattr(accepting, "_accept", lambda *a: (_ for _ in ()).throw(
        IntegrityError("INSERT", {}, Exception("duplicate"))))
    with pytest.raises(IntegrityError):  # without a key an integrity error is a bug, not a race
        accept(db, settings, ready, [to("919876543210")])


def test_an_idempotency_key_ignores_the_order_of_the_body_and_is_never_cut():
    import pytest

    from services.accepting import Idempotency

    a = Idempotency.of("s", "k", "send-message:x", {"to": "1", "message": "hi"})
    b = Idempotency.of("s", "k", "send-message:x", {"message": "hi", "to": "1"})
    assert a.request_hash == b.request_hash
    assert Idempotency.of("s", "k" * 255, "w", {}).key == "k" * 255
    with pytest.raises(ValueError):  # refused: two keys with the same first 255 characters must not collide
        Idempotency.of("s", "k" * 256, "w", {})
    assert Idempotency.of("s", None, "w", {}) is None


def test_dispatch_of_an_answer_replayed_enqueues_nothing():
    from services.accepting import Acceptance

    celery = _Celery()
    assert Acceptance(202, {"job_id": "job_x"}, replayed=True).dispatch(celery) == 0
    assert celery.sent == []


def test_an_idempotency_hash_is_stable_across_releases():
    """A key stored before a deploy must still match its replay after it (keys live a day):
    the canonical form is pinned here, written out by hand."""
    import hashlib

    from services.accepting import Idempotency

    canonical = b'{"body":{"message":"hi","to":"1"},"what":"send-message:x"}'
    assert Idempotency.of("s", "k", "send-message:x", {"to": "1", "message": "hi"}).request_hash == \
        hashlib.sha256(canonical).hexdigest()


def test_the_send_answers_have_the_seeds_shape(client, ready):
    single = client.post(f"/webjs/sessions/{ready}/send-message", json={"to": "919876543210", "message": "a"})
    assert single.status_code == 202
    assert single.json == {"success": True, "job_id": single.json["job_id"], "message_id": single.json["message_id"],
                           "session_id": ready, "status": "queued"}
    assert single.json["job_id"].startswith("job_") and single.json["message_id"].startswith("msg_")
    bulk = client.post(f"/webjs/sessions/{ready}/send-bulk-messages", json={"messages": [
        {"to": "919876543211", "message": "b"}, {"to": "12345", "message": "c"}]})
    body = bulk.json
    assert (body["success"], body["status"], body["total_messages"], body["successful_sends"],
            body["failed_sends"], body["duration"]) == (True, "queued", 2, 0, 1, "0.0 seconds")
    pending, failed = body["results"]
    assert (pending["status"], pending["message_status"], failed["status"], failed["message_status"]) == \
        ("pending", "queued", "failed", "failed")
    assert utcnow() - timedelta(minutes=1) <= datetime.fromisoformat(pending["timestamp"]) <= utcnow()
    none = client.post(f"/webjs/sessions/{ready}/send-bulk-messages", json={"messages": [
        {"to": "12345", "message": "c"}]}).json
    assert (none["success"], none["status"], none["failed_sends"]) == (False, "failed", 1)


def test_a_send_to_an_unknown_session_says_so(client):
    r = client.post("/webjs/sessions/nobody_here/send-message", json={"to": "919876543210", "message": "a"})
    assert (r.status_code, r.json["message"]) == (404, "Session not found")


# --- stream ids, the webhook outbox -----------------------------------------------------------
def test_the_first_possible_stream_id_is_newer_than_none():
    from models.states import session_event_is_fresh

    assert session_event_is_fresh(1, None, 1, "0-1")
    assert not session_event_is_fresh(1, "0-1", 1, "0-1")


def test_an_unknown_webhook_type_is_named_in_the_refusal(db):
    from models import enqueue_webhook

    with db() as s, pytest.raises(ValueError, match="message.exploded"):
        enqueue_webhook(s, "https://example.com/hook", "message.exploded", {})


def test_webhook_times_are_utc_whatever_the_machines_zone(db, monkeypatch):
    import json
    import time as time_module
    from datetime import timezone

    from models import WebhookDelivery, enqueue_webhook

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time_module.tzset()
    try:
        at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
        with db.begin() as s:
            event_id = enqueue_webhook(s, "https://example.com/hook", "job.finished", {}, at=at)
        with db.begin() as s:
            row = s.get(WebhookDelivery, event_id)
            assert json.loads(row.body)["created_at"] == "2026-01-01T17:00:00Z"
            assert row.attempts == 0
            s.delete(row)
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()


# --- the recorder's batch ---------------------------------------------------------------------
def entry(entry_id: str, event: dict | None = None, raw: bytes | None = None):
    import json

    return entry_id, {b"e": raw if raw is not None else json.dumps(event).encode()}


@pytest.fixture
def recorder(db, redis_client, user_id, monkeypatch):
    from workers.recorder import Recorder

    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, slot="slot-x", epoch=7))
    rec = Recorder(redis_client, db, consumer=f"edge-{user_id}")
    rec.sweeps = 0

    def sweep():
        rec.sweeps += 1
    monkeypatch.setattr(rec, "request_sweep", sweep)
    return rec


def status_of(db, session_id):
    from sqlalchemy import select

    with db() as s:
        return s.execute(select(WhatsAppSession.status).where(WhatsAppSession.session_id == session_id)).scalar_one()


def test_an_event_that_cannot_be_applied_is_set_aside_and_the_batch_goes_on(recorder, db, redis_client, user_id):
    from messaging.events import DEAD_LETTERS

    assert recorder.process([]) == 0
    applied = recorder.process([
        entry("1-1", {"type": "session", "status": "READY"}),  # no session id: applying it raises
        ("1-2", {b"other": b"field"}),  # no event at all
        entry("1-3", {"type": "session", "session_id": user_id, "epoch": 7, "status": "QR_READY"}),
    ])
    assert applied == 1 and status_of(db, user_id) == "QR_READY"
    (_, bad), (_, empty) = redis_client.xrevrange(DEAD_LETTERS, count=2)[::-1]
    assert bad == {b"id": b"1-1", b"e": b'{"type": "session", "status": "READY"}'}
    assert empty == {b"id": b"1-2", b"e": b""}


def test_a_recorded_event_is_published_again_marked_recorded(recorder, redis_client, user_id):
    import json

    from messaging.events import session_channel

    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(session_channel(user_id))
    try:
        event = {"type": "session", "session_id": user_id, "epoch": 7, "status": "QR_READY"}
        assert recorder.process([entry("2-1", event)]) == 1
        message = None
        for _ in range(50):
            message = listener.get_message(timeout=0.1)
            if message:
                break
        assert message
        body = json.loads(message["data"])
        assert body.pop("at")  # when it happened: every event has it (models/events.py)
        assert body == {**event, "recorded": True}
    finally:
        listener.close()


def test_the_recorder_reads_a_client_that_decodes_answers(db, redis_url, user_id):
    import json

    from workers.recorder import Recorder

    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, slot="slot-x", epoch=7))
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    event = {"type": "session", "session_id": user_id, "epoch": 7, "status": "AUTHENTICATED"}
    assert Recorder(decoding, db).process([("3-1", {"e": json.dumps(event)})]) == 1
    assert status_of(db, user_id) == "AUTHENTICATED"


def test_a_message_that_releases_the_next_one_asks_for_a_sweep_at_once(recorder, db, user_id):
    from models.sends import accept_messages

    with db.begin() as s:
        accepted = accept_messages(s, user_id, "bulk", [to("919876543210", "a"), to("919876543210", "b"),
                                                       to("919876543211", "c")], utcnow())
    first, second, other = accepted.message_ids
    sent = {"type": "message", "job_id": accepted.job_id, "session_id": user_id, "status": "sending", "attempt": 1}
    assert recorder.process([entry("4-1", {**sent, "message_id": other})]) == 1
    assert recorder.sweeps == 0, "nothing was released"
    assert recorder.process([entry("4-2", {**sent, "message_id": first, "status": "sent"})]) == 1
    assert recorder.sweeps == 1
    with db() as s:
        assert s.get(Message, second).dispatch_due_at is not None


# --- the rows that make a send durable --------------------------------------------------------
def test_the_rows_hold_everything_the_sweeper_needs_to_send_later(db, ready):
    """The sweeper dispatches from these rows alone (Redis may have lost the tasks): each
    column is read back and compared with what was asked."""
    from models.sends import accept_messages

    long_input = "+91 98765 43210 " + "x" * 60
    media = [{"url": "https://example.com/a.png"}]
    with db.begin() as s:
        accepted = accept_messages(s, ready, "bulk", [
            Recipient("919876543210", long_input, "first", media=media),
            Recipient("", "12345", "bad number", error="Invalid phone number format"),
            to("919876543210", "second"),
        ], utcnow() + timedelta(seconds=60))
    with db() as s:
        job = s.get(Job, accepted.job_id)
        first, bad, second = (s.get(Message, i) for i in accepted.message_ids)
    now = accepted.created_at
    assert (job.total, job.status, job.created_at, job.updated_at, job.finished_at) == (3, "processing", now, now, None)
    assert [m.position for m in (first, bad, second)] == [0, 1, 2]
    assert (first.text, first.to, first.to_input, first.media) == ("first", "919876543210", long_input[:64], media)
    assert (first.attempts, first.error, first.failed_at, first.dispatched_at) == (0, None, None, now)
    assert (first.created_at, first.updated_at) == (now, now)
    assert (bad.status, bad.error, bad.failed_at, bad.dispatched_at, bad.dispatch_due_at) == \
        ("failed", "Invalid phone number format", now, None, None)
    assert (second.after_message_id, second.dispatched_at, second.dispatch_due_at) == (first.id, None, None)


def test_a_job_whose_numbers_all_failed_is_finished_at_once(db, ready):
    from models.sends import accept_messages

    with db.begin() as s:
        accepted = accept_messages(s, ready, "bulk", [Recipient("", "1", "x", error="Invalid phone number format")],
                                   utcnow())
    with db() as s:
        job = s.get(Job, accepted.job_id)
    assert (job.status, job.finished_at) == ("failed", accepted.created_at)


def test_a_message_waits_for_the_newest_unsent_one_to_its_number(db, ready):
    """Across jobs the newest is the latest created; within a job, the highest position (a
    row updated since may come back first from the table)."""
    from sqlalchemy import update

    from models.sends import accept_messages

    with db.begin() as s:
        older = accept_messages(s, ready, "bulk", [to("919876543211", "x"), to("919876543210", "job 1, pos 1")],
                                utcnow())
    with db.begin() as s:
        newer = accept_messages(s, ready, "single", [to("919876543210", "job 2, pos 0")], utcnow())
        inside = accept_messages(s, ready, "bulk", [to("919876543212", "a"), to("919876543212", "b")], utcnow())
        s.execute(update(Message).where(Message.id == inside.message_ids[0]).values(text="a, edited"))
    with db.begin() as s:
        after_newer = accept_messages(s, ready, "single", [to("919876543210", "next")], utcnow())
        after_inside = accept_messages(s, ready, "single", [to("919876543212", "c")], utcnow())
    assert older.message_ids[1] != newer.message_ids[0]
    assert after_newer.messages[0].dispatch_now is False
    with db() as s:
        assert s.get(Message, after_newer.message_ids[0]).after_message_id == newer.message_ids[0]
        assert s.get(Message, after_inside.message_ids[0]).after_message_id == inside.message_ids[1]


def test_a_message_sent_or_failed_before_holds_nothing_back(db, ready):
    from sqlalchemy import update

    from models.sends import accept_messages

    with db.begin() as s:
        earlier = accept_messages(s, ready, "bulk", [to("919876543210"), to("919876543211")], utcnow())
        s.execute(update(Message).where(Message.id == earlier.message_ids[0]).values(status="sent"))
        s.execute(update(Message).where(Message.id == earlier.message_ids[1]).values(status="failed"))
    with db.begin() as s:
        later = accept_messages(s, ready, "bulk", [to("919876543210"), to("919876543211")], utcnow())
    assert [m.dispatch_now for m in later.messages] == [True, True]


def test_a_ready_session_is_not_sending_only_when_nothing_happened_since_an_old_dispatch(db, user_id):
    from models.sends import accept_messages, stuck_sessions

    now = utcnow()
    old, after = now - timedelta(minutes=20), timedelta(minutes=10)
    sessions = {name: f"{user_id}_{name}" for name in ("stuck", "never_active", "disconnected", "recent",
                                                       "active")}
    with db.begin() as s:
        for name, sid in sessions.items():
            s.add(WhatsAppSession(user_id=sid, session_id=sid, slot="edge", epoch=1,
                                  status="DISCONNECTED" if name == "disconnected" else "READY",
                                  last_activity=None if name == "never_active" else
                                  (now - timedelta(minutes=1) if name == "active" else old)))
            s.flush()
            accepted = accept_messages(s, sid, "single", [to("919876543210")], None)
            dispatched = now - timedelta(minutes=1) if name == "recent" else old
            s.get(Message, accepted.message_ids[0]).dispatched_at = dispatched
    try:
        with db() as s:
            found = {sid for sid in sessions.values() if stuck_sessions(s, after, sid, now=now)}
        assert found == {sessions["stuck"], sessions["never_active"]}
    finally:  # stuck sessions left behind would make health say degraded to later tests
        with db.begin() as s:
            s.execute(delete(Job).where(Job.session_id.in_(list(sessions.values()))))
            s.execute(delete(WhatsAppSession).where(WhatsAppSession.session_id.in_(list(sessions.values()))))
