"""The webhook outbox against a real PostgreSQL and a receiver on 127.0.0.1.

Time is driven through the rows (next_attempt_at, created_at), never by sleeping; every test
runs under ``loopback_only``, so "refused without connecting" is proven, not assumed.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from sqlalchemy import delete, update

from models import WebhookDelivery, enqueue_webhook, utcnow
from workers import control_tasks, webhooks
from workers.webhooks import backoff, deliver_due, sign, verify

SECRET = "test-webhook-secret"


@pytest.fixture
def hooks(settings):
    """Settings that let webhooks reach the local receiver, signed, with a short timeout."""
    return replace(settings, webhook_allow_networks="127.0.0.0/8", webhook_secret=SECRET, webhook_timeout=2.0)


@pytest.fixture(autouse=True)
def empty_outbox(db):
    # deliver_due takes every due row in the database, so no test may see another's.
    with db.begin() as s:
        s.execute(delete(WebhookDelivery))
    yield
    with db.begin() as s:
        s.execute(delete(WebhookDelivery))


def enqueue(db, url: str, event_type: str = "message.sent", data: dict | None = None) -> str:
    with db.begin() as s:
        return enqueue_webhook(s, url, event_type, data or {"message_id": "msg_1", "status": "sent"})


def row(db, event_id: str) -> WebhookDelivery:
    with db() as s:
        return s.get(WebhookDelivery, event_id)


def set_row(db, event_id: str, **values) -> None:
    with db.begin() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == event_id).values(**values))


def make_due(db, event_id: str) -> None:
    set_row(db, event_id, next_attempt_at=utcnow() - timedelta(seconds=1))


# --- the outbox row ---------------------------------------------------------------------------
def test_an_event_is_a_pending_row_with_a_compact_json_body(db):
    before = utcnow()
    event_id = enqueue(db, "https://example.com/hook", "job.finished", {"job_id": "job_1"})
    saved = row(db, event_id)
    assert event_id.startswith("evt_") and len(event_id) <= 40
    assert (saved.status, saved.attempts, saved.event_type) == ("pending", 0, "job.finished")
    assert saved.next_attempt_at == saved.created_at >= before
    body = json.loads(saved.body)
    # The seed's format (2024-01-15T10:30:00Z), not isoformat()'s +00:00 with microseconds.
    assert body == {"id": event_id, "type": "job.finished",
                    "created_at": saved.created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data": {"job_id": "job_1"}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["created_at"])
    assert saved.body == json.dumps(body, separators=(",", ":"))


def test_an_event_is_recorded_only_when_its_transaction_commits(db):
    with pytest.raises(RuntimeError), db.begin() as s:
        event_id = enqueue_webhook(s, "https://example.com/hook", "session.status", {"status": "READY"})
        raise RuntimeError("the state change failed")
    assert row(db, event_id) is None


def test_an_unknown_event_type_is_refused(db):
    with db() as s, pytest.raises(ValueError):
        enqueue_webhook(s, "https://example.com/hook", "message.exploded", {})


# --- delivering -------------------------------------------------------------------------------
def test_a_delivery_is_signed_and_the_receiver_verifies_it(db, hooks, receiver):
    event_id = enqueue(db, receiver.url)
    assert deliver_due(hooks, db) == 1

    [(path, headers, body)] = receiver.requests
    saved = row(db, event_id)
    assert path == "/hooks"
    assert body == saved.body.encode()
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "wa-backend-webhooks/1"
    assert headers["X-Webhook-Id"] == event_id
    assert headers["X-Webhook-Event"] == "message.sent"
    assert abs(int(headers["X-Webhook-Timestamp"]) - time.time()) < 5
    assert verify(SECRET, headers["X-Webhook-Timestamp"], body, headers["X-Webhook-Signature"])
    assert not verify("another secret", headers["X-Webhook-Timestamp"], body, headers["X-Webhook-Signature"])
    assert not verify(SECRET, headers["X-Webhook-Timestamp"], body + b" ", headers["X-Webhook-Signature"])
    assert (saved.status, saved.attempts, saved.last_status_code, saved.last_error) == ("delivered", 1, 200, None)
    assert saved.delivered_at is not None


def test_without_a_secret_deliveries_are_not_signed(db, hooks, receiver):
    enqueue(db, receiver.url)
    deliver_due(replace(hooks, webhook_secret=None), db)
    [(_path, headers, _body)] = receiver.requests
    assert "X-Webhook-Signature" not in headers


def test_verify_refuses_stale_and_malformed_timestamps():
    body = b'{"id":"evt_1"}'
    signature = sign(SECRET, "1000", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(SECRET, "1000", body, signature, now=1000 + 300)
    assert not verify(SECRET, "1000", body, signature, now=1000 + 301)
    assert not verify(SECRET, "1000", body, signature, now=1000 - 301)
    assert not verify(SECRET, "soon", body, signature, now=1000)
    assert not verify(SECRET, "1000", body, "sha256=é", now=1000)


def test_a_server_error_is_retried_with_the_same_id_and_body(db, hooks, receiver):
    receiver.answer(500)
    event_id = enqueue(db, receiver.url)
    deliver_due(hooks, db)
    first = row(db, event_id)
    assert (first.status, first.attempts, first.last_status_code, first.last_error) == ("pending", 1, 500, "HTTP 500")
    assert first.next_attempt_at <= utcnow() + timedelta(seconds=5)

    make_due(db, event_id)
    deliver_due(hooks, db)
    assert row(db, event_id).status == "delivered"
    (_, h1, b1), (_, h2, b2) = receiver.requests
    assert h1["X-Webhook-Id"] == h2["X-Webhook-Id"] == event_id
    assert b1 == b2
    assert verify(SECRET, h2["X-Webhook-Timestamp"], b2, h2["X-Webhook-Signature"])


def test_too_many_requests_waits_for_retry_after(db, hooks, receiver):
    receiver.answer(429, {"Retry-After": "120"})
    event_id = enqueue(db, receiver.url)
    before = utcnow()
    deliver_due(hooks, db)
    saved = row(db, event_id)
    assert (saved.status, saved.last_status_code) == ("pending", 429)
    assert saved.next_attempt_at >= before + timedelta(seconds=120)

    assert deliver_due(hooks, db) == 0
    assert len(receiver.requests) == 1, "not again before Retry-After"
    make_due(db, event_id)
    deliver_due(hooks, db)
    assert row(db, event_id).status == "delivered"


@pytest.mark.parametrize("status, headers", [(404, {}), (410, {}), (302, {"Location": "http://127.0.0.1:1/"})])
def test_a_client_error_or_redirect_fails_for_good(db, hooks, receiver, status, headers):
    receiver.answer(status, headers)
    event_id = enqueue(db, receiver.url)
    deliver_due(hooks, db)
    saved = row(db, event_id)
    assert (saved.status, saved.attempts, saved.last_status_code) == ("failed", 1, status)
    assert saved.last_error.startswith(f"HTTP {status}")
    make_due(db, event_id)
    assert deliver_due(hooks, db) == 0
    assert len(receiver.requests) == 1


def test_a_timeout_is_retried(db, hooks, receiver):
    receiver.answer(200, delay=1.0)
    event_id = enqueue(db, receiver.url)
    deliver_due(replace(hooks, webhook_timeout=0.3), db)
    saved = row(db, event_id)
    assert (saved.status, saved.attempts, saved.last_status_code) == ("pending", 1, None)
    assert "timed out" in saved.last_error

    make_due(db, event_id)
    deliver_due(hooks, db)
    assert row(db, event_id).status == "delivered"
    assert len(receiver.requests) == 2


def test_a_refused_connection_is_retried(db, hooks, receiver):
    url = receiver.url
    receiver.shutdown()
    receiver.server_close()
    event_id = enqueue(db, url)
    deliver_due(hooks, db)
    saved = row(db, event_id)
    assert (saved.status, saved.attempts) == ("pending", 1)
    assert saved.last_error.startswith("connection failed")


def test_an_event_older_than_the_maximum_age_fails_without_a_post(db, hooks, receiver):
    event_id = enqueue(db, receiver.url)
    set_row(db, event_id, created_at=utcnow() - timedelta(hours=hooks.webhook_max_age_hours, seconds=1),
            attempts=7, last_error="HTTP 503")
    assert deliver_due(hooks, db) == 1
    saved = row(db, event_id)
    assert (saved.status, saved.attempts) == ("failed", 7)
    assert saved.last_error == "not delivered within 24 h; last: HTTP 503"
    assert receiver.requests == []


def test_a_retry_that_would_fall_after_the_maximum_age_fails_now(db, hooks, receiver):
    receiver.answer(503, {"Retry-After": "60"})
    event_id = enqueue(db, receiver.url)
    set_row(db, event_id, created_at=utcnow() - timedelta(hours=hooks.webhook_max_age_hours, seconds=-30))
    deliver_due(hooks, db)
    saved = row(db, event_id)
    assert (saved.status, saved.last_status_code) == ("failed", 503)
    assert saved.last_error == "HTTP 503; gave up after 1 attempts"


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook"])
def test_a_callback_to_a_private_address_fails_without_connecting(db, hooks, loopback_only, url):
    event_id = enqueue(db, url)
    deliver_due(hooks, db)
    saved = row(db, event_id)
    assert (saved.status, saved.last_status_code) == ("failed", None)
    assert saved.last_error.startswith("refused: ")
    assert loopback_only.seen == []


def test_loopback_is_refused_without_the_allow_list(db, hooks, receiver, loopback_only):
    event_id = enqueue(db, receiver.url)
    deliver_due(replace(hooks, webhook_allow_networks=""), db)
    saved = row(db, event_id)
    assert saved.status == "failed"
    assert saved.last_error == "refused: 127.0.0.1 is a loopback address"
    assert receiver.requests == []
    assert loopback_only.seen == []


def test_the_url_query_stays_out_of_logs_and_errors(db, hooks, receiver, caplog):
    receiver.answer(404)
    event_id = enqueue(db, receiver.url + "?token=hunter2")
    with caplog.at_level("INFO", logger="webhooks"):
        deliver_due(hooks, db)
    assert receiver.requests[0][0] == "/hooks?token=hunter2"
    assert "webhook attempt id=" + event_id in caplog.text
    assert "hunter2" not in caplog.text
    assert "hunter2" not in row(db, event_id).last_error


def test_two_workers_never_post_the_same_row_twice(db, hooks, receiver):
    ids = {enqueue(db, receiver.url) for _ in range(30)}
    for _ in ids:
        receiver.answer(200, delay=0.01)  # keeps both workers busy at once
    start = threading.Barrier(2)
    taken: list[int] = []

    def worker():
        start.wait()
        taken.append(deliver_due(hooks, db))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    posted = [headers["X-Webhook-Id"] for _path, headers, _body in receiver.requests]
    assert sorted(posted) == sorted(ids), "each row exactly once"
    assert sum(taken) == 30 and all(taken), f"both workers took rows: {taken}"
    with db() as s:
        assert {r.status for r in s.query(WebhookDelivery)} == {"delivered"}


def test_the_celery_task_delivers(db, hooks, receiver, wire_control):
    wire_control(hooks)
    event_id = enqueue(db, receiver.url)
    assert webhooks.deliver_webhooks.name == "wa.control.deliver_webhooks"
    assert webhooks.deliver_webhooks() == 1
    assert row(db, event_id).status == "delivered"


# --- the retry schedule -----------------------------------------------------------------------
def test_backoff_is_jittered_doubling_and_capped():
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (500, 3600)]:
        waits = [backoff(attempts) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2, "the whole range is used"
    assert all(backoff(1, retry_after=120) >= 120 for _ in range(50))
    assert backoff(1, retry_after=86400) == 3600
