"""Accepting sends: bulk, Idempotency-Key, cancel, pacing settings (real PostgreSQL and
Redis; the session is placed on a slot nobody consumes, so nothing is sent)."""
from __future__ import annotations

import pytest

from messaging.pacing import Claims
from models import Job, Message


def bulk(client, session_id, messages, **extra):
    return client.post(f"/webjs/sessions/{session_id}/send-bulk-messages", json={"messages": messages},
                       **extra)


def test_bulk_accepts_and_fails_invalid_numbers_on_their_own(client, db, ready):
    r = bulk(client, ready, [
        {"to": "+919370928324", "message": "Hey did you check the message?"},
        {"to": "12345", "message": "Your payment is due tomorrow"},
        {"to": "+918765432109", "message": "Meeting at 3 PM", "media_urls": ["https://example.com/agenda.pdf"]},
    ])
    assert r.status_code == 202, r.json
    body = r.json
    assert body["success"] is True and body["session_id"] == ready and body["total_messages"] == 3
    assert body["failed_sends"] == 1 and body["successful_sends"] == 0
    assert [x["status"] for x in body["results"]] == ["pending", "failed", "pending"]
    assert body["results"][1]["error"] == "Invalid phone number format" and body["results"][1]["to"] == "12345"
    job = client.get(f"/webjs/jobs/{body['job_id']}").json
    assert job["status"] == "processing" and job["failed_sends"] == 1 and job["pending"] == 2
    with db() as s:
        msgs = s.query(Message).filter_by(job_id=body["job_id"]).order_by(Message.position).all()
    assert [m.status for m in msgs] == ["queued", "failed", "queued"]
    assert msgs[2].media == [{"url": "https://example.com/agenda.pdf"}]


def test_bulk_limit_and_item_validation(client, ready):
    too_many = [{"to": "919876543210", "message": f"m{i}"} for i in range(51)]
    r = bulk(client, ready, too_many)
    assert r.status_code == 422 and "1 to 50 messages" in r.json["message"]
    assert bulk(client, ready, []).status_code == 422
    r = bulk(client, ready, [{"to": "919876543210", "message": ""}])
    assert r.status_code == 422 and "message" in r.json["message"]


