"""Inline media travel by reference (issue 11 item 5): stored once when the send is
accepted, the rows and the task messages carry a small reference, the slot reads the
bytes back, an expired object fails the message for good, and expired objects are
deleted. Real PostgreSQL and Redis; the session's slot is one nobody consumes, so the
task messages stay in its queue to be looked at."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import replace

import pytest

from models import Job, Message, WhatsAppSession
from services.accepting import MEDIA_NOT_STORED
from storage.media import PREFIX, MediaStore, make_media_store
from storage.profiles import LocalBlobs

MB = 1024 * 1024


@pytest.fixture
def slot():
    return f"ref-{secrets.token_hex(4)}"


@pytest.fixture
def ready(db, user_id, slot):
    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, status="READY", slot=slot, epoch=1))
    return user_id


@pytest.fixture
def store(app):
    return app.extensions["wa"].media_store


def objects(store: MediaStore) -> set[str]:
    return set(store.blobs.keys(PREFIX))


def inline(data: bytes, filename: str = "report.pdf", mimetype: str = "application/pdf") -> dict:
    return {"filename": filename, "mimetype": mimetype, "data": base64.b64encode(data).decode()}


def task_messages(redis_client, slot: str) -> list[bytes]:
    return redis_client.lrange(f"slot.{slot}", 0, -1)


def test_a_megabyte_inline_file_is_stored_once_and_its_task_carries_a_reference(client, db, redis_client, store,
                                                                                 ready, slot):
    data = secrets.token_bytes(MB)
    encoded = base64.b64encode(data).decode()
    r = client.post(f"/webjs/sessions/{ready}/send-message",
                    json={"to": "919876543210", "message": "the report", "media": [inline(data)]})
    assert r.status_code == 202, r.json
    [raw] = task_messages(redis_client, slot)
    assert len(raw) < 4096, f"a task message of {len(raw)} bytes"
    assert encoded[1000:1100].encode() not in raw and b'"data"' not in raw
    [item] = json.loads(base64.b64decode(json.loads(raw)["body"]))[1]["media"]
    assert item["filename"] == "report.pdf" and item["mimetype"] == "application/pdf"
    assert item["size"] == MB and item["sha256"] == hashlib.sha256(data).hexdigest()
    with db() as s:
        row = s.get(Message, r.json["message_id"])
    assert row.media == [item], "the row holds the reference, not the bytes"
    assert store.get(item["ref"], item["sha256"]) == data


def test_the_same_file_in_a_bulk_is_stored_once(client, db, store, ready):
    data = secrets.token_bytes(2048)
    before = objects(store)
    r = client.post(f"/webjs/sessions/{ready}/send-bulk-messages", json={"messages": [
        {"to": f"91987654321{i}", "message": f"m{i}", "media": [inline(data, f"copy-{i}.pdf")]} for i in range(3)]})
    assert r.status_code == 202, r.json
    added = objects(store) - before
    assert len(added) == 1
    with db() as s:
        media = [m.media for m in s.query(Message).filter_by(job_id=r.json["job_id"]).order_by(Message.position)]
    assert [m[0]["ref"] for m in media] == [next(iter(added))] * 3
    assert [m[0]["filename"] for m in media] == ["copy-0.pdf", "copy-1.pdf", "copy-2.pdf"]


class FailingBlobs(LocalBlobs):
    """A folder that takes ``good`` objects, then refuses every write."""

    def __init__(self, root, good: int):
        super().__init__(root)
        self.good = good

    def put(self, key, data, sha256):
        if self.good <= 0:
            raise OSError("the store is away")
        self.good -= 1
        super().put(key, data, sha256)


def test_a_store_that_refuses_the_media_refuses_the_send_and_writes_nothing(client, db, redis_client, app,
                                                                          monkeypatch, tmp_path, ready, slot):
    blobs = FailingBlobs(tmp_path, good=1)
    monkeypatch.setattr(app.extensions["wa"], "media_store", MediaStore(blobs, 3600))
    r = client.post(f"/webjs/sessions/{ready}/send-message", json={
        "to": "919876543210", "message": "two files",
        "media": [inline(b"first"), inline(b"second", "b.pdf")]})
    assert r.status_code == 503 and r.json["message"] == MEDIA_NOT_STORED
    with db() as s:
        assert s.query(Job).filter_by(session_id=ready).count() == 0
    assert task_messages(redis_client, slot) == []
    assert blobs.keys(PREFIX) == [], "the file stored before the failure is deleted again"


def test_a_replayed_or_refused_send_leaves_no_media_behind(client, store, redis_client, ready, slot, user_id):
    body = {"to": "919876543210", "message": "once", "media": [inline(secrets.token_bytes(512))]}
    headers = {"Idempotency-Key": f"media-{secrets.token_hex(4)}"}
    before = objects(store)
    first = client.post(f"/webjs/sessions/{ready}/send-message", json=body, headers=headers)
    assert first.status_code == 202
    stored = objects(store) - before
    assert len(stored) == 1
    again = client.post(f"/webjs/sessions/{ready}/send-message", json=body, headers=headers)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert objects(store) - before == stored, "a replay stores nothing"
    assert len(task_messages(redis_client, slot)) == 1
    other = {**body, "message": "another body"}
    assert client.post(f"/webjs/sessions/{ready}/send-message", json=other, headers=headers).status_code == 409
    missing = client.post(f"/webjs/sessions/{user_id}-gone/send-message", json=body)
    assert missing.status_code == 404
    assert objects(store) - before == stored, "a refused send keeps nothing"


def test_the_control_worker_deletes_expired_media(wire_control, settings, tmp_path):
    from workers.control_tasks import expire_media

    w = wire_control(replace(settings, profile_dir=str(tmp_path), media_ttl_hours=1))
    now = time.time()
    old = w.media_store.put(b"old", "text/plain", "old.txt", now=now - 3 * 3600).ref
    kept = w.media_store.put(b"new", "text/plain", "new.txt", now=now).ref
    assert expire_media() == 1
    assert objects(w.media_store) == {kept}
    assert old not in objects(w.media_store)


def test_beat_runs_the_expiry():
    import celeryconfig

    assert {"task": "wa.control.expire_media", "schedule": 3600.0}.items() <= \
        celeryconfig.beat_schedule["expire-media"].items()


def delivery_with(settings, redis_client, store):
    from workers.delivery import Delivery

    def no_page(session_id, epoch):
        raise LookupError("no page in this test")

    return Delivery(settings, redis_client, no_page, store)


def test_the_slot_reads_the_bytes_back_by_reference(settings, redis_client, tmp_path):
    store = make_media_store(replace(settings, profile_dir=str(tmp_path / "store")))
    data = secrets.token_bytes(100_000)
    item = store.put(data, "image/png", "../holiday.png").as_item()
    media = delivery_with(settings, redis_client, store)._media_file(item, tmp_path)
    assert media.path.read_bytes() == data and media.kind == "media"
    assert media.path.parent == tmp_path and media.filename == "holiday.png"


def test_expired_media_fail_the_message_for_good(settings, redis_client, tmp_path):
    from browser.whatsapp import SendError
    from workers.send_rules import Outcome
    from workers.slot_tasks import outcome_of

    store = make_media_store(replace(settings, profile_dir=str(tmp_path / "store"), media_ttl_hours=1))
    expired = store.put(b"x", "application/pdf", "late.pdf", now=time.time() - 2 * 3600).as_item()
    gone = store.put(b"y", "application/pdf", "gone.pdf").as_item()
    store.delete([gone["ref"]])
    delivery = delivery_with(replace(settings, media_ttl_hours=1), redis_client, store)
    for item in (expired, gone):
        with pytest.raises(SendError) as caught:
            delivery._media_file(item, tmp_path)
        assert caught.value.permanent
        assert f"Media {item['filename']} expired" in str(caught.value)
        assert outcome_of(caught.value) == (Outcome.PERMANENT, str(caught.value))


def test_a_store_that_does_not_answer_is_tried_again(settings, redis_client, tmp_path):
    class Away(LocalBlobs):
        def get(self, key):
            raise OSError("the store is away")

    store = MediaStore(Away(tmp_path), 3600)
    item = store.put(b"x", "application/pdf", "a.pdf").as_item()
    with pytest.raises(Exception) as caught:
        delivery_with(settings, redis_client, store)._media_file(item, tmp_path)
    assert caught.value.permanent is False
