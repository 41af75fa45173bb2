"""API behaviour that needs no browser: auth, validation, errors, sessions and jobs."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from models import SessionTransition, WhatsAppSession


def test_requests_without_a_key_get_401(anon_client, user_id):
    r = anon_client.post("/webjs/sessions", json={"user_id": user_id})
    assert r.status_code == 401
    assert r.json == {"statusCode": 401, "error": "Unauthorized", "message": r.json["message"]}
    assert "API key" in r.json["message"]
    assert anon_client.get("/webjs/sessions/x/status", headers={"X-API-Key": "wak_wrong"}).status_code == 401


def test_bearer_key_is_accepted(anon_client, api_key, user_id):
    r = anon_client.post("/webjs/sessions", json={"user_id": user_id},
                         headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 201


def test_revoked_key_is_refused(app, anon_client, user_id):
    from api.keys import create_key, revoke_key

    db = app.extensions["wa"].db
    row, key = create_key(db, "short-lived", admin=True)
    assert revoke_key(db, row.prefix) == 1
    assert anon_client.get("/webjs/sessions/active", headers={"X-API-Key": key}).status_code == 401


def test_keys_are_stored_hashed(app, api_key):
    from models import ApiKey

    with app.extensions["wa"].db() as s:
        stored = s.execute(select(ApiKey.key_hash, ApiKey.prefix)).all()
    assert all(api_key not in (h, p) for h, p in stored)
    assert any(api_key.startswith(p) for _h, p in stored)


def test_create_session_has_the_seed_shape(client, user_id):
    r = client.post("/webjs/sessions", json={"user_id": user_id})
    assert r.status_code == 201
    body = r.json
    assert body["session_id"] == user_id and body["user_id"] == user_id
    assert body["status"] == "INITIALIZING"
    assert body["is_authenticated"] is False and body["is_ready"] is False
    assert body["id"].startswith("session_") and body["session_name"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["created_at"]), "the seed's 2024-01-15T10:30:00Z"


def test_creating_again_replaces_the_users_session(client, db, user_id):
    first = client.post("/webjs/sessions", json={"user_id": user_id}).json
    second = client.post("/webjs/sessions", json={"user_id": user_id}).json
    assert first["id"] != second["id"]
    with db() as s:
        rows = s.execute(select(WhatsAppSession).where(WhatsAppSession.user_id == user_id)).scalars().all()
        log = s.execute(select(SessionTransition.to_status).where(SessionTransition.session_id == user_id)).scalars().all()
    assert [r.id for r in rows] == [second["id"]]
    assert log == ["DESTROYED"]


def test_unknown_session_is_404(client):
    for method, path in [("get", "/webjs/sessions/nobody/status"), ("get", "/webjs/sessions/nobody/qr"),
                         ("post", "/webjs/sessions/nobody/initialize"), ("delete", "/webjs/sessions/nobody")]:
        r = getattr(client, method)(path)
        assert r.status_code == 404, path
        assert r.json == {"statusCode": 404, "message": "Session not found", "error": "Not Found"}
    r = client.post("/webjs/sessions/nobody/send-message", json={"to": "919876543210", "message": "hi"})
    assert r.status_code == 404


def test_send_before_ready_is_400_with_the_seed_message(client, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    r = client.post(f"/webjs/sessions/{user_id}/send-message", json={"to": "919876543210", "message": "hi"})
    assert r.status_code == 400
    assert r.json["message"] == "Client is not ready. Please ensure the session is authenticated and ready."
    assert r.json["error"] == "Bad Request"


def test_qr_before_initialize_is_400(client, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    r = client.get(f"/webjs/sessions/{user_id}/qr")
    assert r.status_code == 400
    assert r.json["message"] == "QR code not available. Please initialize the client first."


def test_invalid_phone_is_refused_with_a_clear_message(client, user_id):
    client.post("/webjs/sessions", json={"user_id": user_id})
    for bad in ["12345", "not-a-number", ""]:
        r = client.post(f"/webjs/sessions/{user_id}/send-message", json={"to": bad, "message": "hi"})
        assert r.status_code in (400, 422), bad
        assert "Invalid phone number format" in r.json["message"], r.json


def test_missing_fields_are_named(client, user_id):
    r = client.post(f"/webjs/sessions/{user_id}/send-message", json={"to": "919876543210"})
    assert r.status_code == 422
    assert r.json["message"].startswith("message:")
    r = client.post("/webjs/sessions", json={})
    assert r.status_code == 422 and "user_id" in r.json["message"]


def test_malformed_json_is_400(client):
    r = client.post("/webjs/sessions", data="{not json", content_type="application/json")
    assert r.status_code == 400
    assert r.json["statusCode"] == 400 and r.json["error"] == "Bad Request"


def test_initialize_without_any_slot_is_503(client, user_id, redis_client):
    redis_client.delete("wa:slots")
    client.post("/webjs/sessions", json={"user_id": user_id})
    r = client.post(f"/webjs/sessions/{user_id}/initialize")
    assert r.status_code == 503
    assert r.json["statusCode"] == 503


def test_capacity_full_is_503_with_the_seed_message(client, db, redis_client, user_id):
    from messaging import slots

    slots.heartbeat(redis_client, "tiny-slot", capacity=1, ttl=30)
    try:
        with db.begin() as s:
            s.add(WhatsAppSession(user_id=user_id + "_other", session_id=user_id + "_other",
                                  slot="tiny-slot", status="READY"))
        client.post("/webjs/sessions", json={"user_id": user_id})
        r = client.post(f"/webjs/sessions/{user_id}/initialize")
        assert r.status_code == 503
        assert r.json["message"] == "Maximum concurrent sessions reached. Please try again later."
    finally:
        slots.unregister(redis_client, "tiny-slot")


def test_user_endpoints(client, user_id):
    assert client.get(f"/webjs/users/{user_id}/session").status_code == 404
    client.post("/webjs/sessions", json={"user_id": user_id})
    r = client.get(f"/webjs/users/{user_id}/session")
    assert r.status_code == 200 and r.json["session_id"] == user_id
    r = client.delete(f"/webjs/users/{user_id}/sessions")
    assert r.status_code == 200 and r.json["deleted_count"] == 1
    assert client.get(f"/webjs/users/{user_id}/session").status_code == 404


def test_unknown_job_is_404(client):
    r = client.get("/webjs/jobs/job_missing")
    assert r.status_code == 404 and r.json["message"] == "Job not found"


def test_swagger_ui_and_spec_are_served_offline(anon_client):
    page = anon_client.get("/api/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/assets/swagger-ui-bundle.js" in html
    assert "http://" not in html and "https://" not in html, "nothing may load from another host"
    assert anon_client.get("/api/assets/swagger-ui-bundle.js").status_code == 200
    assert anon_client.get("/api/assets/swagger-ui.css").status_code == 200
    spec = json.loads(anon_client.get("/api/openapi.json").get_data())
    assert spec["openapi"].startswith("3.")
    for path in ["/webjs/sessions", "/webjs/sessions/{session_id}/initialize", "/webjs/sessions/{session_id}/qr",
                 "/webjs/sessions/{session_id}/status", "/webjs/sessions/{session_id}/send-message",
                 "/webjs/jobs/{job_id}", "/webjs/sessions/{session_id}", "/webjs/users/{user_id}/session",
                 "/webjs/users/{user_id}/sessions", "/webjs/sessions/active"]:
        assert path in spec["paths"], path
    assert "ApiKey" in spec["components"]["securitySchemes"]


def test_redis_down_while_accepting_still_answers_202_and_keeps_the_message(app, client, db, settings,
                                                                              monkeypatch, user_id):
    """The message is durable before Redis is touched; Redis being away must not make it an error."""
    from dataclasses import replace

    import redis

    from models import Message
    from tests.helpers import free_port
    from workers.app import make_celery

    with db.begin() as s:
        s.add(WhatsAppSession(user_id=user_id, session_id=user_id, status="READY", slot="nowhere", epoch=1))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    svc = app.extensions["wa"]
    monkeypatch.setattr(svc, "redis", redis.Redis.from_url(dead, socket_connect_timeout=1))
    monkeypatch.setattr(svc, "celery", make_celery(replace(settings, redis_url=dead)))
    first = None
    for path, to in ((f"/webjs/sessions/{user_id}/send-message", "919876543210"),
                     (f"/webjs/sessions/{user_id}/send-message?wait=5", "919876543211")):
        r = client.post(path, json={"to": to, "message": "while redis sleeps"})
        assert r.status_code == 202, r.json
        assert r.json["status"] == "queued"
        with db() as s:
            msg = s.get(Message, r.json["message_id"])
        assert msg.status == "queued" and msg.dispatch_due_at is not None, "the sweeper will dispatch it"
        first = first or msg.id
    # A second message to a number with an unsent one waits for it (order per recipient).
    r = client.post(f"/webjs/sessions/{user_id}/send-message", json={"to": "919876543210", "message": "next"})
    with db() as s:
        msg = s.get(Message, r.json["message_id"])
    assert msg.after_message_id == first and msg.dispatch_due_at is None
    r = client.get(f"/webjs/sessions/{user_id}/qr")
    assert r.status_code == 503 and r.json["statusCode"] == 503


def test_initialize_when_the_queue_is_down_is_503_and_can_be_retried(app, client, db, settings, redis_client,
                                                                     monkeypatch, user_id):
    from dataclasses import replace

    from messaging import slots
    from tests.helpers import free_port
    from workers.app import make_celery

    slots.heartbeat(redis_client, "queue-test-slot", capacity=5, ttl=30)
    try:
        client.post("/webjs/sessions", json={"user_id": user_id})
        svc = app.extensions["wa"]
        with monkeypatch.context() as m:
            m.setattr(svc, "celery", make_celery(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")))
            r = client.post(f"/webjs/sessions/{user_id}/initialize")
        assert r.status_code == 503
        status = client.get(f"/webjs/sessions/{user_id}/status").json
        assert status["status"] == "DISCONNECTED" and status["reason"] == "QUEUE_UNAVAILABLE"
        r = client.post(f"/webjs/sessions/{user_id}/initialize")
        assert r.status_code == 200 and r.json["status"] == "INITIALIZING"
    finally:
        slots.unregister(redis_client, "queue-test-slot")


def test_media_in_a_send_is_checked_before_it_is_accepted(client, user_id):
    import base64

    url = f"/webjs/sessions/{user_id}/send-message"
    cases = [
        ({"media_urls": ["ftp://example.com/a.pdf"]}, "media_urls"),
        ({"media_urls": ["https://example.com/a.png"] * 11}, "media_urls"),
        ({"media": [{"filename": "a.txt", "mimetype": "text/plain", "data": "not base64!"}]}, "base64"),
        ({"media": [{"filename": "a.png", "mimetype": "image/png",
                     "data": base64.b64encode(b"x" * (16 * 1024 * 1024 + 1)).decode()}]}, "16 MB limit"),
        ({"message": "", "media": []}, "message"),
    ]
    for extra, expected in cases:
        r = client.post(url, json={"to": "919876543210", "message": "hi", **extra})
        assert r.status_code == 422, (extra.keys(), r.json)
        assert expected in r.json["message"], r.json


def test_pairing_code_needs_a_session_and_a_valid_number(client, user_id):
    r = client.post(f"/webjs/sessions/{user_id}/pairing-code", json={"phone_number": "919876543210"})
    assert r.status_code == 404 and r.json["message"] == "Session not found"
    client.post("/webjs/sessions", json={"user_id": user_id})
    r = client.post(f"/webjs/sessions/{user_id}/pairing-code", json={"phone_number": "12"})
    assert r.status_code == 422 and "Invalid phone number format" in r.json["message"]
    r = client.post(f"/webjs/sessions/{user_id}/pairing-code", json={"phone_number": "919876543210"})
    assert r.status_code == 400 and "initialize" in r.json["message"]