def test_bulk_on_a_session_not_ready_is_400(client, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    r = bulk(client, user_id, [{"to": "919876543210", "message": "hi"}])
    assert r.status_code == 400
    assert r.json["message"] == "Client is not ready. Please ensure the session is authenticated and ready."


def test_messages_to_one_number_keep_their_order(client, db, ready):
    r = bulk(client, ready, [{"to": "919876543210", "message": f"part {i}"} for i in range(3)]
             + [{"to": "919876543211", "message": "other"}])
    with db() as s:
        msgs = s.query(Message).filter_by(job_id=r.json["job_id"]).order_by(Message.position).all()
    assert msgs[0].after_message_id is None and msgs[0].dispatch_due_at is not None
    assert msgs[1].after_message_id == msgs[0].id and msgs[2].after_message_id == msgs[1].id
    assert msgs[1].dispatch_due_at is None and msgs[2].dispatch_due_at is None  # released in turn
    assert msgs[3].after_message_id is None


@pytest.mark.parametrize("path,body", [
    ("send-message", {"to": "919876543210", "message": "pay now"}),
    ("send-bulk-messages", {"messages": [{"to": "919876543210", "message": "pay now"}]}),
])
def test_idempotency_key_returns_the_first_job(client, db, ready, path, body):
    url = f"/webjs/sessions/{ready}/{path}"
    key = f"order-42-{ready}"
    first = client.post(url, json=body, headers={"Idempotency-Key": key})
    again = client.post(url, json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    other = client.post(url, json={**body, "callback_url": "https://example.com/hook"},
                        headers={"Idempotency-Key": key})
    assert other.status_code == 409 and "different request" in other.json["message"]
    fresh = client.post(url, json=body, headers={"Idempotency-Key": key + "-b"})
    assert fresh.status_code == 202 and fresh.json["job_id"] != first.json["job_id"]
    with db() as s:
        assert s.query(Job).filter_by(session_id=ready).count() == 2


def test_idempotency_keys_belong_to_their_api_key(app, client, ready):
    from api.keys import create_key

    _, other_key = create_key(app.extensions["wa"].db, "another service", admin=True)
    url = f"/webjs/sessions/{ready}/send-message"
    body = {"to": "919876543210", "message": "hello"}
    a = client.post(url, json=body, headers={"Idempotency-Key": f"shared-{ready}"})
    b = client.post(url, json=body, headers={"Idempotency-Key": f"shared-{ready}", "X-API-Key": other_key})
    assert a.status_code == b.status_code == 202 and a.json["job_id"] != b.json["job_id"]


def test_an_expired_idempotency_key_starts_afresh(client, db, ready):
    from datetime import timedelta

    from models import IdempotencyKey, utcnow

    url = f"/webjs/sessions/{ready}/send-message"
    body = {"to": "919876543210", "message": "hello"}
    first = client.post(url, json=body, headers={"Idempotency-Key": f"old-{ready}"})
    with db.begin() as s:
        row = s.query(IdempotencyKey).filter_by(key=f"old-{ready}").one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    again = client.post(url, json=body, headers={"Idempotency-Key": f"old-{ready}"})
    assert again.status_code == 202 and again.json["job_id"] != first.json["job_id"]


def test_cancel_stops_what_is_not_being_sent(client, db, ready, redis_client):
    r = bulk(client, ready, [{"to": f"91987654321{i}", "message": f"m{i}"} for i in range(3)])
    job_id = r.json["job_id"]
    with db() as s:
        ids = [m.id for m in s.query(Message).filter_by(job_id=job_id).order_by(Message.position)]
    assert Claims(redis_client).take(ids[0], "a-worker", lease=60) is None  # a worker is sending it
    c = client.post(f"/webjs/jobs/{job_id}/cancel")
    assert c.status_code == 200, c.json
    assert c.json["cancelled"] == 2 and c.json["not_cancelled"] == 1
    job = client.get(f"/webjs/jobs/{job_id}").json
    assert [x["message_status"] for x in job["results"]] == ["queued", "cancelled", "cancelled"]
    assert Claims(redis_client).take(ids[1], "late-worker", lease=60) == Claims.CANCELLED
    assert client.post(f"/webjs/jobs/{job_id}/cancel").json["cancelled"] == 0
    assert client.post("/webjs/jobs/job_nope/cancel").status_code == 404


def test_a_cancelled_job_says_so(client, ready):
    r = bulk(client, ready, [{"to": "919876543210", "message": "a"}])
    client.post(f"/webjs/jobs/{r.json['job_id']}/cancel")
    assert client.get(f"/webjs/jobs/{r.json['job_id']}").json["status"] == "cancelled"


def test_pacing_and_callback_url_per_session(client, user_id):
    r = client.post("/webjs/sessions", json={"user_id": user_id, "callback_url": "https://example.com/hooks",
                                             "pacing": {"min_gap_seconds": 3, "max_gap_seconds": 5,
                                                        "hourly_cap": 20}})
    assert r.status_code == 201, r.json
    status = client.get(f"/webjs/sessions/{user_id}/status").json
    assert status["pacing"] == {"min_gap_seconds": 3, "max_gap_seconds": 5, "hourly_cap": 20}
    assert status["callback_url"] == "https://example.com/hooks"
    r = client.patch(f"/webjs/sessions/{user_id}", json={"pacing": {"min_gap_seconds": 2, "max_gap_seconds": 1}})
    assert r.status_code == 422 and "max_gap_seconds" in r.json["message"]
    r = client.patch(f"/webjs/sessions/{user_id}", json={"pacing": None, "callback_url": None})
    assert r.status_code == 200 and r.json["pacing"] is None and r.json["callback_url"] is None
    r = client.post("/webjs/sessions", json={"user_id": user_id, "callback_url": "ftp://example.com/x"})
    assert r.status_code == 422


@pytest.mark.parametrize("to", ["120363025246125888@g.us", "status@broadcast", "120363144038483540@newsletter",
                                "134532350852872@lid"])
def test_a_group_or_other_whatsapp_id_is_refused_as_not_a_phone_number(client, db, ready, to):
    """A group's (or another WhatsApp) id is not a mistyped number: the whole request is
    refused with a 422 that says ``to`` must be a phone number, single and bulk alike;
    ordinary bad numbers keep the seed's message (and fail on their own in a bulk)."""
    why = "must be a phone number: groups (…@g.us), broadcast lists (…@broadcast), channels " \
          "(…@newsletter) and other WhatsApp ids cannot be sent to"
    single = client.post(f"/webjs/sessions/{ready}/send-message", json={"to": to, "message": "hi"})
    assert single.status_code == 422 and single.json["errors"] == [f"to: {why}"], single.json
    r = bulk(client, ready, [{"to": "+919370928324", "message": "a person"}, {"to": to, "message": "a group"}])
    assert r.status_code == 422 and r.json["errors"] == [f"messages.1.to: {why}"], r.json
    with db() as s:
        assert s.query(Message).join(Job).filter(Job.session_id == ready).count() == 0, "nothing was accepted"
    bad = client.post(f"/webjs/sessions/{ready}/send-message", json={"to": "12345", "message": "hi"})
    assert bad.status_code == 422 and bad.json["errors"] == ["to: Invalid phone number format"]
